//! Enrollment invites on the admin side: `pra-registry invite create`,
//! `list` and `revoke`, and the admin page's Invites section, which both
//! call [`InviteRequest::check`] and [`create`]. An invite names the
//! account, the gateway address(es) and host-key fingerprint, and carries a
//! one-time secret of which the store keeps only the SHA-256; the string
//! format itself is [`pra_proto::invite`].

use crate::error::RegistryError;
use crate::model::{Actor, InviteRecord, NewInvite, Timestamp};
use crate::store::Store;
use crate::validate;
use base64::Engine;
use pra_proto::invite::{Invite, InviteSecret, VERSION};
use serde::Serialize;

/// How long an invite is valid when nobody says (`invite create --expires`).
pub const DEFAULT_EXPIRY: &str = "7d";

/// `invite list --json`.
#[derive(Debug, Serialize)]
pub struct InviteList {
    /// The invites, newest first.
    pub invites: Vec<InviteRecord>,
}

/// Which part of an [`InviteRequest`] a problem is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The account (`--user`).
    User,
    /// The gateway addresses (`--gateway`).
    Gateways,
    /// The lifetime (`--expires`).
    Expires,
}

/// An invite as asked for, on the command line or in the admin page's
/// form; not checked yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InviteRequest {
    /// The account a key enrolled with it belongs to.
    pub user: String,
    /// `HOST[:PORT]` each; none: this computer's host name.
    pub gateways: Vec<String>,
    /// Lifetime, e.g. `2d` (see [`validate::duration`]).
    pub expires: String,
    /// A key enrolled with it is approved at once.
    pub approve: bool,
}

/// A checked [`InviteRequest`], ready for [`create`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The account (a valid name; whether it exists, the store decides).
    pub user: String,
    /// `HOST:PORT` each, at least one.
    pub gateways: Vec<String>,
    /// Seconds from creation to expiry.
    pub lifetime: i64,
    /// A key enrolled with it is approved at once.
    pub approve: bool,
}

impl InviteRequest {
    /// Check every field; each problem comes with its field, in the order
    /// user, gateways, expiry. Empty gateways become this computer's host
    /// name (as `invite create` without `--gateway`).
    pub fn check(&self) -> Result<Plan, Vec<(Field, RegistryError)>> {
        let mut problems = Vec::new();
        if let Err(e) = validate::user_name(&self.user) {
            problems.push((Field::User, e));
        }
        let gateways = if self.gateways.is_empty() {
            this_host().map(|h| vec![h])
        } else {
            Ok(self.gateways.clone())
        }
        .and_then(|all| {
            all.iter()
                .map(|g| gateway_address(g))
                .collect::<Result<Vec<_>, _>>()
        });
        let gateways = gateways
            .map_err(|e| problems.push((Field::Gateways, e)))
            .ok();
        let lifetime = validate::duration("--expires", &self.expires)
            .map_err(|e| problems.push((Field::Expires, e)))
            .ok();
        match (gateways, lifetime) {
            (Some(gateways), Some(lifetime)) if problems.is_empty() => Ok(Plan {
                user: self.user.clone(),
                gateways,
                lifetime,
                approve: self.approve,
            }),
            _ => Err(problems),
        }
    }
}

/// This computer's host name, the gateway address of an invite created
/// without one.
pub fn this_host() -> Result<String, RegistryError> {
    match whoami::fallible::hostname() {
        Ok(h) if validate::host(&h).is_ok() => Ok(h),
        _ => Err(RegistryError::invalid(
            "--gateway",
            "this computer's host name is unknown or not a valid address; give the address \
             employees reach the gateway at, HOST or HOST:PORT",
        )),
    }
}

fn random(len: usize) -> Result<Vec<u8>, RegistryError> {
    let mut raw = vec![0u8; len];
    getrandom::fill(&mut raw)
        .map_err(|e| RegistryError::Database(format!("the OS random generator failed: {e}")))?;
    Ok(raw)
}

