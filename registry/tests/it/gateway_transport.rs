//! The transport: modern algorithms only, strict key exchange, ed25519 host
//! key, no compression (even when OpenSSH asks for it); the stock OpenSSH
//! client (9.2) connects, and clients limited to legacy algorithms do not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use russh::client;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_client_gets_hybrid_kex_strict_kex_and_aead() {
    let gw = Gateway::start().await;
    let names = Arc::new(Mutex::new(None));
    let c = client::connect(
        Arc::new(client::Config::default()),
        gw.addr,
        Pinned::recording(gw.fingerprint(), names.clone()),
    )
    .await
    .unwrap();
    let n = names.lock().unwrap().clone().expect("key exchange done");
    assert_eq!(n.kex.as_ref(), "mlkem768x25519-sha256");
    assert!(
        n.strict_kex(),
        "strict key exchange (Terrapin) not negotiated"
    );
    assert_eq!(n.key, ssh_key::Algorithm::Ed25519);
    let cipher: &str = n.cipher.as_ref();
    assert!(
        [
            "aes256-gcm@openssh.com",
            "aes128-gcm@openssh.com",
            "chacha20-poly1305@openssh.com"
        ]
        .contains(&cipher),
        "{cipher}"
    );
    drop(c);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_connects_with_modern_algorithms_and_legacy_ones_are_refused() {
    let (gw, key) = Gateway::with_user("alice").await;
    let ssh = OpenSsh::new(&gw, "alice", &key);
    let limit = Duration::from_secs(30);

    // stock settings, asking for compression too
    let mut cmd = ssh.command_logging("DEBUG1");
    cmd.args(["-o", "Compression=yes"])
        .arg(ssh.host())
        .arg(pra_proto::RULES_COMMAND);
    let out = run_blocking(cmd, Vec::new(), limit).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("kex: algorithm: curve25519-sha256"), "{err}");
    assert!(
        err.contains("kex: host key algorithm: ssh-ed25519"),
        "{err}"
    );
    assert!(err.contains("compression: none"), "{err}");
    assert!(!err.contains("compression: zlib"), "{err}");
    assert!(
        err.contains("cipher: chacha20-poly1305@openssh.com") || err.contains("-gcm@openssh.com"),
        "{err}"
    );

    // clients that only speak legacy algorithms get nothing
    let legacy: [(&str, &str); 5] = [
        (
            "KexAlgorithms",
            "diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,diffie-hellman-group-exchange-sha1",
        ),
        ("Ciphers", "aes128-cbc,aes256-cbc,3des-cbc"),
        ("Ciphers", "aes128-ctr,aes256-ctr"),
        ("MACs", "hmac-sha1,hmac-sha1-etm@openssh.com"),
        (
            "HostKeyAlgorithms",
            "ssh-rsa,rsa-sha2-512,ecdsa-sha2-nistp256",
        ),
    ];
    for (option, value) in legacy {
        let mut cmd = ssh.command_logging("INFO");
        if option == "MACs" {
            // MACs only matter with a non-AEAD cipher
            cmd.args(["-o", "Ciphers=aes128-ctr"]);
        }
        cmd.arg("-o")
            .arg(format!("{option}={value}"))
            .arg(ssh.host())
            .arg(pra_proto::RULES_COMMAND);
        let out = run_blocking(cmd, Vec::new(), limit).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{option}={value} connected");
        assert!(
            ["no matching", "Connection closed", "Connection reset"]
                .iter()
                .any(|m| err.contains(m)),
            "{option}={value}: {err}"
        );
        assert!(!err.contains("Authenticated"), "{option}={value}: {err}");
        assert!(out.stdout.is_empty());
    }
    gw.stop().await;
}

/// The key exchange's X25519 and ML-KEM-768 come from aws-lc-rs (a PRA
/// patch to russh, vendor/russh/src/kex/backend.rs): the same public keys
/// and shared secrets as the portable code they replaced, both ways, over
/// many rounds; low-order points and wrong lengths refused by both. (The
/// OpenSSH test above checks curve25519-sha256 against a third
/// implementation on the wire.)
#[test]
fn kex_primitives_match_the_portable_code() {
    if let Err(e) = russh::kex::backend_self_check(500) {
        panic!("{e}");
    }
}

/// Ed25519 signatures (the gateway's host key at every login, the client's
/// public-key login) come from aws-lc-rs (a PRA patch to russh,
/// vendor/russh/src/ed25519_backend.rs): the same bytes as ssh-key's
/// ed25519-dalek signatures over many keys and message lengths, and they
/// verify. (The OpenSSH test above checks a host key signature against a
/// third implementation on the wire.)
#[test]
fn ed25519_signatures_match_ssh_key() {
    if let Err(e) = russh::ed25519_self_check(500) {
        panic!("{e}");
    }
}

/// The buffer in front of each session's socket reads (a PRA patch to
/// russh, vendor/russh/src/read_buffer.rs) gives back the same bytes for a
/// stream that arrives in pieces of every size, read in every size around
/// its capacity, and passes EOF on.
#[test]
fn the_session_read_buffer_returns_the_stream_unchanged() {
    if let Err(e) = russh::read_buffer_self_check() {
        panic!("{e}");
    }
}
