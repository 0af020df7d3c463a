//! PostgreSQL over TLS: a real server started by the test with `ssl=on` and a
//! certificate made by the test CA. `verify-full` with that CA and
//! `require` connect encrypted (checked in `pg_stat_ssl`) and store what
//! they are asked to; `verify-full` with another CA is refused in one line
//! naming the database, without the password. Also, without a server: how
//! URLs and their `sslmode` / `sslrootcert` are read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::pg;

use crate::common::TestEnv;
use pra_registry::model::Actor;
use pra_registry::store::Store;
use pra_registry::store::pg_tls::{Mode, connector};
use pra_registry::store::postgres::{describe_server, parse_url};
use pra_testkit::tls::Ca;
use rcgen::{CertificateParams, DnType, KeyPair};
use tokio_postgres::config::SslMode;

/// Encrypted connections of pra-registry now open on the server, and all of
/// them: (encrypted, all).
fn encrypted(pg: &pg::Postgres) -> (u32, u32) {
    let out = pg.psql(
        "postgres",
        "SELECT count(*) FILTER (WHERE s.ssl) || ' ' || count(*) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'pra-registry'",
    );
    let (a, b) = out.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn verify_full_with_the_right_ca_and_require_connect_encrypted_and_a_wrong_ca_is_refused() {
    if pg::skipped() {
        return;
    }
    let ca = Ca::new("PRA test database CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let pg = pg::Postgres::start_tls(&leaf.pem, &leaf.key_pem());

    let env = TestEnv::new();
    let right = env.file("right-ca.pem", &ca.pem);
    let other_pem = Ca::new("Some other CA").pem;
    let wrong = env.file("wrong-ca.pem", &other_pem);
    let plain = pg.fresh_db();
    let db = plain.rsplit_once('/').unwrap().1.split('?').next().unwrap();
    let with = |params: String| plain.replace("sslmode=disable", &params);

    // verify-full with the CA that signed the server's certificate: a real
    // store operation, over an encrypted connection.
    let full = with(format!(
        "sslmode=verify-full&sslrootcert={}",
        right.display()
    ));
    {
        let store = Store::postgres(&full).unwrap();
        // The change feed's LISTEN connection is encrypted too.
        let mut feed = store.subscribe();
        store.add_user("alice", &Actor::Cli("root".into())).unwrap();
        let users = store.list_users().unwrap();
        assert_eq!(users.len(), 1);
        let revision = store.revision().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let seen = rt.block_on(async {
            let wanted = feed.wait_for(|c| c.revision >= revision && c.error.is_none());
            tokio::time::timeout(std::time::Duration::from_secs(10), wanted)
                .await
                .is_ok_and(|r| r.is_ok())
        });
        assert!(seen, "the feed did not see revision {revision}");
        let (enc, all) = encrypted(&pg);
        assert!(
            all > 0 && enc == all,
            "{enc} of {all} connections encrypted"
        );
    }
    // The same through the admin CLI.
    env.ok(&["--database", &full, "user", "add", "bob"]);
    let list = env.ok(&["--database", &full, "user", "list"]);
    assert!(list.contains("alice") && list.contains("bob"), "{list}");

    // require: encrypted, the certificate not checked (no sslrootcert).
    {
        let store = Store::postgres(&with("sslmode=require".into())).unwrap();
        assert_eq!(store.list_users().unwrap().len(), 2);
        let (enc, all) = encrypted(&pg);
        assert!(
            all > 0 && enc == all,
            "{enc} of {all} connections encrypted"
        );
    }

    // verify-full with a CA that did not sign it: refused, one line naming
    // the database and the reason, no password, nothing stored.
    for params in [
        format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
        format!("sslmode=verify-ca&sslrootcert={}", wrong.display()),
        // A server certificate is not a root: the leaf alone does not do.
        format!(
            "sslmode=verify-full&sslrootcert={}",
            env.file("leaf.pem", &leaf.pem).display()
        ),
    ] {
        let url = with(params.clone());
        let r = env.run(&["--database", &url, "user", "add", "mallory"]);
        let line = r.error_line();
        eprintln!("{params}: {line}");
        assert!(
            line.starts_with(&format!(
                "ERR(10300) database error: cannot reach PostgreSQL at pra@127.0.0.1:{}/{db}: ",
                pg.port
            )),
            "{params}: {line}"
        );
        assert!(line.contains("certificate"), "{params}: {line}");
        assert!(line.contains("sslrootcert"), "{params}: {line}");
        assert!(!line.contains(pg::PASSWORD), "{line}");
        assert!(!r.stdout().contains(pg::PASSWORD));
    }
    let list = env.ok(&["--database", &full, "user", "list"]);
    assert!(!list.contains("mallory"), "{list}");
}

#[test]
fn a_self_signed_certificate_is_refused_under_verify_full_and_verify_ca_skips_the_name() {
    if pg::skipped() {
        return;
    }
    // Self-signed, for another name than the host of the URL.
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["db.internal".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "db.internal");
    let cert = p.self_signed(&key).unwrap();
    let pg = pg::Postgres::start_tls(&cert.pem(), &key.serialize_pem());
    let env = TestEnv::new();
    let own = env.file("self-signed.pem", cert.pem());
    let plain = pg.fresh_db();
    let with = |params: String| plain.replace("sslmode=disable", &params);

    for (params, why) in [
        // The built-in (Mozilla) roots do not know it.
        ("sslmode=verify-full".to_owned(), "UnknownIssuer"),
        (
            "sslmode=verify-full&sslrootcert=system".to_owned(),
            "UnknownIssuer",
        ),
        // Trusted, but it does not name 127.0.0.1.
        (
            format!("sslmode=verify-full&sslrootcert={}", own.display()),
            "not valid for name \"127.0.0.1\"",
        ),
    ] {
        let r = env.run(&["--database", &with(params.clone()), "user", "list"]);
        let line = r.error_line();
        eprintln!("{params}: {line}");
        assert!(line.starts_with("ERR(10300) "), "{params}: {line}");
        assert!(
            line.contains(&format!("PostgreSQL at pra@127.0.0.1:{}/", pg.port)),
            "{params}: {line}"
        );
        assert!(line.contains(why), "{params}: {line}");
    }
    // verify-ca checks the chain only: accepted; require takes it as it is.
    let ca_only = with(format!("sslmode=verify-ca&sslrootcert={}", own.display()));
    env.ok(&["--database", &ca_only, "user", "add", "carol"]);
    let list = env.ok(&[
        "--database",
        &with("sslmode=require".into()),
        "user",
        "list",
    ]);
    assert!(list.contains("carol"), "{list}");
}

#[test]
fn postgres_urls_are_checked_without_connecting_and_never_echo_the_password() {
    let (c, _) = parse_url("postgres://pra:hunter2@db.corp:6432/registry").unwrap();
    assert_eq!(describe_server(&c), "pra@db.corp:6432/registry");
    assert_eq!(c.get_application_name(), Some("pra-registry"));
    assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
    let (c, _) = parse_url("postgresql://pra@[::1]/reg?sslmode=disable").unwrap();
    assert_eq!(describe_server(&c), "pra@[::1]:5432/reg");
    assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    for (url, mode) in [
        ("postgres://pra@h/db?sslmode=prefer", SslMode::Prefer),
        ("postgres://pra@h/db?sslmode=allow", SslMode::Prefer),
        (
            "postgres://pra:hunter2@h/db?sslmode=require",
            SslMode::Require,
        ),
        (
            "postgres://pra:hunter2@h/db?sslmode=verify-full",
            SslMode::Require,
        ),
        (
            "postgres://pra:hunter2@h/db?connect_timeout=3&sslmode=verify-ca&sslrootcert=system",
            SslMode::Require,
        ),
    ] {
        let (c, _) = parse_url(url).unwrap();
        assert_eq!(c.get_ssl_mode(), mode, "{url}");
    }
    for (url, word) in [
        ("postgres://pra:hunter2@h/db?bogus=1", "not a valid"),
        (
            "postgres://pra:hunter2@h/db?sslmode=maybe",
            "sslmode=maybe is not one of",
        ),
        (
            "postgres://pra:hunter2@h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch.pem",
            "sslrootcert=/no/such.pem",
        ),
        ("postgres://:hunter2@h/db", "no user"),
        ("postgres://pra:hunter2@/db", "no host"),
    ] {
        let e = parse_url(url).err().unwrap().to_string();
        assert!(e.contains(word), "{url}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[test]
fn sslmodes_and_roots() {
    for (name, mode) in [
        ("disable", Mode::Disable),
        ("allow", Mode::Prefer),
        ("prefer", Mode::Prefer),
        ("require", Mode::Require),
        ("verify-ca", Mode::VerifyCa),
        ("verify-full", Mode::VerifyFull),
    ] {
        assert_eq!(Mode::parse(name), Some(mode));
    }
    assert_eq!(Mode::parse("bogus"), None);
    assert!(connector(Mode::VerifyFull, None).is_ok());
    assert!(connector(Mode::VerifyFull, Some("system")).is_ok());
    let e = connector(Mode::VerifyFull, Some("/nonexistent/ca.pem"))
        .err()
        .unwrap();
    assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.pem");
    std::fs::write(&f, "nothing here").unwrap();
    let e = connector(Mode::VerifyCa, f.to_str()).err().unwrap();
    assert!(e.contains("holds no PEM certificate"), "{e}");
}
