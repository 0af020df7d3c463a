//! PRA desktop app (`pra-gui`): a window and a tray icon over the client
//! library. It never shells out to `pra`: it calls `pra_client` directly,
//! on a tokio runtime of its own, and shows the tunnel's state as it changes.
//!
//! # Layout
//! - [`app`]: the main window (status, Connect/Disconnect, forwards, error
//!   line, menus), close-to-tray and Quit.
//! - [`dialogs`]: passphrase, server, key generation/export/submit/state,
//!   about; each returns an action for the backend.
//! - [`backend`]: the runtime and every call into the client library;
//!   results come back as [`backend::Outcome`]s, never blocking a frame.
//! - [`view`]: pure functions from the tunnel state to what is shown.
//! - [`tray`]: the tray icon and its menu.
//! - [`credstore`]: "remember on this PC" in the OS credential store.
//! - [`i18n`]: English and Japanese text; [`fonts`]: the system CJK font.
//! - [`settings`]: `gui.toml` (language).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod app;
pub mod backend;
pub mod credstore;
pub mod dialogs;
pub mod fonts;
pub mod i18n;
pub mod settings;
pub mod tray;
pub mod view;

pub use app::{AppOptions, PraApp};
