//! The app's dialogs, one modal at a time. Each draws itself and returns an
//! [`Action`] for the app to hand to the backend; results come back through
//! [`Dialog::accept`]. Passphrase buffers are wiped after use.
//!
//! One module per dialog; what they share (actions, facts, fields, a
//! request in flight, the button row) is in [`parts`]. The dialogs import
//! only `parts` and each other's leaves, never this module, so the import
//! graph stays free of circles.

mod about;
mod doctor;
mod enroll;
mod export;
mod generate;
mod key_state;
mod logs;
mod parts;
mod passphrase;
mod server;
mod submit;

pub(crate) use parts::{Action, Facts};

use crate::backend::{ConfigView, KeyView, Outcome};
use crate::i18n::Msg;
use crate::view::Problem;
use doctor::DoctorDialog;
use eframe::egui;
use enroll::EnrollDialog;
use export::ExportDialog;
use generate::GenDialog;
use key_state::KeyStateDialog;
use logs::LogsDialog;
use passphrase::PassDialog;
use server::ServerDialog;
use submit::SubmitDialog;

/// The open dialog, named after its menu item.
pub(crate) enum Dialog {
    Passphrase(PassDialog),
    Server(ServerDialog),
    Generate(GenDialog),
    Export(ExportDialog),
    Submit(SubmitDialog),
    KeyState(KeyStateDialog),
    Enroll(EnrollDialog),
    Doctor(DoctorDialog),
    Logs(LogsDialog),
    About,
}

impl Dialog {
    /// The passphrase asked on Connect.
    pub(crate) fn passphrase() -> Dialog {
        Dialog::Passphrase(PassDialog::default())
    }

    /// Settings → Server, filled from the config.
    pub(crate) fn server(cfg: Option<&ConfigView>) -> Dialog {
        Dialog::Server(ServerDialog::new(cfg))
    }

    /// Key → Generate (the user name of an existing key filled in).
    pub(crate) fn generate(key: Option<&Result<KeyView, Problem>>) -> Dialog {
        Dialog::Generate(GenDialog::new(key))
    }

    /// Key → Export, with a file in the user's Documents folder.
    pub(crate) fn export(key: Option<&Result<KeyView, Problem>>) -> Dialog {
        Dialog::Export(ExportDialog::new(key))
    }

    /// Key → Submit, with the remembered registry URL.
    pub(crate) fn submit(cfg: Option<&ConfigView>) -> Dialog {
        Dialog::Submit(SubmitDialog::new(cfg))
    }

    /// Key → Show key state, with the remembered registry URL.
    pub(crate) fn key_state(cfg: Option<&ConfigView>) -> Dialog {
        Dialog::KeyState(KeyStateDialog::new(cfg))
    }

    /// Key → Enroll with an invite (also the main window's and the tray's).
    pub(crate) fn enroll() -> Dialog {
        Dialog::Enroll(EnrollDialog::default())
    }

    /// Help → Run diagnostics, its first run started.
    pub(crate) fn doctor_running() -> Dialog {
        Dialog::Doctor(DoctorDialog::running())
    }

    /// Help → Export logs, with a file in the user's Documents folder.
    pub(crate) fn logs() -> Dialog {
        Dialog::Logs(LogsDialog::new())
    }

    /// Take a backend result meant for this dialog. Returns false when the
    /// outcome is not for it.
    pub(crate) fn accept(&mut self, o: &Outcome) -> bool {
        match (self, o) {
            (Dialog::Server(d), Outcome::ServerSaved(r)) => d.job.finish(r),
            (Dialog::Generate(d), Outcome::Generated(r)) => d.finish(r),
            (Dialog::Export(d), Outcome::Exported(r)) => d.job.finish(r),
            (Dialog::Submit(d), Outcome::Submitted(r)) => d.finish(r),
            (Dialog::KeyState(d), Outcome::KeyStatus(r)) => d.job.finish(r),
            (Dialog::Enroll(d), Outcome::Enrolled(r)) => d.finish(r),
            (Dialog::Doctor(d), Outcome::DoctorCheck(c)) => d.check(c),
            (Dialog::Doctor(d), Outcome::DoctorDone(r)) => d.done(r),
            (Dialog::Logs(d), Outcome::LogsExported(r)) => d.job.finish(r),
            _ => return false,
        }
        true
    }

    /// Draw the dialog; the returned action is for the app to carry out.
    pub(crate) fn show(&mut self, ctx: &egui::Context, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        let title = match self {
            Dialog::Passphrase(_) => Msg::PassTitle,
            Dialog::Server(_) => Msg::ServerTitle,
            Dialog::Generate(_) => Msg::GenTitle,
            Dialog::Export(_) => Msg::ExportTitle,
            Dialog::Submit(_) => Msg::SubmitTitle,
            Dialog::KeyState(_) => Msg::StateTitle,
            Dialog::Enroll(_) => Msg::EnrollTitle,
            Dialog::Doctor(_) => Msg::DoctorTitle,
            Dialog::Logs(_) => Msg::LogsTitle,
            Dialog::About => Msg::AboutTitle,
        };
        let mut action = None;
        let modal = egui::Modal::new(egui::Id::unique("pra-dialog")).show(ctx, |ui| {
            ui.set_max_width(520.0);
            ui.heading(title.text(lang));
            ui.add_space(6.0);
            action = match self {
                Dialog::Passphrase(d) => d.ui(ui, lang),
                Dialog::Server(d) => d.ui(ui, lang),
                Dialog::Generate(d) => d.ui(ui, f),
                Dialog::Export(d) => d.ui(ui, lang),
                Dialog::Submit(d) => d.ui(ui, f),
                Dialog::KeyState(d) => d.ui(ui, f),
                Dialog::Enroll(d) => d.ui(ui, f),
                Dialog::Doctor(d) => d.ui(ui, lang),
                Dialog::Logs(d) => d.ui(ui, lang),
                Dialog::About => about::ui(ui, f),
            };
        });
        if action.is_none() && modal.should_close() {
            action = Some(Action::Close);
        }
        action
    }
}
