//! `pra enroll INVITE`: from nothing to a handed-over key in one step.
//!
//! The invite (`pra_proto::invite`) is checked first (form, then expiry on
//! this PC's clock); the gateway's host key is then checked against the
//! invite's fingerprint before anything is stored; only then are the
//! gateway addresses pinned in `config.toml` (as `pra server set A B …`
//! does: all of the invite's gateways in its order, the first as
//! `address`), the key made (as `pra keygen` does) and handed over on the
//! first reachable gateway's SSH port as user `pra-enroll` (see
//! `docs/protocol.md`). Every refusal has its own code.

use crate::config::GatewayAddr;
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::passphrase::Passphrase;
use crate::tunnel::Timing;
use crate::tunnel::session::{self, SshSession};
use crate::{keystore, logging};
use pra_proto::api::KeyStatus;
use pra_proto::codes::Code;
use pra_proto::enroll::{
    ENROLL_COMMAND, ENROLL_USER, EnrollRefusal, EnrollReply, EnrollRequest, MAX_REQUEST,
};
use pra_proto::invite::Invite;
use pra_proto::proof::{self, Action};
use pra_proto::sanitize::sanitize;
use russh::ChannelMsg;

/// Largest answer read from the gateway.
const MAX_REPLY: usize = 16 * 1024;

/// What an enrollment ended with.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The key's fingerprint.
    pub fingerprint: String,
    /// The account the invite was made for (the key's user).
    pub user: String,
    /// `pending` or `approved`.
    pub status: KeyStatus,
    /// The gateway used.
    pub gateway: GatewayAddr,
}

/// Read and check an invite string: `ERR(10250)` when malformed,
/// `ERR(10251)` when expired at `now` (Unix seconds).
pub fn parse_invite(text: &str, now: i64) -> ClientResult<Invite> {
    let invite = Invite::decode(text).map_err(|e| {
        ClientError::new(
            Code::InviteMalformed,
            format!("the invite is not valid: {e}; nothing was stored or sent"),
        )
    })?;
    if invite.expired(now) {
        return Err(ClientError::new(
            Code::InviteExpired,
            format!(
                "the invite {} for {} expired {} s ago (by this PC's clock); nothing was stored or sent",
                sanitize(&invite.id, 64),
                sanitize(&invite.user, 64),
                now - invite.expires_at
            ),
        ));
    }
    Ok(invite)
}

/// The whole enrollment; the outcome (or the failure) goes to System.log
/// and User.log. `passphrase(confirm)` is asked only once the invite and
/// the gateway's host key were found right.
pub fn enroll(
    home: &Home,
    text: &str,
    force: bool,
    passphrase: impl FnOnce(bool) -> ClientResult<Passphrase>,
) -> ClientResult<Enrolled> {
    let r = enroll_inner(home, text, force, passphrase);
    logging::user_line(&match &r {
        Ok(e) => format!(
            "enroll: key {} of {} handed over to {}: {}",
            e.fingerprint, e.user, e.gateway, e.status
        ),
        Err(e) => format!("enroll failed: {}", e.line()),
    });
    r
}

