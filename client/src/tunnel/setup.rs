//! What a tunnel is set up with: [`TunnelConfig`] and its [`Timing`], and
//! how `pra connect` and the app build it from the home (`config.toml`, the
//! key store, the passphrase), with refusals explained by the registry.

use crate::config::{self, Config, GatewayAddr};
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::{keystore, passphrase, registry_client};
use pra_proto::api::KeyStatusReply;
use pra_proto::codes::Code;
use pra_proto::sanitize::sanitize;
use russh::keys::PrivateKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Called once with the gateway and the fingerprint when nothing was pinned
/// and the first connection succeeded; it stores the pin (e.g.
/// [`crate::config::pin_host_key`]).
pub(crate) type PinStore = Arc<dyn Fn(&GatewayAddr, &str) -> ClientResult<()> + Send + Sync>;

/// Called (on a blocking thread) when the gateway refused the key, to ask
/// the registry why: `Some(ERR(10205)/ERR(10206))` for pending/revoked.
pub(crate) type RefusalExplainer = Arc<dyn Fn() -> Option<ClientError> + Send + Sync>;

/// Timers of the tunnel. [`Timing::default`] is what `pra connect` uses;
/// tests shorten them.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Keepalive after this much silence from the gateway.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the path counts as dead
    /// (detection after `interval * (max + 1)`: 5 s × 3 = 15 s).
    pub keepalive_max: usize,
    /// Name resolution and TCP connect, each.
    pub connect_timeout: Duration,
    /// SSH handshake, authentication and the rules request, each.
    pub ssh_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt.
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_cap: Duration,
    /// How often a busy local port is tried again.
    pub port_retry: Duration,
    /// How long an accepted local connection waits for the tunnel to be up.
    pub wait_for_tunnel: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 2,
            connect_timeout: Duration::from_secs(10),
            ssh_timeout: pra_proto::SSH_STEP_TIMEOUT,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            port_retry: Duration::from_secs(5),
            wait_for_tunnel: Duration::from_secs(30),
        }
    }
}

/// Everything a tunnel needs; the CLI builds it from `config.toml`, the key
/// store and the passphrase.
#[derive(Clone)]
pub struct TunnelConfig {
    /// The gateway to connect (and reconnect) to first.
    pub gateway: GatewayAddr,
    /// Further gateways of the same registry, tried in order (round robin)
    /// when the current one cannot be used; empty: only `gateway`.
    pub alternates: Vec<GatewayAddr>,
    /// Pinned host-key fingerprint, shared by all gateways; `None` = trust
    /// on first use.
    pub host_key: Option<String>,
    /// Stores the pin after a first-use connection.
    pub pin_store: Option<PinStore>,
    /// Account name sent at authentication.
    pub user: String,
    /// The unlocked private key (kept in memory for reconnects only).
    pub key: Arc<PrivateKey>,
    /// Asks the registry why a key was refused.
    pub explain_refusal: Option<RefusalExplainer>,
    /// Timers ([`Timing::default`] outside tests).
    pub timing: Timing,
}

impl std::fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelConfig")
            .field("gateway", &self.gateway)
            .field("alternates", &self.alternates)
            .field("host_key", &self.host_key)
            .field("user", &self.user)
            .field("key", &pra_proto::fingerprint(self.key.public_key()))
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl TunnelConfig {
    /// Every gateway in the order they are tried: `gateway`, then the
    /// alternates (duplicates dropped).
    pub fn gateways(&self) -> Vec<GatewayAddr> {
        crate::config::distinct(
            std::iter::once(&self.gateway)
                .chain(&self.alternates)
                .cloned(),
        )
    }
}

/// Build the tunnel's settings from `config.toml`, the key store and the
/// passphrase (`PRA_PASSPHRASE` or asked on the terminal).
pub(crate) fn tunnel_config(home: &Home) -> ClientResult<TunnelConfig> {
    let cfg = Config::load(home)?;
    // Refuse before asking for the passphrase when nothing could connect.
    cfg.gateways()?;
    let info = keystore::read_public(home)?;
    let pass = passphrase::obtain("Passphrase for the PRA key: ", false)?;
    let key = Arc::new(keystore::load(home, &pass)?);
    drop(pass);
    tunnel_config_with_key(home, &cfg, info.meta.user.clone(), key)
}

