//! Key → Export public key: the hand-over file of `pra key export FILE`.

use super::parts::{Action, Job, documents, field};
use crate::backend::KeyView;
use crate::i18n::{Lang, Msg, fill};
use crate::view::Problem;
use crate::widgets::ok_text;
use eframe::egui::Ui;
use std::path::PathBuf;

#[derive(Default)]
pub(crate) struct ExportDialog {
    path: String,
    pub(super) job: Job<PathBuf>,
}

impl ExportDialog {
    /// A file named after the key's user in the user's Documents folder.
    pub(super) fn new(key: Option<&Result<KeyView, Problem>>) -> ExportDialog {
        let user = key
            .and_then(|k| k.as_ref().ok())
            .map(|k| k.user.as_str())
            .unwrap_or("key");
        ExportDialog {
            path: default_export_path(user).display().to_string(),
            ..ExportDialog::default()
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        field(ui, Msg::ExportFile.text(lang), &mut self.path, false);
        self.job.ui(ui, lang, |ui, p| {
            ok_text(
                ui,
                fill(
                    Msg::ExportDone.text(lang),
                    &[("path", &p.display().to_string())],
                ),
            );
        });
        let primary = Some((Msg::ExportButton, !self.path.trim().is_empty()));
        self.job.buttons(ui, lang, primary, Msg::Close, || {
            Action::Export(PathBuf::from(self.path.trim()))
        })
    }
}

/// `Documents` (or the home folder) + `pra-key-USER.txt`.
fn default_export_path(user: &str) -> PathBuf {
    let safe: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    documents().join(format!("pra-key-{safe}.txt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_path_is_a_safe_file_name() {
        let p = default_export_path("alice/../x y");
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        assert_eq!(name.as_deref(), Some("pra-key-alice_.._x_y.txt"));
    }
}
