//! Wire types and stable codes shared by the PRA client (`pra`, `pra-gui`)
//! and the registry/gateway (`pra-registry`).
//!
//! # Layout
//! - [`codes`]: the user-facing error codes (`ERR(10203)` …) with cause and fix.
//! - [`api`]: JSON bodies of the registry HTTP API and its stable error codes.
//! - [`rules`]: the forwarding rules the gateway answers over the SSH session.
//! - [`handover`]: the public-key hand-over file (`pra key export` / `key import`).
//! - [`enroll`]: the key hand-over with an invite over the gateway's SSH port.
//! - [`invite`]: the `pra-invite:` string an admin hands to an employee.
//! - [`proof`]: proof of key possession (SSHSIG) for registry requests.
//! - [`sanitize`]: making network text safe for terminals and logs.
//! - [`time`]: calendar dates for Unix times (UTC).
//! - [`window`]: receive windows that grow with the link (gateway and client).
//! - `rt` (feature `rt`): the binaries' stop signal and allocator tuning.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod codes;
pub mod enroll;
pub mod handover;
pub mod invite;
pub mod proof;
#[cfg(feature = "rt")]
pub mod rt;
pub mod rules;
pub mod sanitize;
pub mod time;
pub mod window;

/// Default TCP port of the SSH gateway.
pub const DEFAULT_GATEWAY_PORT: u16 = 10022;
/// Default address of the registry HTTP API.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:10088";
/// The `exec` command a client sends to learn its forwarding rules.
pub const RULES_COMMAND: &str = "pra-rules";
/// How long `pra connect` waits for each SSH step (handshake, login, rules
/// request). The gateway's longest deliberate delay (its failed-login
/// penalty) stays well below it, so a client behind an address that others
/// misused still gets in.
pub const SSH_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// `SHA256:` fingerprint of a public key, exactly as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &ssh_key::PublicKey) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}
