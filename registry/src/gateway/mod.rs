//! The SSH gateway inside `pra-registry serve`: approved keys only,
//! forwards only to what the user's rules name, live revocation.
//!
//! # Layout
//! - [`policy`]: pure decisions (login, `direct-tcpip` target, login state).
//! - [`hostkey`]: the ed25519 host key in the data folder.
//! - [`transport`]: algorithms and russh settings.
//! - [`limits`]: pre-auth caps and per-source penalties.
//! - [`killable`]: sockets the gateway can cut from outside.
//! - [`handler`]: the russh handler (authentication, channels, requests).
//! - [`forward`]: `direct-tcpip` channels with per-channel flow control.
//! - [`memory`]: window budgets per session and gateway; heap trimming.
//! - [`session`]: a logged-in session's state and byte counts.
//! - [`watch`]: live revocation, disconnect requests, the registry outage
//!   policy, and the live-sessions rows (heartbeats) in the store.
//! - [`audit`]: gateway audit events.
//!
//! [`run`] takes a bound listener, the store, a [`GatewayConfig`] and a
//! shutdown future.
//!
//! Several gateways may share one registry (PostgreSQL): each one follows
//! the store's change feed ([`crate::store::Store::subscribe`]), records its
//! sessions under its [`GatewayConfig::gateway_id`], and ends the sessions
//! an admin asks to disconnect, whichever gateway the admin used.

pub mod audit;
pub mod enroll;
pub mod forward;
pub mod handler;
pub mod hostkey;
pub mod killable;
pub mod limits;
pub mod memory;
pub mod policy;
pub mod session;
pub mod transport;
pub mod watch;

use crate::error::RegistryError;
use crate::model::{Actor, SessionProgress, now};
use crate::store::{Change, Store, StoreResult};
use audit::{Audit, RefusalAuditPolicy, Refusals};
use hostkey::HostKey;
use killable::{KillSwitch, Killable};
use limits::{AdmissionPolicy, Limits, PenaltyPolicy, Ticket};
use session::{SessionState, Sessions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Default of [`GatewayConfig::max_sessions_per_key`].
pub const DEFAULT_MAX_SESSIONS_PER_KEY: usize = 4;

/// Settings of the SSH gateway. [`GatewayConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Host key (see [`hostkey::load_or_create`]).
    pub host_key: HostKey,
    /// This gateway's name in the audit log (`gateway:NAME`) and the
    /// live-sessions list; unique per gateway sharing a registry. Default:
    /// `HOSTNAME:PORT` (see [`default_gateway_id`]).
    pub gateway_id: Option<String>,
    /// A connection must log in within this time after its banner.
    pub login_deadline: Duration,
    /// Every refused login is answered after this time (constant timing).
    pub auth_rejection_time: Duration,
    /// Refused attempts per connection before it is dropped.
    pub max_auth_attempts: usize,
    /// Caps on connections that have not logged in yet.
    pub admission: AdmissionPolicy,
    /// Delays for sources with failed logins.
    pub penalty: PenaltyPolicy,
    /// A keepalive is sent after this much silence from the client.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the client counts as gone.
    pub keepalive_max: usize,
    /// The revocation watcher also wakes this often without a change (the
    /// store's change feed wakes it at once when the revision moves).
    pub revocation_poll: Duration,
    /// Registry outage policy: live sessions are kept while the registry
    /// cannot be read, but when the gateway could not confirm them for this
    /// long (so it could not have applied a revocation), it ends them.
    pub recheck_window: Duration,
    /// Live sessions' byte counts and heartbeats are written this often.
    pub progress_interval: Duration,
    /// Resolving and connecting to a forward's target.
    pub connect_timeout: Duration,
    /// Per-channel receive window (bytes the client may have in flight on
    /// one forward); also bounds the gateway's buffer per forward.
    pub window_size: u32,
    /// Largest per-channel receive window: a channel's window starts at
    /// `window_size` and doubles up to this while the target takes a full
    /// window within two round trips (long links; see [`memory`]), within
    /// the budgets.
    pub window_max: u32,
    /// Largest data packet the client may send.
    pub max_packet_size: u32,
    /// The session's keys are renewed after this many bytes in either
    /// direction (and at least every hour); at most 1 GiB.
    pub rekey_after: usize,
    /// Receive windows of one session's forwards together (bytes; see
    /// [`memory`]): a session's channels share it.
    pub session_window_budget: u64,
    /// Receive windows of all forwards of the gateway together (bytes).
    pub gateway_window_budget: u64,
    /// Forward channels one session may have open.
    pub max_forwards_per_session: usize,
    /// How refused logins are aggregated in the audit log.
    pub refusal_audit: RefusalAuditPolicy,
    /// Live sessions one key may hold at once; a further login with the key
    /// is refused (the newest is refused: a stolen copy cannot push the
    /// owner's session out, and reconnecting clients do not take turns
    /// evicting each other).
    pub max_sessions_per_key: usize,
}

