//! The gateway's ed25519 host key: created on first start in the data
//! folder (mode 0600, written atomically, first writer wins), loaded after
//! that. Admins hand its `SHA256:` fingerprint to employees for pinning.

use crate::error::RegistryError;
use ssh_key::private::Ed25519Keypair;
use ssh_key::{Algorithm, LineEnding, PrivateKey, PublicKey};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the host key inside the data folder (OpenSSH private-key
/// format, unencrypted, owner-only).
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// Comment stored with the key (shown in its public-key line).
const COMMENT: &str = "pra-gateway";

/// The gateway's host key. `Debug` shows the fingerprint, never the key.
#[derive(Clone)]
pub struct HostKey {
    key: PrivateKey,
    path: PathBuf,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("fingerprint", &self.fingerprint())
            .field("path", &self.path)
            .field("private", &"MASKED")
            .finish()
    }
}

impl HostKey {
    /// `SHA256:` fingerprint, exactly as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        pra_proto::fingerprint(self.key.public_key())
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// One OpenSSH public-key line (`ssh-ed25519 AAAA… pra-gateway`), e.g.
    /// for an OpenSSH client's `known_hosts`.
    pub fn openssh_public(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .unwrap_or_else(|_| String::new())
    }

    /// Where the key is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn private(&self) -> &PrivateKey {
        &self.key
    }
}

fn err(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::HostKey {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Load the host key from `data_dir`, creating it (and the folder, mode
/// 0700) when there is none. Two processes starting at once end up with the
/// same key: the file is published with a no-clobber link, and the loser
/// loads the winner's key.
pub fn load_or_create(data_dir: &Path) -> Result<HostKey, RegistryError> {
    let path = data_dir.join(HOST_KEY_FILE);
    match load(&path) {
        Ok(key) => return Ok(key),
        Err(LoadError::Missing) => {}
        Err(LoadError::Bad(e)) => return Err(e),
    }
    crate::private_files::create_dir(data_dir).map_err(|e| {
        err(
            &path,
            format!(
                "cannot create the data folder {}: {e}; check the --data path and its permissions",
                data_dir.display()
            ),
        )
    })?;
    let key = generate().map_err(|reason| err(&path, reason))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| err(&path, format!("cannot encode the new key: {e}")))?;
    publish(data_dir, &path, text.as_bytes())
        .map_err(|e| err(&path, format!("cannot write the new key: {e}")))?;
    match load(&path) {
        Ok(key) => Ok(key),
        Err(LoadError::Missing) => Err(err(&path, "the key vanished right after it was written")),
        Err(LoadError::Bad(e)) => Err(e),
    }
}

enum LoadError {
    Missing,
    Bad(RegistryError),
}

fn load(path: &Path) -> Result<HostKey, LoadError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Bad(err(path, format!("cannot read it: {e}")))),
    };
    if !meta.is_file() {
        return Err(LoadError::Bad(err(
            path,
            "it is not a regular file; move it away and start again to create a new key",
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(LoadError::Bad(err(
                path,
                format!(
                    "other users may read it (mode {mode:03o}); run `chmod 600 {}`",
                    path.display()
                ),
            )));
        }
    }
    let text =
        fs::read(path).map_err(|e| LoadError::Bad(err(path, format!("cannot read it: {e}"))))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        LoadError::Bad(err(
            path,
            format!(
                "it is not an OpenSSH private key ({e}); restore it from a backup (employees \
                 pinned its fingerprint), or move it away to create a new one"
            ),
        ))
    })?;
    if key.is_encrypted() {
        return Err(LoadError::Bad(err(
            path,
            "it is protected by a passphrase; the gateway needs an unencrypted key",
        )));
    }
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(LoadError::Bad(err(
            path,
            format!(
                "it is a {} key; the gateway uses ed25519 host keys only",
                key.algorithm()
            ),
        )));
    }
    Ok(HostKey {
        key,
        path: path.to_path_buf(),
    })
}

fn generate() -> Result<PrivateKey, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("the OS random source failed: {e}"))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    key.set_comment(COMMENT);
    Ok(key)
}

/// Write `bytes` to a private temporary file next to `path`, flush it to
/// disk, then link it into place unless a file is there already.
fn publish(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    let tmp = dir.join(format!(
        ".{HOST_KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        u64::from_le_bytes(nonce)
    ));
    let result = (|| {
        let mut file = crate::private_files::new_file().open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            // Another process created the key first: keep theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            // Filesystems without hard links: rename (atomic, may replace a
            // key written in the same instant by a concurrent first start).
            Err(_) => fs::rename(&tmp, path),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result?;
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let a = load_or_create(&data).unwrap();
        let b = load_or_create(&data).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.fingerprint().starts_with("SHA256:"));
        assert_eq!(a.path(), data.join(HOST_KEY_FILE));
        assert!(a.openssh_public().starts_with("ssh-ed25519 AAAA"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dmode = fs::metadata(&data).unwrap().permissions().mode() & 0o777;
            assert_eq!(dmode, 0o700);
        }
        // no temporary files left behind
        let names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(HOST_KEY_FILE)]);
        let dbg = format!("{a:?}");
        assert!(dbg.contains("MASKED") && !dbg.contains("OPENSSH"), "{dbg}");
    }

    #[test]
    fn concurrent_first_starts_agree() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let d = data.clone();
                std::thread::spawn(move || load_or_create(&d).unwrap().fingerprint())
            })
            .collect();
        let fps: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(fps.iter().all(|f| f == &fps[0]), "{fps:?}");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create(dir.path()).unwrap();
        fs::set_permissions(key.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn refuses_garbage_without_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HOST_KEY_FILE);
        let mut file = crate::private_files::new_file().open(&path).unwrap();
        file.write_all(b"not a key").unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not an OpenSSH private key"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"not a key");
    }
}
