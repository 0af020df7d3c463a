//! HTTP client of the registry API: submit a key (`POST /api/v1/keys`) and
//! ask for its status (`POST /api/v1/keys/status`).
//!
//! Every failure is one of three codes: `ERR(10210)` the registry cannot be
//! reached (refused, DNS, timeout), `ERR(10211)` it answered something that
//! is not the PRA API (HTML, non-JSON, wrong shape, redirect),
//! `ERR(10212)` it refused the request (its stable API code is shown).
//! An `https://` registry's certificate is checked against the well-known
//! public CAs (Mozilla's list, as `webpki-roots` ships it: the same on
//! Windows, Linux and macOS), or against the one CA of a `--ca FILE`; a
//! certificate that does not verify is `ERR(10256)`, a CA file that cannot
//! be used `ERR(10257)`.
//! Blocking (ureq); async callers use `spawn_blocking`.

use crate::error::{ClientError, ClientResult};
use pra_proto::api::{
    ApiError, ApiErrorCode, KeyStatus, KeyStatusQuery, KeyStatusReply, KeySubmission,
};
use pra_proto::codes::Code;
use pra_proto::proof::{self, Action};
use pra_proto::sanitize::sanitize;
use ssh_key::PrivateKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// TCP connect timeout: an unreachable registry fails fast.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout: a registry that accepts and stays silent fails
/// after this long.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read.
const MAX_BODY: u64 = 64 * 1024;

/// A client for one registry URL.
#[derive(Debug, Clone)]
pub(crate) struct RegistryClient {
    base: String,
    timeout: Duration,
    /// The `--ca` file and its certificates; `None`: the public CAs.
    ca: Option<(PathBuf, Arc<Vec<Certificate<'static>>>)>,
}

impl RegistryClient {
    /// Check the URL (`http(s)://host[:port][/prefix]`); `ERR(10213)` if unusable.
    pub(crate) fn new(url: &str) -> ClientResult<RegistryClient> {
        let url = url.trim();
        crate::config::check_registry_url(url)
            .map_err(|e| ClientError::new(Code::RegistryUrlInvalid, format!("registry URL {e}")))?;
        Ok(RegistryClient {
            base: url.trim_end_matches('/').to_string(),
            timeout: REQUEST_TIMEOUT,
            ca: None,
        })
    }

    /// Check the registry's certificate against the CA in `file` (PEM)
    /// instead of the public CAs; `ERR(10257)` when the file cannot be used.
    pub(crate) fn with_ca(mut self, file: Option<&Path>) -> ClientResult<RegistryClient> {
        let Some(file) = file else { return Ok(self) };
        let unusable = |what: String| {
            ClientError::new(
                Code::RegistryCaUnusable,
                format!("CA file {}: {what}", file.display()),
            )
        };
        if !self.base.starts_with("https://") {
            return Err(ClientError::with_fix(
                Code::RegistryCaUnusable,
                format!(
                    "a CA file was given for {}, which is not https://",
                    self.base
                ),
                "use the https:// URL your administrator gave you, or leave out --ca",
            ));
        }
        let pem = std::fs::read(file).map_err(|e| unusable(format!("cannot be read ({e})")))?;
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(format!("is not a PEM file ({e})")))?;
        if certs.is_empty() {
            return Err(unusable("holds no PEM certificate".into()));
        }
        self.ca = Some((file.to_path_buf(), Arc::new(certs)));
        Ok(self)
    }

    /// The base URL (no trailing slash).
    pub(crate) fn url(&self) -> &str {
        &self.base
    }

    /// `POST /api/v1/keys`.
    pub(crate) fn submit(&self, body: &KeySubmission) -> ClientResult<KeyStatusReply> {
        let fp = fingerprint_of_line(&body.public_key);
        self.post("/api/v1/keys", body, fp.as_deref())
    }

