//! Key → Show key state: the key's facts and, on request, the registry's
//! answer about it.

use super::parts::{Action, Facts, Job, Secret, busy_ui, field, take_optional_pass};
use crate::backend::ConfigView;
use crate::i18n::{Lang, Msg};
use crate::widgets::problem_ui;
use eframe::egui::{self, Ui};
use pra_proto::api::{KeyStatus, KeyStatusReply};

#[derive(Default)]
pub(crate) struct KeyStateDialog {
    url: String,
    pass: Secret,
    pub(super) job: Job<KeyStatusReply>,
}

/// The registry's answer in words.
pub(crate) fn status_text(lang: Lang, s: KeyStatus) -> &'static str {
    match s {
        KeyStatus::Pending => Msg::KsPending.text(lang),
        KeyStatus::Approved => Msg::KsApproved.text(lang),
        KeyStatus::Revoked => Msg::KsRevoked.text(lang),
    }
}

impl KeyStateDialog {
    /// With the remembered registry URL.
    pub(super) fn new(cfg: Option<&ConfigView>) -> KeyStateDialog {
        KeyStateDialog {
            url: cfg.and_then(|c| c.registry.clone()).unwrap_or_default(),
            ..KeyStateDialog::default()
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        let mut has_key = false;
        match f.key {
            Some(Ok(k)) => {
                has_key = true;
                egui::Grid::new("key-state").num_columns(2).show(ui, |ui| {
                    ui.label(Msg::KeyFingerprint.text(lang));
                    ui.monospace(&k.fingerprint);
                    ui.end_row();
                    ui.label(Msg::KeyUser.text(lang));
                    ui.label(&k.user);
                    ui.end_row();
                    ui.label(Msg::KeyCreated.text(lang));
                    ui.label(pra_client::clock::utc(k.created));
                    ui.end_row();
                    ui.label(Msg::KeyBound.text(lang));
                    ui.label(&k.bound);
                    ui.end_row();
                    ui.label(Msg::KeyRegistry.text(lang));
                    match self.job.ok() {
                        Some(r) => ui.label(status_text(lang, r.status)),
                        None => ui.weak(Msg::KsUnknown.text(lang)),
                    };
                    ui.end_row();
                });
            }
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => busy_ui(ui, lang, Msg::Working),
        }
        if has_key {
            ui.add_space(6.0);
            field(ui, Msg::RegistryUrl.text(lang), &mut self.url, false);
            field(ui, Msg::PassPrompt.text(lang), &mut self.pass, true);
        }
        // The answer itself is in the grid above.
        self.job.ui(ui, lang, |_, _| {});
        let primary = has_key.then_some((Msg::AskRegistry, !self.url.trim().is_empty()));
        self.job
            .buttons(ui, lang, primary, Msg::Close, || Action::AskStatus {
                url: self.url.trim().to_string(),
                pass: take_optional_pass(&mut self.pass),
            })
    }
}
