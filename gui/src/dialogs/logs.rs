//! Help → Export logs for helpdesk: the bundle of `pra logs export FILE`.

use super::parts::{Action, Job, Secret, documents, field, take_optional_pass};
use crate::i18n::{Lang, Msg, fill};
use crate::widgets::ok_text;
use eframe::egui::Ui;
use std::path::PathBuf;

#[derive(Default)]
pub(crate) struct LogsDialog {
    path: String,
    pass: Secret,
    /// The zip written, and the doctor's summary.
    pub(super) job: Job<(PathBuf, String)>,
}

impl LogsDialog {
    /// A time-stamped file in the user's Documents folder.
    pub(super) fn new() -> LogsDialog {
        let stamp: String = pra_client::clock::utc(pra_client::keystore::unix_now())
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let name = format!(
            "pra-logs-{}-{}.zip",
            stamp.get(..8).unwrap_or("0"),
            stamp.get(8..).unwrap_or("0")
        );
        LogsDialog {
            path: documents().join(name).display().to_string(),
            ..LogsDialog::default()
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        ui.label(Msg::LogsText.text(lang));
        field(ui, Msg::ExportFile.text(lang), &mut self.path, false);
        field(ui, Msg::DoctorPass.text(lang), &mut self.pass, true);
        self.job.ui(ui, lang, |ui, (p, summary)| {
            ok_text(
                ui,
                fill(
                    Msg::LogsDone.text(lang),
                    &[("path", &p.display().to_string())],
                ),
            );
            ui.label(summary);
        });
        let primary = Some((Msg::ExportButton, !self.path.trim().is_empty()));
        self.job
            .buttons(ui, lang, primary, Msg::Close, || Action::ExportLogs {
                path: PathBuf::from(self.path.trim()),
                pass: take_optional_pass(&mut self.pass),
            })
    }
}
