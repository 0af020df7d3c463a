//! The registry database goes away under a running gateway (PostgreSQL
//! stopped and started again under it):
//! - new logins are refused, with a log line that says why (the audit log
//!   is what cannot be written);
//! - live sessions are kept while the outage is shorter than the re-check
//!   window, and go on after the database returns (the pool and the change
//!   feed reconnect by themselves);
//! - when the gateway cannot re-check for the whole window, it ends them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::fleet;
use crate::common::pg;

use crate::common::gateway::{
    add_key_to, add_rule_to, admin, echo_server, echo_through, forward, pattern,
};
use crate::common::random_ed25519;
use fleet::{closed_within, eventually, try_login};
use pra_proto::api::KeyStatus;
use pra_registry::gateway::{self, GatewayConfig, hostkey};
use pra_registry::store::Store;
use pra_registry::store::postgres::PostgresOptions;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wide enough that a loaded CI machine's slow PostgreSQL stop and start
/// (seconds each) and the feed's 2 s re-check fit inside it with room: the
/// window counts from the last confirmation, which can precede the outage.
const WINDOW: Duration = Duration::from_secs(12);

/// One line per step with the seconds since the outage test began, so a
/// failure shows where the time went (printed with the failure's output).
fn step(t: Instant, what: &str) {
    eprintln!("[{:>6.2} s] {what}", t.elapsed().as_secs_f64());
}

/// Everything the gateway logs, for the assertions on log lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber that writes into `logs`, for this test's runtime only: the
/// other tests of this binary neither see it nor fill it.
fn subscriber(logs: &Logs) -> tracing::Dispatch {
    let writer = logs.clone();
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_env_filter("pra_registry=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn an_outage_refuses_logins_keeps_sessions_for_the_window_then_ends_them() {
    let logs = Logs::default();
    let dispatch = subscriber(&logs);
    let on_thread = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // The runtime's threads log to this test's subscriber for as
            // long as they live.
            std::mem::forget(tracing::dispatcher::set_default(&on_thread));
        })
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || rt.block_on(outage(&logs)));
}

