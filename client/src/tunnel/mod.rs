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
//! - `window`: a channel's receive window, growing with the link (8 MiB
//!   up to 32 MiB; all channels' growth capped per process).
//! - `supervisor`: keepalive loss → reconnect with backoff and jitter;
//!   listeners stay bound; rules refreshed on every connect.
//! - [`status`]: [`TunnelState`], the [`Event`]s between two states, their
//!   text and JSON lines.
//! - [`portowner`]: which program holds a busy local port (Linux `/proc`).
//! - [`setup`]: [`TunnelConfig`] and [`Timing`], built from the home for
//!   `pra connect` and the app.
//!
//! The submodules import each other, never this file: it only starts the
//! tunnel and re-exports what the CLI and the app use.

use crate::error::{ClientError, ClientResult};
use crate::logging::USER_LOG_TARGET;
use pra_proto::codes::Code;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod forward;
pub mod portowner;
pub mod session;
pub mod setup;
pub mod status;
mod supervisor;
mod window;

pub use setup::{Timing, TunnelConfig};
pub use status::{ErrorInfo, Event, ForwardState, Phase, RuleState, TunnelState};

/// Stops a running tunnel: orderly disconnect, listeners closed.
#[derive(Clone, Debug)]
pub struct CancelHandle(CancellationToken);

impl CancelHandle {
    /// Ask the tunnel to stop (idempotent).
    pub fn cancel(&self) {
        self.0.cancel();
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
        let cancel = CancellationToken::new();
        // The logger starts from the state before anything happened: a
        // task polled late must still log the first lines.
        let logger = tokio::spawn(log_user_lines(hub.subscribe(), state.borrow().clone()));
        let task = tokio::spawn(supervisor::run(config, hub, cancel.clone()));
        Tunnel {
            state,
            cancel: CancelHandle(cancel),
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

/// Write every user-visible change to User.log (the same lines the CLI prints).
async fn log_user_lines(mut rx: watch::Receiver<TunnelState>, initial: TunnelState) {
    // The state before start is not news.
    let mut prev = initial;
    while rx.changed().await.is_ok() {
        let next = rx.borrow_and_update().clone();
        for ev in status::changes(Some(&prev), &next) {
            // The supervisor writes failover lines itself (see
            // `supervisor::announce_failover`).
            if let Event::Error(e) = &ev
                && e.code == Code::GatewayFailover
            {
                continue;
            }
            tracing::info!(target: USER_LOG_TARGET, "{}", ev.text());
        }
        prev = next;
    }
}
