//! PRA registry: key registry store, admin CLI, HTTP API and SSH gateway.
//!
//! # Layout
//! - [`model`]: the records (users, keys, rules, tokens, audit events).
//! - [`error`]: [`error::RegistryError`] with its stable API code.
//! - [`validate`]: pure validation of keys, names, ports, hosts, devices.
//! - [`store`]: the [`store::Store`] trait and its SQLite backend.
//! - [`gateway`]: the SSH gateway (approved keys, rules-only forwards, live revocation).
//! - [`api`]: the HTTP API (public key submission, admin routes).
//! - [`web`]: the admin web page under `/admin` on the API listener.
//! - [`serve`]: `pra-registry serve`, the API and the SSH gateway side by side.
//! - [`metrics`]: Prometheus metrics (`serve --metrics ADDR`).
//! - [`retention`]: deleting old audit events (`serve --audit-keep DAYS`).
//! - [`invite`]: one-time enrollment invites (`invite create/list/revoke`).
//! - [`cli`]: the admin CLI (arguments, commands, one-line failures).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod cli;
pub mod error;
pub mod gateway;
pub mod invite;
pub mod metrics;
pub mod model;
pub mod retention;
pub mod serve;
pub mod store;
pub mod validate;
pub mod web;
