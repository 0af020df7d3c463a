//! Where the client keeps its files: `--home DIR` / `PRA_HOME`, or the
//! platform's data folder (Windows `%ProgramData%\Pra`, Linux
//! `$XDG_DATA_HOME/pra` or `~/.local/share/pra`, macOS
//! `~/Library/Application Support/Pra`).

use crate::error::{ClientError, ClientResult};
use pra_proto::codes::Code;
use std::path::{Path, PathBuf};

/// The client's folder and the files in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Use `explicit` when given, else the platform default.
    pub fn resolve(explicit: Option<&Path>) -> ClientResult<Home> {
        let root = match explicit {
            Some(p) => p.to_path_buf(),
            None => default_root().ok_or_else(|| {
                ClientError::with_fix(
                    Code::HomeUnwritable,
                    "cannot tell where to keep the client's files (no HOME / ProgramData)",
                    "pass --home DIR or set PRA_HOME",
                )
            })?,
        };
        Ok(Home { root })
    }

    /// A home at exactly this folder.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The encrypted private key.
    pub fn key_file(&self) -> PathBuf {
        self.root.join("pra_ed25519")
    }

    /// `log/` with System.log and User.log.
    pub(crate) fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// Create the folder (private to the user where the OS allows).
    pub fn ensure(&self) -> ClientResult<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| {
            ClientError::new(
                Code::HomeUnwritable,
                format!("cannot create {}: {e}", self.root.display()),
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }
}

/// The platform's default folder (`None` without HOME / ProgramData).
pub(crate) fn default_root() -> Option<PathBuf> {
    if cfg!(windows) {
        std::env::var_os("ProgramData").map(|p| PathBuf::from(p).join("Pra"))
    } else if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support/Pra"))
    } else if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        Some(PathBuf::from(x).join("pra"))
    } else {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/pra"))
    }
}
