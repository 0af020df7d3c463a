//! Help → Run diagnostics: the doctor's checks as they complete.

use super::parts::{Action, Pressed, Secret, busy_ui, buttons, field, take_optional_pass};
use crate::i18n::{Lang, Msg};
use crate::view::Tone;
use crate::widgets::{ERROR_RED, mark, tone_color};
use eframe::egui::{self, RichText, Ui};
use pra_client::doctor::{Check, Report, Status};

#[derive(Default)]
pub(crate) struct DoctorDialog {
    pass: Secret,
    running: bool,
    checks: Vec<Check>,
    /// All passed, and the doctor's summary line.
    summary: Option<(bool, String)>,
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
    /// Opened with its first run started.
    pub(super) fn running() -> DoctorDialog {
        DoctorDialog {
            running: true,
            ..DoctorDialog::default()
        }
    }

    pub(super) fn check(&mut self, c: &Check) {
        self.checks.push(c.clone());
    }

    pub(super) fn done(&mut self, r: &Report) {
        self.running = false;
        self.checks = r.checks.clone();
        self.summary = Some((r.ok(), r.summary()));
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, lang: Lang) -> Option<Action> {
        egui::ScrollArea::vertical()
            .max_height(360.0)
            .show(ui, |ui| {
                egui::Grid::new("doctor")
                    .num_columns(3)
                    .striped(true)
                    .show(ui, |ui| {
                        for c in &self.checks {
                            mark(ui, check_tone(c.status), 12.0);
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
                tone_color(Tone::Good)
            } else {
                ERROR_RED
            };
            ui.label(RichText::new(summary).color(color));
        }
        if self.running {
            busy_ui(ui, lang, Msg::Working);
        }
        ui.add_space(6.0);
        field(ui, Msg::DoctorPass.text(lang), &mut self.pass, true);
        match buttons(ui, lang, Some((Msg::DoctorRun, !self.running)), Msg::Close)? {
            Pressed::Primary => {
                self.running = true;
                self.checks.clear();
                self.summary = None;
                Some(Action::RunDoctor {
                    pass: take_optional_pass(&mut self.pass),
                })
            }
            Pressed::Close => Some(Action::Close),
        }
    }
}
