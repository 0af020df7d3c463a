//! A russh client side for tests.

use russh::client;
use russh::keys::PublicKeyOrCertificate;
use std::sync::{Arc, Mutex};

/// A client handler that accepts only the host key whose fingerprint
/// (`SHA256:…`) it holds, and can record what the key exchange settled on.
pub struct Pinned {
    /// The pinned host key.
    pub fingerprint: String,
    names: Option<Arc<Mutex<Option<russh::Names>>>>,
}

impl Pinned {
    /// Pin `fingerprint`.
    pub fn new(fingerprint: impl Into<String>) -> Pinned {
        Pinned {
            fingerprint: fingerprint.into(),
            names: None,
        }
    }

    /// Pin `fingerprint` and put the negotiated algorithms in `names`.
    pub fn recording(
        fingerprint: impl Into<String>,
        names: Arc<Mutex<Option<russh::Names>>>,
    ) -> Pinned {
        Pinned {
            names: Some(names),
            ..Pinned::new(fingerprint)
        }
    }
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(matches!(key, PublicKeyOrCertificate::PublicKey { key, .. }
            if pra_proto::fingerprint(key) == self.fingerprint))
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if let Some(slot) = &self.names {
            *slot.lock().unwrap() = Some(names.clone());
        }
        Ok(())
    }
}
