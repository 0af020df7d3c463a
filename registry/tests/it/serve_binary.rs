//! `pra-registry serve` as a real process: prints its API address, answers,
//! sees changes the CLI makes meanwhile, stops on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::{TestEnv, request};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Served {
    child: Child,
    api: SocketAddr,
}

fn serve(env: &TestEnv, extra: &[&str]) -> Served {
    let (child, seen) = env.serve(extra, Stdio::piped(), &["api"]);
    Served {
        api: seen.addr("api"),
        child,
    }
}

fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < bound,
            "the registry did not stop within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn serves_the_api_and_sees_cli_changes_while_running() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let mut s = serve(&env, &[]);
    let r = request(s.api, "GET", "/api/v1/health", None, None).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));

    // The CLI writes to the same database while serve holds it open.
    let token = env
        .ok(&["token", "create", "--name", "ops"])
        .trim()
        .to_string();
    env.ok(&["user", "add", "bob"]);
    env.rule_add("bob", "web", "8080", "intranet:80");
    let r = request(s.api, "GET", "/api/v1/admin/users", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let r = request(
        s.api,
        "GET",
        "/api/v1/admin/rules?user=bob",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.json()["rules"][0]["target_host"], "intranet");

    // …and the API's changes are visible to the CLI.
    let r = request(
        s.api,
        "POST",
        "/api/v1/admin/users/alice/disable",
        Some(&token),
        Some(b"{}"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        env.json(&["user", "list", "--json"])["users"][0]["enabled"],
        false
    );
    assert!(env.ok(&["audit"]).contains("token:ops"));

    sigterm(&s.child);
    let status = wait_exit(&mut s.child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("shutting down"), "{err}");
    assert!(!err.contains(&token), "the token was logged");
}

#[test]
fn a_busy_api_address_is_one_error_line() {
    let env = TestEnv::new();
    let held = common::busy_port();
    let addr = held.local_addr().unwrap().to_string();
    let r = env.run(&["serve", "--api", &addr]);
    assert!(!r.success());
    // serve logs as it starts; the failure itself is one ERR line
    let err = r.stderr();
    let errs: Vec<&str> = err.lines().filter(|l| l.starts_with("ERR(")).collect();
    assert_eq!(errs.len(), 1, "{err}");
    let line = errs[0];
    assert!(
        line.starts_with(&format!("ERR(10305) cannot listen on api address {addr}: ")),
        "{line}"
    );
    assert!(line.ends_with(
        "choose another address with --api / --ssh, or stop the program that holds the port"
    ));
}
