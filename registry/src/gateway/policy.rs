//! Pure gateway decisions: may this verified key log in as this user, and
//! may this session open a forward to this target. No I/O; table-tested.

use crate::model::{LoginFacts, RuleRecord};
use pra_proto::api::KeyStatus;
use ssh_key::{Algorithm, HashAlg};
use std::fmt;

/// The answer to a `direct-tcpip` request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// This rule names exactly the requested host and port.
    Allow(&'a RuleRecord),
    /// No rule does.
    Deny,
}

/// A forward to `host:port` is allowed only when one of `rules` names that
/// host byte for byte as the admin stored it, and that port compared as the
/// full `u32` the SSH request carries (so 65558 is not 22).
///
/// No DNS, no case folding, no address parsing: `127.1`, `0x7f.1`,
/// `2130706433`, `[::1]`, `::ffff:127.0.0.1` and `localhost` are all
/// different from a rule's `127.0.0.1`. The caller passes one user's rules.
pub fn authorize<'a>(rules: &'a [RuleRecord], host: &str, port: u32) -> Decision<'a> {
    rules
        .iter()
        .find(|r| r.target_host == host && u32::from(r.target_port) == port)
        .map_or(Decision::Deny, Decision::Allow)
}

/// Why a login (or a live session) is refused. The peer always gets the same
/// answer; this goes to the audit log only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// No account with the requested name.
    UnknownUser,
    /// The key is not registered.
    UnknownKey,
    /// The key is registered to another account.
    OtherUsersKey,
    /// The key waits for an admin's approval.
    KeyPending,
    /// The key was revoked.
    KeyRevoked,
    /// The account is disabled.
    UserDisabled,
    /// The signature used a weak algorithm (`ssh-rsa`, SHA-1; DSA).
    WeakSignature,
    /// The key already holds the most live sessions allowed
    /// (`serve --max-sessions-per-key`).
    TooManySessions,
}

impl RefuseReason {
    /// Stable spelling for the audit log (`detail.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::UnknownUser => "unknown_user",
            RefuseReason::UnknownKey => "unknown_key",
            RefuseReason::OtherUsersKey => "other_users_key",
            RefuseReason::KeyPending => "key_pending",
            RefuseReason::KeyRevoked => "key_revoked",
            RefuseReason::UserDisabled => "user_disabled",
            RefuseReason::WeakSignature => "weak_signature",
            RefuseReason::TooManySessions => "too_many_sessions",
        }
    }
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// May the holder of a verified key (whose registry record and the named
/// account are in `facts`) log in as `user`? Only an approved key of an
/// enabled account, registered to that same account, may.
pub fn login(user: &str, facts: &LoginFacts) -> Result<(), RefuseReason> {
    let Some(account) = &facts.user else {
        return Err(RefuseReason::UnknownUser);
    };
    let Some(key) = &facts.key else {
        return Err(RefuseReason::UnknownKey);
    };
    if key.user != user || account.name != user {
        return Err(RefuseReason::OtherUsersKey);
    }
    match key.status {
        KeyStatus::Pending => return Err(RefuseReason::KeyPending),
        KeyStatus::Revoked => return Err(RefuseReason::KeyRevoked),
        KeyStatus::Approved => {}
    }
    if !account.enabled {
        return Err(RefuseReason::UserDisabled);
    }
    Ok(())
}

/// Is a signature made with `algorithm` strong enough? SHA-1 RSA
/// (`ssh-rsa`) and DSA are not.
pub fn signature_acceptable(algorithm: &Algorithm) -> bool {
    match algorithm {
        Algorithm::Rsa { hash } => matches!(hash, Some(HashAlg::Sha256 | HashAlg::Sha512)),
        Algorithm::Dsa => false,
        _ => true,
    }
}

/// Per-attempt login state of one connection. A client may change the user
/// name between attempts; everything learned about the previous name is
/// dropped then, so nothing carries over from one account to another.
#[derive(Debug, Default)]
pub struct LoginState {
    user: Option<String>,
    refusals: u32,
}

impl LoginState {
    /// Note an attempt for `user`; resets the state when the name changed.
    /// Returns true when it did.
    pub fn attempt(&mut self, user: &str) -> bool {
        if self.user.as_deref() == Some(user) {
            return false;
        }
        self.user = Some(user.to_owned());
        self.refusals = 0;
        true
    }

    /// Note a refusal of the current user's attempt.
    pub fn refused(&mut self) {
        self.refusals = self.refusals.saturating_add(1);
    }

    /// Refusals since the user name last changed.
    pub fn refusals(&self) -> u32 {
        self.refusals
    }

    /// The user name of the current attempt.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::model::User;

    fn rule(host: &str, port: u16) -> RuleRecord {
        RuleRecord {
            user: "alice".into(),
            name: format!("r{port}"),
            local_port: 10_000 + port % 1000,
            target_host: host.into(),
            target_port: port,
        }
    }

