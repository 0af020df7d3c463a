//! The registry's integration tests in one binary (one module per
//! behaviour, shared helpers in `common/`), so the test build links
//! russh, axum and rusqlite once instead of once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod api_admin;
mod api_limits;
mod api_public;
mod api_starvation;
mod api_submit_probing;
mod api_trusted_proxy;
mod audit_retention;
mod cli_audit_tokens;
mod cli_database;
mod cli_invites;
mod cli_key_refusals;
mod cli_keys;
mod cli_new_admin;
mod cli_rules;
mod cli_sessions;
mod cli_users;
mod db_outage;
mod gateway_audit_refusals;
mod gateway_enroll;
mod gateway_flood;
mod gateway_flow;
mod gateway_forward;
mod gateway_keepalive;
mod gateway_login;
mod gateway_memory;
mod gateway_refusals;
mod gateway_revoke;
mod gateway_serve;
mod gateway_session_cap;
mod gateway_sessions;
mod gateway_transport;
mod gateway_window;
mod multi_gateway;
mod postgres_tls;
mod serve_binary;
mod serve_https;
mod serve_json_logs;
mod serve_metrics;
mod store_suite;
mod token_revoke;
mod web_audit;
mod web_browser;
mod web_csrf;
mod web_disconnect;
mod web_escaping;
mod web_invites;
mod web_keys;
mod web_ratelimit;
mod web_rules;
mod web_session;
mod web_sessions;
mod web_signin;
mod web_users;
