//! PRA client library: everything `pra` and `pra-gui` do.
//!
//! # Layout
//! Library (what `pra` and the app share), bottom up; no module imports
//! [`commands`]:
//! - [`error`]: [`error::ClientError`], each failure with its stable code and fix.
//! - [`home`]: where config, key and logs live (`--home` / `PRA_HOME`).
//! - [`logging`]: System.log and User.log in `log/`, rotated, never a secret.
//! - [`passphrase`]: the masked passphrase newtype, from `PRA_PASSPHRASE` or the terminal.
//! - `identity`: the device identity a key is bound to (pure fingerprint + OS reading).
//! - `unlock`: bcrypt-pbkdf on two cores (the key opens in half the time).
//! - [`keystore`]: the hardware-bound encrypted key and its public metadata.
//! - [`config`]: `config.toml` (gateway address, pinned host key, registry
//!   URL) and [`config::set_gateways`] (`pra server set`) and [`config::set_gateway`]
//!   (the app's settings).
//! - [`registry_client`]: HTTP(S) client of the registry API (submit, status).
//! - [`tunnel`]: connect, rules, forwards, reconnect; [`tunnel::setup`] builds
//!   its settings from the home; [`tunnel::TunnelState`] for CLI and app.
//! - [`instance`]: one connection per home folder (`ERR(10111)` for a second one).
//! - [`doctor`]: the helpdesk's step-by-step self-test.
//! - [`bundle`]: the helpdesk's zip of logs, config and a doctor report.
//! - [`clock`]: times as people read them (`YYYY-MM-DD HH:MM UTC`).
//! - [`enroll`]: `pra enroll INVITE`: key hand-over with an invite on the SSH port.
//!
//! The `pra` command on top of it:
//! - [`cli`]: clap definitions of `pra`; [`commands`]: one thin module per command.
//! - [`out`]: command output that ends quietly when the pipe reader is gone.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bundle;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod enroll;
pub mod error;
pub mod home;
pub(crate) mod identity;
pub mod instance;
pub mod keystore;
pub mod logging;
pub mod out;
pub mod passphrase;
pub mod registry_client;
pub mod tunnel;
pub(crate) mod unlock;
