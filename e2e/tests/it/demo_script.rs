//! `scripts/demo.sh` as a new user runs it, with the usual ports 10022 and
//! 10088 taken by another service: it picks free ports by itself, prints
//! the admin page's address and a working sign-in token, and forwards
//! through the tunnel; Ctrl-C stops it and the gateway.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::{Lines, forwarding};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn http_get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn demo_picks_free_ports_and_prints_the_admin_page_with_a_token() {
    // "Another service" on the usual ports (if something else already has
    // them, they are just as taken).
    let _a = std::net::TcpListener::bind("127.0.0.1:10022");
    let _b = std::net::TcpListener::bind("127.0.0.1:10088");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let bin_dir = pra_e2e::pra_bin().parent().unwrap().to_path_buf();
    assert_eq!(pra_e2e::registry_bin().parent(), Some(bin_dir.as_path()));
    let mut child = Command::new("bash")
        .arg("scripts/demo.sh")
        .arg("--no-deps")
        .current_dir(root)
        .env_remove("PRA_DEMO_SSH")
        .env_remove("PRA_DEMO_API")
        // The forward's local port comes from this process's rule ports:
        // the script's own pick (18088 or the next free one) lies in their
        // range, and a test's tunnel that had picked it too, not yet
        // listening, would lose it to the demo (its echo would go to the
        // demo's web page).
        .env("PRA_DEMO_LOCAL", pra_e2e::rule_port().to_string())
        .env_remove("PRA_HOME")
        .env("PRA_DEMO_BIN", &bin_dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id();
    let signal = move |sig: &str| {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -{sig} -{pgid} 2>/dev/null")])
            .status();
    };
    // Whatever happens below, nothing of the demo outlives the test.
    struct Reap<F: Fn(&str)>(F);
    impl<F: Fn(&str)> Drop for Reap<F> {
        fn drop(&mut self) {
            (self.0)("KILL");
        }
    }
    let _reap = Reap(signal);
    let mut lines = Lines::of(&mut child);
    if !lines.until(Duration::from_secs(600), |seen| {
        forwarding(seen, "intranet")
    }) {
        signal("KILL");
        panic!("the demo did not connect: {:#?}", lines.seen);
    }
    let seen = &lines.seen;
    let find = |prefix: &str| {
        seen.iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {seen:#?}"))
            .to_string()
    };
    let ssh = find("ssh listening on ");
    assert!(!ssh.starts_with("127.0.0.1:10022 "), "{ssh}");
    let admin = find("admin page: http://");
    let api = admin.strip_suffix("/admin").unwrap().to_string();
    assert_ne!(api, "127.0.0.1:10088");
    let token = find("sign-in token: ");
    assert!(token.starts_with("pra_"), "{token}");
    let local = seen
        .iter()
        .find(|l| l.starts_with("intranet"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();

    // Through the tunnel to the API; the token opens the admin API; the
    // admin page answers.
    let health = http_get(&local, "/api/v1/health", None);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let users = http_get(&api, "/api/v1/admin/users", Some(&token));
    assert!(users.starts_with("HTTP/1.1 200"), "{users}");
    assert!(users.contains("\"demo\""), "{users}");
    let page = http_get(&api, "/admin", None);
    assert!(
        page.starts_with("HTTP/1.1 200") || page.starts_with("HTTP/1.1 303"),
        "{page}"
    );

    // Ctrl-C: the client stops, the script stops the gateway.
    signal("INT");
    let limit = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > limit {
            signal("KILL");
            panic!("the demo did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen = lines.finish();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("demo stopped; files kept in ")),
        "{status:?} {seen:#?}"
    );
    assert!(TcpStream::connect(&api).is_err(), "the registry still runs");
}