    /// `POST /api/v1/keys/status`.
    pub(crate) fn status(&self, body: &KeyStatusQuery) -> ClientResult<KeyStatusReply> {
        let fp = fingerprint_of_line(&body.public_key);
        self.post("/api/v1/keys/status", body, fp.as_deref())
    }

    fn post<T: serde::Serialize>(
        &self,
        path: &str,
        body: &T,
        expect_fp: Option<&str>,
    ) -> ClientResult<KeyStatusReply> {
        let url = format!("{}{path}", self.base);
        let mut config = ureq::Agent::config_builder();
        if let Some((_, roots)) = &self.ca {
            config = config.tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::Specific(roots.clone()))
                    .build(),
            );
        }
        let agent: ureq::Agent = config
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT.min(self.timeout)))
            .timeout_global(Some(self.timeout))
            .user_agent(concat!("pra/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut resp = agent
            .post(&url)
            .header("Accept", "application/json")
            .send_json(body)
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|s| sanitize(s, 120));
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) | ureq::Error::Io(_) => self.transport_error(e),
                _ => self.garbage(format!("HTTP {status} with an unreadable body ({e})")),
            })?;
        interpret(&self.base, status, location.as_deref(), &text, expect_fp)
    }

    fn transport_error(&self, e: ureq::Error) -> ClientError {
        if let Some(reason) = certificate_failure(&e) {
            let against = match &self.ca {
                Some((file, _)) => format!("the CA in {}", file.display()),
                None => "the well-known public CAs".to_string(),
            };
            return ClientError::new(
                Code::RegistryCertUntrusted,
                format!(
                    "the registry at {} presented an HTTPS certificate that does not verify against {against} ({})",
                    self.base,
                    sanitize(&reason, 200)
                ),
            );
        }
        let what = match &e {
            ureq::Error::Timeout(_) => format!(
                "the registry at {} did not answer within {} s",
                self.base,
                self.timeout.as_secs_f32()
            ),
            ureq::Error::HostNotFound => {
                format!("the registry host in {} does not resolve", self.base)
            }
            ureq::Error::Protocol(_) => {
                return self.garbage(format!("the answer is not HTTP ({e})"));
            }
            _ => format!("cannot reach the registry at {}: {e}", self.base),
        };
        ClientError::new(Code::RegistryUnreachable, what)
    }

    fn garbage(&self, what: String) -> ClientError {
        ClientError::new(
            Code::RegistryGarbage,
            format!("{} is not a PRA registry: {what}", self.base),
        )
    }
}

