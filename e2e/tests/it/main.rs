//! End-to-end tests in one binary (one module per behaviour; the shared
//! helpers are this crate's library, `pra_e2e`), so the test build links
//! the client, the registry and russh once instead of once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_gateway;
mod cli_new_user;
mod demo_script;
mod enroll;
mod failover;
mod gateway_nat;
mod tunnel_gateway;
mod tunnel_speed;