/// The tunnel's settings for an unlocked key (the GUI unlocks it itself):
/// gateways and pin from `cfg`, the pin stored on first use, refusals
/// explained by the registry when its URL is known.
pub fn tunnel_config_with_key(
    home: &Home,
    cfg: &Config,
    user: String,
    key: Arc<PrivateKey>,
) -> ClientResult<TunnelConfig> {
    let mut gateways = cfg.gateways()?.into_iter();
    let gateway = gateways
        .next()
        .ok_or_else(|| ClientError::new(Code::ServerNotSet, "no gateway address is set"))?;
    let pin_store: PinStore = {
        let home = home.clone();
        Arc::new(move |gw: &GatewayAddr, fp: &str| config::pin_host_key(&home, gw, fp))
    };
    let explain_refusal = cfg.registry_url().map(|url| {
        let ca = cfg.registry_ca().map(Path::to_path_buf);
        refusal_explainer_with_ca(url.to_string(), ca, key.clone(), user.clone())
    });
    Ok(TunnelConfig {
        gateway,
        alternates: gateways.collect(),
        host_key: cfg.host_key_pin().map(str::to_string),
        pin_store: Some(pin_store),
        user,
        key,
        explain_refusal,
        timing: Timing::default(),
    })
}

/// Asks the registry for the key's status when the gateway refused it:
/// pending `ERR(10205)`, revoked `ERR(10206)`, or a sharper `ERR(10207)`
/// (approved yet refused: account disabled or another user's key); `None`
/// when the registry cannot be asked.
pub fn refusal_explainer(url: String, key: Arc<PrivateKey>, user: String) -> RefusalExplainer {
    refusal_explainer_with_ca(url, None, key, user)
}

/// [`refusal_explainer`] for a registry whose certificate is checked
/// against the CA in `ca` (remembered by `pra key submit --ca`).
pub(crate) fn refusal_explainer_with_ca(
    url: String,
    ca: Option<PathBuf>,
    key: Arc<PrivateKey>,
    user: String,
) -> RefusalExplainer {
    Arc::new(
        move || match registry_client::key_status_with_ca(&url, ca.as_deref(), &key, &user) {
            Ok(reply) => Some(refusal_from_status(&reply, &user)),
            Err(e) => {
                tracing::info!(error = %e.line(), "registry could not tell why the key was refused");
                None
            }
        },
    )
}

/// Why the gateway refused the key, given the registry's answer (pure).
pub(crate) fn refusal_from_status(reply: &KeyStatusReply, user: &str) -> ClientError {
    if let Some(e) = registry_client::status_error(reply) {
        let fix = e.fix().to_string();
        return ClientError::with_fix(
            e.code(),
            format!("the gateway did not accept the key: {e}"),
            fix,
        );
    }
    let owner = sanitize(&reply.user, 64);
    let fp = sanitize(&reply.fingerprint, 60);
    if reply.user != user {
        ClientError::with_fix(
            Code::KeyRefused,
            format!(
                "the gateway did not accept the key {fp}: the registry has it for user {owner}, but this PC logs in as {}",
                sanitize(user, 64)
            ),
            "make the key again with `pra keygen --user NAME --force` using your account name, or ask your administrator",
        )
    } else {
        ClientError::with_fix(
            Code::KeyRefused,
            format!(
                "the gateway did not accept the key {fp} although the registry lists it as approved: the account {owner} may be disabled"
            ),
            format!("ask your administrator to enable the account {owner}"),
        )
    }
}

pub(crate) fn runtime() -> ClientResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            ClientError::new(
                Code::GatewayProtocol,
                format!("cannot start the network runtime: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pra_proto::api::KeyStatus;

    fn reply(user: &str, status: KeyStatus) -> KeyStatusReply {
        KeyStatusReply {
            fingerprint: "SHA256:abc".into(),
            user: user.into(),
            status,
        }
    }

    #[test]
    fn refusals_are_explained_by_the_registry_answer() {
        let e = refusal_from_status(&reply("alice", KeyStatus::Pending), "alice");
        assert_eq!(e.code(), Code::KeyPending);
        assert!(
            e.line()
                .starts_with("ERR(10205) the gateway did not accept the key: "),
            "{}",
            e.line()
        );
        assert_eq!(
            refusal_from_status(&reply("alice", KeyStatus::Revoked), "alice").code(),
            Code::KeyRevoked
        );
        let e = refusal_from_status(&reply("alice", KeyStatus::Approved), "alice");
        assert_eq!(e.code(), Code::KeyRefused);
        assert!(e.line().contains("the account alice may be disabled: ask your administrator to enable the account alice"), "{}", e.line());
        let e = refusal_from_status(&reply("bob", KeyStatus::Approved), "alice");
        assert!(
            e.line()
                .contains("for user bob, but this PC logs in as alice"),
            "{}",
            e.line()
        );
    }
}