impl GatewayConfig {
    /// The defaults, with `host_key`.
    pub fn new(host_key: HostKey) -> Self {
        GatewayConfig {
            host_key,
            gateway_id: None,
            login_deadline: Duration::from_secs(20),
            auth_rejection_time: Duration::from_secs(1),
            max_auth_attempts: 6,
            admission: AdmissionPolicy {
                max_unauthenticated: 1024,
                max_unauthenticated_per_source: 10,
            },
            penalty: PenaltyPolicy::default(),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            revocation_poll: Duration::from_secs(1),
            recheck_window: Duration::from_secs(60),
            progress_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            window_size: 2 * 1024 * 1024,
            window_max: 16 * 1024 * 1024,
            max_packet_size: 32 * 1024,
            rekey_after: 1 << 30,
            session_window_budget: 32 * 1024 * 1024,
            gateway_window_budget: 1024 * 1024 * 1024,
            max_forwards_per_session: 128,
            max_sessions_per_key: DEFAULT_MAX_SESSIONS_PER_KEY,
            refusal_audit: RefusalAuditPolicy::default(),
        }
    }
}

/// The line `serve` prints when the gateway listens; scripts parse it.
pub fn listening_line(addr: SocketAddr, fingerprint: &str) -> String {
    format!("ssh listening on {addr} host key {fingerprint}")
}

/// `HOSTNAME:PORT` of a gateway listening on `local` (the listening address
/// when the host name is unknown).
pub fn default_gateway_id(local: SocketAddr) -> String {
    match whoami::fallible::hostname() {
        Ok(host) if !host.is_empty() => {
            let host: String = host
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .take(200)
                .collect();
            format!("{host}:{}", local.port())
        }
        _ => local.to_string(),
    }
}

/// What every connection of one gateway shares.
pub struct Shared {
    /// The registry.
    pub store: Arc<Store>,
    /// This gateway's id (see [`GatewayConfig::gateway_id`]).
    pub gateway_id: String,
    /// The store's change feed (latest revision, database health).
    pub feed: tokio::sync::watch::Receiver<Change>,
    /// Ended sessions whose end could not be written to the registry yet
    /// (it was unreachable); [`watch::heartbeat`] retries them.
    pub pending_ends: std::sync::Mutex<Vec<watch::PendingEnd>>,
    /// Settings.
    pub cfg: GatewayConfig,
    /// Logged-in sessions.
    pub sessions: Sessions,
    /// Pre-auth caps and penalties.
    pub limits: Arc<Limits>,
    /// Audit events.
    pub audit: Arc<Audit>,
    /// Refused logins (aggregated per source into `audit`).
    pub refusals: Refusals,
    /// Receive windows of all forwards (see [`memory`]).
    pub window_budget: Arc<memory::Budget>,
    /// Returns freed heap to the system after sessions end.
    pub trimmer: memory::Trimmer,
}