fn enroll_inner(
    home: &Home,
    text: &str,
    force: bool,
    passphrase: impl FnOnce(bool) -> ClientResult<Passphrase>,
) -> ClientResult<Enrolled> {
    let now = i64::try_from(keystore::unix_now()).unwrap_or(i64::MAX);
    let invite = parse_invite(text, now)?;
    keystore::check_user(&invite.user)?;
    let gateways = invite
        .gateways
        .iter()
        .map(|g| {
            GatewayAddr::parse(g).map_err(|e| {
                ClientError::new(
                    Code::InviteMalformed,
                    format!("the invite names an unusable gateway address {g}: {e}"),
                )
            })
        })
        .collect::<ClientResult<Vec<_>>>()?;
    // An existing key of the same user is handed over again (a retry after
    // a refused invite); another user's key is never replaced without --force.
    let old = keystore::read_public(home).ok();
    let reuse = !force && old.as_ref().is_some_and(|k| k.meta.user == invite.user);
    if !force && !reuse && home.key_file().exists() {
        return Err(keystore::existing_key(home, old.as_ref(), &invite.user));
    }
    let timing = Timing::default();
    let rt = crate::tunnel::setup::runtime()?;
    // The host key first: a wrong one stores nothing.
    let gateway = rt.block_on(probe(&gateways, &invite.host_key, &timing))?;
    let pass = passphrase(!reuse)?;
    let (cfg_notes, info) = {
        // Every gateway of the invite, in the invite's order (the admin's
        // preference); `pra connect` fails over between them.
        let all: Vec<String> = gateways.iter().map(ToString::to_string).collect();
        let (_, notes) = crate::config::set_gateways(home, &all, Some(&invite.host_key))?;
        let info = if reuse {
            old.ok_or_else(|| ClientError::new(Code::KeyMissing, "the key disappeared"))?
        } else {
            keystore::generate(home, &invite.user, &pass, force)?
        };
        (notes, info)
    };
    for n in cfg_notes {
        crate::outln!("{n}");
    }
    if !reuse {
        crate::outln!(
            "created the key of {} in {}",
            invite.user,
            home.key_file().display()
        );
        crate::outln!("{}", info.keygen_line());
        if let Some(line) = info.meta.unavailable_line() {
            crate::outln!("{line}");
        }
    }
    let key = keystore::load(home, &pass)?;
    drop(pass);
    let proof =
        proof::sign(&key, Action::Submit, &invite.user, keystore::unix_now()).map_err(|e| {
            ClientError::new(
                Code::KeyNotLoaded,
                format!("cannot sign the hand-over: {e}"),
            )
        })?;
    let request = EnrollRequest {
        public_key: info.meta.public_key.clone(),
        device: info.meta.device(),
        proof,
    };
    let reply = rt.block_on(hand_over(&gateway, &invite, &request, &timing))?;
    match reply {
        EnrollReply::Enrolled {
            fingerprint,
            user,
            status,
        } => {
            if fingerprint != info.fingerprint() {
                return Err(ClientError::new(
                    Code::GatewayProtocol,
                    format!(
                        "the gateway answered about another key ({})",
                        sanitize(&fingerprint, 60)
                    ),
                ));
            }
            Ok(Enrolled {
                fingerprint,
                user: sanitize(&user, 64),
                status,
                gateway,
            })
        }
        EnrollReply::Refused { reason } => Err(refusal(reason, &invite)),
    }
}

fn refusal(reason: EnrollRefusal, invite: &Invite) -> ClientError {
    let id = sanitize(&invite.id, 64);
    match reason {
        EnrollRefusal::Used => ClientError::new(
            Code::InviteUsed,
            format!("the gateway says the invite {id} was used already"),
        ),
        EnrollRefusal::Revoked => ClientError::new(
            Code::InviteRevoked,
            format!("the gateway says the invite {id} was revoked"),
        ),
        EnrollRefusal::Expired => ClientError::new(
            Code::InviteExpired,
            format!("the gateway says the invite {id} has expired"),
        ),
        EnrollRefusal::Invalid => ClientError::new(
            Code::EnrollFailed,
            "the gateway refused the key, its device description or its proof (is this PC's clock right?)",
        ),
        EnrollRefusal::KeyExists => ClientError::with_fix(
            Code::EnrollFailed,
            "this key is registered already",
            format!(
                "use `pra connect` if it was approved, or make a new key with `pra enroll --force INVITE` and a new invite ({})",
                keystore::keygen_force(Some(&invite.user))
            ),
        ),
        EnrollRefusal::Unavailable => ClientError::new(
            Code::EnrollFailed,
            "the gateway cannot write to the registry right now; nothing was stored",
        ),
    }
}

/// Connect and check the host key, trying the invite's gateways in order
/// (the next one after an unresolvable or unreachable one). A wrong host
/// key stops at once (`ERR(10204)`).
async fn connect(
    gateways: &[GatewayAddr],
    pin: &str,
    timing: &Timing,
) -> ClientResult<(GatewayAddr, SshSession)> {
    let mut last = None;
    for gw in gateways {
        let stream = match session::resolve(gw, timing).await {
            Ok(addrs) => session::tcp_connect(gw, &addrs, timing).await,
            Err(e) => Err(e),
        };
        match stream {
            Ok(s) => {
                let config = session::ssh_config(timing);
                let ssh = session::handshake(gw, s, Some(pin), config, timing).await?;
                return Ok((gw.clone(), ssh));
            }
            Err(e) => {
                tracing::info!(gateway = %gw, error = %e.line(), "enroll: gateway not reached");
                last = Some(e);
            }
        }
    }
    Err(last
        .unwrap_or_else(|| ClientError::new(Code::InviteMalformed, "the invite names no gateway")))
}

async fn probe(gateways: &[GatewayAddr], pin: &str, timing: &Timing) -> ClientResult<GatewayAddr> {
    let (gw, ssh) = connect(gateways, pin, timing).await?;
    ssh.disconnect().await;
    Ok(gw)
}