/// The reason when `e` is a certificate the TLS handshake refused (ureq
/// hands rustls's error over directly or inside the I/O error).
fn certificate_failure(e: &ureq::Error) -> Option<String> {
    let tls = match e {
        ureq::Error::Rustls(r) => r,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    match tls {
        rustls::Error::InvalidCertificate(_) => Some(tls.to_string()),
        _ => None,
    }
}

/// Decide what an HTTP answer means (pure).
fn interpret(
    base: &str,
    status: u16,
    location: Option<&str>,
    body: &str,
    expect_fp: Option<&str>,
) -> ClientResult<KeyStatusReply> {
    let garbage = |what: String| {
        ClientError::new(
            Code::RegistryGarbage,
            format!("{base} is not a PRA registry: {what}"),
        )
    };
    match status {
        200..=299 => {
            let reply: KeyStatusReply = serde_json::from_str(body).map_err(|_| {
                garbage(format!(
                    "HTTP {status} with a body that is not a key status ({})",
                    excerpt(body)
                ))
            })?;
            if let Some(fp) = expect_fp
                && reply.fingerprint != fp
            {
                return Err(garbage(format!(
                    "it answered about another key ({})",
                    sanitize(&reply.fingerprint, 60)
                )));
            }
            Ok(reply)
        }
        300..=399 => Err(garbage(format!(
            "HTTP {status} redirect to {}",
            location.unwrap_or("nowhere")
        ))),
        _ => match serde_json::from_str::<ApiError>(body) {
            Ok(err) => Err(refused(status, &err)),
            Err(_) => Err(garbage(format!("HTTP {status} ({})", excerpt(body)))),
        },
    }
}

fn refused(status: u16, err: &ApiError) -> ClientError {
    if err.code == ApiErrorCode::NoSuchAccount {
        return ClientError::new(Code::AccountUnknown, sanitize(&err.message, 300));
    }
    let fix = match err.code {
        ApiErrorCode::Conflict => "the key or name belongs to another user: ask your administrator",
        ApiErrorCode::InvalidProof => {
            "check that this PC's clock is right (within 5 minutes), then submit again"
        }
        ApiErrorCode::RateLimited => "wait a minute, then try again",
        ApiErrorCode::TooManyPending => {
            "ask your administrator to approve or revoke the keys already waiting for your account"
        }
        ApiErrorCode::NotFound => {
            "check the registry URL, and ask your administrator whether your account exists in the registry"
        }
        ApiErrorCode::PayloadTooLarge | ApiErrorCode::BadJson | ApiErrorCode::InvalidField => {
            "the client and the registry disagree; update pra or tell your administrator"
        }
        ApiErrorCode::Internal => "try again later; tell your administrator if it persists",
        _ => Code::RegistryRefused.fix(),
    };
    ClientError::with_fix(
        Code::RegistryRefused,
        format!(
            "registry refused: {} — {} (HTTP {status})",
            err.code.as_str(),
            sanitize(&err.message, 200)
        ),
        fix,
    )
}

fn excerpt(body: &str) -> String {
    let t = body.trim();
    if t.is_empty() {
        "empty body".into()
    } else {
        format!("starts with `{}`", sanitize(t, 40))
    }
}

fn fingerprint_of_line(line: &str) -> Option<String> {
    ssh_key::PublicKey::from_openssh(line)
        .ok()
        .map(|k| pra_proto::fingerprint(&k))
}

/// Ask the registry for the status of this key (proof signed with
/// [`Action::Status`]). Use [`status_error`] to turn pending/revoked into
/// `ERR(10205)` / `ERR(10206)`.
pub fn key_status(
    registry_url: &str,
    key: &PrivateKey,
    user: &str,
) -> ClientResult<KeyStatusReply> {
    key_status_with_ca(registry_url, None, key, user)
}

/// [`key_status`] with the registry's certificate checked against the CA
/// in `ca` (PEM) instead of the public CAs.
pub fn key_status_with_ca(
    registry_url: &str,
    ca: Option<&Path>,
    key: &PrivateKey,
    user: &str,
) -> ClientResult<KeyStatusReply> {
    let client = RegistryClient::new(registry_url)?.with_ca(ca)?;
    status_with(&client, key, user)
}

fn status_with(
    client: &RegistryClient,
    key: &PrivateKey,
    user: &str,
) -> ClientResult<KeyStatusReply> {
    let proof =
        proof::sign(key, Action::Status, user, crate::keystore::unix_now()).map_err(|e| {
            ClientError::new(
                Code::KeyNotLoaded,
                format!("cannot sign the status request: {e}"),
            )
        })?;
    let public_key = key.public_key().to_openssh().map_err(|e| {
        ClientError::new(
            Code::KeyDamaged,
            format!("cannot encode the public key: {e}"),
        )
    })?;
    client.status(&KeyStatusQuery {
        user: user.to_string(),
        public_key,
        proof,
    })
}

/// What [`submit_key`] did.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The registry's answer (pending, approved or revoked).
    pub reply: KeyStatusReply,
    /// The registry's base URL, now remembered in `config.toml`.
    pub url: String,
    /// Account the key is for.
    pub user: String,
    /// `SHA256:` fingerprint of the key.
    pub fingerprint: String,
}

