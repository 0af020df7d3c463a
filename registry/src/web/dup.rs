//! Keys that claim the same device: a cloned disk image, or one PC shared
//! by several accounts. Pure: a function of the key list.
//!
//! Two signals, both only among keys that are not revoked:
//! - the device *tag* (a one-way hash of the hardware identity the key is
//!   bound to): equal tags mean the same PC or a clone of its disk: strong;
//! - the device *description* (OS / model / CPU): equal descriptions mean
//!   the same model at least; worth a look when the keys belong to
//!   different accounts or the computer names match too.

use crate::model::KeyRecord;
use pra_proto::api::KeyStatus;
use std::collections::{BTreeMap, HashMap};

/// Which part of the device description is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// The hardware tag.
    Tag,
    /// The description line.
    Description,
}

impl Field {
    /// As shown on the page.
    pub fn label(self) -> &'static str {
        match self {
            Field::Tag => "device tag",
            Field::Description => "device description",
        }
    }
}

/// Another key that shares a field with the one flagged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Other {
    /// Its owner.
    pub user: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its computer name.
    pub computer: String,
}

/// One reason a key is flagged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// What is shared.
    pub field: Field,
    /// The other keys that share it.
    pub others: Vec<Other>,
    /// True when at least one of them belongs to another account.
    pub other_users: bool,
}

/// Description lines that say nothing about the PC.
fn meaningful(description: &str) -> bool {
    let d = description.trim();
    !d.is_empty() && !d.eq_ignore_ascii_case("unknown PC")
}

/// Flags per fingerprint (keys without a flag are absent).
pub fn duplicates(keys: &[KeyRecord]) -> HashMap<String, Vec<Duplicate>> {
    let live: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| k.status != KeyStatus::Revoked)
        .collect();
    let mut groups: BTreeMap<(Field, &str), Vec<&KeyRecord>> = BTreeMap::new();
    for k in &live {
        let tag = k.device.tag.trim();
        if !tag.is_empty() {
            groups.entry((Field::Tag, tag)).or_default().push(k);
        }
        if meaningful(&k.device.description) {
            groups
                .entry((Field::Description, k.device.description.trim()))
                .or_default()
                .push(k);
        }
    }
    let mut out: HashMap<String, Vec<Duplicate>> = HashMap::new();
    for ((field, _), members) in groups {
        if members.len() < 2 {
            continue;
        }
        for k in &members {
            let others: Vec<Other> = members
                .iter()
                .filter(|o| o.fingerprint != k.fingerprint)
                .map(|o| Other {
                    user: o.user.clone(),
                    fingerprint: o.fingerprint.clone(),
                    computer: o.device.computer.clone(),
                })
                .collect();
            let other_users = others.iter().any(|o| o.user != k.user);
            out.entry(k.fingerprint.clone())
                .or_default()
                .push(Duplicate {
                    field,
                    others,
                    other_users,
                });
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pra_proto::api::Device;

    pub(crate) fn key(fp: &str, user: &str, tag: &str, desc: &str, status: KeyStatus) -> KeyRecord {
        KeyRecord {
            fingerprint: fp.into(),
            user: user.into(),
            public_key: String::new(),
            algorithm: "ssh-ed25519".into(),
            device: Device {
                computer: format!("pc-{fp}"),
                os_user: user.into(),
                description: desc.into(),
                tag: tag.into(),
            },
            status,
            submitted_at: 0,
            approved_by: None,
            approved_at: None,
            revoked_by: None,
            revoked_at: None,
            last_seen: None,
        }
    }

    #[test]
    fn flags_shared_tags_and_descriptions_among_live_keys() {
        use KeyStatus::*;
        let keys = vec![
            key("a", "alice", "t1", "Linux / Dell 5520", Approved),
            key("b", "bob", "t1", "Linux / Dell 5520", Pending),
            key("c", "carol", "t2", "Windows / HP 840", Approved),
            key("d", "dave", "t2", "Windows / HP 840", Revoked),
            key("e", "alice", "", "unknown PC", Pending),
            key("f", "bob", "", "unknown PC", Pending),
            key("g", "carol", "t3", "Windows / HP 840", Pending),
        ];
        let d = duplicates(&keys);
        // a and b share tag and description, across users
        let a = &d["a"];
        assert_eq!(
            a.iter().map(|x| x.field).collect::<Vec<_>>(),
            [Field::Tag, Field::Description]
        );
        assert!(a.iter().all(|x| x.other_users));
        assert_eq!(a[0].others[0].fingerprint, "b");
        // c and g: same description, same user, different tags; d is revoked
        assert_eq!(d["c"].len(), 1);
        assert_eq!(d["c"][0].field, Field::Description);
        assert!(!d["c"][0].other_users);
        assert_eq!(d["g"][0].others.len(), 1);
        assert!(!d.contains_key("d"));
        // empty tags and "unknown PC" say nothing
        assert!(!d.contains_key("e") && !d.contains_key("f"));
        assert_eq!(d.len(), 4);
    }
}
