//! The tunnel as a library: connect to the gateway, fetch the rules, open
//! one 127.0.0.1 listener per rule, pipe every accepted connection through
//! its own `direct-tcpip` channel, reconnect by itself. The CLI (`pra
//! connect`) and the GUI both drive it through [`Tunnel`] and read
//! [`TunnelState`] from a `watch` channel.
//!
//! # Layout
//! - [`session`]: one SSH connection: resolve, TCP, host-key pin (fail
//!   closed), public-key auth, the rules request; russh tuned for forwarding.
//! - `forward`: listeners and the per-connection pump with per-channel
//!   flow control (the receive window is refilled as the local program
//!   reads, so one stalled reader only stops its own channel).
//! - `supervisor`: keepalive loss → reconnect with backoff and jitter;
//!   listeners stay bound; rules refreshed on every connect.
//! - [`status`]: [`TunnelState`], the [`Event`]s between two states, their
//!   text and JSON lines.
//! - [`portowner`]: which program holds a busy local port (Linux `/proc`).

use crate::config::GatewayAddr;
use crate::error::{ClientError, ClientResult};
use pra_proto::codes::Code;
use russh::keys::PrivateKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

mod forward;
pub mod portowner;
pub mod session;
pub mod status;
mod supervisor;

pub use status::{ErrorInfo, Event, ForwardState, Phase, RuleState, TunnelState};

/// Called once with the fingerprint when nothing was pinned and the first
/// connection succeeded; it stores the pin (e.g. [`crate::config::pin_host_key`]).
pub type PinStore = Arc<dyn Fn(&str) -> ClientResult<()> + Send + Sync>;

/// Called (on a blocking thread) when the gateway refused the key, to ask
/// the registry why: `Some(ERR(10205)/ERR(10206))` for pending/revoked.
pub type RefusalExplainer = Arc<dyn Fn() -> Option<ClientError> + Send + Sync>;

/// Timers of the tunnel. [`Timing::default`] is what `pra connect` uses;
/// tests shorten them.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Keepalive after this much silence from the gateway.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the path counts as dead
    /// (detection after `interval * (max + 1)`: 5 s × 3 = 15 s).
    pub keepalive_max: usize,
    /// Name resolution and TCP connect, each.
    pub connect_timeout: Duration,
    /// SSH handshake, authentication and the rules request, each.
    pub ssh_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt.
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_cap: Duration,
    /// How often a busy local port is tried again.
    pub port_retry: Duration,
    /// How long an accepted local connection waits for the tunnel to be up.
    pub wait_for_tunnel: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 2,
            connect_timeout: Duration::from_secs(10),
            ssh_timeout: pra_proto::SSH_STEP_TIMEOUT,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            port_retry: Duration::from_secs(5),
            wait_for_tunnel: Duration::from_secs(30),
        }
    }
}

/// Everything a tunnel needs; the CLI builds it from `config.toml`, the key
/// store and the passphrase.
#[derive(Clone)]
pub struct TunnelConfig {
    /// The gateway.
    pub gateway: GatewayAddr,
    /// Pinned host-key fingerprint; `None` = trust on first use.
    pub host_key: Option<String>,
    /// Stores the pin after a first-use connection.
    pub pin_store: Option<PinStore>,
    /// Account name sent at authentication.
    pub user: String,
    /// The unlocked private key (kept in memory for reconnects only).
    pub key: Arc<PrivateKey>,
    /// Asks the registry why a key was refused.
    pub explain_refusal: Option<RefusalExplainer>,
    /// Timers.
    pub timing: Timing,
}

impl std::fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelConfig")
            .field("gateway", &self.gateway)
            .field("host_key", &self.host_key)
            .field("user", &self.user)
            .field("key", &pra_proto::fingerprint(self.key.public_key()))
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// Stops a running tunnel: orderly disconnect, listeners closed.
#[derive(Clone, Debug)]
pub struct CancelHandle(Arc<watch::Sender<bool>>);

impl CancelHandle {
    /// Ask the tunnel to stop (idempotent).
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// A running tunnel.
#[derive(Debug)]
pub struct Tunnel {
    state: watch::Receiver<TunnelState>,
    cancel: CancelHandle,
    task: tokio::task::JoinHandle<ClientResult<()>>,
    logger: tokio::task::JoinHandle<()>,
}

impl Tunnel {
    /// Start connecting in the background (call inside a tokio runtime).
    pub fn start(config: TunnelConfig) -> Tunnel {
        let (hub, state) = status::Hub::new(config.gateway.to_string());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let logger = tokio::spawn(log_user_lines(hub.subscribe()));
        let task = tokio::spawn(supervisor::run(config, hub, cancel_rx));
        Tunnel {
            state,
            cancel: CancelHandle(Arc::new(cancel_tx)),
            task,
            logger,
        }
    }

    /// The state stream (a new receiver; it sees the current state first).
    pub fn state(&self) -> watch::Receiver<TunnelState> {
        self.state.clone()
    }

    /// A handle that stops the tunnel.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Wait until the tunnel ends: `Ok` after [`CancelHandle::cancel`], the
    /// fatal error otherwise.
    /// The last lines (the fatal one too) are in User.log when it returns.
    pub async fn wait(self) -> ClientResult<()> {
        let r = match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ClientError::new(
                Code::GatewayProtocol,
                format!("the tunnel stopped unexpectedly: {e}"),
            )),
        };
        // The logger ends once every writer of the state is gone; a
        // forward still closing may hold one a moment longer.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.logger).await;
        r
    }
}

/// Target of the `tracing` events that form `User.log`.
pub const USER_LOG_TARGET: &str = "pra::user";

/// Write every user-visible change to User.log (the same lines the CLI prints).
async fn log_user_lines(mut rx: watch::Receiver<TunnelState>) {
    // The state before start is not news.
    let mut prev = rx.borrow_and_update().clone();
    while rx.changed().await.is_ok() {
        let next = rx.borrow_and_update().clone();
        for ev in status::changes(Some(&prev), &next) {
            tracing::info!(target: USER_LOG_TARGET, "{}", ev.text());
        }
        prev = next;
    }
}