/// Store a new invite for `plan` (audited `invite.create` as `actor`; the
/// user must exist) and return it, secret included, to be shown once.
/// `host_key` is the gateway host-key fingerprint employees will pin.
pub fn create(
    store: &Store,
    host_key: &str,
    plan: &Plan,
    actor: &Actor,
    now: Timestamp,
) -> Result<Invite, RegistryError> {
    let id: String = random(8)?.iter().map(|b| format!("{b:02x}")).collect();
    let secret =
        InviteSecret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random(32)?));
    let expires_at = now + plan.lifetime;
    store.add_invite(
        &NewInvite {
            id: id.clone(),
            user: plan.user.clone(),
            secret_hash: secret.hash(),
            gateways: plan.gateways.clone(),
            approve: plan.approve,
            expires_at,
        },
        actor,
    )?;
    Ok(Invite {
        version: VERSION,
        gateways: plan.gateways.clone(),
        host_key: host_key.to_string(),
        user: plan.user.clone(),
        id,
        secret,
        expires_at,
    })
}

/// A gateway address as written into an invite: `HOST:PORT` (the default
/// port added when missing).
pub fn gateway_address(s: &str) -> Result<String, RegistryError> {
    let bad = || {
        RegistryError::invalid(
            "--gateway",
            "write HOST or HOST:PORT (e.g. vpn.example.com:10022 or [2001:db8::1]:10022)",
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match after {
            "" => (format!("[{host}]"), None),
            p => (
                format!("[{host}]"),
                Some(p.strip_prefix(':').ok_or_else(bad)?),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if !host.starts_with('[') {
        validate::host(&host).map_err(|_| bad())?;
    }
    let port = match port {
        None => pra_proto::DEFAULT_GATEWAY_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad()),
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses_get_a_port() {
        for (given, want) in [
            ("vpn.example.com", "vpn.example.com:10022"),
            ("vpn.example.com:2222", "vpn.example.com:2222"),
            ("127.0.0.1:40000", "127.0.0.1:40000"),
            ("[2001:db8::1]:10022", "[2001:db8::1]:10022"),
            ("[2001:db8::1]", "[2001:db8::1]:10022"),
        ] {
            assert_eq!(gateway_address(given).unwrap(), want);
        }
        for bad in ["", "a b", "host:0", "host:99999", "[nothost]:1", "h:x"] {
            assert!(gateway_address(bad).is_err(), "{bad}");
        }
    }

    fn request(user: &str, gateways: &[&str], expires: &str) -> InviteRequest {
        InviteRequest {
            user: user.into(),
            gateways: gateways.iter().map(|g| g.to_string()).collect(),
            expires: expires.into(),
            approve: true,
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let plan = request("alice", &["vpn.example.com", "10.1.2.3:2222"], "2d")
            .check()
            .unwrap();
        assert_eq!(
            plan,
            Plan {
                user: "alice".into(),
                gateways: vec!["vpn.example.com:10022".into(), "10.1.2.3:2222".into()],
                lifetime: 2 * 86_400,
                approve: true,
            }
        );
        // (request, fields with a problem)
        for (r, fields) in [
            (request("bad name", &["h"], "1d"), vec![Field::User]),
            (request("alice", &["h:0"], "1d"), vec![Field::Gateways]),
            (request("alice", &["h", "a b"], "1d"), vec![Field::Gateways]),
            (request("alice", &["h"], "forever"), vec![Field::Expires]),
            (request("alice", &["h"], "10s"), vec![Field::Expires]),
            (
                request("", &["h:x"], ""),
                vec![Field::User, Field::Gateways, Field::Expires],
            ),
        ] {
            let got: Vec<Field> = r.check().unwrap_err().into_iter().map(|(f, _)| f).collect();
            assert_eq!(got, fields, "{r:?}");
        }
    }
}
