//! What every dialog uses: the [`Action`] it hands back, the [`Facts`] it
//! shows, passphrase buffers that are wiped, labelled fields, a request in
//! flight with its result ([`Job`]) and the row of buttons.

use crate::backend::KeyView;
use crate::i18n::{Lang, Msg};
use crate::view::Problem;
use crate::widgets::problem_ui;
use eframe::egui::{self, Ui};
use pra_client::passphrase::Passphrase;
use std::path::PathBuf;
use zeroize::{Zeroize, Zeroizing};

/// What a dialog asks the app to do.
#[derive(Debug)]
pub(crate) enum Action {
    Close,
    /// Connect with this passphrase; `remember` stores it in the
    /// credential store once it opened the key.
    Connect {
        pass: Passphrase,
        remember: bool,
    },
    /// Settings → Server: `HOST[:PORT]` and the pin (`None`: keep it, or
    /// trust on first use).
    SaveServer {
        address: String,
        host_key: Option<String>,
    },
    /// Key → Generate; `force` replaces an existing key.
    Generate {
        user: String,
        pass: Passphrase,
        again: Passphrase,
        force: bool,
    },
    /// Key → Export public key: the hand-over file.
    Export(PathBuf),
    /// Key → Submit to registry (`pass` `None`: the remembered one).
    Submit {
        url: String,
        pass: Option<Passphrase>,
    },
    /// Key → Show key state: ask the registry (`pass` as for Submit).
    AskStatus {
        url: String,
        pass: Option<Passphrase>,
    },
    /// Help → Run diagnostics (`pass` `None`: the remembered one, or the
    /// key checks are skipped).
    RunDoctor {
        pass: Option<Passphrase>,
    },
    /// Help → Export logs: the zip file, and the passphrase for the
    /// doctor's key checks.
    ExportLogs {
        path: PathBuf,
        pass: Option<Passphrase>,
    },
    /// Key → Enroll with an invite: the pasted invite (trimmed), the new
    /// key's passphrase twice (for a key of the same user already here:
    /// its passphrase, empty for the remembered one), remember it on this
    /// PC, replace another user's key.
    Enroll {
        invite: String,
        pass: Passphrase,
        again: Passphrase,
        remember: bool,
        force: bool,
    },
}

/// Facts the dialogs show.
pub(crate) struct Facts<'a> {
    pub(crate) lang: Lang,
    /// The stored key, or why there is none (`None` until the backend read it).
    pub(crate) key: Option<&'a Result<KeyView, Problem>>,
    /// The client's folder (About).
    pub(crate) home: &'a std::path::Path,
}

/// A text buffer for a passphrase field, wiped when dropped.
pub(crate) type Secret = Zeroizing<String>;

/// Take a passphrase out of a text buffer, wiping the buffer.
pub(crate) fn take_pass(buf: &mut String) -> Passphrase {
    let p = Passphrase::new(buf.as_str());
    buf.zeroize();
    p
}

/// `None` for an empty buffer (use the remembered passphrase).
pub(crate) fn take_optional_pass(buf: &mut String) -> Option<Passphrase> {
    if buf.is_empty() {
        None
    } else {
        Some(take_pass(buf))
    }
}

/// A label and a one-line text field labelled by it (screen readers and
/// the UI tests find the field by its label).
pub(crate) fn field(ui: &mut Ui, label: &str, text: &mut String, password: bool) -> egui::Response {
    let l = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .password(password)
            .desired_width(420.0),
    )
    .labelled_by(l.id)
}

/// A spinner and what is being done (`Msg::Working`: "Working …").
pub(crate) fn busy_ui(ui: &mut Ui, lang: Lang, what: Msg) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(what.text(lang));
    });
}

/// A request a dialog handed to the backend: in flight, and its last result.
pub(crate) struct Job<T> {
    busy: bool,
    result: Option<Result<T, Problem>>,
}

impl<T> Default for Job<T> {
    fn default() -> Job<T> {
        Job {
            busy: false,
            result: None,
        }
    }
}

impl<T: Clone> Job<T> {
    /// The request was handed over: the old result goes.
    pub(crate) fn start(&mut self) {
        self.busy = true;
        self.result = None;
    }

    /// The backend's answer.
    pub(crate) fn finish(&mut self, r: &Result<T, Problem>) {
        self.busy = false;
        self.result = Some(r.clone());
    }

    pub(crate) fn ok(&self) -> Option<&T> {
        self.result.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// The result (a success drawn by `done`, a failure as code and fix),
    /// then "Working …" while the request runs.
    pub(crate) fn ui(&self, ui: &mut Ui, lang: Lang, done: impl FnOnce(&mut Ui, &T)) {
        self.ui_busy_as(ui, lang, Msg::Working, done);
    }

    /// [`Job::ui`] with `busy` saying what is being done.
    pub(crate) fn ui_busy_as(
        &self,
        ui: &mut Ui,
        lang: Lang,
        busy: Msg,
        done: impl FnOnce(&mut Ui, &T),
    ) {
        match &self.result {
            Some(Ok(v)) => done(ui, v),
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => {}
        }
        if self.busy {
            busy_ui(ui, lang, busy);
        }
    }
}

impl<T: Clone> Job<T> {
    /// The row of buttons for a dialog whose `primary` button (clickable
    /// when its flag is true and no request runs) starts this job with
    /// the action `act` makes.
    pub(crate) fn buttons(
        &mut self,
        ui: &mut Ui,
        lang: Lang,
        primary: Option<(Msg, bool)>,
        close: Msg,
        act: impl FnOnce() -> Action,
    ) -> Option<Action> {
        let primary = primary.map(|(msg, ready)| (msg, ready && !self.busy));
        match buttons(ui, lang, primary, close)? {
            Pressed::Primary => {
                self.start();
                Some(act())
            }
            Pressed::Close => Some(Action::Close),
        }
    }
}

/// Which of a dialog's buttons was pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pressed {
    Primary,
    Close,
}

/// The dialog's row of buttons: `primary` (clickable when its flag is
/// true; none when `None`), then `close` (Close or Cancel).
pub(crate) fn buttons(
    ui: &mut Ui,
    lang: Lang,
    primary: Option<(Msg, bool)>,
    close: Msg,
) -> Option<Pressed> {
    let mut pressed = None;
    ui.horizontal(|ui| {
        if let Some((msg, enabled)) = primary
            && ui
                .add_enabled(enabled, egui::Button::new(msg.text(lang)))
                .clicked()
        {
            pressed = Some(Pressed::Primary);
        }
        if ui.button(close.text(lang)).clicked() {
            pressed = Some(Pressed::Close);
        }
    });
    pressed
}

/// The user's `Documents` folder, else the home folder.
pub(crate) fn documents() -> PathBuf {
    let home = std::env::var_os("USERPROFILE")
        .filter(|_| cfg!(windows))
        .or_else(|| std::env::var_os("HOME"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let docs = home.join("Documents");
    if docs.is_dir() { docs } else { home }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_buffers_are_wiped_when_taken() {
        let mut buf = String::from("secret words");
        let p = take_pass(&mut buf);
        assert_eq!(p.expose(), "secret words");
        assert!(buf.is_empty());
        assert!(take_optional_pass(&mut buf).is_none());
    }
}
