//! Test support shared by the integration tests of `registry`, `client`,
//! `gui` and `e2e` (and nothing else: a dev-dependency only). Each helper
//! has this one home; a crate's own `tests/it/common/` keeps what only its
//! tests need.
//!
//! # Layout
//! - `keys`: ed25519 keys from the OS RNG and their OpenSSH lines.
//! - `net`: loopback targets on 127.0.0.1:0 (echo, firehose, silent), echo
//!   round trips, rule ports, a closed port, deterministic bytes.
//! - `process`: a clean environment for the binaries under test, and the
//!   "… listening on ADDR" lines `pra-registry serve` prints.
//! - `ssh`: a russh client handler that pins the gateway's host key.
//! - `tls` (feature `tls`): a test CA and leaf certificates it signs.
//!
//! Like tests, it opts out of the workspace's no-unwrap rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod keys;
pub mod net;
pub mod process;
pub mod ssh;
#[cfg(feature = "tls")]
pub mod tls;
