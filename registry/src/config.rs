//! The validated configuration the library works with ([`Config`], from
//! the global flags of [`Cli`]): which database, and opening it.

use crate::cli::Cli;
use crate::failure::Failure;
use crate::store::Store;
use pra_proto::codes::Code;
use std::path::PathBuf;
use std::sync::Arc;

/// A database URL: may hold a password, so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(MASKED)")
    }
}

/// Where the records are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in this folder.
    Sqlite(PathBuf),
    /// PostgreSQL.
    Postgres(DatabaseUrl),
}

/// The validated configuration the library works with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The database.
    pub backend: Backend,
}

impl Config {
    /// From the global flags.
    pub fn from_cli(cli: &Cli) -> Result<Config, Failure> {
        let backend = match cli.database.as_deref().map(str::trim) {
            None | Some("") => Backend::Sqlite(cli.data.clone()),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Backend::Postgres(DatabaseUrl(url.to_string()))
            }
            Some(_) => {
                return Err(Failure::new(
                    Code::RegistryInvalid,
                    "--database / PRA_DATABASE_URL is not a postgres:// URL",
                    "give a postgres://… URL, or unset it to use the embedded database in --data",
                ));
            }
        };
        Ok(Config { backend })
    }

    /// Open the store.
    pub fn open_store(&self) -> Result<Arc<Store>, Failure> {
        match &self.backend {
            Backend::Sqlite(dir) => Ok(Arc::new(Store::sqlite(dir)?)),
            Backend::Postgres(url) => match Store::postgres(&url.0) {
                Ok(store) => Ok(Arc::new(store)),
                Err(e) => {
                    let mut f = Failure::from(e);
                    if f.code == Code::RegistryDatabase {
                        f.fix = POSTGRES_FIX.into();
                    }
                    Err(f)
                }
            },
        }
    }
}

/// What to do when the PostgreSQL registry cannot be used.
pub const POSTGRES_FIX: &str = "check --database / PRA_DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/DB), \
     that PostgreSQL runs and lets this user in from here, and that the database is the \
     registry's own; see docs/admin-guide.md, \"Several gateways\"";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use clap::Parser;

    #[test]
    fn database_url_is_masked_and_tls_settings_are_checked_before_connecting() {
        let cli = Cli::parse_from([
            "pra-registry",
            "--database",
            "postgres://admin:hunter2@db/pra?sslmode=verify-full&sslrootcert=/no/such/ca.pem",
            "user",
            "list",
        ]);
        let config = Config::from_cli(&cli).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        // TLS is supported; a root file that cannot be read is refused before
        // any connection is tried, naming the file and never the password.
        let line = config.open_store().err().unwrap().line();
        assert!(line.starts_with("ERR(10300) "), "{line}");
        assert!(line.contains("sslrootcert=/no/such/ca.pem"), "{line}");
        assert!(line.contains("PRA_DATABASE_URL"), "{line}");
        assert!(!line.contains("hunter2"));
        let cli = Cli::parse_from(["pra-registry", "--database", "mysql://x", "user", "list"]);
        assert_eq!(
            Config::from_cli(&cli).unwrap_err().code,
            Code::RegistryInvalid
        );
    }
}