async fn outage(logs: &Logs) {
    if pg::skipped() {
        return;
    }
    let _alone = crate::common::alone().await;
    let t_test = Instant::now();
    let pg = pg::Postgres::start();
    let url = pg.fresh_db();
    let store = Arc::new(
        Store::postgres_with(
            &url,
            PostgresOptions {
                connect_timeout: Duration::from_secs(2),
                call_timeout: Duration::from_secs(3),
                ..PostgresOptions::default()
            },
        )
        .unwrap(),
    );
    let data = tempfile::tempdir().unwrap();
    let host_key = hostkey::load_or_create(data.path()).unwrap();
    let fp_host = host_key.fingerprint();
    let mut cfg = GatewayConfig::new(host_key);
    cfg.gateway_id = Some("gw-outage".into());
    cfg.recheck_window = WINDOW;
    cfg.auth_rejection_time = Duration::from_millis(100);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gw = tokio::spawn(gateway::run(listener, store.clone(), cfg, async move {
        let _ = stop_rx.await;
    }));

    let echo = echo_server().await;
    let key = random_ed25519();
    add_key_to(store.as_ref(), "alice", &key, KeyStatus::Approved);
    add_rule_to(
        store.as_ref(),
        "alice",
        "echo",
        15000,
        "127.0.0.1",
        echo.port(),
    );
    let login = || try_login(addr, &fp_host, "alice", &key);
    let c1 = login()
        .await
        .unwrap_or_else(|_| panic!("alice could not log in"));
    let data_1 = pattern(64 * 1024, 1);
    let f = forward(&c1, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    let (mut fr, mut fw) = tokio::io::split(f);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roundtrip = async |data: &[u8]| {
        fw.write_all(data).await.unwrap();
        let mut back = vec![0u8; data.len()];
        tokio::time::timeout(Duration::from_secs(5), fr.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, data);
    };
    roundtrip(&data_1).await;
    step(t_test, "alice logged in, forward carries data");

    // --- a short outage --------------------------------------------------------
    let t0 = Instant::now();
    pg.stop();
    step(t_test, "PostgreSQL stopped");
    assert!(
        login().await.is_err(),
        "a login must be refused while the registry is down"
    );
    let line = eventually(Duration::from_secs(5), "the refusal is logged", || {
        logs.text()
            .lines()
            .find(|l| l.contains("login refused: the registry database cannot be read"))
            .map(str::to_owned)
    })
    .await;
    step(t_test, "login refused and logged");
    assert!(
        line.contains("registry_unreachable") && line.contains("alice"),
        "{line}"
    );
    assert!(!logs.text().contains(pg::PASSWORD));
    let mut feed = store.subscribe();
    eventually(
        Duration::from_secs(10),
        "the feed reports the outage",
        || feed.borrow().error.clone(),
    )
    .await;
    step(t_test, "feed reports the outage");
    // The session and its forward go on (forwarding needs no database).
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(t0.elapsed())).await;
    assert!(!c1.is_closed());
    roundtrip(&pattern(4096, 2)).await;
    pg.restart();
    let back_after = t0.elapsed();
    step(t_test, "PostgreSQL started again");
    // Past the window, counted from the outage's start: still there.
    tokio::time::sleep((WINDOW + Duration::from_secs(2)).saturating_sub(t0.elapsed())).await;
    assert!(
        !c1.is_closed(),
        "a session must survive an outage shorter than the window ({back_after:?})"
    );
    roundtrip(&pattern(4096, 3)).await;
    step(t_test, "session survived the short outage");
    // Logins work again: the pool made new connections by itself.
    let c2 = eventually_login(&login).await;
    let f2 = forward(&c2, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    assert_eq!(echo_through(f2, pattern(1000, 4)).await, pattern(1000, 4));
    // The feed is back too: a change made now is heard.
    let rev = store.revision().unwrap();
    eventually(Duration::from_secs(10), "the feed recovers", || {
        let c = feed.borrow_and_update().clone();
        (c.error.is_none() && c.revision >= rev).then_some(())
    })
    .await;
    store.add_user("bob", &admin()).unwrap();
    eventually(
        Duration::from_secs(5),
        "the feed hears a new change",
        || (feed.borrow().revision > rev).then_some(()),
    )
    .await;
    let live = eventually(Duration::from_secs(5), "both sessions listed", || {
        let live = store.list_live_sessions().unwrap();
        (live.len() == 2).then_some(live)
    })
    .await;
    assert!(live.iter().all(|s| s.gateway == "gw-outage"));

    // --- an outage longer than the window -----------------------------------------
    let t1 = Instant::now();
    pg.stop();
    step(t_test, "PostgreSQL stopped for longer than the window");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!c1.is_closed() && !c2.is_closed(), "kept at first");
    let took1 = closed_within(&c1, t1, WINDOW + Duration::from_secs(5)).await;
    let took2 = closed_within(&c2, t1, WINDOW + Duration::from_secs(5)).await;
    eprintln!(
        "outage longer than the {WINDOW:?} window: sessions ended after {took1:?} / {took2:?}"
    );
    let text = logs.text();
    assert!(
        text.contains("live sessions ended (new logins are refused until it answers)"),
        "{text}"
    );
    pg.restart();
    let c3 = eventually_login(&login).await;
    assert!(!c3.is_closed());

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), gw)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The sessions the outage ended are not listed as live.
    let live = store.list_live_sessions().unwrap();
    assert!(live.is_empty(), "{live:?}");
    eprintln!("db outage test took {:?}", t_test.elapsed());
}

async fn eventually_login<F, Fut>(login: &F) -> common::gateway::Client
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<common::gateway::Client, common::gateway::Client>>,
{
    let started = Instant::now();
    loop {
        if let Ok(c) = login().await {
            return c;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "logins do not work again after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
