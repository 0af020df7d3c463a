//! HTTP protections against a real server on 127.0.0.1:0: 413 before the
//! body is read, a streamed body cut at 64 KiB, malformed JSON, 429 per
//! source, and slow or idle clients disconnected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::{Api, BOUND, parse_response, raw, read_all};
use pra_registry::api::ApiConfig;
use pra_registry::api::limit::RateLimit;
use pra_registry::model::Actor;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn quick() -> ApiConfig {
    ApiConfig {
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..ApiConfig::default()
    }
}

#[tokio::test]
async fn declared_oversized_body_is_413_before_it_is_sent() {
    let api = Api::start().await;
    for path in ["/api/v1/keys", "/api/v1/keys/status", "/api/v1/admin/users"] {
        // Headers only: the 1 MB body is never sent, yet the answer comes.
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        );
        let r = raw(api.addr, req.as_bytes()).await;
        assert_eq!(
            (r.status, r.code()),
            (413, "payload_too_large".to_string()),
            "{path}"
        );
        assert_eq!(r.header("connection"), Some("close"));
    }
    // exactly at the limit is read (and then judged as JSON)
    let body = vec![b' '; 64 * 1024];
    let r = common::request(api.addr, "POST", "/api/v1/keys", None, Some(&body)).await;
    assert_eq!((r.status, r.code()), (400, "bad_json".to_string()));
    api.stop().await;
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_cut() {
    let api = Api::start().await;
    let mut s = TcpStream::connect(api.addr).await.unwrap();
    s.write_all(b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    // 80 chunks of 1 KiB: 80 KiB with no declared length. The server may
    // answer and close before all of it is written; that is fine.
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..80 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let got = read_all(&mut s).await;
    let r = parse_response(&got).expect("an HTTP answer");
    assert_eq!((r.status, r.code()), (413, "payload_too_large".to_string()));
    assert_eq!(api.snapshot().keys, 0);
    api.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_bad_json() {
    let api = Api::start().await;
    let t = api.token("ops");
    for (path, token, body) in [
        ("/api/v1/keys", None, &b"{not json"[..]),
        ("/api/v1/keys", None, b""),
        ("/api/v1/keys", None, b"[1,2,3]"),
        ("/api/v1/keys", None, b"{\"user\": 5}"),
        ("/api/v1/keys", None, b"\xff\xfe\x00"),
        ("/api/v1/keys/status", None, b"null"),
        ("/api/v1/admin/users", Some(t.as_str()), b"{\"name\":"),
        ("/api/v1/admin/rules", Some(t.as_str()), b"{}"),
    ] {
        let r = common::request(api.addr, "POST", path, token, Some(body)).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "bad_json".to_string()),
            "{path} {body:?}: {}",
            r.text()
        );
    }
    assert_eq!(api.snapshot().users, 0);
    api.stop().await;
}

#[tokio::test]
async fn a_private_key_anywhere_in_a_body_is_refused_unread() {
    let api = Api::start().await;
    let pem = common::private_pem(&common::ed25519(4));
    let body = serde_json::json!({"user": "alice", "note": pem});
    let r = api.post("/api/v1/keys", None, &body).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "private_key_refused".to_string())
    );
    for l in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!r.text().contains(l));
    }
    api.stop().await;
}

#[tokio::test]
async fn submission_flood_is_429_per_source() {
    let api = Api::start_with(ApiConfig {
        submit_limit: RateLimit {
            burst: 3,
            refill_every: Duration::from_secs(3600),
            max_sources: 100,
        },
        ..ApiConfig::default()
    })
    .await;
    api.store
        .add_user("alice", &Actor::Cli("t".into()))
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let key = common::random_ed25519();
        let r = api.submit(&key, "alice").await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.code(), "rate_limited");
        }
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    assert_eq!(api.store.list_keys(None).unwrap().len(), 3);
    // other endpoints are not affected
    assert_eq!(api.get("/api/v1/health", None).await.status, 200);
    api.stop().await;
}

#[tokio::test]
async fn slow_loris_headers_are_cut_off() {
    let api = Api::start_with(quick()).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(api.addr).await.unwrap();
    // Half a request line, then one header byte now and then.
    s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if s.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let got = read_all(&mut s).await;
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "the slow request was served"
    );
    assert!(started.elapsed() < BOUND);
    // the server still answers others
    assert_eq!(api.get("/api/v1/health", None).await.status, 200);
    api.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let api = Api::start_with(quick()).await;
    let mut silent = TcpStream::connect(api.addr).await.unwrap();
    let got = read_all(&mut silent).await; // panics if not closed within BOUND
    assert!(!got.starts_with(b"HTTP/1.1 2"));
    // idle after a keep-alive request, too
    let mut s = TcpStream::connect(api.addr).await.unwrap();
    s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_all(&mut s).await;
    assert!(got.starts_with(b"HTTP/1.1 200"));
    api.stop().await;
}

#[tokio::test]
async fn slow_body_gets_408_and_is_closed() {
    let api = Api::start_with(quick()).await;
    let mut s = TcpStream::connect(api.addr).await.unwrap();
    s.write_all(b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"user\":")
        .await
        .unwrap();
    let got = read_all(&mut s).await;
    let r = parse_response(&got).expect("an HTTP answer");
    assert_eq!((r.status, r.code()), (408, "request_timeout".to_string()));
    assert_eq!(r.header("connection"), Some("close"));
    api.stop().await;
}

#[tokio::test]
async fn shutdown_returns_with_a_connection_open() {
    let api = Api::start_with(quick()).await;
    let _held = TcpStream::connect(api.addr).await.unwrap();
    assert_eq!(api.get("/api/v1/health", None).await.status, 200);
    tokio::time::timeout(BOUND, api.stop()).await.unwrap();
}
