//! The `pra` binary against the real registry API and gateway: a submitted
//! key that waits for approval is refused with `ERR(10205)` and a non-zero
//! exit; once approved, `pra connect --json` forwards and stops on SIGTERM
//! with exit 0; `pra doctor` passes; `pra logs export` holds both logs and
//! no secret.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_key_then_approved_connect_doctor_and_log_bundle() {
    let (reg, port, gw, dir, home) = alice_intranet(PASS).await;
    let submitted = ok(pra(&home, PASS).args(["key", "submit", "--registry", &reg.url()]));
    assert!(submitted.contains("pending"), "{submitted}");
    server_set(&home, PASS, &gw);

    // Pending: a clear code, one line, non-zero exit, nothing listening.
    let (success, out, err) = run(pra(&home, PASS).arg("connect"));
    assert!(!success, "connect with a pending key succeeded: {out}");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(
        line.starts_with("ERR(10205) the forwarding rules could not be fetched (ERR(10203)): "),
        "{line}"
    );
    assert!(
        line.contains("waiting for the administrator's approval"),
        "{line}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // Approved: connect forwards; SIGTERM stops it with exit 0.
    let fp = reg.fingerprint_of("alice");
    reg.approve(&fp);
    let mut child = connect_json(&home, PASS);
    wait_forwarding(&mut child, "intranet", Duration::from_secs(30));
    assert_eq!(
        echo_roundtrip(port, b"via the gateway").await,
        b"via the gateway"
    );
    // The shell's builtin kill: no procps needed.
    let _ = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status();
    let status =
        tokio::task::spawn_blocking(move || child.wait_with_output().map(|o| (o.status, o.stderr)))
            .await
            .unwrap()
            .unwrap();
    assert!(
        status.0.success(),
        "exit after SIGTERM: {:?} {}",
        status.0,
        String::from_utf8_lossy(&status.1)
    );

    // Doctor: every check passes (the connect above ended, the port is free).
    let doctor = ok(pra(&home, PASS).arg("doctor"));
    assert!(
        doctor.contains("OK   key approved: the gateway accepted user alice"),
        "{doctor}"
    );
    assert!(doctor.contains("doctor: all 9 checks passed"), "{doctor}");

    // The bundle: both logs, no passphrase, no key material.
    let zip_path = dir.path().join("bundle.zip");
    ok(pra(&home, PASS).args(["logs", "export", zip_path.to_str().unwrap()]));
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut texts = Vec::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        texts.push((e.name().to_string(), b));
    }
    let names: Vec<&str> = texts.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"System.log") && names.contains(&"User.log"),
        "{names:?}"
    );
    let user_log = String::from_utf8_lossy(&texts.iter().find(|(n, _)| n == "User.log").unwrap().1)
        .into_owned();
    assert!(
        user_log.contains("ERR(10205)"),
        "the refused connect is in User.log: {user_log}"
    );
    assert!(user_log.contains("connected to"), "{user_log}");
    let key_file = std::fs::read_to_string(home.join("pra_ed25519")).unwrap();
    let secrets: Vec<&str> = std::iter::once(PASS)
        .chain(key_file.lines().filter(|l| !l.starts_with("-----")))
        .collect();
    let raw = std::fs::read(&zip_path).unwrap();
    for (name, bytes) in texts
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .chain([("zip", raw.as_slice())])
    {
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret found in {name}"
            );
        }
    }
    gw.stop().await;
}

/// A CA (its PEM) and a leaf for 127.0.0.1 signed by it (cert PEM, key PEM).
fn ca_and_leaf() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "PRA e2e test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// `pra key submit --registry https://…` against `pra-registry serve
/// --tls-cert/--tls-key` with a certificate from a test CA: without `--ca`
/// (public CAs) and with another CA it is refused with `ERR(10256)` naming
/// the registry and `--ca`, and nothing reaches the registry; with the
/// right CA the key is pending, and the CA is remembered with the URL.
#[test]
fn key_submit_over_https_checks_the_registry_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ca, cert, key) = ca_and_leaf();
    let (other_ca, _, _) = ca_and_leaf();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (ca, other_ca) = (file("ca.pem", &ca), file("other-ca.pem", &other_ca));
    let (cert, key) = (file("api.crt", &cert), file("api.key", &key));
    let registry = |args: &[&str]| {
        let o = std::process::Command::new(registry_bin())
            .arg("--data")
            .arg(&data)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    registry(&["user", "add", "alice"]);
    let mut serve = std::process::Command::new(registry_bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--api", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(serve.stdout.take().unwrap());
    let api = loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "serve ended before it listened");
        if let Some(a) = line.trim().strip_prefix("api listening on ") {
            break a.to_string();
        }
    };
    let url = format!("https://{api}");

    let home = dir.path().join("home");
    let (ok, _, err) = run(pra(&home, PASS).args(["keygen", "--user", "alice"]));
    assert!(ok, "{err}");
    let submit = |extra: &[&std::ffi::OsStr]| {
        run(pra(&home, PASS)
            .args(["key", "submit", "--registry", &url])
            .args(extra))
    };
    let refused = |(ok, out, err): (bool, String, String), against: &str| {
        assert!(!ok, "{out}");
        let line = err.trim_end();
        assert_eq!(line.lines().count(), 1, "{err}");
        assert!(
            line.starts_with(&format!(
                "ERR(10256) the registry at {url} presented an HTTPS certificate that does not verify against {against} (invalid peer certificate: "
            )),
            "{line}"
        );
        assert!(line.contains("--ca FILE"), "{line}");
    };
    refused(submit(&[]), "the well-known public CAs");
    refused(
        submit(&["--ca".as_ref(), other_ca.as_os_str()]),
        &format!("the CA in {}", other_ca.display()),
    );
    assert!(
        !registry(&["key", "list"]).contains("alice"),
        "a refused submission reached the registry"
    );

    let (ok, out, err) = submit(&["--ca".as_ref(), ca.as_os_str()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(": pending"), "{out}");
    assert!(
        registry(&["key", "list", "--status", "pending"]).contains("alice"),
        "the key is not pending in the registry"
    );
    // The CA is remembered with the URL: the next submit needs no --ca.
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains(&*ca.to_string_lossy()), "{config}");
    let (ok, out, err) = submit(&[]);
    assert!(ok, "{out}{err}");
    let _ = serve.kill();
    let _ = serve.wait();
}
