//! PRA desktop app (`pra-gui`): a window and a tray icon over the client
//! library. It never shells out to `pra`: it calls `pra_client` directly,
//! on a tokio runtime of its own, and shows the tunnel's state as it changes.
//!
//! # Layout
//! - `app`: the main window (status, Connect/Disconnect, forwards, error
//!   line, menus), close-to-tray and Quit; [`PraApp`] and its [`AppOptions`].
//! - `dialogs/`: one module per dialog (passphrase, server, key
//!   generation/export/submit/state, enroll with an invite, diagnostics,
//!   logs, about) and `parts` for what they share; each returns an action
//!   for the backend.
//! - `backend`: the runtime and every call into the client library;
//!   results come back as outcomes, never blocking a frame.
//! - `widgets`: the state mark, tone colours, error block (window and dialogs).
//! - [`view`]: pure functions from the tunnel state to what is shown.
//! - [`tray`]: the tray icon and its menu.
//! - [`credstore`]: "remember on this PC" in the OS credential store.
//! - [`i18n`]: English and Japanese text; [`fonts`]: the system CJK font.
//! - [`settings`]: `gui.toml` (language).
//!
//! Only what `main.rs` and the tests use is `pub`; the rest is `pub(crate)`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app;
mod backend;
pub mod credstore;
mod dialogs;
pub mod fonts;
pub mod i18n;
pub mod settings;
pub mod tray;
pub mod view;
mod widgets;

pub use app::{AppOptions, PraApp};
