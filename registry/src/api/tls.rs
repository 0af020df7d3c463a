//! HTTPS on the API listener (`serve --tls-cert FILE --tls-key FILE`):
//! rustls with PEM files (ECDSA, Ed25519 or RSA keys), HTTP/1.1 inside.
//!
//! The files are checked before every handshake (two `stat` calls): when
//! either changed on disk (a Let's Encrypt renewal) the pair is loaded
//! again, without a restart. A replacement that cannot be used is logged
//! and the previous pair kept, so a half-written renewal never takes the
//! API down.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

/// The certificate and key files of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
}

/// A TLS pair that reloads itself when its files change.
pub struct Reloading {
    files: TlsFiles,
    current: Mutex<(Stamp, TlsAcceptor)>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(files: &TlsFiles) -> Stamp {
    let m = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&files.cert), m(&files.key))
}

/// Read and check the pair: the reason names the file at fault.
pub fn load(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in it",
            files.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{} and {}: {e}", files.cert.display(), files.key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Reloading {
    /// Load the pair once; an error names the file at fault.
    pub fn new(files: TlsFiles) -> Result<Arc<Reloading>, String> {
        let st = stamp(&files);
        let acceptor = load(&files)?;
        Ok(Arc::new(Reloading {
            files,
            current: Mutex::new((st, acceptor)),
        }))
    }

    /// The acceptor for the next connection, reloaded if a file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let st = stamp(&self.files);
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if st != cur.0 {
            match load(&self.files) {
                Ok(acceptor) => {
                    tracing::info!(cert = %self.files.cert.display(), "api TLS certificate reloaded");
                    *cur = (st, acceptor);
                }
                Err(e) => {
                    // Keep serving with the previous pair; try again when
                    // the files change once more.
                    tracing::warn!(%e, "the replaced TLS certificate cannot be used; keeping the previous one");
                    cur.0 = st;
                }
            }
        }
        cur.1.clone()
    }
}
