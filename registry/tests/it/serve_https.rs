//! `serve --tls-cert FILE --tls-key FILE`: the API over HTTPS with a
//! certificate from a CA made in the test (checked by curl against that
//! CA), `__Host-…; Secure` cookies on the admin page, and a certificate
//! replaced on disk served from the next connection on, without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use pra_testkit::tls::Ca;
use rcgen::KeyPair;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A CA (its PEM) and a leaf for localhost/127.0.0.1 (cert PEM, key PEM).
fn ca_and_leaf() -> (String, String, String) {
    pra_testkit::tls::ca_and_leaf("PRA test CA")
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

    let (mut child, api) = serve_tls(&env, &cert, &key);

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

/// An RSA key made by `ssh-keygen` (openssh-client, see scripts/deps.sh;
/// rcgen with ring signs with RSA keys but cannot make them): the same key
/// as PKCS#8 (`BEGIN PRIVATE KEY`) and as PKCS#1 (`BEGIN RSA PRIVATE KEY`,
/// what older tools and many CAs' guides write).
fn rsa_key_pems(dir: &Path) -> (String, String) {
    let path = dir.join("rsa-api.key");
    let keygen = |args: &[&str]| {
        crate::common::ssh_keygen(args, &path);
        std::fs::read_to_string(&path).unwrap()
    };
    let pkcs8 = keygen(&[
        "-q", "-t", "rsa", "-b", "2048", "-N", "", "-m", "PKCS8", "-f",
    ]);
    let pkcs1 = keygen(&["-q", "-p", "-P", "", "-N", "", "-m", "PEM", "-f"]);
    assert!(
        pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{pkcs8:.40}"
    );
    assert!(
        pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{pkcs1:.40}"
    );
    (pkcs8, pkcs1)
}

/// `serve` with the API over HTTPS: the child and the API's address.
fn serve_tls(env: &TestEnv, cert: &Path, key: &Path) -> (std::process::Child, SocketAddr) {
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let extra = ["--tls-cert", cert, "--tls-key", key];
    let (child, seen) = env.serve(&extra, Stdio::piped(), &["api"]);
    (child, seen.addr("api"))
}

#[test]
fn api_serves_https_with_an_rsa_key_in_pkcs8_and_pkcs1_form() {
    let env = TestEnv::new();
    let (pkcs8, pkcs1) = rsa_key_pems(env.dir.path());
    // the test CA (ECDSA) signs a leaf whose key is the RSA one
    let ca = Ca::new("PRA test CA");
    let leaf_key = KeyPair::from_pem(&pkcs8).unwrap();
    assert_eq!(leaf_key.algorithm(), &rcgen::PKCS_RSA_SHA256);
    let leaf = ca.leaf_with(&["localhost", "127.0.0.1"], leaf_key);
    let ca_file = env.file("ca.pem", &ca.pem);
    let cert = env.file("api.crt", &leaf.pem);

    for (form, pem) in [("PKCS#8", &pkcs8), ("PKCS#1", &pkcs1)] {
        let key = env.file("api.key", pem);
        let (mut child, api) = serve_tls(&env, &cert, &key);
        let out = curl(api, &ca_file, "/api/v1/health");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with("HTTP/1.1 200"),
            "{form}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
}