/// Run a store call on the blocking pool.
pub async fn blocking<T, F>(store: &Arc<Store>, f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
{
    let started = std::time::Instant::now();
    let r = crate::blocking::blocking(store, f).await;
    let m = crate::metrics::get();
    crate::metrics::Metrics::observe(&m.store_seconds, started.elapsed());
    r
}

/// Serve SSH on `listener` until `shutdown` completes; then disconnect every
/// client and return. Errors only if the settings cannot be used.
pub async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RegistryError> {
    let local = listener
        .local_addr()
        .map_err(|e| RegistryError::Gateway(format!("the listener has no address: {e}")))?;
    let id = config
        .gateway_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| default_gateway_id(local));
    let ssh = Arc::new(transport::server_config(&config));
    let (audit, audit_writer) =
        Audit::start(Arc::clone(&store), Actor::Gateway(id.clone()).to_string());
    // Sessions an earlier run of this gateway left open (it crashed or lost
    // the database) are over.
    let gid = id.clone();
    match blocking(&store, move |s| {
        s.end_gateway_sessions(&gid, now(), "gateway_restart")
    })
    .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(gateway = %id, sessions = n, "sessions left open by an earlier run marked ended")
        }
        Err(e) => {
            tracing::warn!(%e, gateway = %id, "cannot mark the sessions of an earlier run ended")
        }
    }
    let feed = store.subscribe();
    let config_refusals = config.refusal_audit;
    let config_budget = config.gateway_window_budget;
    let shared = Arc::new(Shared {
        store,
        gateway_id: id,
        feed,
        pending_ends: std::sync::Mutex::new(Vec::new()),
        limits: Limits::new(config.admission, config.penalty),
        cfg: config,
        sessions: Sessions::default(),
        refusals: Refusals::new(Arc::clone(&audit), config_refusals),
        window_budget: memory::Budget::new(config_budget),
        trimmer: memory::Trimmer::default(),
        audit,
    });
    // Cancelled at shutdown: the background tasks and, through a child
    // token each, every connection stop.
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(watch::run(Arc::clone(&shared), stop.child_token()));
    let heartbeat = tokio::spawn(watch::heartbeat(Arc::clone(&shared), stop.child_token()));
    let trimmer = {
        let shared = Arc::clone(&shared);
        let stop = stop.child_token();
        tokio::spawn(async move { shared.trimmer.run(Duration::from_secs(1), stop).await })
    };
    let summaries = {
        let shared = Arc::clone(&shared);
        let stop = stop.child_token();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(shared.refusals.tick());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut flood = tokio::time::interval(FLOOD_REPORT);
            flood.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seen = (0, 0);
            loop {
                tokio::select! {
                    _ = tick.tick() => shared.refusals.flush(false),
                    _ = flood.tick() => seen = report_flood(&shared.limits, seen),
                    () = stop.cancelled() => break,
                }
            }
        })
    };
    tracing::info!(addr = %local, gateway = %shared.gateway_id, host_key = %shared.cfg.host_key.fingerprint(), "ssh gateway listening");

    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let kill = KillSwitch::new();
                    match shared.limits.admit(peer.ip(), kill.clone()) {
                        Ok(ticket) => {
                            crate::metrics::get().preauth_connections.inc();
                            let conn = Connection {
                                shared: Arc::clone(&shared),
                                peer,
                                kill,
                                stop: stop.child_token(),
                            };
                            conns.spawn(conn.run(Arc::clone(&ssh), tcp, ticket));
                        }
                        Err(limits::Refusal::SourceBusy) => {
                            tracing::debug!(%peer, "too many unauthenticated connections from this source; closed");
                            crate::metrics::Metrics::reason(&crate::metrics::get().preauth_dropped, "source_busy");
                        }
                    }
                }
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!(%e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }

    tracing::info!(
        sessions = shared.sessions.len(),
        "ssh gateway shutting down"
    );
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.shutdown().await;
    }
    let _ = watcher.await;
    let _ = heartbeat.await;
    let _ = summaries.await;
    let _ = trimmer.await;
    shared.refusals.flush(true);
    shared.audit.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), audit_writer).await;
    Ok(())
}

