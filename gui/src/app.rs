//! The main window: menus, status, Connect/Disconnect, the forwards table and
//! the error line; the tray; what happens on close and Quit.
//!
//! [`PraApp::ui`] draws one frame (the UI tests drive it with egui_kittest);
//! [`PraApp::update_state`] takes the backend's results and the tray's
//! commands, also while the window is hidden.

use crate::backend::{Backend, ConfigView, KeyView, Notice, Outcome};
use crate::credstore::SecretStore;
use crate::dialogs::{Action, Dialog, Facts};
use crate::fonts::CjkFont;
use crate::i18n::{Lang, Msg, fill};
use crate::settings::{GuiSettings, LangChoice, effective_lang};
use crate::tray::{Tray, TrayCommand};
use crate::view::{self, Problem, Tone};
use crate::widgets::{mark, problem_ui, tone_color};
use eframe::egui::{self, RichText, Ui};
use pra_client::home::Home;
use pra_client::passphrase::Passphrase;
use pra_client::tunnel::{Phase, Timing, TunnelState};
use pra_proto::codes::Code;
use std::sync::Arc;
use std::time::Duration;

/// How the app is set up (the binary fills it from the command line, the
/// tests with a temp home and an in-memory credential store).
pub struct AppOptions {
    /// The client's folder.
    pub home: Home,
    /// The OS's language.
    pub os_lang: Lang,
    /// A language forced on the command line (else `gui.toml`).
    pub lang_override: Option<LangChoice>,
    /// The CJK font found on this system.
    pub cjk_font: Option<CjkFont>,
    /// Where remembered passphrases live.
    pub store: Arc<dyn SecretStore>,
    /// Tunnel timers (the tests shorten them).
    pub timing: Timing,
    /// Try to create a tray icon.
    pub tray: bool,
    /// Connect at start (with `passphrase` or the remembered one; else the
    /// passphrase dialog opens).
    pub connect: bool,
    /// A passphrase given to the process (`PRA_PASSPHRASE`, scripts and
    /// tests), used whenever none is typed.
    pub passphrase: Option<Passphrase>,
}

/// The app: window state, the backend and the tray.
pub struct PraApp {
    backend: Backend,
    settings: GuiSettings,
    lang_override: Option<LangChoice>,
    os_lang: Lang,
    cjk: bool,
    lang: Lang,
    config: Option<ConfigView>,
    key: Option<Result<KeyView, Problem>>,
    run: u64,
    tunnel: Option<TunnelState>,
    connecting: bool,
    problem: Option<Problem>,
    notice: Option<Notice>,
    dialog: Option<Dialog>,
    tray: Option<Tray>,
    hidden: bool,
    quitting: bool,
}

