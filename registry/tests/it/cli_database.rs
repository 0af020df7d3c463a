//! The database at start: unusable files are refused with one line and
//! left untouched; a PostgreSQL registry that cannot be reached (or whose TLS
//! settings cannot be used) fails in one line without the password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;

#[test]
fn unusable_database_files_are_refused_and_left_untouched() {
    let garbage = b"PK\x03\x04 definitely not sqlite ".repeat(200);
    let damaged_header = {
        // a real registry database whose header was overwritten
        let env = TestEnv::new();
        env.ok(&["user", "add", "alice"]);
        let mut bytes = std::fs::read(env.data().join("registry.db")).unwrap();
        bytes[..16].copy_from_slice(b"garbage garbage!");
        bytes
    };
    for (what, contents) in [
        ("empty file", Vec::new()),
        ("not a database", garbage),
        ("damaged header", damaged_header),
    ] {
        let env = TestEnv::new();
        std::fs::create_dir_all(env.data()).unwrap();
        let db = env.data().join("registry.db");
        std::fs::write(&db, &contents).unwrap();
        for args in [
            vec!["user", "list"],
            vec!["user", "add", "alice"],
            vec!["serve", "--api", "127.0.0.1:0"],
        ] {
            let r = env.run(&args);
            let line = r.error_line();
            assert!(
                line.starts_with("ERR(10300) database error: "),
                "{what}: {line}"
            );
            assert!(line.contains("registry.db"), "{what}: {line}");
            assert!(line.contains("left untouched"), "{what}: {line}");
            assert!(
                line.contains("restore registry.db from a backup"),
                "{what}: {line}"
            );
            assert_eq!(
                std::fs::read(&db).unwrap(),
                contents,
                "{what}: the file was changed"
            );
            assert!(!env.data().join("registry.db-wal").exists() || what != "empty file");
        }
    }
}

#[test]
fn postgres_failures_are_one_honest_line_without_the_password() {
    let env = TestEnv::new();
    // A "server" on loopback that accepts TCP but never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://admin:s3cret@127.0.0.1:{port}/pra?connect_timeout=1");
    for args in [
        vec!["--database", url.as_str(), "user", "list"],
        vec!["--database", url.as_str(), "serve", "--api", "127.0.0.1:0"],
    ] {
        let r = env.run(&args);
        assert!(!r.success());
        let line = r.error_line();
        assert!(
            line.starts_with(&format!(
                "ERR(10300) database error: cannot reach PostgreSQL at admin@127.0.0.1:{port}/pra: "
            )),
            "{line}"
        );
        assert!(
            line.contains("check --database / PRA_DATABASE_URL"),
            "{line}"
        );
        assert!(!r.stdout().contains("s3cret") && !r.stderr().contains("s3cret"));
    }
    // TLS settings that cannot be used: refused before connecting, never
    // downgraded to plain text.
    let r = env
        .command()
        .env(
            "PRA_DATABASE_URL",
            "postgres://admin:s3cret@127.0.0.1:1/pra?sslmode=verify-full&sslrootcert=/no/such/ca.pem",
        )
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(!r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.starts_with("ERR(10300) "), "{stderr}");
    assert!(stderr.contains("sslrootcert=/no/such/ca.pem"), "{stderr}");
    assert!(!stderr.contains("s3cret"));
    // --help does not show the env value either
    let help = env
        .command()
        .env("PRA_DATABASE_URL", "postgres://admin:s3cret@db.corp/pra")
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains("s3cret"));
    // nothing was created in --data
    assert!(!env.data().join("registry.db").exists());
    drop(silent);
}

#[test]
fn the_data_folder_is_private() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.data()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = std::fs::metadata(env.data().join("registry.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
