//! `session list/disconnect`: the live sessions of every gateway.

use super::{Done, Listing, Out};
use crate::api::admin::SessionList;
use crate::cli::SessionCommand;
use crate::error::RegistryError;
use crate::failure::Failure;
use crate::format::time_seconds;
use crate::model::Actor;
use crate::store::Store;
use pra_proto::codes::Code;

pub(crate) fn session(store: &Store, c: SessionCommand, actor: &Actor, out: Out<'_>) -> Done {
    match c {
        SessionCommand::List { json } => {
            let listing = Listing {
                json,
                empty: "no live sessions",
                headers: &[
                    "ID",
                    "GATEWAY",
                    "USER",
                    "KEY",
                    "SOURCE",
                    "SINCE (UTC)",
                    "BYTES UP",
                    "BYTES DOWN",
                    "STATE",
                ],
            };
            let sessions = store.list_live_sessions()?;
            listing.print(
                out,
                sessions,
                |sessions| SessionList { sessions },
                |s| {
                    vec![
                        s.id.to_string(),
                        s.gateway.clone(),
                        s.user.clone(),
                        s.fingerprint.clone(),
                        s.source.clone(),
                        time_seconds(s.started_at),
                        s.bytes_up.to_string(),
                        s.bytes_down.to_string(),
                        if s.disconnect_requested_at.is_some() {
                            "disconnecting".into()
                        } else {
                            "live".into()
                        },
                    ]
                },
            )
        }
        SessionCommand::Disconnect { id } => {
            const HINT: &str =
                "list the live sessions and their ids with `pra-registry session list`";
            let id: i64 = id.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                let mut f = Failure::from(RegistryError::invalid(
                    "session id",
                    "give the number `session list` shows",
                ));
                f.fix = HINT.into();
                f
            })?;
            let s = store.request_disconnect(id, actor).map_err(|e| {
                let mut f = Failure::from(e);
                if f.code == Code::RegistryNotFound {
                    f.fix = HINT.into();
                }
                f
            })?;
            Ok(writeln!(
                out,
                "asked gateway {} to disconnect session {} of {} (from {}); it ends within seconds",
                s.gateway, s.id, s.user, s.source
            ))
        }
    }
}