/// Pre-auth floods are reported at most this often.
const FLOOD_REPORT: Duration = Duration::from_secs(10);

/// One WARN line when connections were evicted at the pre-auth cap or
/// refused at a source's cap since the counts `seen`; the new counts.
fn report_flood(limits: &Limits, seen: (u64, u64)) -> (u64, u64) {
    let now = (limits.evicted(), limits.refused_busy());
    let (evicted, refused) = (now.0 - seen.0, now.1 - seen.1);
    if evicted > 0 || refused > 0 {
        tracing::warn!(
            evicted,
            refused_source_busy = refused,
            unauthenticated = limits.unauthenticated(),
            secs = FLOOD_REPORT.as_secs(),
            "connection flood: unauthenticated connections evicted at the cap or refused at their source's cap"
        );
    }
    now
}

/// How a session ended, for `session.end`.
fn describe(result: &Result<(), russh::Error>) -> String {
    match result {
        Ok(()) => "closed".into(),
        Err(russh::Error::KeepaliveTimeout) => "keepalive_timeout".into(),
        Err(russh::Error::InactivityTimeout) => "inactivity_timeout".into(),
        Err(russh::Error::IO(e)) => format!("connection_lost: {e}"),
        Err(e) => format!("error: {e}"),
    }
}

/// The SSH session of one connection, as russh runs it.
type Running = russh::server::RunningSession<handler::GatewayHandler>;

/// One accepted TCP connection, from admission to `session.end`: the login
/// ([`Connection::login`]), the session until it ends or the gateway stops
/// ([`Connection::run`]), then its records ([`Connection::finish`]).
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// Cuts the socket whatever the peer does.
    kill: KillSwitch,
    /// The gateway's shutdown (a child token of it).
    stop: CancellationToken,
}

impl Connection {
    /// Serve the connection to its end; `ticket` holds its pre-auth slot
    /// until it logs in.
    async fn run(self, ssh: Arc<russh::server::Config>, tcp: TcpStream, ticket: Ticket) {
        let Some((mut running, state, registration)) = self.login(ssh, tcp).await else {
            return;
        };
        ticket.authenticated();
        let registered = tokio::spawn(register(Arc::clone(&state), registration));
        let result = tokio::select! {
            result = &mut running => result,
            () = self.stop.cancelled() => {
                state.end("gateway_shutdown".into(), "the gateway is shutting down".into());
                tokio::time::timeout(Duration::from_secs(2), &mut running)
                    .await
                    .unwrap_or(Ok(()))
            }
        };
        // Whatever ended the session, nothing it opened outlives it.
        self.kill.trip();
        state.abort_forwards();
        self.shared.sessions.unregister(state.id);
        self.shared.trimmer.request();
        self.finish(&state, &result, registered).await;
    }

    /// The SSH handshake and login, within the login deadline; the running
    /// session and its state once a key is accepted, `None` when the
    /// connection ended (or was ended) before.
    async fn login(
        &self,
        ssh: Arc<russh::server::Config>,
        tcp: TcpStream,
    ) -> Option<(Running, Arc<SessionState>, audit::Registration)> {
        let (shared, peer, kill) = (&self.shared, self.peer, &self.kill);
        let _ = tcp.set_nodelay(true);
        let stream = Killable::new(tcp, kill.clone());
        let (authed_tx, authed_rx) = oneshot::channel();
        let handler =
            handler::GatewayHandler::new(Arc::clone(shared), peer, kill.clone(), authed_tx);
        let deadline = Instant::now() + shared.cfg.login_deadline;
        let started =
            tokio::time::timeout_at(deadline, russh::server::run_stream(ssh, stream, handler));
        let mut running = match started.await {
            Ok(Ok(running)) => running,
            Ok(Err(e)) => {
                tracing::debug!(%peer, %e, "ssh handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "no ssh banner before the login deadline");
                crate::metrics::Metrics::reason(
                    &crate::metrics::get().preauth_dropped,
                    "login_deadline",
                );
                shared.limits.record_failure(peer.ip(), None);
                return None;
            }
        };
        // `biased`: a client that logs in and leaves at once makes both the
        // login and the session's end ready together; the login must win so
        // the session is recorded (start and end) like any other.
        tokio::select! {
            biased;
            authed = authed_rx => match authed {
                Ok((state, registration)) => return Some((running, state, registration)),
                Err(_) => {
                    let _ = (&mut running).await;
                }
            },
            result = &mut running => {
                tracing::debug!(%peer, reason = %describe(&result), "connection ended before login");
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, "login deadline missed; connection closed");
                shared.limits.record_failure(peer.ip(), None);
                cut(kill, &mut running).await;
            }
            () = kill.tripped() => {
                cut(kill, &mut running).await;
            }
            () = self.stop.cancelled() => {
                cut(kill, &mut running).await;
            }
        }
        None
    }

