//! The registry's HTTP API (axum on hyper, HTTP/1.1).
//!
//! # Layout
//! - [`public`]: `GET /api/v1/health`, `POST /api/v1/keys`, `POST /api/v1/keys/status`.
//! - [`admin`]: `/api/v1/admin/…` behind a bearer token.
//! - [`extract`]: extractors whose refusals are JSON API errors.
//! - [`limit`]: per-source rate limiting of the public endpoints.
//! - [`admission`]: per-source cap of open connections.
//! - [`proxy`]: the client's address (behind a trusted reverse proxy, from
//!   `X-Forwarded-For`).
//! - [`error`]: [`error::ApiFailure`], every error answer.
//!
//! The admin web page ([`crate::web`]) is nested under `/admin`.
//!
//! Protections, outermost first: at most [`ApiConfig::max_connections`]
//! connections, and at most [`ApiConfig::max_connections_per_source`] from
//! one source (IPv4 address or IPv6 /64; more are closed at once); hyper's header read timeout (a client that does not send
//! its headers in time is disconnected, idle keep-alive connections too);
//! a whole-request deadline covering body and handler (`408`, connection
//! closed); `Content-Length` over [`MAX_BODY`] is answered `413` before any
//! of the body is read, and a streamed body is cut at [`MAX_BODY`] (`413`);
//! per-source rate limits on the public `POST`s (`429`).
//!
//! [`serve`] takes an already-bound listener and a shutdown future.

pub mod admin;
pub mod admission;
pub mod error;
pub mod extract;
/// The per-source limits, at their old path (tests name them here).
pub use crate::rate as limit;
pub mod proxy;
pub mod public;
pub mod tls;

use crate::rate::{RateLimit, RateLimiter};
use crate::store::Store;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiFailure;
use hyper_util::rt::{TokioIo, TokioTimer};
use pra_proto::api::ApiErrorCode;
use pra_proto::sanitize::sanitize;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Largest request body, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Tunables of the API server. `Default` is what `serve` uses.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// A client must send a request's complete headers within this time
    /// (also bounds idle keep-alive connections).
    pub header_read_timeout: Duration,
    /// A request (body and handling) must complete within this time.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// On shutdown, open connections get this long to finish.
    pub shutdown_grace: Duration,
    /// Rate limit of `POST /api/v1/keys` per source.
    pub submit_limit: RateLimit,
    /// Rate limit of `POST /api/v1/keys/status` per source.
    pub status_limit: RateLimit,
    /// The admin web page under `/admin` (sessions, sign-in limit).
    pub web: crate::web::WebConfig,
    /// Connections one source (IPv4 address, IPv6 /64) may hold open at
    /// once; more are closed at once. Trusted proxies are exempt.
    pub max_connections_per_source: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client
    /// (`serve --trusted-proxy`); from anyone else the header is ignored.
    pub trusted_proxies: proxy::TrustedProxies,
    /// HTTPS with these files (`serve --tls-cert/--tls-key`); `None` is
    /// plain HTTP.
    pub tls: Option<Arc<tls::Reloading>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(5),
            submit_limit: RateLimit::SUBMIT,
            status_limit: RateLimit::STATUS,
            web: crate::web::WebConfig::default(),
            max_connections_per_source: 32,
            trusted_proxies: proxy::TrustedProxies::default(),
            tls: None,
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    /// The registry's records.
    pub store: Arc<Store>,
    submit_limiter: Arc<RateLimiter>,
    status_limiter: Arc<RateLimiter>,
}

impl AppState {
    /// State over a store, with the configured rate limits.
    pub fn new(store: Arc<Store>, config: &ApiConfig) -> AppState {
        AppState {
            store,
            submit_limiter: Arc::new(RateLimiter::new(config.submit_limit)),
            status_limiter: Arc::new(RateLimiter::new(config.status_limit)),
        }
    }
}

