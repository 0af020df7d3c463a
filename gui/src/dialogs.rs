//! The app's dialogs, one modal at a time. Each draws itself and returns an
//! [`Action`] for the app to hand to the backend; results come back through
//! [`Dialog::accept`]. Passphrase buffers are wiped after use.

use crate::backend::{ConfigView, KeyView, Outcome};
use crate::i18n::{Lang, Msg, fill};
use crate::view::{Problem, Tone};
use eframe::egui::{self, Color32, RichText, Ui};
use pra_client::doctor::{Check, Status};
use pra_client::passphrase::Passphrase;
use pra_client::registry_client::Submitted;
use pra_proto::api::{KeyStatus, KeyStatusReply};
use std::path::PathBuf;
use zeroize::{Zeroize, Zeroizing};

/// What a dialog asks the app to do.
#[derive(Debug)]
pub enum Action {
    /// Close the dialog.
    Close,
    /// Connect with this passphrase.
    Connect {
        /// The passphrase.
        pass: Passphrase,
        /// Store it in the credential store.
        remember: bool,
    },
    /// Save the gateway address and pin.
    SaveServer {
        /// `HOST[:PORT]`.
        address: String,
        /// `SHA256:…`, `None` = keep / trust on first use.
        host_key: Option<String>,
    },
    /// Generate a key.
    Generate {
        /// Account.
        user: String,
        /// Passphrase.
        pass: Passphrase,
        /// Passphrase again.
        again: Passphrase,
        /// Replace an existing key.
        force: bool,
    },
    /// Write the hand-over file.
    Export(PathBuf),
    /// Submit the key.
    Submit {
        /// Registry URL.
        url: String,
        /// Passphrase (`None`: the remembered one).
        pass: Option<Passphrase>,
    },
    /// Ask the registry for the key's status.
    AskStatus {
        /// Registry URL.
        url: String,
        /// Passphrase (`None`: the remembered one).
        pass: Option<Passphrase>,
    },
    /// Run the doctor.
    RunDoctor {
        /// Passphrase for the key checks (`None`: the remembered one, or skip them).
        pass: Option<Passphrase>,
    },
    /// Write the helpdesk bundle.
    ExportLogs {
        /// The zip file.
        path: PathBuf,
        /// Passphrase for the doctor's key checks.
        pass: Option<Passphrase>,
    },
}

/// Facts the dialogs show.
pub struct Facts<'a> {
    /// UI language.
    pub lang: Lang,
    /// The stored key, or why there is none.
    pub key: Option<&'a Result<KeyView, Problem>>,
    /// `config.toml`.
    pub config: Option<&'a ConfigView>,
    /// The client's folder.
    pub home: &'a std::path::Path,
}

/// Passphrase on Connect.
#[derive(Default)]
pub struct PassDialog {
    text: Secret,
    remember: bool,
    focused: bool,
}

/// Settings → Server.
#[derive(Default)]
pub struct ServerDialog {
    address: String,
    host_key: String,
    busy: bool,
    result: Option<Result<Vec<String>, Problem>>,
}

/// Key → Generate.
#[derive(Default)]
pub struct GenDialog {
    user: String,
    pass: Secret,
    again: Secret,
    force: bool,
    busy: bool,
    result: Option<Result<KeyView, Problem>>,
}

/// Key → Export public key.
#[derive(Default)]
pub struct ExportDialog {
    path: String,
    busy: bool,
    result: Option<Result<PathBuf, Problem>>,
}

/// Key → Submit to registry.
#[derive(Default)]
pub struct SubmitDialog {
    url: String,
    pass: Secret,
    busy: bool,
    result: Option<Result<Submitted, Problem>>,
}

/// Key → Show key state.
#[derive(Default)]
pub struct KeyStateDialog {
    url: String,
    pass: Secret,
    busy: bool,
    status: Option<Result<KeyStatusReply, Problem>>,
}

/// Help → Run diagnostics.
#[derive(Default)]
pub struct DoctorDialog {
    pass: Secret,
    running: bool,
    checks: Vec<Check>,
    summary: Option<(bool, String)>,
}

/// Help → Export logs for helpdesk.
#[derive(Default)]
pub struct LogsDialog {
    path: String,
    pass: Secret,
    busy: bool,
    result: Option<Result<(PathBuf, String), Problem>>,
}

