//! Server-side sessions of signed-in admins, kept in the registry's
//! database, so every `serve` on the same database (several gateways behind
//! one address) knows every session: no sticky sessions needed.
//!
//! The browser holds a random 256-bit id in a cookie; the database holds
//! only the id's SHA-256 (as the row's key), so neither a lookup's timing
//! nor a copy of the database gives a usable id. A session remembers which
//! token signed in (name and hash, not the token), its CSRF token and one
//! flash message. It ends after [`Sessions::new`]'s idle time without a
//! request, or its lifetime after sign-in, whichever comes first
//! ([`expired`], a pure decision); an ended session's row is deleted when it
//! is next looked up or when a new session is made, and sign-out deletes
//! it at once. Sessions survive a restart of `serve`.

use crate::error::RegistryError;
use crate::model::WebSession;
use crate::store::Store;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

    /// The key the database knows the session by: the id's SHA-256 in hex.
    fn key(&self) -> String {
        format!("{:x}", Sha256::digest(self.0.as_bytes()))
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
    /// When it signed in (milliseconds since the epoch).
    pub created_ms: i64,
    /// Its last request (milliseconds since the epoch).
    pub last_seen_ms: i64,
    /// The message for the next page.
    pub flash: Option<Flash>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Has a session ended at `now_ms`? Idle for `idle` or older than
/// `lifetime` (times in milliseconds since the epoch).
pub fn expired(
    created_ms: i64,
    last_seen_ms: i64,
    now_ms: i64,
    idle: Duration,
    lifetime: Duration,
) -> bool {
    now_ms.saturating_sub(last_seen_ms) >= millis(idle)
        || now_ms.saturating_sub(created_ms) >= millis(lifetime)
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

/// Why a session could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No random id.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The database refused or did not answer.
    #[error(transparent)]
    Store(#[from] RegistryError),
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
    /// The database did not answer: nobody can tell.
    Unavailable(RegistryError),
}

/// Run a store call from a request handler: on a multi-thread runtime the
/// worker hands its other tasks over meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The admin page's sessions, in the registry's database.
pub struct Sessions {
    store: Arc<Store>,
    idle: Duration,
    lifetime: Duration,
    max: usize,
    /// An instant of the page's clock and the wall time then: the clock's
    /// instants become wall times every process agrees on.
    anchor: (Instant, i64),
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("idle", &self.idle)
            .field("lifetime", &self.lifetime)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// The sessions in `store`: they end after `idle` without a request or
    /// `lifetime` after sign-in; at most `max` are kept (the least recently
    /// used one makes room).
    pub fn new(store: Arc<Store>, idle: Duration, lifetime: Duration, max: usize) -> Sessions {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or_default();
        Sessions {
            store,
            idle,
            lifetime,
            max: max.max(1),
            anchor: (Instant::now(), wall),
        }
    }

    /// `t` in milliseconds since the epoch (rounded down, so that instants
    /// a whole number of milliseconds apart stay exactly that far apart).
    fn ms(&self, t: Instant) -> i64 {
        let (at, wall) = self.anchor;
        let nanos = match t.checked_duration_since(at) {
            Some(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
            None => -i128::try_from(at.duration_since(t).as_nanos()).unwrap_or(i128::MAX),
        };
        wall.saturating_add(i64::try_from(nanos.div_euclid(1_000_000)).unwrap_or(i64::MAX))
    }

    /// Start a session for a token that just signed in.
    pub fn create(
        &self,
        token_name: &str,
        token_hash: &str,
        secure: bool,
        now: Instant,
    ) -> Result<SessionId, SessionError> {
        let id = SessionId(random_token(32)?);
        let now = self.ms(now);
        let record = WebSession {
            id_hash: id.key(),
            token_name: token_name.to_string(),
            token_hash: token_hash.to_string(),
            csrf: random_token(32)?,
            secure,
            created_ms: now,
            last_seen_ms: now,
            flash: None,
        };
        let (seen_before, created_before) = (now - millis(self.idle), now - millis(self.lifetime));
        blocking(|| {
            self.store
                .web_session_add(&record, seen_before, created_before, self.max)
        })?;
        Ok(id)
    }

    /// Find a live session and mark it used now; an expired one is removed.
    pub fn touch(&self, id: &SessionId, now: Instant) -> Lookup {
        let (key, now) = (id.key(), self.ms(now));
        let found = match blocking(|| self.store.web_session(&key)) {
            Ok(Some(s)) => s,
            Ok(None) => return Lookup::Unknown,
            Err(e) => return Lookup::Unavailable(e),
        };
        if expired(
            found.created_ms,
            found.last_seen_ms,
            now,
            self.idle,
            self.lifetime,
        ) {
            self.remove(id);
            return Lookup::Expired;
        }
        if let Err(e) = blocking(|| self.store.web_session_seen(&key, now)) {
            return Lookup::Unavailable(e);
        }
        Lookup::Live(Session {
            token_name: found.token_name,
            token_hash: found.token_hash,
            csrf: found.csrf,
            secure: found.secure,
            created_ms: found.created_ms,
            last_seen_ms: now,
            flash: found.flash.map(|(error, text)| Flash { error, text }),
        })
    }

    /// Replace the session's flash message; the one it had.
    fn swap_flash(&self, id: &SessionId, flash: Option<Flash>) -> Option<Flash> {
        let new = flash.map(|f| (f.error, f.text));
        match blocking(|| self.store.web_session_flash(&id.key(), new)) {
            Ok(old) => old.map(|(error, text)| Flash { error, text }),
            Err(e) => {
                tracing::warn!(err = %e, "admin page: cannot keep the session's message");
                None
            }
        }
    }

    /// Take the session's flash message (shown once).
    pub fn take_flash(&self, id: &SessionId) -> Option<Flash> {
        self.swap_flash(id, None)
    }

    /// Leave a message for the session's next page.
    pub fn set_flash(&self, id: &SessionId, flash: Flash) {
        self.swap_flash(id, Some(flash));
    }

    /// End a session (sign-out, or its token is no longer valid); whether
    /// there was one.
    pub fn remove(&self, id: &SessionId) -> bool {
        blocking(|| self.store.web_session_remove(&id.key())).unwrap_or_else(|e| {
            tracing::warn!(err = %e, "admin page: cannot delete an ended session");
            false
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn expiry_is_idle_or_lifetime() {
        let t0: i64 = 1_700_000_000_000;
        let m = millis(MIN);
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
                expired(t0 + c * m, t0 + l * m, t0 + n * m, idle, life),
                want,
                "created {c} last {l} now {n}"
            );
        }
    }

    fn sessions(idle: Duration, lifetime: Duration, max: usize) -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::sqlite(dir.path()).unwrap());
        (dir, Sessions::new(store, idle, lifetime, max))
    }

    /// Whether the database still holds the session.
    fn held(s: &Sessions, id: &SessionId) -> bool {
        s.store.web_session(&id.key()).unwrap().is_some()
    }

    #[test]
    fn create_touch_expire_remove() {
        let t0 = Instant::now();
        let (_dir, s) = sessions(30 * MIN, 60 * MIN, 10);
        let id = s.create("ops", "h", false, t0).unwrap();
        assert_eq!(id.expose().len(), 43);
        assert_eq!(format!("{id:?}"), "SessionId(MASKED)");
        // the database knows the id's SHA-256 only
        let row = s.store.web_session(&id.key()).unwrap().unwrap();
        assert_eq!(row.id_hash.len(), 64);
        assert_ne!(row.id_hash, id.expose());
        let Lookup::Live(a) = s.touch(&id, t0 + 20 * MIN) else {
            panic!("live")
        };
        assert_eq!((a.token_name.as_str(), a.csrf.len()), ("ops", 43));
        // used 20 min in: still live at 45 (idle 25), not at 60 (lifetime)
        assert!(matches!(s.touch(&id, t0 + 45 * MIN), Lookup::Live(_)));
        assert!(matches!(s.touch(&id, t0 + 60 * MIN), Lookup::Expired));
        assert!(matches!(s.touch(&id, t0 + 60 * MIN), Lookup::Unknown));
        assert!(!held(&s, &id));

        let id = s.create("ops", "h", false, t0).unwrap();
        let other = s.create("ops", "h", false, t0).unwrap();
        assert_ne!(id, other);
        s.set_flash(&id, Flash::ok("done"));
        assert_eq!(s.take_flash(&id), Some(Flash::ok("done")));
        assert_eq!(s.take_flash(&id), None);
        assert!(s.remove(&id));
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
        let (_dir, s) = sessions(30 * MIN, 600 * MIN, 2);
        let a = s.create("a", "h", false, t0).unwrap();
        let b = s.create("b", "h", false, t0 + MIN).unwrap();
        assert!(matches!(s.touch(&a, t0 + 2 * MIN), Lookup::Live(_)));
        // full: b is the least recently used and makes room
        let c = s.create("c", "h", false, t0 + 3 * MIN).unwrap();
        assert_eq!(
            (held(&s, &a), held(&s, &b), held(&s, &c)),
            (true, false, true)
        );
        assert!(matches!(s.touch(&b, t0 + 3 * MIN), Lookup::Unknown));
        assert!(matches!(s.touch(&a, t0 + 3 * MIN), Lookup::Live(_)));
        // later both have expired and are dropped together
        let d = s.create("d", "h", false, t0 + 100 * MIN).unwrap();
        assert_eq!(
            (held(&s, &a), held(&s, &c), held(&s, &d)),
            (false, false, true)
        );
        assert!(matches!(s.touch(&c, t0 + 100 * MIN), Lookup::Unknown));
    }
}
