//! `audit`: the audit log, newest first.

use super::{Done, Listing, Out};
use crate::api::admin::AuditList;
use crate::cli::AuditArgs;
use crate::error::RegistryError;
use crate::format::time_seconds;
use crate::model::{AuditEntry, AuditQuery};
use crate::store::Store;
use pra_proto::sanitize::sanitize;

pub(crate) fn audit(store: &Store, a: AuditArgs, out: Out<'_>) -> Done {
    if !(1..=1000).contains(&a.limit) {
        return Err(RegistryError::invalid("limit", "give a number from 1 to 1000").into());
    }
    let events = store.audit(&AuditQuery {
        user: a.user,
        kind_prefix: a.kind,
        before_id: None,
        limit: a.limit,
    })?;
    let listing = Listing {
        json: a.json,
        empty: "no events",
        headers: &[
            "ID",
            "TIME (UTC)",
            "EVENT",
            "ACTOR",
            "USER",
            "SOURCE",
            "DETAIL",
        ],
    };
    listing.print(out, events, |events| AuditList { events }, audit_row)
}

fn audit_row(e: &AuditEntry) -> Vec<String> {
    let mut detail = Vec::new();
    if let Some(fp) = &e.event.fingerprint {
        detail.push(fp.clone());
    }
    match &e.event.detail {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                detail.push(format!("{k}={v}"));
            }
        }
        serde_json::Value::Null => {}
        other => detail.push(other.to_string()),
    }
    vec![
        e.id.to_string(),
        time_seconds(e.at),
        e.event.kind.clone(),
        e.event.actor.clone(),
        e.event.user.clone().unwrap_or_else(|| "-".into()),
        e.event.source.clone().unwrap_or_else(|| "-".into()),
        sanitize(&detail.join(" "), 160),
    ]
}
