//! PRA client library: everything `pra` and `pra-gui` do.
//!
//! # Layout
//! - [`cli`]: clap definitions of `pra`; [`commands`]: one module per command.
//! - [`error`]: [`error::ClientError`], each failure with its stable code and fix.
//! - [`home`]: where config, key and logs live (`--home` / `PRA_HOME`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod home;
