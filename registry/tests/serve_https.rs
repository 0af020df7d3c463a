//! `serve --tls-cert FILE --tls-key FILE`: the API over HTTPS with a
//! certificate from a CA made in the test (checked by curl against that
//! CA), `__Host-…; Secure` cookies on the admin page, and a certificate
//! replaced on disk served from the next connection on, without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestEnv;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A CA (its PEM) and a leaf for localhost/127.0.0.1 (cert PEM, key PEM).
fn ca_and_leaf() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "PRA test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// Replace `path` in one step (as certbot's symlink switch does).
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn curl(api: SocketAddr, ca: &Path, path: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", api.port()))
        .arg(format!("https://localhost:{}{path}", api.port()))
        .output()
        .unwrap()
}

#[test]
fn api_serves_https_with_secure_cookies_and_reloads_a_replaced_certificate() {
    let env = TestEnv::new();
    let (ca1, cert1, key1) = ca_and_leaf();
    let (ca2, cert2, key2) = ca_and_leaf();
    let ca1_file = env.file("ca1.pem", ca1);
    let ca2_file = env.file("ca2.pem", ca2);
    let cert = env.file("api.crt", cert1);
    let key = env.file("api.key", key1);

    // a key that does not belong to the certificate: refused at start
    let other_key = env.file("other.key", key2.clone());
    let bad = env.run(&[
        "serve",
        "--api",
        "127.0.0.1:0",
        "--ssh",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        other_key.to_str().unwrap(),
    ]);
    assert!(!bad.0.status.success(), "{}", bad.stdout());
    assert!(bad.stderr().contains("ERR(10330)"), "{}", bad.stderr());

    let mut child = env
        .command()
        .args(["serve", "--api", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let api: SocketAddr = line
        .trim()
        .strip_prefix("api listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();

    // health over HTTPS, the certificate checked against the test CA
    let out = curl(api, &ca1_file, "/api/v1/health");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // plain HTTP on the HTTPS port gets no answer
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{}/api/v1/health", api.port()))
        .output()
        .unwrap();
    assert!(!plain.status.success());

    // the sign-in form's cookie is a __Host- Secure one
    let out = curl(api, &ca1_file, "/admin/login");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let cookie = text
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {text}"));
    assert!(
        cookie.contains("__host-pra_login=") && cookie.contains("; secure"),
        "{cookie}"
    );

    // the certificate is renewed on disk (another CA here, so the switch
    // shows): the next connection gets the new one, no restart
    replace(&key, &key2);
    replace(&cert, &cert2);
    let out = curl(api, &ca2_file, "/api/v1/health");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old = curl(api, &ca1_file, "/api/v1/health");
    assert!(!old.status.success(), "the old certificate is still served");
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve restarted or died"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
