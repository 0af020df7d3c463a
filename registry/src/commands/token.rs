//! `token create/list/revoke`: admin API tokens, shown once, stored hashed.

use super::{Done, Listing, Out};
use crate::api::admin::TokenList;
use crate::cli::TokenCommand;
use crate::failure::Failure;
use crate::format::time;
use crate::model::Actor;
use crate::store::Store;
use crate::token::BearerToken;
use crate::validate;
use pra_proto::codes::Code;

pub(crate) fn token(
    store: &Store,
    c: TokenCommand,
    actor: &Actor,
    out: Out<'_>,
    err: Out<'_>,
) -> Done {
    match c {
        TokenCommand::Create { name, expires } => {
            validate::token_name(&name)?;
            let expires_at = expires
                .as_deref()
                .map(|d| validate::duration("--expires", d))
                .transpose()?
                .map(|secs| crate::model::now() + secs);
            let token = BearerToken::generate().map_err(|e| {
                Failure::new(
                    Code::RegistryDatabase,
                    format!("the OS random generator failed: {e}"),
                    "try again",
                )
            })?;
            store.add_token(&name, &token.hash(), expires_at, actor)?;
            if let Err(e) = writeln!(out, "{}", token.expose()) {
                return Ok(Err(e));
            }
            let until = match expires_at {
                Some(at) => format!("valid until {}", time(at)),
                None => "valid until revoked (`pra-registry token revoke NAME`)".into(),
            };
            Ok(writeln!(
                err,
                "token {name} created, {until}; it is shown only this once: store it now \
                 (send it as `Authorization: Bearer TOKEN`)"
            ))
        }
        TokenCommand::List { json } => {
            let listing = Listing {
                json,
                empty: "no tokens (create one with `pra-registry token create --name NAME`)",
                headers: &["NAME", "CREATED (UTC)", "LAST USED (UTC)", "EXPIRES (UTC)"],
            };
            let now = crate::model::now();
            listing.print(
                out,
                store.list_tokens()?,
                |tokens| TokenList { tokens },
                |t| {
                    vec![
                        t.name.clone(),
                        time(t.created_at),
                        t.last_used.map(time).unwrap_or_else(|| "never".into()),
                        match t.expires_at {
                            None => "never".into(),
                            Some(at) if at <= now => format!("{} (expired)", time(at)),
                            Some(at) => time(at),
                        },
                    ]
                },
            )
        }
        TokenCommand::Revoke { name } => {
            validate::token_name(&name)?;
            let t = store.revoke_token(&name, actor)?;
            Ok(writeln!(
                out,
                "revoked token {} (API requests and admin web sessions using it are refused from now on)",
                t.name
            ))
        }
    }
}
