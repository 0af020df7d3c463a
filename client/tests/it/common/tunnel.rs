//! Driving the tunnel library in tests: config for a loopback gateway and
//! waiting for a state.
#![allow(dead_code)]

use pra_client::config::GatewayAddr;
use pra_client::tunnel::{Timing, TunnelConfig, TunnelState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Timers for tests: quick keepalives and retries.
pub(crate) fn quick_timing() -> Timing {
    Timing {
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 2,
        connect_timeout: Duration::from_secs(5),
        ssh_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
        port_retry: Duration::from_millis(200),
        wait_for_tunnel: Duration::from_secs(10),
    }
}

/// A tunnel config for a gateway on `addr`.
pub(crate) fn config(
    addr: SocketAddr,
    pin: Option<&str>,
    user: &str,
    key: russh::keys::PrivateKey,
) -> TunnelConfig {
    TunnelConfig {
        gateway: GatewayAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        alternates: Vec::new(),
        host_key: pin.map(str::to_string),
        pin_store: None,
        user: user.to_string(),
        key: Arc::new(key),
        explain_refusal: None,
        timing: quick_timing(),
    }
}

/// Wait until `pred` holds for the state (panics with the last state after
/// `within`).
pub(crate) async fn wait_for(
    rx: &mut watch::Receiver<TunnelState>,
    within: Duration,
    what: &str,
    pred: impl Fn(&TunnelState) -> bool,
) -> TunnelState {
    let r = tokio::time::timeout(within, async {
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                let s = rx.borrow().clone();
                assert!(pred(&s), "tunnel ended before {what}: {s:#?}");
                return s;
            }
        }
    })
    .await;
    match r {
        Ok(s) => s,
        Err(_) => panic!("not {what} within {within:?}: {:#?}", rx.borrow().clone()),
    }
}