/// The complete router, with every protection but the connection-level
/// ones (those are in [`serve`]).
pub fn router(store: Arc<Store>, config: &ApiConfig) -> Router {
    let web = crate::web::router(store.clone(), &config.web);
    let app = AppState::new(store, config);
    Router::new()
        .route("/api/v1/health", get(public::health))
        .route(
            "/api/v1/keys",
            post(public::submit).layer(middleware::from_fn_with_state(app.clone(), limit_submit)),
        )
        .route(
            "/api/v1/keys/status",
            post(public::status).layer(middleware::from_fn_with_state(app.clone(), limit_status)),
        )
        .nest("/api/v1/admin", admin::routes())
        .nest(crate::web::PREFIX, web)
        .fallback(|| async { ApiFailure::no_route() })
        .method_not_allowed_fallback(|| async {
            ApiFailure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ApiErrorCode::NotFound,
                "this endpoint does not answer that method",
            )
        })
        .with_state(app)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(content_length_limit))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            deadline_and_log,
        ))
}

fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        // Without connection info every request shares one bucket: fail closed.
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn rate_limited() -> Response {
    ApiFailure::new(
        StatusCode::TOO_MANY_REQUESTS,
        ApiErrorCode::RateLimited,
        "too many requests from this address; wait a minute and try again",
    )
    .into_response()
}

async fn limit_submit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !app.submit_limiter.allow(peer_ip(&req), Instant::now()) {
        tracing::warn!(peer = %peer_ip(&req), "key submission rate limited");
        return rate_limited();
    }
    next.run(req).await
}

async fn limit_status(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !app.status_limiter.allow(peer_ip(&req), Instant::now()) {
        return rate_limited();
    }
    next.run(req).await
}

/// `413` on a declared length over the limit, before reading any of it.
async fn content_length_limit(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiFailure::too_large(MAX_BODY).into_response();
    }
    next.run(req).await
}

/// The whole-request deadline (`408`, connection closed) and one log line
/// per request.
async fn deadline_and_log(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = sanitize(req.uri().path(), 200);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let started = Instant::now();
    let resp = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiFailure::new(
            StatusCode::REQUEST_TIMEOUT,
            ApiErrorCode::RequestTimeout,
            format!(
                "the request was not received within {} s",
                limit.as_secs_f32()
            ),
        )
        .closing()
        .into_response(),
    };
    tracing::info!(
        %peer,
        %method,
        %path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "api request"
    );
    resp
}

/// Serve the API on an already-bound listener until `shutdown` completes;
/// then stop accepting, let open connections finish (up to
/// [`ApiConfig::shutdown_grace`]) and return.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let router = router(store, &config);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let admission = admission::Admission::new(config.max_connections_per_source);
    // Cancelled once the listener is closed; each connection waits on a
    // child token and then finishes gracefully.
    let stop = CancellationToken::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%e, "api accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // One source may not hold every slot: over its cap, close at once.
        let source_slot = if config.trusted_proxies.contains(peer.ip()) {
            None
        } else {
            match admission.admit(peer.ip(), Instant::now()) {
                Some(slot) => Some(slot),
                None => {
                    drop(stream);
                    continue;
                }
            }
        };
        while conns.try_join_next().is_some() {}
        let router = router.clone();
        let config = config.clone();
        let stop = stop.child_token();
        let _ = stream.set_nodelay(true);
        let tls = config.tls.as_ref().map(|t| t.acceptor());
        conns.spawn(async move {
            match tls {
                None => serve_connection(stream, peer, router, &config, stop, false).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(config.header_read_timeout, handshake).await {
                        Ok(Ok(tls)) => {
                            serve_connection(tls, peer, router, &config, stop, true).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, %e, "api TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "api TLS handshake timed out"),
                    }
                }
            }
            drop(source_slot);
            drop(permit);
        });
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = conns.len(),
            "api connections still open at shutdown; closing them"
        );
        conns.shutdown().await;
    }
    Ok(())
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    config: &ApiConfig,
    stop: CancellationToken,
    https: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let trusted = config.trusted_proxies.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // Behind a trusted proxy, everything downstream (rate limits,
            // sign-in limit, audit source, log) sees the forwarded client.
            let client = trusted.client(peer, req.headers());
            req.extensions_mut().insert(ConnectInfo(client));
            if https {
                // Our own TLS: the cookies become `__Host-…; Secure`.
                req.headers_mut().insert(
                    "x-forwarded-proto",
                    axum::http::HeaderValue::from_static("https"),
                );
            }
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, %e, "api connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
