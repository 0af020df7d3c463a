//! Enrollment invites on the admin side: `pra-registry invite create`,
//! `list` and `revoke`. An invite names the account, the gateway
//! address(es) and host-key fingerprint, and carries a one-time secret of
//! which the store keeps only the SHA-256; the string format itself is
//! [`pra_proto::invite`].

use crate::cli::{Failure, Out, json, table, time};
use crate::error::RegistryError;
use crate::model::{Actor, InviteRecord, NewInvite};
use crate::store::Store;
use crate::validate;
use base64::Engine;
use clap::Subcommand;
use pra_proto::codes::Code;
use pra_proto::invite::{Invite, InviteSecret, VERSION};
use serde::Serialize;
use std::path::Path;

/// How long an invite is valid unless `--expires` says otherwise.
pub const DEFAULT_EXPIRY: &str = "7d";

/// `invite …`.
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create a one-time invite for an existing user and print it (one
    /// `pra-invite:…` line); only the secret's hash is kept.
    Create {
        /// The account the employee's key is enrolled for.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Address employees reach the gateway at, HOST or HOST:PORT
        /// (default port 10022); repeat for several gateways, tried in order
        /// (default: this computer's host name).
        #[arg(long = "gateway", value_name = "HOST[:PORT]")]
        gateways: Vec<String>,
        /// The invite is refused after this long (e.g. 2d, 12h).
        #[arg(long, value_name = "DURATION", default_value = DEFAULT_EXPIRY)]
        expires: String,
        /// A key enrolled with this invite is approved at once (otherwise
        /// it waits in `key list --status pending`).
        #[arg(long)]
        approve: bool,
    },
    /// List the invites: id, user, state, expiry (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an invite that was not used yet: it is refused from now on.
    Revoke {
        /// The invite's id, as `invite list` shows it.
        id: String,
    },
}

/// `invite list --json`.
#[derive(Debug, Serialize)]
pub struct InviteList {
    /// The invites, newest first.
    pub invites: Vec<InviteRecord>,
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

/// This computer's host name, for an invite created without `--gateway`.
fn this_host() -> Result<String, Failure> {
    match whoami::fallible::hostname() {
        Ok(h) if validate::host(&h).is_ok() => Ok(h),
        _ => Err(Failure::new(
            Code::RegistryInvalid,
            "this computer's host name is unknown or not a valid address",
            "give the address employees reach the gateway at: --gateway HOST[:PORT]",
        )),
    }
}

fn random(len: usize) -> Result<Vec<u8>, Failure> {
    let mut raw = vec![0u8; len];
    getrandom::fill(&mut raw).map_err(|e| {
        Failure::new(
            Code::RegistryDatabase,
            format!("the OS random generator failed: {e}"),
            "try again",
        )
    })?;
    Ok(raw)
}

/// `invite …`.
pub fn command(
    store: &dyn Store,
    data: &Path,
    c: InviteCommand,
    actor: &Actor,
    out: Out<'_>,
    err: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    let now = crate::model::now();
    match c {
        InviteCommand::Create {
            user,
            gateways,
            expires,
            approve,
        } => {
            validate::user_name(&user)?;
            let gateways = if gateways.is_empty() {
                vec![this_host()?]
            } else {
                gateways
            };
            let gateways = gateways
                .iter()
                .map(|g| gateway_address(g))
                .collect::<Result<Vec<_>, _>>()?;
            let expires_at = now + validate::duration("--expires", &expires)?;
            let host_key = crate::gateway::hostkey::load_or_create(data)?;
            let id: String = random(8)?.iter().map(|b| format!("{b:02x}")).collect();
            let secret = InviteSecret::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random(32)?),
            );
            store.add_invite(
                &NewInvite {
                    id: id.clone(),
                    user: user.clone(),
                    secret_hash: secret.hash(),
                    gateways: gateways.clone(),
                    approve,
                    expires_at,
                },
                actor,
            )?;
            let invite = Invite {
                version: VERSION,
                gateways,
                host_key: host_key.fingerprint(),
                user: user.clone(),
                id: id.clone(),
                secret,
                expires_at,
            };
            if let Err(e) = writeln!(out, "{}", invite.encode()) {
                return Ok(Err(e));
            }
            let then = if approve {
                "the key is approved at once"
            } else {
                "the key then waits for approval (`pra-registry key list --status pending`)"
            };
            Ok(writeln!(
                err,
                "invite {id} for {user} created, valid once until {}; it is shown only this \
                 once: give it to the employee over a channel you trust; {then}",
                time(expires_at)
            ))
        }
        InviteCommand::List { json: true } => json(
            out,
            &InviteList {
                invites: store.list_invites()?,
            },
        ),
        InviteCommand::List { json: false } => {
            let invites = store.list_invites()?;
            if invites.is_empty() {
                return Ok(writeln!(
                    out,
                    "no invites (create one with `pra-registry invite create --user NAME --gateway HOST`)"
                ));
            }
            let rows = invites
                .iter()
                .map(|i| {
                    vec![
                        i.id.clone(),
                        i.user.clone(),
                        i.state(now).to_string(),
                        if i.approve { "yes" } else { "no" }.to_string(),
                        time(i.created_at),
                        time(i.expires_at),
                        i.used_fingerprint.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Ok(out.write_all(
                table(
                    &[
                        "ID",
                        "USER",
                        "STATE",
                        "APPROVE",
                        "CREATED (UTC)",
                        "EXPIRES (UTC)",
                        "KEY",
                    ],
                    rows,
                )
                .as_bytes(),
            ))
        }
        InviteCommand::Revoke { id } => {
            let i = store.revoke_invite(&id, actor)?;
            Ok(writeln!(
                out,
                "revoked invite {} of {} (it is refused from now on)",
                i.id, i.user
            ))
        }
    }
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
}
