//! Server-side sessions of signed-in admins, kept in memory.
//!
//! The browser holds a random 256-bit id in a cookie; the map is keyed by
//! the id's SHA-256, so neither a lookup's timing nor a memory dump gives a
//! usable id. A session remembers which token signed in (name and hash, not
//! the token), its CSRF token and one flash message. It ends after
//! [`Sessions::new`]'s idle time without a request, or its lifetime after
//! sign-in, whichever comes first ([`expired`], a pure decision). Sessions
//! do not survive a restart of `serve`: admins sign in again.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A session id as the browser holds it. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(MASKED)")
    }
}

impl SessionId {
    /// The cookie value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Wrap a cookie value.
    pub fn from_cookie(value: &str) -> SessionId {
        SessionId(value.to_string())
    }

    fn key(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// A message shown once on the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// True for a refusal or failure (shown as an error).
    pub error: bool,
    /// The text (escaped when shown).
    pub text: String,
}

impl Flash {
    /// A confirmation.
    pub fn ok(text: impl Into<String>) -> Flash {
        Flash {
            error: false,
            text: text.into(),
        }
    }

    /// A refusal.
    pub fn error(text: impl Into<String>) -> Flash {
        Flash {
            error: true,
            text: text.into(),
        }
    }
}

/// What a session knows.
#[derive(Clone, Debug)]
pub struct Session {
    /// Name of the admin token that signed in (actor `web:NAME`).
    pub token_name: String,
    /// SHA-256 of that token, checked against the store on each request.
    pub token_hash: String,
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
    /// Signed in over HTTPS: the session is only accepted over HTTPS.
    pub secure: bool,
    /// When it signed in.
    pub created: Instant,
    /// Its last request.
    pub last_seen: Instant,
    /// The message for the next page.
    pub flash: Option<Flash>,
}

/// Has a session ended at `now`? Idle for `idle` or older than `lifetime`.
pub fn expired(
    created: Instant,
    last_seen: Instant,
    now: Instant,
    idle: Duration,
    lifetime: Duration,
) -> bool {
    now.saturating_duration_since(last_seen) >= idle
        || now.saturating_duration_since(created) >= lifetime
}

/// The OS random generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed: {0}")]
pub struct RandomError(String);

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> Result<String, RandomError> {
    let mut raw = vec![0u8; n];
    getrandom::fill(&mut raw).map_err(|e| RandomError(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// The result of looking a session up.
#[derive(Debug)]
pub enum Lookup {
    /// Live; its last-seen time has been moved to now.
    Live(Session),
    /// It existed but has expired (now removed).
    Expired,
    /// No such session.
    Unknown,
}

/// All sessions of this process.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    max: usize,
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// No sessions yet.
    pub fn new(idle: Duration, lifetime: Duration, max: usize) -> Sessions {
        Sessions {
            idle,
            lifetime,
            max: max.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A poisoned map only means a panic elsewhere while holding it; the
        // data (plain values) is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start a session for a token that just signed in.
    pub fn create(
        &self,
        token_name: &str,
        token_hash: &str,
        secure: bool,
        now: Instant,
    ) -> Result<SessionId, RandomError> {
        let id = SessionId(random_token(32)?);
        let session = Session {
            token_name: token_name.to_string(),
            token_hash: token_hash.to_string(),
            csrf: random_token(32)?,
            secure,
            created: now,
            last_seen: now,
            flash: None,
        };
        let mut map = self.map();
        if map.len() >= self.max {
            let (idle, lifetime) = (self.idle, self.lifetime);
            map.retain(|_, s| !expired(s.created, s.last_seen, now, idle, lifetime));
        }
        while map.len() >= self.max {
            let oldest = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    map.remove(&k);
                }
                None => break,
            }
        }
        map.insert(id.key(), session);
        Ok(id)
    }

    /// Find a live session and mark it used now; an expired one is removed.
    pub fn touch(&self, id: &SessionId, now: Instant) -> Lookup {
        let key = id.key();
        let mut map = self.map();
        let Some(s) = map.get_mut(&key) else {
            return Lookup::Unknown;
        };
        if expired(s.created, s.last_seen, now, self.idle, self.lifetime) {
            map.remove(&key);
            return Lookup::Expired;
        }
        s.last_seen = now;
        Lookup::Live(s.clone())
    }

    /// Take the session's flash message (shown once).
    pub fn take_flash(&self, id: &SessionId) -> Option<Flash> {
        self.map().get_mut(&id.key()).and_then(|s| s.flash.take())
    }

    /// Leave a message for the session's next page.
    pub fn set_flash(&self, id: &SessionId, flash: Flash) {
        if let Some(s) = self.map().get_mut(&id.key()) {
            s.flash = Some(flash);
        }
    }

    /// End a session (sign-out, or its token is no longer valid).
    pub fn remove(&self, id: &SessionId) -> Option<Session> {
        self.map().remove(&id.key())
    }

    /// Number of sessions held (live or not yet noticed as expired).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when nobody is signed in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn expiry_is_idle_or_lifetime() {
        let t0 = Instant::now();
        let idle = 30 * MIN;
        let life = 8 * 60 * MIN;
        // (created offset, last seen offset, now offset, expired?)
        for (c, l, n, want) in [
            (0, 0, 0, false),
            (0, 0, 29, false),
            (0, 0, 30, true),
            (0, 100, 129, false),
            (0, 100, 130, true),
            (0, 479, 479, false),
            (0, 479, 480, true),
            (0, 0, 10_000, true),
        ] {
            assert_eq!(
                expired(t0 + c * MIN, t0 + l * MIN, t0 + n * MIN, idle, life),
                want,
                "created {c} last {l} now {n}"
            );
        }
    }

    #[test]
    fn create_touch_expire_remove() {
        let t0 = Instant::now();
        let s = Sessions::new(30 * MIN, 60 * MIN, 10);
        let id = s.create("ops", "h", false, t0).unwrap();
        assert_eq!(id.expose().len(), 43);
        assert_eq!(format!("{id:?}"), "SessionId(MASKED)");
        let Lookup::Live(a) = s.touch(&id, t0 + 20 * MIN) else {
            panic!("live")
        };
        assert_eq!((a.token_name.as_str(), a.csrf.len()), ("ops", 43));
        // used 20 min in: still live at 45 (idle 25), not at 60 (lifetime)
        assert!(matches!(s.touch(&id, t0 + 45 * MIN), Lookup::Live(_)));
        assert!(matches!(s.touch(&id, t0 + 60 * MIN), Lookup::Expired));
        assert!(matches!(s.touch(&id, t0 + 60 * MIN), Lookup::Unknown));
        assert!(s.is_empty());

        let id = s.create("ops", "h", false, t0).unwrap();
        let other = s.create("ops", "h", false, t0).unwrap();
        assert_ne!(id, other);
        s.set_flash(&id, Flash::ok("done"));
        assert_eq!(s.take_flash(&id), Some(Flash::ok("done")));
        assert_eq!(s.take_flash(&id), None);
        assert!(s.remove(&id).is_some());
        assert!(matches!(s.touch(&id, t0), Lookup::Unknown));
        assert!(matches!(s.touch(&other, t0), Lookup::Live(_)));
        assert!(matches!(
            s.touch(&SessionId::from_cookie("forged"), t0),
            Lookup::Unknown
        ));
    }

    #[test]
    fn bounded_by_dropping_expired_then_least_recently_used() {
        let t0 = Instant::now();
        let s = Sessions::new(30 * MIN, 600 * MIN, 2);
        let a = s.create("a", "h", false, t0).unwrap();
        let b = s.create("b", "h", false, t0 + MIN).unwrap();
        assert!(matches!(s.touch(&a, t0 + 2 * MIN), Lookup::Live(_)));
        // full: b is the least recently used and makes room
        let c = s.create("c", "h", false, t0 + 3 * MIN).unwrap();
        assert_eq!(s.len(), 2);
        assert!(matches!(s.touch(&b, t0 + 3 * MIN), Lookup::Unknown));
        assert!(matches!(s.touch(&a, t0 + 3 * MIN), Lookup::Live(_)));
        // later both have expired and are dropped together
        let _d = s.create("d", "h", false, t0 + 100 * MIN).unwrap();
        assert_eq!(s.len(), 1);
        assert!(matches!(s.touch(&c, t0 + 100 * MIN), Lookup::Unknown));
    }
}