/// The open dialog.
pub enum Dialog {
    /// Passphrase on Connect.
    Passphrase(PassDialog),
    /// Settings → Server.
    Server(ServerDialog),
    /// Key → Generate.
    Generate(GenDialog),
    /// Key → Export public key.
    Export(ExportDialog),
    /// Key → Submit to registry.
    Submit(SubmitDialog),
    /// Key → Show key state.
    KeyState(KeyStateDialog),
    /// Help → Run diagnostics.
    Doctor(DoctorDialog),
    /// Help → Export logs for helpdesk.
    Logs(LogsDialog),
    /// Help → About.
    About,
}

/// A text buffer for a passphrase field, wiped when dropped.
type Secret = Zeroizing<String>;

/// Take a passphrase out of a text buffer, wiping the buffer.
fn take_pass(buf: &mut String) -> Passphrase {
    let p = Passphrase::new(buf.as_str());
    buf.zeroize();
    p
}

/// `None` for an empty buffer (use the remembered passphrase).
fn take_optional_pass(buf: &mut String) -> Option<Passphrase> {
    if buf.is_empty() {
        None
    } else {
        Some(take_pass(buf))
    }
}

impl Dialog {
    /// A fresh Server dialog filled from the config.
    pub fn server(cfg: Option<&ConfigView>) -> Dialog {
        Dialog::Server(ServerDialog {
            address: cfg.and_then(|c| c.gateway.clone()).unwrap_or_default(),
            host_key: cfg.and_then(|c| c.host_key.clone()).unwrap_or_default(),
            ..ServerDialog::default()
        })
    }

    /// A fresh Generate dialog (the user name of an existing key filled in).
    pub fn generate(key: Option<&Result<KeyView, Problem>>) -> Dialog {
        Dialog::Generate(GenDialog {
            user: key
                .and_then(|k| k.as_ref().ok())
                .map(|k| k.user.clone())
                .unwrap_or_default(),
            ..GenDialog::default()
        })
    }

    /// A fresh Export dialog with a file in the user's home folder.
    pub fn export(key: Option<&Result<KeyView, Problem>>) -> Dialog {
        let user = key
            .and_then(|k| k.as_ref().ok())
            .map(|k| k.user.as_str())
            .unwrap_or("key");
        Dialog::Export(ExportDialog {
            path: default_export_path(user).display().to_string(),
            ..ExportDialog::default()
        })
    }

    /// A fresh Submit dialog with the remembered registry URL.
    pub fn submit(cfg: Option<&ConfigView>) -> Dialog {
        Dialog::Submit(SubmitDialog {
            url: cfg.and_then(|c| c.registry.clone()).unwrap_or_default(),
            ..SubmitDialog::default()
        })
    }

    /// A fresh Key state dialog.
    pub fn key_state(cfg: Option<&ConfigView>) -> Dialog {
        Dialog::KeyState(KeyStateDialog {
            url: cfg.and_then(|c| c.registry.clone()).unwrap_or_default(),
            ..KeyStateDialog::default()
        })
    }

    /// A Doctor dialog whose first run has started.
    pub fn doctor_running() -> Dialog {
        Dialog::Doctor(DoctorDialog {
            running: true,
            ..DoctorDialog::default()
        })
    }

    /// A fresh Logs dialog with a file in the user's Documents folder.
    pub fn logs() -> Dialog {
        let stamp: String = pra_client::commands::key::utc(pra_client::keystore::unix_now())
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let name = format!(
            "pra-logs-{}-{}.zip",
            stamp.get(..8).unwrap_or("0"),
            stamp.get(8..).unwrap_or("0")
        );
        Dialog::Logs(LogsDialog {
            path: documents().join(name).display().to_string(),
            ..LogsDialog::default()
        })
    }

