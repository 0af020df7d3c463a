//! The `pra` client's integration tests in one binary (one module per
//! behaviour, shared helpers in `common/`), so the test build links russh
//! and the client library once instead of once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod connect_cli;
mod doctor_cli;
mod interop_flow;
mod interop_reconnect;
mod interop_sshd;
mod key_cli;
mod key_submit;
mod keygen_cli;
mod logs_cli;
mod new_user_cli;
mod server_cli;
