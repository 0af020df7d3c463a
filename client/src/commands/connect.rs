//! `pra connect [--json]`: load the key, start the tunnel, print one line
//! per change (or one JSON object per line) until Ctrl-C/SIGTERM, then
//! disconnect in order and exit 0. A fatal error ends it with its one line
//! and a non-zero exit status.

use crate::config::{self, Config};
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::tunnel::{Event, PinStore, RefusalExplainer, Timing, Tunnel, TunnelConfig, TunnelState};
use crate::{instance, keystore, logging, passphrase, registry_client};
use pra_proto::api::KeyStatusReply;
use pra_proto::codes::{Code, Severity};
use pra_proto::sanitize::sanitize;
use russh::keys::PrivateKey;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// `pra connect`.
pub fn run(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let _ = logging::init(home);
    connect(home, json)
}

/// The tunnel writes its own fatal line to User.log; the failures before
/// it starts are written here (each once).
fn connect(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let logged = |e: ClientError| {
        logging::user_line(&e.line());
        e
    };
    // Before the passphrase is asked: is this home connected already?
    let _lock = instance::acquire(home, "pra connect").map_err(logged)?;
    let cfg = tunnel_config(home).map_err(logged)?;
    let rt = runtime().map_err(logged)?;
    rt.block_on(async move {
        let tunnel = Tunnel::start(cfg);
        let mut rx = tunnel.state();
        let cancel = tunnel.cancel_handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stop requested (Ctrl-C / SIGTERM)");
            cancel.cancel();
        });
        let mut printer = Printer::new(json);
        let wait = tunnel.wait();
        tokio::pin!(wait);
        loop {
            tokio::select! {
                r = &mut wait => {
                    printer.show(&rx.borrow_and_update());
                    return r.map(|()| ExitCode::SUCCESS);
                }
                changed = rx.changed() => {
                    if changed.is_ok() {
                        printer.show(&rx.borrow_and_update());
                    }
                }
            }
        }
    })
}

/// Build the tunnel's settings from `config.toml`, the key store and the
/// passphrase (`PRA_PASSPHRASE` or asked on the terminal).
pub fn tunnel_config(home: &Home) -> ClientResult<TunnelConfig> {
    let cfg = Config::load(home)?;
    // Refuse before asking for the passphrase when nothing could connect.
    cfg.gateway()?;
    let info = keystore::read_public(home)?;
    let pass = passphrase::obtain("Passphrase for the PRA key: ", false)?;
    let key = Arc::new(keystore::load(home, &pass)?);
    drop(pass);
    tunnel_config_with_key(home, &cfg, info.meta.user.clone(), key)
}

/// The tunnel's settings for an unlocked key (the GUI unlocks it itself):
/// gateway and pin from `cfg`, the pin stored on first use, refusals
/// explained by the registry when its URL is known.
pub fn tunnel_config_with_key(
    home: &Home,
    cfg: &Config,
    user: String,
    key: Arc<PrivateKey>,
) -> ClientResult<TunnelConfig> {
    let gateway = cfg.gateway()?;
    let pin_store: PinStore = {
        let home = home.clone();
        let gw = gateway.clone();
        Arc::new(move |fp: &str| config::pin_host_key(&home, &gw, fp))
    };
    let explain_refusal = cfg
        .registry_url()
        .map(|url| refusal_explainer(url.to_string(), key.clone(), user.clone()));
    Ok(TunnelConfig {
        gateway,
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
    Arc::new(
        move || match registry_client::key_status(&url, &key, &user) {
            Ok(reply) => Some(refusal_from_status(&reply, &user)),
            Err(e) => {
                tracing::info!(error = %e.line(), "registry could not tell why the key was refused");
                None
            }
        },
    )
}

/// Why the gateway refused the key, given the registry's answer (pure).
pub fn refusal_from_status(reply: &KeyStatusReply, user: &str) -> ClientError {
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

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints the events between successive states.
struct Printer {
    json: bool,
    prev: Option<TunnelState>,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer { json, prev: None }
    }

    fn show(&mut self, next: &TunnelState) {
        let mut out = std::io::stdout().lock();
        for ev in crate::tunnel::status::changes(self.prev.as_ref(), next) {
            let line = if self.json {
                ev.json()
            } else {
                // The fatal error is the process's one error line (stderr).
                if let Event::Error(e) = &ev
                    && e.code.severity() == Severity::Err
                {
                    continue;
                }
                ev.text()
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        self.prev = Some(next.clone());
    }
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
