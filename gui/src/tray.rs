//! The tray icon (tray-icon crate): a round mark that shows the state
//! (green connected, amber connecting/reconnecting, grey disconnected) and a
//! menu Connect, Disconnect, Open window, Enroll with an invite…, Quit.
//!
//! On Linux tray-icon's `ksni` backend is used: a StatusNotifierItem served
//! over D-Bus from its own thread, no GTK and no GTK main loop. It only shows
//! where a StatusNotifier host runs (KDE, most panels, GNOME with the
//! AppIndicator extension), so [`Tray::new`] first asks D-Bus whether one
//! is registered and fails otherwise; the app then runs without a tray and
//! closing the window quits (nothing would be left to reopen it). On Windows
//! and macOS the icon lives on the thread of the window's event loop.

use crate::i18n::{Lang, Msg};
use crate::view::Tone;
use std::sync::{Arc, mpsc};
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

/// What the user chose in the tray.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrayCommand {
    Connect,
    Disconnect,
    /// Menu: Open window, or a click on the icon.
    Open,
    /// Menu: Enroll with an invite… (opens the window with the dialog).
    Enroll,
    Quit,
}

const ID_CONNECT: &str = "pra-connect";
const ID_DISCONNECT: &str = "pra-disconnect";
const ID_OPEN: &str = "pra-open";
const ID_ENROLL: &str = "pra-enroll";
const ID_QUIT: &str = "pra-quit";

/// The command of a menu item id (pure).
pub(crate) fn command_of(id: &str) -> Option<TrayCommand> {
    match id {
        ID_CONNECT => Some(TrayCommand::Connect),
        ID_DISCONNECT => Some(TrayCommand::Disconnect),
        ID_OPEN => Some(TrayCommand::Open),
        ID_ENROLL => Some(TrayCommand::Enroll),
        ID_QUIT => Some(TrayCommand::Quit),
        _ => None,
    }
}

/// Side of the square icons.
pub const ICON_SIZE: u32 = 32;

/// RGBA pixels of the round state mark (pure; also the window icon).
pub fn icon_rgba(tone: Tone) -> Vec<u8> {
    let (r, g, b) = crate::view::tone_rgb(tone);
    let n = ICON_SIZE as usize;
    let c = (n as f32 - 1.0) / 2.0;
    let outer = n as f32 / 2.0 - 1.0;
    let mut px = Vec::with_capacity(n * n * 4);
    for y in 0..n {
        for x in 0..n {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            // Anti-aliased disc with a white ring inside.
            let alpha = (outer - d + 0.5).clamp(0.0, 1.0);
            let ring = (d - outer * 0.45).abs() < 1.6;
            let (pr, pg, pb) = if ring { (0xff, 0xff, 0xff) } else { (r, g, b) };
            px.extend_from_slice(&[pr, pg, pb, (alpha * 255.0) as u8]);
        }
    }
    px
}

/// The tray icon and its menu.
pub(crate) struct Tray {
    icon: TrayIcon,
    connect: MenuItem,
    disconnect: MenuItem,
    open: MenuItem,
    enroll: MenuItem,
    quit: MenuItem,
    rx: mpsc::Receiver<TrayCommand>,
    /// What the tray shows now (icon tone, tooltip, running).
    shown: Option<(Tone, String, bool)>,
}