async fn hand_over(
    gw: &GatewayAddr,
    invite: &Invite,
    request: &EnrollRequest,
    timing: &Timing,
) -> ClientResult<EnrollReply> {
    let (_, mut ssh) = connect(std::slice::from_ref(gw), &invite.host_key, timing).await?;
    let refused = || {
        ClientError::new(
            Code::InviteRefused,
            format!(
                "the gateway {gw} refused the invite {} (unknown invite or wrong secret) and closed the connection",
                sanitize(&invite.id, 64)
            ),
        )
    };
    let password = pra_proto::enroll::password(&invite.id, invite.secret.expose());
    if !session::authenticate_password(&mut ssh, ENROLL_USER, &password, timing).await? {
        return Err(refused());
    }
    drop(password);
    let json = serde_json::to_string(request).map_err(|e| {
        ClientError::new(
            Code::GatewayProtocol,
            format!("cannot write the request: {e}"),
        )
    })?;
    let command = format!("{ENROLL_COMMAND} {json}");
    if command.len() > MAX_REQUEST {
        return Err(ClientError::new(
            Code::EnrollFailed,
            format!(
                "the request is {} bytes, more than the gateway reads ({MAX_REQUEST})",
                command.len()
            ),
        ));
    }
    let exchange = async {
        let Ok(mut ch) = ssh.handle().channel_open_session().await else {
            return Err(refused());
        };
        if ch.exec(true, command.as_bytes()).await.is_err() {
            return Err(refused());
        }
        let mut out: Vec<u8> = Vec::new();
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    session::grant(&ssh, ch.id(), data.len());
                    if out.len() + data.len() > MAX_REPLY {
                        break;
                    }
                    out.extend_from_slice(&data);
                    if out.contains(&b'\n') {
                        break;
                    }
                }
                ChannelMsg::Close | ChannelMsg::Eof => break,
                _ => {}
            }
        }
        Ok(out)
    };
    let out = match tokio::time::timeout(timing.ssh_timeout * 2, exchange).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ClientError::new(
                Code::GatewayProtocol,
                format!(
                    "the gateway {gw} did not answer the key hand-over within {} s",
                    (timing.ssh_timeout * 2).as_secs()
                ),
            ));
        }
    };
    ssh.disconnect().await;
    let line = out.split(|&b| b == b'\n').next().unwrap_or_default();
    if line.iter().all(u8::is_ascii_whitespace) {
        // A wrong secret gets no answer: the gateway closes the connection.
        return Err(refused());
    }
    serde_json::from_slice(line).map_err(|_| {
        ClientError::new(
            Code::GatewayProtocol,
            format!(
                "the gateway {gw} answered the key hand-over with something unexpected (`{}`)",
                sanitize(&String::from_utf8_lossy(line), 60)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pra_proto::invite::{InviteSecret, VERSION};

    fn invite(expires_at: i64) -> Invite {
        Invite {
            version: VERSION,
            gateways: vec!["127.0.0.1:10022".into()],
            host_key: "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10".into(),
            user: "alice".into(),
            id: "0123abcd".into(),
            secret: InviteSecret::new("s3cret".into()),
            expires_at,
        }
    }

    #[test]
    fn malformed_and_expired_invites_have_their_codes() {
        let good = invite(1000).encode();
        assert_eq!(parse_invite(&good, 999).unwrap(), invite(1000));
        assert_eq!(
            parse_invite(&good, 1000).unwrap_err().code(),
            Code::InviteExpired
        );
        let cut = &good[..good.len() - 2];
        let e = parse_invite(cut, 0).unwrap_err();
        assert_eq!(e.code(), Code::InviteMalformed);
        assert!(e.line().starts_with("ERR(10250) "), "{}", e.line());
        assert_eq!(
            parse_invite("hello", 0).unwrap_err().code(),
            Code::InviteMalformed
        );
    }

    #[test]
    fn refusals_map_to_distinct_codes() {
        let i = invite(1000);
        let codes: Vec<Code> = [
            EnrollRefusal::Used,
            EnrollRefusal::Revoked,
            EnrollRefusal::Expired,
            EnrollRefusal::Invalid,
        ]
        .into_iter()
        .map(|r| refusal(r, &i).code())
        .collect();
        assert_eq!(
            codes,
            [
                Code::InviteUsed,
                Code::InviteRevoked,
                Code::InviteExpired,
                Code::EnrollFailed
            ]
        );
        assert!(!refusal(EnrollRefusal::Used, &i).line().contains("s3cret"));
    }
}