/// Send the stored public key and the device description to the registry
/// (signed with the key as proof of possession) and remember the URL in
/// `config.toml`. `registry` `None` uses the remembered URL. The passphrase
/// is asked through `passphrase` only after the config, the URL and the key
/// file were found usable.
/// The outcome (or the failure) is written to System.log and User.log.
pub fn submit_key(
    home: &crate::home::Home,
    registry: Option<&str>,
    passphrase: impl FnOnce() -> ClientResult<crate::passphrase::Passphrase>,
) -> ClientResult<Submitted> {
    submit_key_with_ca(home, registry, None, passphrase)
}

/// [`submit_key`] with the registry's certificate checked against the CA
/// in `ca` (PEM; remembered with the URL). Without it, the CA remembered
/// for the same URL is used, else the public CAs.
pub fn submit_key_with_ca(
    home: &crate::home::Home,
    registry: Option<&str>,
    ca: Option<&Path>,
    passphrase: impl FnOnce() -> ClientResult<crate::passphrase::Passphrase>,
) -> ClientResult<Submitted> {
    let r = submit_key_inner(home, registry, ca, passphrase);
    crate::logging::user_line(&match &r {
        Ok(done) => format!(
            "key submit: {} of {} sent to {}: {}",
            done.fingerprint, done.user, done.url, done.reply.status
        ),
        Err(e) => format!("key submit failed: {}", e.line()),
    });
    r
}

fn submit_key_inner(
    home: &crate::home::Home,
    registry: Option<&str>,
    ca: Option<&Path>,
    passphrase: impl FnOnce() -> ClientResult<crate::passphrase::Passphrase>,
) -> ClientResult<Submitted> {
    use crate::config::{Config, RegistrySection};
    use crate::keystore;
    // A broken config fails here, before anything is sent.
    let mut cfg = Config::load(home)?;
    let registry = match registry {
        Some(url) => url.to_string(),
        None => cfg.registry_url().map(str::to_string).ok_or_else(|| {
            ClientError::with_fix(
                Code::RegistryUrlInvalid,
                "no registry URL is known yet",
                "pass --registry URL with the address your administrator gave you (it is remembered after a successful submit)",
            )
        })?,
    };
    let client = RegistryClient::new(&registry)?;
    let ca = match ca {
        // Remembered as an absolute path: `pra connect` may run elsewhere.
        Some(file) => Some(std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf())),
        None if cfg.registry_url() == Some(client.url()) => {
            cfg.registry_ca().map(Path::to_path_buf)
        }
        None => None,
    };
    let client = client.with_ca(ca.as_deref())?;
    let info = keystore::read_public(home)?;
    let pass = passphrase()?;
    let key = keystore::load(home, &pass)?;
    drop(pass);
    let proof =
        proof::sign(&key, Action::Submit, &info.meta.user, keystore::unix_now()).map_err(|e| {
            ClientError::new(
                Code::KeyNotLoaded,
                format!("cannot sign the submission: {e}"),
            )
        })?;
    let body = KeySubmission {
        user: info.meta.user.clone(),
        public_key: info.meta.public_key.clone(),
        device: info.meta.device(),
        proof,
    };
    let reply = client.submit(&body)?;
    cfg.registry = Some(RegistrySection {
        url: client.url().to_string(),
        ca: ca.map(|p| p.to_string_lossy().into_owned()),
    });
    cfg.save(home)?;
    // The registry answers a submission for an unknown account like any
    // other (no account probing); only the status request, signed with this
    // key, says "no such account". Ask once, so a typo shows now.
    if reply.status == KeyStatus::Pending {
        match status_with(&client, &key, &info.meta.user) {
            Err(e) if e.code() == Code::AccountUnknown => return Err(e),
            Err(e) => tracing::debug!(error = %e.line(), "status after the submission not known"),
            Ok(_) => {}
        }
    }
    Ok(Submitted {
        reply,
        url: client.url().to_string(),
        user: info.meta.user.clone(),
        fingerprint: info.fingerprint(),
    })
}