    #[test]
    fn forwards_match_rules_literally() {
        let rules = vec![
            rule("127.0.0.1", 5432),
            rule("db.corp.example", 5432),
            rule("::1", 22),
        ];
        let allow = |h: &str, p: u32| matches!(authorize(&rules, h, p), Decision::Allow(_));
        let table: &[(&str, u32, bool)] = &[
            ("127.0.0.1", 5432, true),
            ("db.corp.example", 5432, true),
            ("::1", 22, true),
            // other spellings of the same address are different strings
            ("127.1", 5432, false),
            ("2130706433", 5432, false),
            ("0x7f.1", 5432, false),
            ("0x7f000001", 5432, false),
            ("0177.0.0.1", 5432, false),
            ("[::1]", 22, false),
            ("::ffff:127.0.0.1", 5432, false),
            ("localhost", 5432, false),
            ("127.0.0.1.", 5432, false),
            (" 127.0.0.1", 5432, false),
            ("127.0.0.1\0", 5432, false),
            ("DB.CORP.EXAMPLE", 5432, false),
            ("db.corp.example.", 5432, false),
            ("0:0:0:0:0:0:0:1", 22, false),
            // the port is the whole u32
            ("127.0.0.1", 5432 + 65536, false),
            ("127.0.0.1", 5432 + 2 * 65536, false),
            ("::1", 22 + 65536, false),
            ("127.0.0.1", 5433, false),
            ("127.0.0.1", 0, false),
            ("127.0.0.1", u32::MAX, false),
            ("", 5432, false),
        ];
        for &(host, port, want) in table {
            assert_eq!(allow(host, port), want, "{host:?}:{port}");
        }
        match authorize(&rules, "db.corp.example", 5432) {
            Decision::Allow(r) => assert_eq!(r.target_host, "db.corp.example"),
            Decision::Deny => panic!("denied"),
        }
        assert_eq!(authorize(&[], "127.0.0.1", 5432), Decision::Deny);
    }

    fn facts(user: Option<(&str, bool)>, key: Option<(&str, KeyStatus)>) -> LoginFacts {
        LoginFacts {
            user: user.map(|(name, enabled)| User {
                name: name.into(),
                enabled,
                created_at: 0,
            }),
            key: key.map(|(owner, status)| {
                crate::web::dup::tests::key("SHA256:x", owner, "", "", status)
            }),
        }
    }

    #[test]
    fn only_approved_keys_of_enabled_owners_log_in() {
        use KeyStatus::*;
        use RefuseReason::*;
        type Row<'a> = (
            Option<(&'a str, bool)>,
            Option<(&'a str, KeyStatus)>,
            Result<(), RefuseReason>,
        );
        #[rustfmt::skip]
        let table: &[Row] = &[
            (Some(("alice", true)), Some(("alice", Approved)), Ok(())),
            (None, Some(("alice", Approved)), Err(UnknownUser)),
            (None, None, Err(UnknownUser)),
            (Some(("alice", true)), None, Err(UnknownKey)),
            (Some(("alice", true)), Some(("bob", Approved)), Err(OtherUsersKey)),
            (Some(("alice", true)), Some(("alice", Pending)), Err(KeyPending)),
            (Some(("alice", true)), Some(("alice", Revoked)), Err(KeyRevoked)),
            (Some(("alice", false)), Some(("alice", Approved)), Err(UserDisabled)),
            (Some(("alice", false)), Some(("alice", Revoked)), Err(KeyRevoked)),
            (Some(("alice", false)), Some(("bob", Approved)), Err(OtherUsersKey)),
            // a store answering with another account than asked for
            (Some(("bob", true)), Some(("alice", Approved)), Err(OtherUsersKey)),
        ];
        for (user, key, want) in table {
            assert_eq!(
                login("alice", &facts(*user, *key)),
                *want,
                "{user:?} {key:?}"
            );
        }
    }

    #[test]
    fn reason_spellings_are_stable() {
        let all = [
            (RefuseReason::UnknownUser, "unknown_user"),
            (RefuseReason::UnknownKey, "unknown_key"),
            (RefuseReason::OtherUsersKey, "other_users_key"),
            (RefuseReason::KeyPending, "key_pending"),
            (RefuseReason::KeyRevoked, "key_revoked"),
            (RefuseReason::UserDisabled, "user_disabled"),
            (RefuseReason::WeakSignature, "weak_signature"),
            (RefuseReason::TooManySessions, "too_many_sessions"),
        ];
        for (reason, spelling) in all {
            assert_eq!(reason.as_str(), spelling);
            assert_eq!(reason.to_string(), spelling);
        }
    }

    #[test]
    fn weak_signature_algorithms_are_refused() {
        let table = [
            (Algorithm::Ed25519, true),
            (
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                true,
            ),
            (
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
                true,
            ),
            (Algorithm::Rsa { hash: None }, false),
            (Algorithm::Dsa, false),
            (
                Algorithm::Ecdsa {
                    curve: ssh_key::EcdsaCurve::NistP256,
                },
                true,
            ),
        ];
        for (alg, want) in table {
            assert_eq!(signature_acceptable(&alg), want, "{alg:?}");
        }
    }

    #[test]
    fn login_state_resets_when_the_user_changes() {
        let mut s = LoginState::default();
        assert!(s.attempt("alice"));
        s.refused();
        s.refused();
        assert!(!s.attempt("alice"));
        assert_eq!(s.refusals(), 2);
        assert!(s.attempt("bob"));
        assert_eq!(s.refusals(), 0);
        assert_eq!(s.user(), Some("bob"));
        s.refused();
        assert!(s.attempt("alice"));
        assert_eq!(s.refusals(), 0);
    }
}