    /// Take a backend result meant for this dialog. Returns false when the
    /// outcome is not for it.
    pub fn accept(&mut self, o: &Outcome) -> bool {
        match (self, o) {
            (Dialog::Server(d), Outcome::ServerSaved(r)) => {
                d.busy = false;
                d.result = Some(r.clone());
            }
            (Dialog::Generate(d), Outcome::Generated(r)) => {
                d.busy = false;
                if r.is_ok() {
                    d.pass.zeroize();
                    d.again.zeroize();
                }
                d.result = Some(r.clone());
            }
            (Dialog::Export(d), Outcome::Exported(r)) => {
                d.busy = false;
                d.result = Some(r.clone());
            }
            (Dialog::Submit(d), Outcome::Submitted(r)) => {
                d.busy = false;
                if let Ok(s) = r {
                    d.url = s.url.clone();
                }
                d.result = Some(r.clone());
            }
            (Dialog::KeyState(d), Outcome::KeyStatus(r)) => {
                d.busy = false;
                d.status = Some(r.clone());
            }
            (Dialog::Doctor(d), Outcome::DoctorCheck(c)) => d.checks.push(c.clone()),
            (Dialog::Doctor(d), Outcome::DoctorDone(r)) => {
                d.running = false;
                d.checks = r.checks.clone();
                d.summary = Some((r.ok(), r.summary()));
            }
            (Dialog::Logs(d), Outcome::LogsExported(r)) => {
                d.busy = false;
                d.result = Some(r.clone());
            }
            _ => return false,
        }
        true
    }

    /// Draw the dialog; the returned action is for the app to carry out.
    pub fn show(&mut self, ctx: &egui::Context, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        let title = match self {
            Dialog::Passphrase(_) => Msg::PassTitle,
            Dialog::Server(_) => Msg::ServerTitle,
            Dialog::Generate(_) => Msg::GenTitle,
            Dialog::Export(_) => Msg::ExportTitle,
            Dialog::Submit(_) => Msg::SubmitTitle,
            Dialog::KeyState(_) => Msg::StateTitle,
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
                Dialog::Doctor(d) => d.ui(ui, lang),
                Dialog::Logs(d) => d.ui(ui, lang),
                Dialog::About => about_ui(ui, f),
            };
        });
        if action.is_none() && modal.should_close() {
            action = Some(Action::Close);
        }
        action
    }
}

/// The user's `Documents` folder, else the home folder.
fn documents() -> PathBuf {
    let home = std::env::var_os("USERPROFILE")
        .filter(|_| cfg!(windows))
        .or_else(|| std::env::var_os("HOME"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let docs = home.join("Documents");
    if docs.is_dir() { docs } else { home }
}

/// `Documents` (or the home folder) + `pra-key-USER.txt`.
pub fn default_export_path(user: &str) -> PathBuf {
    let dir = documents();
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
    dir.join(format!("pra-key-{safe}.txt"))
}

/// A label and a one-line text field labelled by it (screen readers and
/// the UI tests find the field by its label).
fn field(ui: &mut Ui, label: &str, text: &mut String, password: bool) -> egui::Response {
    let l = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .password(password)
            .desired_width(420.0),
    )
    .labelled_by(l.id)
}

/// The error block: code and what happened in red, then the fix.
pub fn problem_ui(ui: &mut Ui, lang: Lang, p: &Problem) {
    ui.label(
        RichText::new(format!("{} {}", p.label(), p.what))
            .color(Color32::from_rgb(0xd0, 0x30, 0x30)),
    );
    ui.label(format!("{}{}", Msg::FixPrefix.text(lang), p.fix(lang)));
}

fn busy_ui(ui: &mut Ui, lang: Lang) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(Msg::Working.text(lang));
    });
}

fn ok_text(ui: &mut Ui, text: impl Into<String>) {
    ui.label(RichText::new(text.into()).color(Color32::from_rgb(0x2e, 0x9d, 0x4a)));
}

