//! Help → About PRA: version and data folder.

use super::parts::{Action, Facts};
use crate::i18n::{Msg, fill};
use eframe::egui::Ui;

pub(super) fn ui(ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
    let lang = f.lang;
    ui.label(Msg::AboutText.text(lang));
    ui.label(fill(
        Msg::Version.text(lang),
        &[("version", env!("CARGO_PKG_VERSION"))],
    ));
    ui.label(fill(
        Msg::DataFolder.text(lang),
        &[("path", &f.home.display().to_string())],
    ));
    ui.add_space(6.0);
    ui.button(Msg::Close.text(lang))
        .clicked()
        .then_some(Action::Close)
}
