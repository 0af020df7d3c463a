//! `pra key submit` against small in-test HTTP responders on 127.0.0.1:0:
//! the request shape and proof are checked, and every kind of answer
//! (pending, approved, revoked, refused, garbage, silence, nothing) gives
//! its status or its one error line.
use crate::common;
use crate::common::{TestEnv, read};
use pra_proto::api::{KeyStatus, KeyStatusReply, KeySubmission};
use pra_proto::proof::{self, Action};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One HTTP request as received.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> Request {
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("content-length");
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    Request {
        method,
        path,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// Serve one request with `answer(request) -> raw HTTP response bytes`.
fn serve_once<F>(answer: F) -> (String, JoinHandle<Request>)
where
    F: FnOnce(&Request) -> Vec<u8> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let req = read_request(&s);
        let resp = answer(&req);
        s.write_all(&resp).unwrap();
        s.flush().unwrap();
        req
    });
    (url, h)
}

fn http(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A registry that answers one submission with `status` for its key.
fn answer_status(http_status: &'static str, status: KeyStatus) -> (String, JoinHandle<Request>) {
    serve_once(move |req| {
        let sub: KeySubmission = serde_json::from_str(&req.body).unwrap();
        http(http_status, "application/json", &reply(&sub, status))
    })
}

fn reply(sub: &KeySubmission, status: KeyStatus) -> String {
    let key = ssh_key::PublicKey::from_openssh(&sub.public_key).unwrap();
    serde_json::to_string(&KeyStatusReply {
        fingerprint: pra_proto::fingerprint(&key),
        user: sub.user.clone(),
        status,
    })
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn exported(env: &TestEnv) -> pra_proto::handover::Handover {
    pra_proto::handover::Handover::parse(env.run(&["key", "export"]).ok()).unwrap()
}

#[test]
fn submit_sends_a_verifiable_submission_and_prints_pending() {
    let env = TestEnv::with_key("alice");
    let handover = exported(&env);
    let (url, server) = answer_status("202 Accepted", KeyStatus::Pending);
    let out = env.run(&["key", "submit", "--registry", &format!("{url}/pra/")]);
    let req = server.join().unwrap();

    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/pra/api/v1/keys");
    assert!(
        req.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let sub: KeySubmission = serde_json::from_str(&req.body).unwrap();
    assert_eq!(sub.user, "alice");
    assert_eq!(sub.public_key, handover.public_key);
    assert_eq!(Some(&sub.device), handover.device.as_ref());
    let key = ssh_key::PublicKey::from_openssh(&sub.public_key).unwrap();
    assert_eq!(
        proof::verify(&key, Action::Submit, "alice", &sub.proof, now()),
        Ok(())
    );
    assert!(proof::verify(&key, Action::Status, "alice", &sub.proof, now()).is_err());
    assert!(!req.body.contains("PRIVATE"), "private key material sent");

    let fp = pra_proto::fingerprint(&key);
    let text = out.ok();
    assert!(
        text.starts_with(&format!("submitted {fp} for alice to {url}/pra: pending\n")),
        "{text}"
    );
    assert!(text.contains(&format!("ask your administrator to approve the key {fp}")));
    assert_eq!(
        read(&env.config_file()),
        format!("[registry]\nurl = \"{url}/pra\"\n")
    );
}

#[test]
fn approved_and_revoked_answers() {
    let env = TestEnv::with_key("alice");
    let (url, server) = answer_status("200 OK", KeyStatus::Approved);
    let out = env.run(&["key", "submit", "--registry", &url]);
    server.join().unwrap();
    assert!(
        out.ok().contains(": approved\napproved: you can connect"),
        "{out:?}"
    );

    let (url, server) = answer_status("200 OK", KeyStatus::Revoked);
    let out = env.run(&["key", "submit", "--registry", &url]);
    server.join().unwrap();
    out.err("ERR(10206) the registry says the key SHA256:");
    assert!(out.stdout.contains(": revoked\n"), "{out:?}");
}

#[test]
fn refusals_show_the_api_code() {
    let env = TestEnv::with_key("alice");
    for (status, body, want) in [
        (
            "409 Conflict",
            r#"{"code":"conflict","message":"key registered to another user"}"#,
            "ERR(10212) registry refused: conflict — key registered to another user (HTTP 409): the key or name belongs to another user",
        ),
        (
            "400 Bad Request",
            r#"{"code":"invalid_proof","message":"the proof is stale\u001b[2J"}"#,
            "ERR(10212) registry refused: invalid_proof — the proof is stale\\u{1b}[2J (HTTP 400): check that this PC's clock is right",
        ),
        (
            "429 Too Many Requests",
            r#"{"code":"rate_limited","message":"slow down"}"#,
            "ERR(10212) registry refused: rate_limited — slow down (HTTP 429): wait a minute",
        ),
    ] {
        let (url, server) = serve_once(move |_| http(status, "application/json", body));
        env.run(&["key", "submit", "--registry", &url]).err(want);
        server.join().unwrap();
    }
    assert!(
        !env.config_file().exists(),
        "a refused submit wrote the config"
    );
}

#[test]
fn garbage_answers_are_err_10211() {
    let env = TestEnv::with_key("alice");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            http("200 OK", "text/html", "<html><body>Welcome to nginx!</body></html>"),
            "HTTP 200 with a body that is not a key status (starts with `<html><body>Welcome to nginx!",
        ),
        (http("200 OK", "application/json", r#"{"status":"ok"}"#), "HTTP 200 with a body"),
        (http("404 Not Found", "text/plain", "404 page not found"), "HTTP 404 (starts with `404 page not found`)"),
        (http("502 Bad Gateway", "text/html", ""), "HTTP 502 (empty body)"),
        (
            b"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.example/\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "HTTP 301 redirect to https://elsewhere.example/",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), "the answer is not HTTP"),
    ];
    for (raw, want) in cases {
        let (url, server) = serve_once(move |_| raw);
        env.run(&["key", "submit", "--registry", &url])
            .err(&format!("ERR(10211) {url} is not a PRA registry: {want}"));
        server.join().unwrap();
    }
    // Right shape, but about another key.
    let (url, server) = serve_once(|_| {
        http(
            "202 Accepted",
            "application/json",
            r#"{"fingerprint":"SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10","user":"alice","status":"pending"}"#,
        )
    });
    env.run(&["key", "submit", "--registry", &url])
        .err(&format!(
            "ERR(10211) {url} is not a PRA registry: it answered about another key"
        ));
    server.join().unwrap();
    assert!(!env.config_file().exists());
}

#[test]
fn a_registry_that_does_not_answer_is_err_10210() {
    let env = TestEnv::with_key("alice");

    let port = common::closed_port();
    env.run(&[
        "key",
        "submit",
        "--registry",
        &format!("http://127.0.0.1:{port}"),
    ])
    .err(&format!(
        "ERR(10210) cannot reach the registry at http://127.0.0.1:{port}: "
    ));

    // Accepts, reads, never answers: the client gives up by itself.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let silent = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink); // until the client hangs up
    });
    let started = Instant::now();
    env.run(&["key", "submit", "--registry", &url])
        .err(&format!(
            "ERR(10210) the registry at {url} did not answer within 10 s: check the registry URL"
        ));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    silent.join().unwrap();
    assert!(!env.config_file().exists());
}

#[test]
fn bad_url_or_broken_config_sends_nothing() {
    let env = TestEnv::with_key("alice");
    for bad in ["registry.example.com", "ftp://x", "https://"] {
        env.run(&["key", "submit", "--registry", bad])
            .err(&format!("ERR(10213) registry URL `{bad}`"));
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::fs::write(env.config_file(), "[registy]\nurl = \"x\"\n").unwrap();
    env.run(&["key", "submit", "--registry", &url])
        .err(&format!(
            "ERR(10100) {}: line 1: unknown key `registy`",
            env.config_file().display()
        ));
    assert_eq!(
        l.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "something was sent"
    );
    assert_eq!(read(&env.config_file()), "[registy]\nurl = \"x\"\n");
}

#[test]
fn an_unusable_ca_file_sends_nothing() {
    let env = TestEnv::with_key("alice");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let https = format!("https://{}", l.local_addr().unwrap());
    let missing = env.path("missing.pem");
    let not_pem = env.path("key.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let http = format!("http://{}", l.local_addr().unwrap());
    for (url, ca, want) in [
        (
            &https,
            &missing,
            format!("ERR(10257) CA file {}: cannot be read (", missing.display()),
        ),
        (
            &https,
            &not_pem,
            format!(
                "ERR(10257) CA file {}: holds no PEM certificate: ",
                not_pem.display()
            ),
        ),
        (
            &http,
            &not_pem,
            format!(
                "ERR(10257) a CA file was given for {http}, which is not https://: use the https:// URL"
            ),
        ),
    ] {
        env.run(&[
            "key",
            "submit",
            "--registry",
            url,
            "--ca",
            ca.to_str().unwrap(),
        ])
        .err(&want);
    }
    assert_eq!(
        l.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "something was sent"
    );
}

#[test]
fn submit_remembers_the_registry_url() {
    let env = TestEnv::with_key("alice");
    env.run(&["key", "submit"])
        .err("ERR(10213) no registry URL is known yet: pass --registry URL");
    for first in [true, false] {
        let (url, server) = answer_status("202 Accepted", KeyStatus::Pending);
        // First time with --registry; the second submit reuses the saved URL
        // (rewritten to the new responder's address in between).
        let out = if first {
            env.run(&["key", "submit", "--registry", &url])
        } else {
            std::fs::write(env.config_file(), format!("[registry]\nurl = \"{url}\"\n")).unwrap();
            env.run(&["key", "submit"])
        };
        let req = server.join().unwrap();
        assert_eq!(req.path, "/api/v1/keys");
        assert!(out.ok().contains(": pending"), "{out:?}");
    }
}

#[test]
fn a_typo_in_the_account_name_is_err_10226_after_the_submission() {
    // The registry answers the submission like any other (no account
    // probing); the status request signed with the key tells the truth.
    let env = TestEnv::with_key("alcie");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = l.accept().unwrap();
            let req = read_request(&s);
            let resp = if req.path == "/api/v1/keys" {
                let sub: KeySubmission = serde_json::from_str(&req.body).unwrap();
                http(
                    "202 Accepted",
                    "application/json",
                    &reply(&sub, KeyStatus::Pending),
                )
            } else {
                http(
                    "404 Not Found",
                    "application/json",
                    r#"{"code":"no_such_account","message":"the registry has no account named alcie"}"#,
                )
            };
            s.write_all(&resp).unwrap();
            seen.push(req);
        }
        seen
    });
    let out = env.run(&["key", "submit", "--registry", &url]);
    let seen = server.join().unwrap();
    assert_eq!(seen[1].path, "/api/v1/keys/status");
    let q: pra_proto::api::KeyStatusQuery = serde_json::from_str(&seen[1].body).unwrap();
    let key = ssh_key::PublicKey::from_openssh(&q.public_key).unwrap();
    assert_eq!(
        proof::verify(&key, Action::Status, "alcie", &q.proof, now()),
        Ok(())
    );
    let line = out.err("ERR(10226) the registry has no account named alcie");
    assert!(line.contains("pra keygen --user NAME --force"), "{line}");
}
