//! Key → Submit to registry: what `pra key submit` does, over HTTP.

use super::parts::{Action, Facts, Job, Secret, field, take_optional_pass};
use crate::backend::ConfigView;
use crate::i18n::{Msg, fill};
use crate::view::Problem;
use crate::widgets::ok_text;
use eframe::egui::Ui;
use pra_client::registry_client::Submitted;
use pra_proto::api::KeyStatus;

#[derive(Default)]
pub(crate) struct SubmitDialog {
    url: String,
    pass: Secret,
    job: Job<Submitted>,
}

impl SubmitDialog {
    /// With the remembered registry URL.
    pub(super) fn new(cfg: Option<&ConfigView>) -> SubmitDialog {
        SubmitDialog {
            url: cfg.and_then(|c| c.registry.clone()).unwrap_or_default(),
            ..SubmitDialog::default()
        }
    }

    /// The URL as the library normalized and remembered it.
    pub(super) fn finish(&mut self, r: &Result<Submitted, Problem>) {
        if let Ok(s) = r {
            self.url = s.url.clone();
        }
        self.job.finish(r);
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        if let Some(Ok(k)) = f.key {
            ui.label(format!("{} ({})", k.fingerprint, k.user));
        }
        field(ui, Msg::RegistryUrl.text(lang), &mut self.url, false);
        field(ui, Msg::PassPrompt.text(lang), &mut self.pass, true);
        self.job.ui(ui, lang, |ui, s| match s.reply.status {
            KeyStatus::Pending => ok_text(
                ui,
                fill(
                    Msg::SubmitPending.text(lang),
                    &[("fingerprint", &s.fingerprint)],
                ),
            ),
            KeyStatus::Approved => ok_text(ui, Msg::SubmitApproved.text(lang)),
            KeyStatus::Revoked => {
                ui.label(Msg::KsRevoked.text(lang));
            }
        });
        let primary = Some((Msg::SubmitButton, !self.url.trim().is_empty()));
        self.job
            .buttons(ui, lang, primary, Msg::Close, || Action::Submit {
                url: self.url.trim().to_string(),
                pass: take_optional_pass(&mut self.pass),
            })
    }
}