impl PraApp {
    /// Set up fonts, language, backend and (optionally) the tray for `ctx`.
    pub fn new(ctx: &egui::Context, opts: AppOptions) -> std::io::Result<PraApp> {
        if let Some(font) = &opts.cjk_font {
            crate::fonts::install(ctx, font);
        }
        let settings = GuiSettings::load(&opts.home).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "gui.toml not used");
            GuiSettings::default()
        });
        let cjk = opts.cjk_font.is_some();
        let choice = opts.lang_override.unwrap_or(settings.language);
        let lang = effective_lang(choice, opts.os_lang, cjk);
        tracing::info!(
            lang = lang.tag(),
            os = opts.os_lang.tag(),
            font = ?opts.cjk_font.as_ref().map(|f| f.path.display().to_string()),
            "language"
        );
        if lang != opts.os_lang && choice == LangChoice::Auto {
            tracing::warn!("no Japanese font found; showing English");
        }
        let repaint = ctx.clone();
        let waker: crate::backend::Waker = Arc::new(move || repaint.request_repaint());
        let backend = Backend::new(
            opts.home,
            opts.store,
            opts.timing,
            opts.passphrase,
            waker.clone(),
        )?;
        backend.refresh();
        let tray = if opts.tray {
            match Tray::new(lang, waker) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(
                        reason = %e,
                        "no system tray available; the app runs without one and closing the window quits"
                    );
                    None
                }
            }
        } else {
            None
        };
        let mut app = PraApp {
            backend,
            settings,
            lang_override: opts.lang_override,
            os_lang: opts.os_lang,
            cjk,
            lang,
            config: None,
            key: None,
            run: 0,
            tunnel: None,
            connecting: false,
            problem: None,
            notice: None,
            dialog: None,
            tray,
            hidden: false,
            quitting: false,
        };
        if opts.connect {
            app.connect_clicked();
        }
        Ok(app)
    }

    /// The language shown.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The current tunnel state (tests).
    pub fn tunnel(&self) -> Option<&TunnelState> {
        self.tunnel.as_ref()
    }

    /// True while Connect is being prepared or a tunnel runs.
    fn active(&self) -> bool {
        self.connecting
            || self
                .tunnel
                .as_ref()
                .is_some_and(|t| t.phase != Phase::Disconnected)
    }

    /// Take the backend's results and the tray's commands (no drawing).
    pub fn update_state(&mut self, ctx: &egui::Context) {
        for o in self.backend.poll() {
            self.apply(o);
        }
        let cmds = self.tray.as_ref().map(Tray::poll).unwrap_or_default();
        for c in cmds {
            self.tray_command(ctx, c);
        }
        self.handle_close(ctx);
        if let Some(tray) = &mut self.tray {
            let s = view::status(self.lang, self.tunnel.as_ref(), gateway(&self.config));
            let running = self.connecting
                || self
                    .tunnel
                    .as_ref()
                    .is_some_and(|t| t.phase != Phase::Disconnected);
            let tone = if self.connecting && s.phase == Phase::Disconnected {
                Tone::Busy
            } else {
                s.tone
            };
            tray.show(tone, &s.headline, running);
        }
    }

    fn apply(&mut self, o: Outcome) {
        if let Some(d) = &mut self.dialog
            && d.accept(&o)
        {
            return;
        }
        match o {
            Outcome::Tunnel { run, state } => {
                if run < self.run {
                    return;
                }
                self.run = run;
                self.connecting = false;
                let before = self.tunnel.as_ref().and_then(|t| t.last_error.clone());
                if state.last_error != before
                    && let Some(e) = &state.last_error
                {
                    self.problem = Some(Problem::from_info(e));
                }
                if state.phase == Phase::Connected && state.last_error.is_none() {
                    self.problem = None;
                }
                self.tunnel = Some(*state);
            }
            Outcome::TunnelEnded { run, error } => {
                if run == self.run {
                    self.connecting = false;
                    if let Some(p) = error {
                        self.problem = Some(p);
                    }
                }
            }
            Outcome::ConnectFailed(p) => {
                self.connecting = false;
                self.problem = Some(p);
            }
            Outcome::NeedPassphrase(why) => {
                self.connecting = false;
                if let Some(p) = why {
                    self.problem = Some(p);
                }
                self.dialog = Some(Dialog::passphrase());
            }
            Outcome::Notice(n) => self.notice = Some(n),
            Outcome::Config(Ok(c)) => self.config = Some(c),
            Outcome::Config(Err(p)) => {
                self.config = None;
                self.problem = Some(p);
            }
            Outcome::Key(k) => self.key = Some(k),
            // Results for a dialog that was closed meanwhile.
            Outcome::Generated(_)
            | Outcome::Exported(_)
            | Outcome::Submitted(_)
            | Outcome::KeyStatus(_)
            | Outcome::ServerSaved(_)
            | Outcome::DoctorCheck(_)
            | Outcome::DoctorDone(_)
            | Outcome::LogsExported(_)
            | Outcome::Enrolled(_) => {}
        }
    }

    fn connect_clicked(&mut self) {
        self.connecting = true;
        self.problem = None;
        self.notice = None;
        self.backend.connect(None, false);
    }

    fn tray_command(&mut self, ctx: &egui::Context, c: TrayCommand) {
        match c {
            TrayCommand::Connect => {
                if !self.active() {
                    self.show_window(ctx);
                    self.connect_clicked();
                }
            }
            TrayCommand::Disconnect => self.backend.disconnect(),
            TrayCommand::Open => self.show_window(ctx),
            TrayCommand::Enroll => {
                self.show_window(ctx);
                self.open_enroll();
            }
            TrayCommand::Quit => self.quit(ctx),
        }
    }

    /// Key → Enroll with an invite…, the main window's button, the tray's
    /// item: one dialog, unless another is open.
    fn open_enroll(&mut self) {
        if self.dialog.is_none() {
            self.dialog = Some(Dialog::enroll());
        }
    }

    fn show_window(&mut self, ctx: &egui::Context) {
        if self.hidden {
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
            self.hidden = false;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
    }

    /// Quit: disconnect (orderly, a few seconds at most) and close.
    pub fn quit(&mut self, ctx: &egui::Context) {
        self.quitting = true;
        self.backend.shutdown(Duration::from_secs(3));
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    /// Closing the window keeps the tunnel running in the tray; without a
    /// tray it quits.
    fn handle_close(&mut self, ctx: &egui::Context) {
        if !ctx.input(|i| i.viewport().close_requested()) || self.quitting {
            return;
        }
        if self.tray.is_some() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            ctx.send_viewport_cmd(egui::ViewportCommand::Visible(false));
            self.hidden = true;
            tracing::info!("window closed; PRA keeps running in the tray");
        } else {
            self.quitting = true;
            self.backend.shutdown(Duration::from_secs(3));
        }
    }

    fn set_language(&mut self, choice: LangChoice) {
        self.settings.language = choice;
        if let Err(e) = self.settings.save(self.backend.home()) {
            tracing::warn!(error = %e, "cannot save gui.toml");
        }
        self.lang_override = None;
        self.lang = effective_lang(choice, self.os_lang, self.cjk);
        if let Some(t) = &mut self.tray {
            t.set_lang(self.lang);
        }
    }

    /// Draw one frame.
    pub fn ui(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.update_state(&ctx);
        egui::Panel::top("menu").show(ui, |ui| {
            egui::MenuBar::new().ui(ui, |ui| self.menus(ui));
        });
        egui::Panel::bottom("error").show(ui, |ui| self.error_line(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            self.status_block(ui);
            ui.separator();
            self.forwards(ui);
        });
        self.dialog_ui(&ctx);
    }

    fn menus(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        ui.menu_button(Msg::MenuSettings.text(lang), |ui| {
            if ui.button(Msg::MenuServer.text(lang)).clicked() {
                self.dialog = Some(Dialog::server(self.config.as_ref()));
                self.backend.refresh();
            }
            ui.menu_button(Msg::MenuLanguage.text(lang), |ui| {
                let current = self.lang_override.unwrap_or(self.settings.language);
                if ui
                    .radio(current == LangChoice::Auto, Msg::LangAuto.text(lang))
                    .clicked()
                {
                    self.set_language(LangChoice::Auto);
                }
                if ui.radio(current == LangChoice::En, "English").clicked() {
                    self.set_language(LangChoice::En);
                }
                if self.cjk {
                    if ui.radio(current == LangChoice::Ja, "日本語").clicked() {
                        self.set_language(LangChoice::Ja);
                    }
                } else {
                    ui.add_enabled(false, egui::RadioButton::new(false, "Japanese"))
                        .on_disabled_hover_text(Msg::NoJapaneseFont.text(lang));
                }
            });
        });
        ui.menu_button(Msg::MenuKey.text(lang), |ui| {
            if ui.button(Msg::MenuEnroll.text(lang)).clicked() {
                self.dialog = Some(Dialog::enroll());
            }
            ui.separator();
            if ui.button(Msg::MenuGenerate.text(lang)).clicked() {
                self.dialog = Some(Dialog::generate(self.key.as_ref()));
            }
            if ui.button(Msg::MenuExport.text(lang)).clicked() {
                self.dialog = Some(Dialog::export(self.key.as_ref()));
            }
            if ui.button(Msg::MenuSubmit.text(lang)).clicked() {
                self.dialog = Some(Dialog::submit(self.config.as_ref()));
            }
            if ui.button(Msg::MenuKeyState.text(lang)).clicked() {
                self.dialog = Some(Dialog::key_state(self.config.as_ref()));
                self.backend.refresh();
            }
            ui.separator();
            if ui.button(Msg::ForgetPass.text(lang)).clicked() {
                self.backend.forget_passphrase();
            }
        });
        ui.menu_button(Msg::MenuHelp.text(lang), |ui| {
            if ui.button(Msg::MenuLogs.text(lang)).clicked() {
                self.dialog = Some(Dialog::logs());
            }
            if ui.button(Msg::MenuDoctor.text(lang)).clicked() {
                self.dialog = Some(Dialog::doctor_running());
                self.backend.doctor(None);
            }
            ui.separator();
            if ui.button(Msg::MenuAbout.text(lang)).clicked() {
                self.dialog = Some(Dialog::About);
            }
        });
    }

    fn status_block(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        let mut s = view::status(lang, self.tunnel.as_ref(), gateway(&self.config));
        if self.connecting && s.phase == Phase::Disconnected {
            s.tone = Tone::Busy;
            s.headline = fill(
                Msg::StatusConnecting.text(lang),
                &[("gateway", gateway(&self.config).unwrap_or("?"))],
            );
        }
        ui.horizontal(|ui| {
            mark(ui, s.tone, 22.0);
            ui.vertical(|ui| {
                ui.label(RichText::new(&s.headline).strong().size(18.0));
                ui.label(&s.detail);
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let phase_up = self
                    .tunnel
                    .as_ref()
                    .is_some_and(|t| t.phase != Phase::Disconnected);
                if phase_up {
                    if ui
                        .button(RichText::new(Msg::Disconnect.text(lang)).size(16.0))
                        .clicked()
                    {
                        self.backend.disconnect();
                    }
                } else if self.connecting || self.backend.is_running() {
                    // Preparing the connection, or the tunnel is closing.
                    ui.spinner();
                } else if ui
                    .button(RichText::new(Msg::Connect.text(lang)).size(16.0))
                    .clicked()
                {
                    self.connect_clicked();
                }
            });
        });
        // Where a user without a key looks first: enroll with the invite.
        if let Some(Err(p)) = &self.key
            && p.code == Code::KeyMissing
        {
            ui.horizontal(|ui| {
                ui.label(Msg::NoKey.text(lang));
                if ui.button(Msg::MenuEnroll.text(lang)).clicked() {
                    self.open_enroll();
                }
            });
        }
        if let Some(t) = &self.tunnel
            && t.pinned_on_first_use
            && let Some(fp) = &t.host_key
        {
            ui.label(fill(Msg::PinnedNotice.text(lang), &[("fingerprint", fp)]));
        }
        match &self.notice {
            Some(Notice::Remembered) => {
                ui.label(Msg::Remembered.text(lang));
            }
            Some(Notice::Forgotten) => {
                ui.label(Msg::Forgotten.text(lang));
            }
            Some(Notice::Store(p)) => problem_ui(ui, lang, p),
            None => {}
        }
    }

    fn forwards(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        ui.label(RichText::new(Msg::Forwards.text(lang)).strong());
        let rules = self
            .tunnel
            .as_ref()
            .map(|t| t.rules.as_slice())
            .unwrap_or(&[]);
        if rules.is_empty() {
            ui.weak(Msg::NoForwards.text(lang));
            return;
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("forwards")
                .num_columns(5)
                .striped(true)
                .spacing([14.0, 6.0])
                .show(ui, |ui| {
                    ui.label("");
                    ui.strong(Msg::ColRule.text(lang));
                    ui.strong(Msg::ColLocal.text(lang));
                    ui.strong(Msg::ColTarget.text(lang));
                    ui.strong(Msg::ColState.text(lang));
                    ui.end_row();
                    for r in rules {
                        let row = view::row(lang, r);
                        mark(ui, row.tone, 14.0);
                        ui.label(&row.name);
                        ui.monospace(&row.local);
                        ui.label(&row.target);
                        ui.vertical(|ui| {
                            ui.label(RichText::new(&row.state).color(tone_color(row.tone)));
                            if let Some(fix) = &row.fix {
                                ui.small(format!("{}{fix}", Msg::FixPrefix.text(lang)));
                            }
                        });
                        ui.end_row();
                    }
                });
        });
    }

    fn error_line(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        ui.add_space(4.0);
        match &self.problem {
            Some(p) => {
                ui.label(RichText::new(Msg::LastError.text(lang)).strong());
                problem_ui(ui, lang, p);
            }
            None => {
                ui.weak(Msg::LastError.text(lang));
            }
        }
        ui.add_space(4.0);
    }

    fn dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(mut dialog) = self.dialog.take() else {
            return;
        };
        let home = self.backend.home().root().to_path_buf();
        let facts = Facts {
            lang: self.lang,
            key: self.key.as_ref(),
            home: &home,
        };
        let action = dialog.show(ctx, &facts);
        self.dialog = Some(dialog);
        match action {
            None => {}
            Some(Action::Close) => self.dialog = None,
            Some(Action::Connect { pass, remember }) => {
                self.dialog = None;
                self.connecting = true;
                self.problem = None;
                self.backend.connect(Some(pass), remember);
            }
            Some(Action::SaveServer { address, host_key }) => {
                self.backend.save_server(address, host_key)
            }
            Some(Action::Generate {
                user,
                pass,
                again,
                force,
            }) => self.backend.generate(user, pass, again, force),
            Some(Action::Export(path)) => self.backend.export(path),
            Some(Action::Submit { url, pass }) => self.backend.submit(url, pass),
            Some(Action::AskStatus { url, pass }) => self.backend.key_status(url, pass),
            Some(Action::RunDoctor { pass }) => self.backend.doctor(pass),
            Some(Action::ExportLogs { path, pass }) => self.backend.export_logs(path, pass),
            Some(Action::Enroll {
                invite,
                pass,
                again,
                remember,
                force,
            }) => self.backend.enroll(invite, pass, again, remember, force),
        }
    }
}

fn gateway(cfg: &Option<ConfigView>) -> Option<&str> {
    cfg.as_ref().and_then(|c| c.gateway.as_deref())
}

impl eframe::App for PraApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.update_state(ctx);
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        PraApp::ui(self, ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.backend.shutdown(Duration::from_secs(3));
    }
}
