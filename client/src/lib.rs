//! PRA client library: everything `pra` and `pra-gui` do.
//!
//! # Layout
//! - [`cli`]: clap definitions of `pra`; [`commands`]: one module per command.
//! - [`error`]: [`error::ClientError`], each failure with its stable code and fix.
//! - [`home`]: where config, key and logs live (`--home` / `PRA_HOME`).
//! - [`config`]: `config.toml` (gateway address, pinned host key, registry URL).
//! - [`identity`]: the device identity a key is bound to (pure fingerprint + OS reading).
//! - [`keystore`]: the hardware-bound encrypted key and its public metadata.
//! - [`unlock`]: bcrypt-pbkdf on two cores (the key opens in half the time).
//! - [`passphrase`]: the masked passphrase newtype, from `PRA_PASSPHRASE` or the terminal.
//! - [`registry_client`]: HTTP client of the registry API (submit, status).
//! - [`enroll`]: `pra enroll INVITE`: key hand-over with an invite on the SSH port.
//! - [`instance`]: one connection per home folder (`ERR(10111)` for a second one).
//! - [`tunnel`]: connect, rules, forwards, reconnect; [`tunnel::TunnelState`] for CLI and GUI.
//! - [`doctor`]: the helpdesk's step-by-step self-test.
//! - [`logging`]: System.log and User.log in `log/`, rotated, never a secret.
//! - [`out`]: command output that ends quietly when the pipe reader is gone.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod enroll;
pub mod error;
pub mod home;
pub mod identity;
pub mod instance;
pub mod keystore;
pub mod logging;
pub mod out;
pub mod passphrase;
pub mod registry_client;
pub mod tunnel;
pub mod unlock;
