//! Settings → Server: the gateway address and its pinned host key.

use super::parts::{Action, Job, field};
use crate::backend::ConfigView;
use crate::i18n::{Lang, Msg, fill};
use crate::widgets::ok_text;
use eframe::egui::Ui;

#[derive(Default)]
pub(crate) struct ServerDialog {
    address: String,
    /// The alternate gateways (shown; the backend keeps them on save).
    alternates: String,
    host_key: String,
    /// Saving; on success the notes `pra server set` would print.
    pub(super) job: Job<Vec<String>>,
}

impl ServerDialog {
    /// Filled from the config.
    pub(super) fn new(cfg: Option<&ConfigView>) -> ServerDialog {
        ServerDialog {
            address: cfg.and_then(|c| c.gateway.clone()).unwrap_or_default(),
            alternates: cfg.map(|c| c.alternates.join(", ")).unwrap_or_default(),
            host_key: cfg.and_then(|c| c.host_key.clone()).unwrap_or_default(),
            ..ServerDialog::default()
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        field(ui, Msg::ServerAddress.text(lang), &mut self.address, false);
        if !self.alternates.is_empty() {
            ui.small(fill(
                Msg::ServerAlternates.text(lang),
                &[("gateways", &self.alternates)],
            ));
        }
        field(ui, Msg::ServerHostKey.text(lang), &mut self.host_key, false);
        ui.small(Msg::ServerHostKeyHint.text(lang));
        ui.add_space(6.0);
        self.job.ui(ui, lang, |ui, notes| {
            ok_text(ui, Msg::ServerSaved.text(lang));
            for n in notes {
                ui.label(n);
            }
        });
        let primary = Some((Msg::Save, true));
        self.job.buttons(ui, lang, primary, Msg::Close, || {
            let pin = self.host_key.trim();
            Action::SaveServer {
                address: self.address.trim().to_string(),
                host_key: (!pin.is_empty()).then(|| pin.to_string()),
            }
        })
    }
}
