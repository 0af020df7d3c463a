//! Key → Generate: the PC-bound key of an account, what `pra keygen` does.

use super::parts::{Action, Facts, Job, Secret, field, take_pass};
use crate::backend::KeyView;
use crate::i18n::{Msg, fill};
use crate::widgets::ok_text;
use eframe::egui::Ui;
use zeroize::Zeroize;

#[derive(Default)]
pub(crate) struct GenDialog {
    user: String,
    pass: Secret,
    again: Secret,
    force: bool,
    job: Job<KeyView>,
}

impl GenDialog {
    /// The user name of an existing key filled in.
    pub(super) fn new(key: Option<&Result<KeyView, crate::view::Problem>>) -> GenDialog {
        GenDialog {
            user: key
                .and_then(|k| k.as_ref().ok())
                .map(|k| k.user.clone())
                .unwrap_or_default(),
            ..GenDialog::default()
        }
    }

    pub(super) fn finish(&mut self, r: &Result<KeyView, crate::view::Problem>) {
        if r.is_ok() {
            self.pass.zeroize();
            self.again.zeroize();
        }
        self.job.finish(r);
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        if let Some(done) = self.job.ok() {
            ok_text(ui, fill(Msg::GenDone.text(lang), &[("user", &done.user)]));
            ui.monospace(&done.fingerprint);
            ui.label(format!("{}: {}", Msg::KeyBound.text(lang), done.bound));
            ui.add_space(6.0);
            ui.label(Msg::GenNext.text(lang));
            return ui
                .button(Msg::Close.text(lang))
                .clicked()
                .then_some(Action::Close);
        }
        let existing = f.key.and_then(|k| k.as_ref().ok());
        if let Some(k) = existing {
            ui.label(fill(
                Msg::GenExisting.text(lang),
                &[("fingerprint", &k.fingerprint), ("user", &k.user)],
            ));
        }
        field(ui, Msg::GenUser.text(lang), &mut self.user, false);
        field(ui, Msg::GenPass.text(lang), &mut self.pass, true);
        field(ui, Msg::GenPassAgain.text(lang), &mut self.again, true);
        if existing.is_some() {
            ui.checkbox(&mut self.force, Msg::GenForce.text(lang));
        }
        self.job.ui(ui, lang, |_, _| {});
        let primary = Some((Msg::GenButton, true));
        self.job
            .buttons(ui, lang, primary, Msg::Cancel, || Action::Generate {
                user: self.user.trim().to_string(),
                pass: take_pass(&mut self.pass),
                again: take_pass(&mut self.again),
                force: self.force,
            })
    }
}
