//! `invite create/list/revoke`: one-time enrollment invites
//! ([`crate::invite`] holds the rules).

use super::{Done, Listing, Out};
use crate::cli::InviteCommand;
use crate::error::RegistryError;
use crate::format::time;
use crate::invite::{InviteList, InviteRequest};
use crate::model::Actor;
use crate::store::Store;
use std::path::Path;

/// `invite …`.
pub(crate) fn invite(
    store: &Store,
    data: &Path,
    c: InviteCommand,
    actor: &Actor,
    out: Out<'_>,
    err: Out<'_>,
) -> Done {
    let now = crate::model::now();
    match c {
        InviteCommand::Create {
            user,
            gateways,
            expires,
            approve,
        } => {
            let request = InviteRequest {
                user,
                gateways,
                expires,
                approve,
            };
            let plan = request.check().map_err(|problems| {
                // The first problem, in flag order (there is at least one).
                problems.into_iter().next().map_or_else(
                    || RegistryError::invalid("--user", "the invite was refused"),
                    |(_, e)| e,
                )
            })?;
            let host_key = crate::gateway::hostkey::load_or_create(data)?;
            let invite = crate::invite::create(store, &host_key.fingerprint(), &plan, actor, now)?;
            if let Err(e) = writeln!(out, "{}", invite.encode()) {
                return Ok(Err(e));
            }
            let then = if plan.approve {
                "the key is approved at once"
            } else {
                "the key then waits for approval (`pra-registry key list --status pending`)"
            };
            Ok(writeln!(
                err,
                "invite {} for {} created, valid once until {}; it is shown only this \
                 once: give it to the employee over a channel you trust; {then}",
                invite.id,
                invite.user,
                time(invite.expires_at)
            ))
        }
        InviteCommand::List { json } => {
            let listing = Listing {
                json,
                empty: "no invites (create one with `pra-registry invite create --user NAME --gateway HOST`)",
                headers: &[
                    "ID",
                    "USER",
                    "STATE",
                    "APPROVE",
                    "CREATED (UTC)",
                    "EXPIRES (UTC)",
                    "KEY",
                ],
            };
            listing.print(
                out,
                store.list_invites()?,
                |invites| InviteList { invites },
                |i| {
                    vec![
                        i.id.clone(),
                        i.user.clone(),
                        i.state(now).to_string(),
                        if i.approve { "yes" } else { "no" }.to_string(),
                        time(i.created_at),
                        time(i.expires_at),
                        i.used_fingerprint.clone().unwrap_or_default(),
                    ]
                },
            )
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