impl PassDialog {
    fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        let r = field(ui, Msg::PassPrompt.text(lang), &mut self.text, true);
        if !self.focused {
            r.request_focus();
            self.focused = true;
        }
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.checkbox(&mut self.remember, Msg::Remember.text(lang));
        ui.small(Msg::RememberHint.text(lang));
        ui.add_space(6.0);
        let mut action = None;
        ui.horizontal(|ui| {
            if ui.button(Msg::Connect.text(lang)).clicked() || enter {
                action = Some(Action::Connect {
                    pass: take_pass(&mut self.text),
                    remember: self.remember,
                });
            }
            if ui.button(Msg::Cancel.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

impl ServerDialog {
    fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        field(ui, Msg::ServerAddress.text(lang), &mut self.address, false);
        field(ui, Msg::ServerHostKey.text(lang), &mut self.host_key, false);
        ui.small(Msg::ServerHostKeyHint.text(lang));
        ui.add_space(6.0);
        match &self.result {
            Some(Ok(notes)) => {
                ok_text(ui, Msg::ServerSaved.text(lang));
                for n in notes {
                    ui.label(n);
                }
            }
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => {}
        }
        if self.busy {
            busy_ui(ui, lang);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.busy, egui::Button::new(Msg::Save.text(lang)))
                .clicked()
            {
                self.busy = true;
                self.result = None;
                let pin = self.host_key.trim();
                action = Some(Action::SaveServer {
                    address: self.address.trim().to_string(),
                    host_key: (!pin.is_empty()).then(|| pin.to_string()),
                });
            }
            if ui.button(Msg::Close.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

impl GenDialog {
    fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        if let Some(Ok(done)) = &self.result {
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
        if let Some(Err(p)) = &self.result {
            problem_ui(ui, lang, p);
        }
        if self.busy {
            busy_ui(ui, lang);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.busy, egui::Button::new(Msg::GenButton.text(lang)))
                .clicked()
            {
                self.busy = true;
                self.result = None;
                action = Some(Action::Generate {
                    user: self.user.trim().to_string(),
                    pass: take_pass(&mut self.pass),
                    again: take_pass(&mut self.again),
                    force: self.force,
                });
            }
            if ui.button(Msg::Cancel.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

impl ExportDialog {
    fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        field(ui, Msg::ExportFile.text(lang), &mut self.path, false);
        match &self.result {
            Some(Ok(p)) => ok_text(
                ui,
                fill(
                    Msg::ExportDone.text(lang),
                    &[("path", &p.display().to_string())],
                ),
            ),
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => {}
        }
        if self.busy {
            busy_ui(ui, lang);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    !self.busy && !self.path.trim().is_empty(),
                    egui::Button::new(Msg::ExportButton.text(lang)),
                )
                .clicked()
            {
                self.busy = true;
                self.result = None;
                action = Some(Action::Export(PathBuf::from(self.path.trim())));
            }
            if ui.button(Msg::Close.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

impl SubmitDialog {
    fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        if let Some(Ok(k)) = f.key {
            ui.label(format!("{} ({})", k.fingerprint, k.user));
        }
        field(ui, Msg::RegistryUrl.text(lang), &mut self.url, false);
        field(ui, Msg::PassPrompt.text(lang), &mut self.pass, true);
        match &self.result {
            Some(Ok(s)) => match s.reply.status {
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
            },
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => {}
        }
        if self.busy {
            busy_ui(ui, lang);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    !self.busy && !self.url.trim().is_empty(),
                    egui::Button::new(Msg::SubmitButton.text(lang)),
                )
                .clicked()
            {
                self.busy = true;
                self.result = None;
                action = Some(Action::Submit {
                    url: self.url.trim().to_string(),
                    pass: take_optional_pass(&mut self.pass),
                });
            }
            if ui.button(Msg::Close.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

/// The registry's answer in words.
pub fn status_text(lang: Lang, s: KeyStatus) -> &'static str {
    match s {
        KeyStatus::Pending => Msg::KsPending.text(lang),
        KeyStatus::Approved => Msg::KsApproved.text(lang),
        KeyStatus::Revoked => Msg::KsRevoked.text(lang),
    }
}

impl KeyStateDialog {
    fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
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
                    ui.label(pra_client::commands::key::utc(k.created));
                    ui.end_row();
                    ui.label(Msg::KeyBound.text(lang));
                    ui.label(&k.bound);
                    ui.end_row();
                    ui.label(Msg::KeyRegistry.text(lang));
                    match &self.status {
                        Some(Ok(r)) => ui.label(status_text(lang, r.status)),
                        _ => ui.weak(Msg::KsUnknown.text(lang)),
                    };
                    ui.end_row();
                });
            }
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => busy_ui(ui, lang),
        }
        if has_key {
            ui.add_space(6.0);
            field(ui, Msg::RegistryUrl.text(lang), &mut self.url, false);
            field(ui, Msg::PassPrompt.text(lang), &mut self.pass, true);
        }
        if let Some(Err(p)) = &self.status {
            problem_ui(ui, lang, p);
        }
        if self.busy {
            busy_ui(ui, lang);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if has_key
                && ui
                    .add_enabled(
                        !self.busy && !self.url.trim().is_empty(),
                        egui::Button::new(Msg::AskRegistry.text(lang)),
                    )
                    .clicked()
            {
                self.busy = true;
                self.status = None;
                action = Some(Action::AskStatus {
                    url: self.url.trim().to_string(),
                    pass: take_optional_pass(&mut self.pass),
                });
            }
            if ui.button(Msg::Close.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

/// A doctor line's mark: OK, FAIL, SKIP.
fn check_tone(s: Status) -> Tone {
    match s {
        Status::Ok => Tone::Good,
        Status::Fail => Tone::Warn,
        Status::Skip => Tone::Off,
    }
}

impl DoctorDialog {
    fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        egui::ScrollArea::vertical()
            .max_height(360.0)
            .show(ui, |ui| {
                egui::Grid::new("doctor")
                    .num_columns(3)
                    .striped(true)
                    .show(ui, |ui| {
                        for c in &self.checks {
                            crate::app::mark(ui, check_tone(c.status), 12.0);
                            let word = match c.status {
                                Status::Ok => "OK",
                                Status::Fail => "FAIL",
                                Status::Skip => "SKIP",
                            };
                            ui.label(format!("{word} {}", c.name));
                            ui.vertical(|ui| {
                                let head = match &c.code {
                                    Some(code) => format!("{code} {}", c.detail),
                                    None => c.detail.clone(),
                                };
                                ui.label(head);
                                if let Some(fix) = &c.fix {
                                    ui.small(format!("{}{fix}", Msg::FixPrefix.text(lang)));
                                }
                            });
                            ui.end_row();
                        }
                    });
            });
        if let Some((ok, summary)) = &self.summary {
            let color = if *ok {
                Color32::from_rgb(0x2e, 0x9d, 0x4a)
            } else {
                Color32::from_rgb(0xd0, 0x30, 0x30)
            };
            ui.label(RichText::new(summary).color(color));
        }
        if self.running {
            busy_ui(ui, lang);
        }
        ui.add_space(6.0);
        field(ui, Msg::DoctorPass.text(lang), &mut self.pass, true);
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.running, egui::Button::new(Msg::DoctorRun.text(lang)))
                .clicked()
            {
                self.running = true;
                self.checks.clear();
                self.summary = None;
                action = Some(Action::RunDoctor {
                    pass: take_optional_pass(&mut self.pass),
                });
            }
            if ui.button(Msg::Close.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

impl LogsDialog {
    fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        ui.label(Msg::LogsText.text(lang));
        field(ui, Msg::ExportFile.text(lang), &mut self.path, false);
        field(ui, Msg::DoctorPass.text(lang), &mut self.pass, true);
        match &self.result {
            Some(Ok((p, summary))) => {
                ok_text(
                    ui,
                    fill(
                        Msg::LogsDone.text(lang),
                        &[("path", &p.display().to_string())],
                    ),
                );
                ui.label(summary);
            }
            Some(Err(p)) => problem_ui(ui, lang, p),
            None => {}
        }
        if self.busy {
            busy_ui(ui, lang);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    !self.busy && !self.path.trim().is_empty(),
                    egui::Button::new(Msg::ExportButton.text(lang)),
                )
                .clicked()
            {
                self.busy = true;
                self.result = None;
                action = Some(Action::ExportLogs {
                    path: PathBuf::from(self.path.trim()),
                    pass: take_optional_pass(&mut self.pass),
                });
            }
            if ui.button(Msg::Close.text(lang)).clicked() {
                action = Some(Action::Close);
            }
        });
        action
    }
}

fn about_ui(ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
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

    #[test]
    fn export_path_is_a_safe_file_name() {
        let p = default_export_path("alice/../x y");
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        assert_eq!(name.as_deref(), Some("pra-key-alice_.._x_y.txt"));
    }
}
