//! `pra-registry serve`: the HTTP API and the SSH gateway side by side,
//! sharing one store and one shutdown.
//!
//! [`bind`] binds the listeners (so the caller can print the real addresses,
//! e.g. after `--api 127.0.0.1:0`), [`run`] serves them until the shutdown
//! future completes, then stops both in order.

use crate::api::{self, ApiConfig};
use crate::gateway::{self, GatewayConfig};
use crate::store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Default address of the SSH gateway.
pub const DEFAULT_SSH_ADDR: &str = "0.0.0.0:10022";

/// What `serve` listens on.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// SSH gateway address (`--ssh`).
    pub ssh: String,
    /// HTTP API address (`--api`).
    pub api: String,
    /// API tunables.
    pub api_config: ApiConfig,
    /// SSH gateway settings (host key …); `None` serves the API only.
    pub gateway: Option<GatewayConfig>,
    /// Deleting old audit events (`--audit-keep`); `None` keeps them all.
    pub audit_retention: Option<crate::retention::Retention>,
    /// Prometheus metrics address (`--metrics`); `None` serves none.
    pub metrics: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            ssh: DEFAULT_SSH_ADDR.to_string(),
            api: pra_proto::DEFAULT_API_ADDR.to_string(),
            api_config: ApiConfig::default(),
            gateway: None,
            audit_retention: Some(crate::retention::Retention::default()),
            metrics: None,
        }
    }
}

/// The bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// HTTP API.
    pub api: TcpListener,
    /// SSH gateway; `None` when [`ServeOptions::gateway`] is.
    pub ssh: Option<TcpListener>,
    /// Prometheus metrics; `None` when [`ServeOptions::metrics`] is.
    pub metrics: Option<TcpListener>,
}

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {what} address {addr}: {source}")]
pub struct BindError {
    /// `api`, `ssh` or `metrics`.
    pub what: &'static str,
    /// The address as given.
    pub addr: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

async fn bind_one(what: &'static str, addr: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        what,
        addr: addr.to_string(),
        source,
    })
}

/// Bind the listeners named in `opts`.
pub async fn bind(opts: &ServeOptions) -> Result<Listeners, BindError> {
    let api = bind_one("api", &opts.api).await?;
    let ssh = match opts.gateway {
        Some(_) => Some(bind_one("ssh", &opts.ssh).await?),
        None => None,
    };
    let metrics = match &opts.metrics {
        Some(addr) => Some(bind_one("metrics", addr).await?),
        None => None,
    };
    Ok(Listeners { api, ssh, metrics })
}

impl Listeners {
    /// Address the API listens on.
    pub fn api_addr(&self) -> std::io::Result<SocketAddr> {
        self.api.local_addr()
    }

    /// Address the SSH gateway listens on, if there is one.
    pub fn ssh_addr(&self) -> Option<SocketAddr> {
        self.ssh.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Address the metrics listen on, if they do.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Serve until `shutdown` completes, then stop every server and return.
pub async fn run(
    listeners: Listeners,
    store: Arc<Store>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // Cancelled at shutdown; each server waits on a child token.
    let stop = CancellationToken::new();

    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(api::serve(
        listeners.api,
        store.clone(),
        opts.api_config.clone(),
        stop.child_token().cancelled_owned(),
    ));

    // The SSH gateway, next to the API on the same store and shutdown.
    match (listeners.ssh, opts.gateway.clone()) {
        (Some(ssh), Some(config)) => {
            let stop = stop.child_token().cancelled_owned();
            let store = store.clone();
            servers.spawn(async move {
                gateway::run(ssh, store, config, stop)
                    .await
                    .map_err(std::io::Error::other)
            });
        }
        _ => tracing::info!("no SSH gateway configured; serving the API only"),
    }

    // Prometheus metrics on their own listener, on the same shutdown.
    if let Some(metrics) = listeners.metrics {
        servers.spawn(crate::metrics::serve(
            metrics,
            stop.child_token().cancelled_owned(),
        ));
    }

    // Old audit events go in the background, on the same shutdown.
    let retention = opts.audit_retention.clone().map(|r| {
        tokio::spawn(crate::retention::run(
            store.clone(),
            r,
            stop.child_token().cancelled_owned(),
        ))
    });

    // Run until shutdown is asked for or a server ends by itself (an error).
    let mut result = Ok(());
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        Some(ended) = servers.join_next() => {
            result = flatten(ended);
            tracing::error!("a server stopped unexpectedly; shutting down the others");
        }
    }
    stop.cancel();
    if let Some(task) = retention {
        let _ = task.await;
    }
    while let Some(ended) = servers.join_next().await {
        if let Err(e) = flatten(ended)
            && result.is_ok()
        {
            result = Err(e);
        }
    }
    result
}

fn flatten(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    r.map_err(std::io::Error::other)?
}
