//! The desktop app's integration tests in one binary (one module per
//! behaviour, shared helpers in `common/`), so the test build links egui,
//! the client library and the registry (their test gateway) once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod ui_busy_port;
mod ui_connect;
mod ui_doctor_logs;
mod ui_key_and_server;
mod ui_language;
mod ui_remember;
mod ui_wrong_passphrase;
mod xvfb_tray;
mod xvfb_window;
