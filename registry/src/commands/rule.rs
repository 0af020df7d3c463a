//! `rule add/list/remove`.

use super::{Done, Listing, Out};
use crate::api::admin::RuleList;
use crate::cli::RuleCommand;
use crate::format::show_target;
use crate::model::{Actor, RuleRecord};
use crate::store::Store;
use crate::validate;

pub(crate) fn rule(store: &Store, c: RuleCommand, actor: &Actor, out: Out<'_>) -> Done {
    match c {
        RuleCommand::Add {
            user,
            name,
            local,
            target,
        } => {
            let local = validate::port_text("local port", &local)?;
            let (host, port) = validate::target(&target)?;
            let r = validate::rule(&user, &name, i64::from(local), &host, i64::from(port))?;
            let r = store.add_rule(r, actor)?;
            Ok(writeln!(
                out,
                "added rule {} for {}: 127.0.0.1:{} -> {}",
                r.name,
                r.user,
                r.local_port,
                show_target(&r.target_host, r.target_port)
            ))
        }
        RuleCommand::List { user, json } => {
            let listing = Listing {
                json,
                empty: "no rules",
                headers: &["USER", "RULE", "LOCAL", "TARGET"],
            };
            let rules = store.list_rules(user.as_deref())?;
            listing.print(
                out,
                rules,
                |rules| RuleList { rules },
                |r: &RuleRecord| {
                    vec![
                        r.user.clone(),
                        r.name.clone(),
                        format!("127.0.0.1:{}", r.local_port),
                        show_target(&r.target_host, r.target_port),
                    ]
                },
            )
        }
        RuleCommand::Remove { user, name } => {
            store.remove_rule(&user, &name, actor)?;
            Ok(writeln!(out, "removed rule {name} of {user}"))
        }
    }
}
