//! Prometheus metrics of one `serve` process (`serve --metrics ADDR`).
//!
//! One process-wide set ([`get`]): the gateway and the API count into it
//! with one call at the place where the thing happens, and [`serve`]
//! answers `GET /metrics` with the text exposition format on its own
//! listener (never on the API's address: metrics stay on a private port).
//! Names, labels and what they count are listed in docs/admin-guide.md
//! ("Production"); they are stable.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::net::TcpListener;

/// `outcome` (`accepted`/`refused`) and `reason` of a login.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `accepted` or `refused`.
    pub outcome: String,
    /// `ok`, or the refusal reason of the audit event (`unknown_key`, …).
    pub reason: String,
}

/// One `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: String,
}

/// One `direction` label: `up` (client → target) or `down`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// `up` or `down`.
    pub direction: String,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// Live SSH sessions on this gateway.
    pub sessions: Gauge,
    /// Logins by outcome and reason.
    pub logins: Family<LoginLabels, Counter>,
    /// Forward channels opened to a rule's target.
    pub forwards_opened: Counter,
    /// Forward channels refused, by reason.
    pub forwards_refused: Family<ReasonLabel, Counter>,
    /// Forwarded bytes by direction (counted when a forward ends).
    pub bytes: Family<DirectionLabel, Counter>,
    /// TCP connections admitted before login.
    pub preauth_connections: Counter,
    /// Connections dropped before login, by reason.
    pub preauth_dropped: Family<ReasonLabel, Counter>,
    /// Live sessions ended because their access changed, by reason.
    pub revocations: Family<ReasonLabel, Counter>,
    /// From the gateway seeing a new registry revision to the session ended.
    pub revocation_seconds: Histogram,
    /// Duration of the gateway's store calls.
    pub store_seconds: Histogram,
    /// Audit writes waiting for the database.
    pub audit_queue: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pra");
        let m = Metrics {
            sessions: Gauge::default(),
            logins: Family::default(),
            forwards_opened: Counter::default(),
            forwards_refused: Family::default(),
            bytes: Family::default(),
            preauth_connections: Counter::default(),
            preauth_dropped: Family::default(),
            revocations: Family::default(),
            revocation_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            store_seconds: Histogram::new(exponential_buckets(0.0001, 2.5, 14)),
            audit_queue: Gauge::default(),
            registry: Registry::default(),
        };
        register(&mut registry, &m);
        Metrics { registry, ..m }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Count a login.
    pub fn login(&self, outcome: &str, reason: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count one event of a `reason`-labelled family.
    pub fn reason(family: &Family<ReasonLabel, Counter>, reason: &str) {
        family
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count a finished forward's bytes.
    pub fn forwarded(&self, up: u64, down: u64) {
        for (direction, n) in [("up", up), ("down", down)] {
            self.bytes
                .get_or_create(&DirectionLabel {
                    direction: direction.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Observe a duration in seconds.
    pub fn observe(h: &Histogram, d: Duration) {
        h.observe(d.as_secs_f64());
    }
}

/// Name, help and metric of every family, one a line.
#[rustfmt::skip]
fn register(r: &mut Registry, m: &Metrics) {
    r.register("build", "Version of this pra-registry", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
    r.register("sessions", "Live SSH sessions on this gateway", m.sessions.clone());
    r.register("logins", "Logins by outcome and reason", m.logins.clone());
    r.register("forwards_opened", "Forward channels opened to a rule's target", m.forwards_opened.clone());
    r.register("forwards_refused", "Forward channels refused, by reason", m.forwards_refused.clone());
    r.register("forwarded_bytes", "Forwarded bytes by direction (up: client to target), counted when a forward ends", m.bytes.clone());
    r.register("preauth_connections", "TCP connections admitted before login", m.preauth_connections.clone());
    r.register("preauth_dropped", "Connections dropped before login, by reason", m.preauth_dropped.clone());
    r.register("revocations", "Live sessions ended because their access changed, by reason", m.revocations.clone());
    r.register("revocation_apply_seconds", "From the gateway seeing a new registry revision to the session ended", m.revocation_seconds.clone());
    r.register("store_call_seconds", "Duration of the gateway's store (database) calls", m.store_seconds.clone());
    r.register("audit_queue_depth", "Audit writes waiting for the database", m.audit_queue.clone());
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Answer `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::header;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                get().encode(),
            )
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_every_metric_and_counts() {
        let m = Metrics::new();
        m.login("refused", "unknown_key");
        m.forwarded(3, 5);
        let text = m.encode();
        for name in [
            "pra_build_info{version=",
            "pra_sessions ",
            "pra_logins_total{outcome=\"refused\",reason=\"unknown_key\"} 1",
            "pra_forwarded_bytes_total{direction=\"up\"} 3",
            "pra_forwarded_bytes_total{direction=\"down\"} 5",
            "pra_store_call_seconds_bucket",
            "pra_audit_queue_depth ",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
