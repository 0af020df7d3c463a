//! PRA registry: key registry store, admin CLI, HTTP API and SSH gateway.
//!
//! # Layout
//! - [`model`]: the records (users, keys, rules, tokens, audit events).
//! - [`error`]: [`error::RegistryError`] with its stable API code.
//! - [`validate`]: pure validation of keys, names, ports, hosts, devices.
//! - [`store`]: the [`store::Store`] and its two databases (SQLite, PostgreSQL).
//! - [`gateway`]: the SSH gateway (approved keys, rules-only forwards, live revocation).
//! - [`api`]: the HTTP API (public key submission, admin routes).
//! - [`web`]: the admin web page under `/admin` on the API listener.
//! - [`serve`]: `pra-registry serve`, the API and the SSH gateway side by side.
//! - [`rate`]: per-source rate limits (source keys, token buckets) for the API, the admin page and the gateway.
//! - [`token`]: admin API tokens (the bearer secret, making one, its stored hash).
//! - `blocking`: store calls from async code, on tokio's blocking pool.
//! - [`metrics`]: Prometheus metrics (`serve --metrics ADDR`).
//! - [`retention`]: deleting old audit events (`serve --audit-keep DAYS`).
//! - [`invite`]: one-time enrollment invites (`invite create/list/revoke`).
//! - [`cli`]: the admin CLI's arguments (clap definitions only).
//! - [`config`]: the validated configuration (which database) from the global flags.
//! - [`commands`]: one module per admin command group, and [`commands::run`].
//! - [`failure`]: a command's one-line failure (`ERR(103xx) what: fix`).
//! - [`format`]: tables, UTC times and targets as the CLI prints them.
//! - `private_files`: the data folder and its files, readable by their owner only.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
mod blocking;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod failure;
pub mod format;
pub mod gateway;
pub mod invite;
pub mod metrics;
pub mod model;
mod private_files;
pub mod rate;
pub mod retention;
pub mod serve;
pub mod store;
pub mod token;
pub mod validate;
pub mod web;
