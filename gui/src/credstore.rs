//! "Remember on this PC": the passphrase in the OS credential store
//! (Windows Credential Manager, macOS Keychain, the Secret Service on Linux
//! through the `keyring` crate), one entry per key, named by the key's
//! fingerprint. Calls may block (D-Bus, a keyring unlock prompt): the
//! backend makes them on tokio's blocking pool, never in the frame loop.
//!
//! On a machine without a credential store (a headless Linux box without a
//! Secret Service) every call fails with [`StoreError::Unavailable`]; the
//! app reports `WAR(10230)` and connects anyway.

use pra_client::error::ClientError;
use pra_client::passphrase::Passphrase;
use pra_proto::codes::Code;

/// Service name of the entries.
pub(crate) const SERVICE: &str = "PRA";

/// Why the credential store could not be used. The text never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// There is no usable store (no Secret Service, locked, access denied).
    #[error("credential store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with an error.
    #[error("credential store failed: {0}")]
    Failed(String),
}

impl StoreError {
    /// The one line shown to the user (`WAR(10230) …: fix`).
    pub(crate) fn to_client_error(&self) -> ClientError {
        ClientError::new(Code::CredentialStore, self.to_string())
    }
}

/// Where remembered passphrases live.
pub trait SecretStore: Send + Sync {
    /// The passphrase remembered for `account`, if any.
    fn get(&self, account: &str) -> Result<Option<Passphrase>, StoreError>;
    /// Remember `pass` for `account`.
    fn set(&self, account: &str, pass: &Passphrase) -> Result<(), StoreError>;
    /// Forget `account` (no error when nothing was stored).
    fn delete(&self, account: &str) -> Result<(), StoreError>;
}

/// The OS credential store.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsStore;

fn entry(account: &str) -> Result<keyring::Entry, StoreError> {
    keyring::Entry::new(SERVICE, account).map_err(|e| {
        match (&e, keyring::Entry::store_status()) {
            // Say why the store could not be set up (e.g. no D-Bus session).
            (keyring::Error::NoDefaultStore, Err(init)) => {
                StoreError::Unavailable(one_line(&init.to_string()))
            }
            _ => map_err(e),
        }
    })
}

/// Describe a keyring error without the secret some variants carry.
fn map_err(e: keyring::Error) -> StoreError {
    use keyring::Error as E;
    match e {
        E::NoDefaultStore => StoreError::Unavailable("no credential store on this system".into()),
        E::NoStorageAccess(p) => StoreError::Unavailable(one_line(&p.to_string())),
        E::PlatformFailure(p) => StoreError::Unavailable(one_line(&p.to_string())),
        E::NotSupportedByStore(what) => StoreError::Unavailable(one_line(&what)),
        E::BadEncoding(_) | E::BadDataFormat(..) => {
            StoreError::Failed("the stored entry is not a passphrase".into())
        }
        E::BadStoreFormat(what) => StoreError::Failed(one_line(&what)),
        E::TooLong(attr, max) => StoreError::Failed(format!("{attr} longer than {max}")),
        E::Invalid(attr, why) => StoreError::Failed(format!("{attr}: {}", one_line(&why))),
        E::Ambiguous(_) => StoreError::Failed("several entries match".into()),
        E::NoEntry => StoreError::Failed("no entry".into()),
        other => StoreError::Failed(one_line(&other.to_string())),
    }
}

fn one_line(s: &str) -> String {
    pra_proto::sanitize::sanitize(s, 200)
}

impl SecretStore for OsStore {
    fn get(&self, account: &str) -> Result<Option<Passphrase>, StoreError> {
        match entry(account)?.get_password() {
            Ok(p) => Ok(Some(Passphrase::new(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    fn set(&self, account: &str, pass: &Passphrase) -> Result<(), StoreError> {
        entry(account)?.set_password(pass.expose()).map_err(map_err)
    }

    fn delete(&self, account: &str) -> Result<(), StoreError> {
        match entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }
}

/// A store in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: std::sync::Mutex<std::collections::BTreeMap<String, Passphrase>>,
    unavailable: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that behaves like a machine without one.
    pub fn unavailable() -> MemoryStore {
        MemoryStore {
            unavailable: true,
            ..MemoryStore::default()
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable {
            Err(StoreError::Unavailable(
                "no credential store on this system".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Passphrase>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<Passphrase>, StoreError> {
        self.check()?;
        Ok(self.map().get(account).cloned())
    }

    fn set(&self, account: &str, pass: &Passphrase) -> Result<(), StoreError> {
        self.check()?;
        self.map().insert(account.to_string(), pass.clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), StoreError> {
        self.check()?;
        self.map().remove(account);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn errors_are_one_line_with_code_and_no_secret() {
        let e = map_err(keyring::Error::BadEncoding(b"hunter2".to_vec()));
        assert!(!e.to_string().contains("hunter2"));
        let line = StoreError::Unavailable("no credential store on this system".into())
            .to_client_error()
            .line();
        assert!(
            line.starts_with(
                "WAR(10230) credential store unavailable: no credential store on this system: "
            ),
            "{line}"
        );
        assert!(matches!(
            map_err(keyring::Error::NoDefaultStore),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryStore::new();
        assert!(s.get("fp").unwrap().is_none());
        s.set("fp", &Passphrase::new("p w")).unwrap();
        assert_eq!(s.get("fp").unwrap().unwrap().expose(), "p w");
        s.delete("fp").unwrap();
        s.delete("fp").unwrap();
        assert!(s.get("fp").unwrap().is_none());
        let u = MemoryStore::unavailable();
        assert!(matches!(u.get("fp"), Err(StoreError::Unavailable(_))));
    }
}