/// `ERR(10205)` for a pending key, `ERR(10206)` for a revoked one, `None`
/// for an approved key.
pub(crate) fn status_error(reply: &KeyStatusReply) -> Option<ClientError> {
    let fp = sanitize(&reply.fingerprint, 60);
    match reply.status {
        KeyStatus::Approved => None,
        KeyStatus::Pending => Some(ClientError::new(
            Code::KeyPending,
            format!("the key {fp} is waiting for the administrator's approval"),
        )),
        KeyStatus::Revoked => Some(ClientError::with_fix(
            Code::KeyRevoked,
            format!("the key {fp} was revoked by the administrator"),
            format!(
                "generate a new key with `{}` and have it approved",
                crate::keystore::keygen_force(Some(&reply.user))
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FP: &str = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";

    fn line(r: ClientResult<KeyStatusReply>) -> String {
        r.unwrap_err().line()
    }

    #[test]
    fn answers_are_classified() {
        let ok = format!(r#"{{"fingerprint":"{FP}","user":"alice","status":"pending"}}"#);
        let reply = interpret("http://r", 202, None, &ok, Some(FP)).unwrap();
        assert_eq!(reply.status, KeyStatus::Pending);
        assert!(
            line(interpret("http://r", 202, None, &ok, Some("SHA256:x"))).starts_with("ERR(10211)")
        );
        for (status, body) in [
            (200, "<html><body>Welcome to nginx</body></html>"),
            (200, ""),
            (200, r#"{"status":"ok","version":"1"}"#),
            (404, "<html>not found</html>"),
            (502, "Bad Gateway"),
        ] {
            let l = line(interpret("http://r", status, None, body, Some(FP)));
            assert!(
                l.starts_with("ERR(10211) http://r is not a PRA registry"),
                "{status} {body}: {l}"
            );
        }
        let l = line(interpret("http://r", 301, Some("https://r/"), "", Some(FP)));
        assert!(l.contains("redirect to https://r/"), "{l}");
        let l = line(interpret(
            "http://r",
            409,
            None,
            r#"{"code":"conflict","message":"key registered to another user\u001b[31m"}"#,
            Some(FP),
        ));
        assert!(
            l.starts_with("ERR(10212) registry refused: conflict — key registered to another user\\u{1b}[31m (HTTP 409)"),
            "{l}"
        );
    }

    #[test]
    fn no_such_account_has_its_own_code() {
        let l = line(interpret(
            "http://r",
            404,
            None,
            r#"{"code":"no_such_account","message":"the registry has no account named alcie"}"#,
            Some(FP),
        ));
        assert!(
            l.starts_with(
                "ERR(10226) the registry has no account named alcie: check your account name"
            ),
            "{l}"
        );
        let l = line(interpret(
            "http://r",
            429,
            None,
            r#"{"code":"too_many_pending","message":"account alice already has 5 keys waiting"}"#,
            Some(FP),
        ));
        assert!(
            l.starts_with("ERR(10212) registry refused: too_many_pending")
                && l.contains("approve or revoke"),
            "{l}"
        );
    }

    #[test]
    fn status_codes() {
        let mut r = KeyStatusReply {
            fingerprint: FP.into(),
            user: "alice".into(),
            status: KeyStatus::Approved,
        };
        assert!(status_error(&r).is_none());
        r.status = KeyStatus::Pending;
        assert_eq!(status_error(&r).unwrap().code(), Code::KeyPending);
        r.status = KeyStatus::Revoked;
        assert_eq!(status_error(&r).unwrap().code(), Code::KeyRevoked);
    }

    #[test]
    fn urls() {
        assert_eq!(
            RegistryClient::new("https://r.example.com/").unwrap().url(),
            "https://r.example.com"
        );
        for bad in [
            "r.example.com",
            "ftp://r",
            "https://",
            "https://u:p@r",
            "http://r/?x",
        ] {
            assert_eq!(
                RegistryClient::new(bad).unwrap_err().code(),
                Code::RegistryUrlInvalid,
                "{bad}"
            );
        }
    }
}