    /// Record the session's end: its totals in the log, in the registry's
    /// live-sessions list (retried later when unreachable) and in the audit
    /// log as `session.end`.
    async fn finish(
        &self,
        state: &Arc<SessionState>,
        result: &Result<(), russh::Error>,
        registered: tokio::task::JoinHandle<Option<i64>>,
    ) {
        let (shared, peer) = (&self.shared, self.peer);
        let reason = state.end_reason().unwrap_or_else(|| describe(result));
        let (up, down, forwards) = totals(state);
        let duration = state.started.elapsed().as_secs_f64();
        tracing::info!(user = %state.user, source = %peer, %reason, duration_secs = duration, bytes_up = up, bytes_down = down, "session end");
        if let Ok(Some(id)) = registered.await {
            let end = watch::PendingEnd {
                progress: SessionProgress {
                    id,
                    bytes_up: up,
                    bytes_down: down,
                },
                at: now(),
                reason: reason.clone(),
            };
            // With the background writer's next group (see `audit`).
            let written = shared
                .audit
                .session_close(end.progress, end.at, end.reason.clone())
                .await;
            if !written {
                tracing::warn!(
                    session = id,
                    "cannot mark the session ended in the registry yet; will retry"
                );
                shared
                    .pending_ends
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(end);
            }
        }
        shared.audit.record(
            "session.end",
            Some(&state.user),
            Some(&state.fingerprint),
            Some(peer),
            serde_json::json!({
                "reason": reason,
                "duration_secs": (duration * 1000.0).round() / 1000.0,
                "bytes_up": up,
                "bytes_down": down,
                "forwards": forwards,
                "refused_forwards": state.refused.load(std::sync::atomic::Ordering::Relaxed),
                "failed_forwards": state.failed.load(std::sync::atomic::Ordering::Relaxed),
            }),
        );
    }
}

/// Cut the socket and give the session task a moment to end.
async fn cut(kill: &KillSwitch, running: &mut Running) {
    kill.trip();
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
}

/// A session's bytes up and down in total, and per rule for the audit log.
fn totals(state: &SessionState) -> (u64, u64, Vec<serde_json::Value>) {
    let (mut up, mut down) = (0u64, 0u64);
    let forwards = state
        .tallies()
        .iter()
        .map(|(rule, t)| {
            up += t.up;
            down += t.down;
            serde_json::json!({
                "rule": rule,
                "target": t.target,
                "channels": t.channels,
                "bytes_up": t.up,
                "bytes_down": t.down,
            })
        })
        .collect();
    (up, down, forwards)
}

/// The row of a session that just logged in, queued at the login for the
/// registry's live-sessions list with the background writer's next group
/// (see `audit`: one transaction for all the logins of a burst); its id,
/// or `None` when the registry cannot be written (the session goes on,
/// unlisted).
async fn register(state: Arc<SessionState>, registration: audit::Registration) -> Option<i64> {
    match registration.await {
        Some(id) => {
            state.set_registry_id(id);
            Some(id)
        }
        None => {
            tracing::warn!(user = %state.user, "cannot list the session in the registry");
            None
        }
    }
}
