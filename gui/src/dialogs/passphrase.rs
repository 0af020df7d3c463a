//! The passphrase asked on Connect when none is given or remembered.

use super::parts::{Action, Pressed, Secret, buttons, field, take_pass};
use crate::i18n::{Lang, Msg};
use eframe::egui::{self, Ui};

#[derive(Default)]
pub(crate) struct PassDialog {
    text: Secret,
    remember: bool,
    /// The field got the keyboard focus once (on the first frame).
    focused: bool,
}

impl PassDialog {
    pub(super) fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        let r = field(ui, Msg::PassPrompt.text(lang), &mut self.text, true);
        if !self.focused {
            r.request_focus();
            self.focused = true;
        }
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.checkbox(&mut self.remember, Msg::Remember.text(lang));
        ui.small(Msg::RememberHint.text(lang));
        ui.add_space(6.0);
        let pressed = buttons(ui, lang, Some((Msg::Connect, true)), Msg::Cancel);
        match pressed {
            Some(Pressed::Close) => Some(Action::Close),
            _ if pressed == Some(Pressed::Primary) || enter => Some(Action::Connect {
                pass: take_pass(&mut self.text),
                remember: self.remember,
            }),
            _ => None,
        }
    }
}
