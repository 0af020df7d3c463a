//! TLS to PostgreSQL (rustls with the ring provider; no OpenSSL), as libpq's
//! `sslmode` / `sslrootcert` URL parameters ask:
//!
//! - `disable`: plain text.
//! - `allow`, `prefer` (the default): TLS when the server offers it, without
//!   checking its certificate; plain text when it does not.
//! - `require`: TLS or no connection; the certificate is not checked, unless
//!   `sslrootcert` names a file, in which case it is checked as `verify-ca`
//!   (libpq does the same).
//! - `verify-ca`: the server's chain must lead to a trusted root.
//! - `verify-full`: that, and the certificate must name the host of the URL.
//!
//! Trusted roots: the PEM file named by `sslrootcert=FILE`, else (or with
//! `sslrootcert=system`) the Mozilla list built in (webpki-roots).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The connector handed to tokio-postgres / deadpool (cheap to clone).
pub use tokio_postgres_rustls::MakeRustlsConnect as RustlsConnect;

/// What the URL's `sslmode` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `sslmode=disable`.
    Disable,
    /// `sslmode=allow` or `prefer` (the default).
    Prefer,
    /// `sslmode=require`.
    Require,
    /// `sslmode=verify-ca`.
    VerifyCa,
    /// `sslmode=verify-full`.
    VerifyFull,
}

impl Mode {
    /// Parse an `sslmode` value; `None` for an unknown one.
    pub fn parse(v: &str) -> Option<Mode> {
        Some(match v {
            "disable" => Mode::Disable,
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => return None,
        })
    }
}

/// The connector for `mode` with roots from `root_file` (a PEM file; `None`
/// or `Some("system")` = the built-in Mozilla roots). Errors name what is
/// wrong, without the URL.
pub fn connector(mode: Mode, root_file: Option<&str>) -> Result<RustlsConnect, String> {
    let root_file = root_file.filter(|f| *f != "system");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let chain = match mode {
        Mode::Disable | Mode::Prefer => None,
        Mode::Require if root_file.is_none() => None,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_file)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("cannot use the trusted roots: {e}"))?,
        ),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, chain) {
        (Mode::VerifyFull, Some(webpki)) => webpki,
        (_, chain) => Arc::new(Lenient { chain, algorithms }),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(RustlsConnect::new(config))
}

fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let Some(file) = file else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let shown = pra_proto::sanitize::sanitize(file, 200);
    let bytes = std::fs::read(file).map_err(|e| format!("sslrootcert={shown}: {e}"))?;
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert =
            cert.map_err(|e| format!("sslrootcert={shown}: not a PEM certificate file ({e})"))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert={shown}: unusable certificate ({e})"))?;
        found += 1;
    }
    if found == 0 {
        return Err(format!(
            "sslrootcert={shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(store)
}

/// The lenient checks: `require` without roots (`chain: None`) takes the
/// certificate as it is, `verify-ca` checks the chain but not the name
/// (rustls checks the chain before the name, so a name error means the
/// chain was good). The handshake signatures are checked either way.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