impl Tray {
    /// Create the icon; `wake` is called after each tray event so the app
    /// looks at [`Tray::poll`] even while its window is hidden.
    pub(crate) fn new(lang: Lang, wake: Arc<dyn Fn() + Send + Sync>) -> Result<Tray, String> {
        host_available()?;
        let connect = MenuItem::with_id(ID_CONNECT, Msg::Connect.text(lang), true, None);
        let disconnect = MenuItem::with_id(ID_DISCONNECT, Msg::Disconnect.text(lang), false, None);
        let open = MenuItem::with_id(ID_OPEN, Msg::TrayOpen.text(lang), true, None);
        let enroll = MenuItem::with_id(ID_ENROLL, Msg::MenuEnroll.text(lang), true, None);
        let quit = MenuItem::with_id(ID_QUIT, Msg::TrayQuit.text(lang), true, None);
        let menu = Menu::new();
        menu.append_items(&[
            &connect,
            &disconnect,
            &PredefinedMenuItem::separator(),
            &open,
            &enroll,
            &quit,
        ])
        .map_err(|e| e.to_string())?;

        let (tx, rx) = mpsc::channel();
        let (menu_tx, menu_wake) = (tx.clone(), wake.clone());
        MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
            if let Some(cmd) = command_of(e.id().as_ref()) {
                let _ = menu_tx.send(cmd);
                menu_wake();
            }
        }));
        TrayIconEvent::set_event_handler(Some(move |e: TrayIconEvent| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = e
            {
                let _ = tx.send(TrayCommand::Open);
                wake();
            }
        }));

        let icon = TrayIconBuilder::new()
            .with_id("pra")
            .with_title("PRA")
            .with_tooltip("PRA")
            .with_icon(make_icon(Tone::Off)?)
            .with_menu(Box::new(menu))
            .with_menu_on_left_click(false)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Tray {
            icon,
            connect,
            disconnect,
            open,
            enroll,
            quit,
            rx,
            shown: None,
        })
    }

    /// Commands chosen since the last call.
    pub(crate) fn poll(&self) -> Vec<TrayCommand> {
        self.rx.try_iter().collect()
    }

    /// Show the state: icon colour, tooltip, which of Connect/Disconnect
    /// works. Only changes reach the tray (on Linux each is a D-Bus round
    /// trip to the tray's thread, so frames do not repeat them).
    pub(crate) fn show(&mut self, tone: Tone, tooltip: &str, running: bool) {
        let next = (tone, tooltip.to_string(), running);
        if self.shown.as_ref() == Some(&next) {
            return;
        }
        if self.shown.as_ref().map(|s| s.0) != Some(tone) {
            match make_icon(tone) {
                Ok(i) => {
                    if let Err(e) = self.icon.set_icon(Some(i)) {
                        tracing::warn!(%e, "cannot change the tray icon");
                    }
                }
                Err(e) => tracing::warn!(%e, "cannot draw the tray icon"),
            }
        }
        if self.shown.as_ref().map(|s| s.1.as_str()) != Some(tooltip) {
            let _ = self.icon.set_tooltip(Some(format!("PRA — {tooltip}")));
        }
        if self.shown.as_ref().map(|s| s.2) != Some(running) {
            self.connect.set_enabled(!running);
            self.disconnect.set_enabled(running);
        }
        self.shown = Some(next);
    }

    /// Change the menu's language.
    pub(crate) fn set_lang(&mut self, lang: Lang) {
        self.shown = None;
        self.connect.set_text(Msg::Connect.text(lang));
        self.disconnect.set_text(Msg::Disconnect.text(lang));
        self.open.set_text(Msg::TrayOpen.text(lang));
        self.enroll.set_text(Msg::MenuEnroll.text(lang));
        self.quit.set_text(Msg::TrayQuit.text(lang));
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        MenuEvent::set_event_handler(None::<fn(MenuEvent)>);
        TrayIconEvent::set_event_handler(None::<fn(TrayIconEvent)>);
    }
}

fn make_icon(tone: Tone) -> Result<Icon, String> {
    Icon::from_rgba(icon_rgba(tone), ICON_SIZE, ICON_SIZE).map_err(|e| e.to_string())
}

/// Is there a StatusNotifier host to show the icon? (Linux: ask D-Bus.)
#[cfg(target_os = "linux")]
fn host_available() -> Result<(), String> {
    const WATCHER: &str = "org.kde.StatusNotifierWatcher";
    let conn =
        zbus::blocking::Connection::session().map_err(|e| format!("no D-Bus session bus ({e})"))?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(|e| e.to_string())?;
    let name = zbus::names::BusName::try_from(WATCHER).map_err(|e| e.to_string())?;
    if !dbus.name_has_owner(name).map_err(|e| e.to_string())? {
        return Err("no StatusNotifier host (system tray) on this desktop".into());
    }
    let watcher = zbus::blocking::Proxy::new(&conn, WATCHER, "/StatusNotifierWatcher", WATCHER)
        .map_err(|e| e.to_string())?;
    match watcher.get_property::<bool>("IsStatusNotifierHostRegistered") {
        Ok(true) => Ok(()),
        Ok(false) => Err("a StatusNotifier watcher runs but no tray shows its icons".into()),
        Err(e) => Err(format!("cannot ask the StatusNotifier watcher ({e})")),
    }
}

/// Windows and macOS always have a notification area / menu bar.
#[cfg(not(target_os = "linux"))]
fn host_available() -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_differ_by_state_and_are_round() {
        let on = icon_rgba(Tone::Good);
        let off = icon_rgba(Tone::Off);
        assert_eq!(on.len(), (ICON_SIZE * ICON_SIZE * 4) as usize);
        assert_ne!(on, off);
        assert_eq!(on, icon_rgba(Tone::Good));
        // Corners transparent, centre opaque.
        assert_eq!(on[3], 0);
        let mid = ((ICON_SIZE / 2 * ICON_SIZE + ICON_SIZE / 2) * 4) as usize;
        assert_eq!(on[mid + 3], 255);
        assert!(Icon::from_rgba(on, ICON_SIZE, ICON_SIZE).is_ok());
    }

    #[test]
    fn menu_ids() {
        for (id, cmd) in [
            (ID_CONNECT, TrayCommand::Connect),
            (ID_DISCONNECT, TrayCommand::Disconnect),
            (ID_OPEN, TrayCommand::Open),
            (ID_ENROLL, TrayCommand::Enroll),
            (ID_QUIT, TrayCommand::Quit),
        ] {
            assert_eq!(command_of(id), Some(cmd));
        }
        assert_eq!(command_of("other"), None);
    }
}
