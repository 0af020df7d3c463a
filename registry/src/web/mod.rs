//! The admin web page, served under `/admin` on the API listener: the same
//! admin work as the CLI (approve keys, manage users, rules and invites,
//! see live sessions and the audit log) as server-rendered HTML that needs
//! no JavaScript and loads nothing from elsewhere.
//!
//! # Layout
//! - [`session`]: server-side sessions in memory (random id in a cookie,
//!   idle and absolute expiry), their CSRF tokens and flash messages.
//! - [`guard`]: cookies, the cross-site refusal (`Origin` /
//!   `Sec-Fetch-Site`), security headers, constant-time comparison.
//! - [`form`]: form bodies and the extractors that authenticate a request
//!   (signed in; signed in *and* the form's CSRF token matches).
//! - [`view`]: the HTML templates (maud: compiled into the binary, every
//!   interpolation escaped), pure functions of the data.
//! - [`pages`]: the handlers of the pages and of the actions.
//! - [`dup`]: which keys share a device tag or description (cloned disk images).
//! - [`text`]: dates, durations and byte counts for people.
//!
//! # Security
//! - Sign-in takes an admin token (`pra-registry token create`) in a POST
//!   body, never in a URL; attempts are rate limited per source. A new random
//!   session id is issued at every sign-in; only its SHA-256 is kept. The
//!   token itself is not kept either, only its hash, which is checked against
//!   the store on every request (a token that stops being valid ends its
//!   sessions).
//! - The cookie is `HttpOnly; SameSite=Strict`. When the page is reached over
//!   HTTPS (a TLS reverse proxy that sends `X-Forwarded-Proto: https`), it is
//!   also `Secure` and named with the `__Host-` prefix; on plain HTTP (the
//!   default `127.0.0.1:10088`, reached through an SSH tunnel) browsers would
//!   drop a `Secure` cookie, so it is set without, on `Path=/admin`. A
//!   session signed in over HTTPS is not accepted over plain HTTP.
//! - Every form carries a synchronizer CSRF token tied to the session (the
//!   sign-in form a double-submit token); every POST whose `Sec-Fetch-Site`
//!   is not `same-origin`, or whose `Origin` is not this host, is refused
//!   with 403 before anything else happens. GET never changes anything.
//! - Every answer has a strict Content-Security-Policy (`default-src 'none'`,
//!   styles only from this server, forms only to this server, no framing),
//!   `nosniff`, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.
//! - Changes are made, and audited, as actor `web:<token name>`; sign-in,
//!   refused sign-in and sign-out are audited too.
//! - A new invite's string is only in the answer to the form that made it
//!   (not in a redirect, a URL, the session, the store or a log); the store
//!   keeps its secret's SHA-256, as for `pra-registry invite create`.

pub mod dup;
pub mod form;
pub mod guard;
pub mod pages;
pub mod session;
pub mod text;
pub mod view;

use crate::rate::{RateLimit, RateLimiter};
use crate::store::Store;
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use session::Sessions;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the page is mounted on the API listener.
pub const PREFIX: &str = "/admin";

/// Tunables of the admin page. `Default` is what `serve` uses.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_lifetime: Duration,
    /// Sessions kept at once; the least recently used one makes room.
    pub max_sessions: usize,
    /// Sign-in attempts per source.
    pub login_limit: RateLimit,
    /// Time source of session expiry and the sign-in rate limit.
    pub clock: Clock,
    /// Fingerprint of the SSH gateway's host key, written into the invites
    /// made on the page (`serve` sets it); `None`: the page makes none.
    pub host_key: Option<String>,
}

impl WebConfig {
    /// 5 sign-in attempts at once per source, then one every 12 s.
    pub const LOGIN_LIMIT: RateLimit = RateLimit {
        burst: 5,
        refill_every: Duration::from_secs(12),
        max_sources: 10_000,
    };
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(8 * 3600),
            max_sessions: 1000,
            login_limit: WebConfig::LOGIN_LIMIT,
            clock: Clock::system(),
            host_key: None,
        }
    }
}

/// A monotonic clock: the system's, or a manual one that tests move forward.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<ManualClock>>);

struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl Clock {
    /// `Instant::now()`.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands still until [`Clock::advance`] moves it.
    pub fn manual() -> Clock {
        Clock(Some(Arc::new(ManualClock {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })))
    }

    /// Move a manual clock forward (the system clock moves by itself; it
    /// ignores this).
    pub fn advance(&self, by: Duration) {
        if let Some(m) = &self.0
            && let Ok(mut off) = m.offset.lock()
        {
            *off += by;
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &self.0 {
            None => Instant::now(),
            Some(m) => m.base + m.offset.lock().map(|o| *o).unwrap_or_default(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(manual)"
        } else {
            "Clock(system)"
        })
    }
}

/// What every page handler sees.
#[derive(Clone)]
pub struct WebState {
    /// The registry's records.
    pub store: Arc<Store>,
    /// Signed-in admins.
    pub sessions: Arc<Sessions>,
    login_limiter: Arc<RateLimiter>,
    config: Arc<WebConfig>,
}

impl WebState {
    /// State over a store.
    pub fn new(store: Arc<Store>, config: &WebConfig) -> WebState {
        WebState {
            sessions: Arc::new(Sessions::new(
                store.clone(),
                config.session_idle,
                config.session_lifetime,
                config.max_sessions,
            )),
            store,
            login_limiter: Arc::new(RateLimiter::new(config.login_limit)),
            config: Arc::new(config.clone()),
        }
    }

    /// Now, by the configured clock.
    pub fn now(&self) -> Instant {
        self.config.clock.now()
    }
}

/// The admin page's router, to be nested under [`PREFIX`]. Its state is
/// its own; it fits into a router of any state `S`.
pub fn router<S>(store: Arc<Store>, config: &WebConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let state = WebState::new(store, config);
    Router::new()
        .route("/", get(pages::pending))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/keys", get(pages::keys))
        .route("/keys/approve", post(pages::approve_key))
        .route("/keys/revoke", post(pages::revoke_key))
        .route("/users", get(pages::users).post(pages::add_user))
        .route("/users/enable", post(pages::enable_user))
        .route("/users/disable", post(pages::disable_user))
        .route("/rules", get(pages::rules).post(pages::add_rule))
        .route("/rules/remove", post(pages::remove_rule))
        .route("/invites", get(pages::invites).post(pages::create_invite))
        .route("/invites/revoke", post(pages::revoke_invite))
        .route("/sessions", get(pages::sessions))
        .route("/sessions/disconnect", post(pages::disconnect_session))
        .route("/audit", get(pages::audit))
        .route("/static/admin.css", get(pages::stylesheet))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(middleware::from_fn(guard::refuse_cross_site))
        .layer(middleware::from_fn(guard::security_headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now() - t0, Duration::from_secs(90));
        let s = Clock::system();
        let before = s.now();
        s.advance(Duration::from_secs(3600));
        assert!(s.now() - before < Duration::from_secs(3600));
        assert_eq!(format!("{c:?}"), "Clock(manual)");
    }
}
