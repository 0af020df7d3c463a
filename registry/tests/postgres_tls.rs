//! PostgreSQL over TLS: a real server started by the test with `ssl=on` and a
//! certificate made by the test CA. `verify-full` with that CA and
//! `require` connect encrypted (checked in `pg_stat_ssl`) and store what
//! they are asked to; `verify-full` with another CA is refused in one line
//! naming the database, without the password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pg.rs"]
#[allow(dead_code)]
mod pg;

use common::TestEnv;
use pra_registry::model::Actor;
use pra_registry::store::Store;
use pra_registry::store::postgres::PostgresStore;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA: its certificate PEM, and what signs with it.
fn ca(name: &str) -> (String, rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), cert, key)
}

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
    let (ca_pem, ca_cert, ca_key) = ca("PRA test database CA");
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let pg = pg::Postgres::start_tls(&leaf.pem(), &leaf_key.serialize_pem());

    let env = TestEnv::new();
    let right = env.file("right-ca.pem", &ca_pem);
    let (other_pem, _, _) = ca("Some other CA");
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
        let store = PostgresStore::open(&full).unwrap();
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
        let store = PostgresStore::open(&with("sslmode=require".into())).unwrap();
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
            env.file("leaf.pem", leaf.pem()).display()
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
