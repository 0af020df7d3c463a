//! `user add/list/disable/enable`.

use super::{Done, Listing, Out};
use crate::api::admin::UserList;
use crate::cli::UserCommand;
use crate::format::time;
use crate::model::{Actor, KeyRecord};
use crate::store::Store;
use pra_proto::api::KeyStatus;

pub(crate) fn user(store: &Store, c: UserCommand, actor: &Actor, out: Out<'_>) -> Done {
    match c {
        UserCommand::Add { name } => {
            let u = store.add_user(&name, actor)?;
            Ok(writeln!(out, "added user {}", u.name))
        }
        UserCommand::List { json } => {
            let users = store.list_users()?;
            // Key and rule counts only for the table.
            let (keys, rules) = if json || users.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                (store.list_keys(None)?, store.list_rules(None)?)
            };
            let listing = Listing {
                json,
                empty: "no users (add one with `pra-registry user add NAME`)",
                headers: &["USER", "STATUS", "KEYS", "RULES", "CREATED (UTC)"],
            };
            listing.print(
                out,
                users,
                |users| UserList { users },
                |u| {
                    let mine: Vec<&KeyRecord> = keys.iter().filter(|k| k.user == u.name).collect();
                    let count = |status| mine.iter().filter(|k| k.status == status).count();
                    vec![
                        u.name.clone(),
                        if u.enabled { "enabled" } else { "disabled" }.to_string(),
                        format!(
                            "{} approved, {} pending",
                            count(KeyStatus::Approved),
                            count(KeyStatus::Pending)
                        ),
                        rules
                            .iter()
                            .filter(|r| r.user == u.name)
                            .count()
                            .to_string(),
                        time(u.created_at),
                    ]
                },
            )
        }
        UserCommand::Disable { name } => {
            let u = store.set_user_enabled(&name, false, actor)?;
            Ok(writeln!(
                out,
                "disabled user {} (its keys no longer log in)",
                u.name
            ))
        }
        UserCommand::Enable { name } => {
            let u = store.set_user_enabled(&name, true, actor)?;
            Ok(writeln!(out, "enabled user {}", u.name))
        }
    }
}
