//! Small drawing pieces the main window and the dialogs share: the state
//! mark, the colours of the tones, the error block and the success line.

use crate::i18n::{Lang, Msg};
use crate::view::{Problem, Tone, tone_rgb};
use eframe::egui::{self, Color32, RichText, Ui};

/// Red of an error's code and text.
pub(crate) const ERROR_RED: Color32 = Color32::from_rgb(0xd0, 0x30, 0x30);

/// The colour of a tone (the tray icon uses the same [`tone_rgb`]).
pub(crate) fn tone_color(t: Tone) -> Color32 {
    let (r, g, b) = tone_rgb(t);
    Color32::from_rgb(r, g, b)
}

/// A state mark painted as a shape, so it needs no font and differs in
/// shape as well as colour: filled disc (good), triangle (warning), ring
/// (off), disc with a hole (busy).
pub(crate) fn mark(ui: &mut Ui, tone: Tone, size: f32) -> egui::Response {
    let (rect, resp) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
    let p = ui.painter();
    let c = rect.center();
    let r = size * 0.45;
    let color = tone_color(tone);
    match tone {
        Tone::Good => {
            p.circle_filled(c, r, color);
        }
        Tone::Busy => {
            p.circle_filled(c, r, color);
            p.circle_filled(c, r * 0.4, ui.visuals().panel_fill);
        }
        Tone::Warn => {
            let pts = vec![
                egui::pos2(c.x, c.y - r),
                egui::pos2(c.x + r, c.y + r * 0.8),
                egui::pos2(c.x - r, c.y + r * 0.8),
            ];
            p.add(egui::Shape::convex_polygon(pts, color, egui::Stroke::NONE));
        }
        Tone::Off => {
            p.circle_stroke(c, r * 0.85, egui::Stroke::new(size * 0.12, color));
        }
    }
    resp
}

/// The error block: code and what happened in red, then the fix.
pub(crate) fn problem_ui(ui: &mut Ui, lang: Lang, p: &Problem) {
    ui.label(RichText::new(format!("{} {}", p.label(), p.what)).color(ERROR_RED));
    ui.label(format!("{}{}", Msg::FixPrefix.text(lang), p.fix(lang)));
}

/// A line in the green of success.
pub(crate) fn ok_text(ui: &mut Ui, text: impl Into<String>) {
    ui.label(RichText::new(text.into()).color(tone_color(Tone::Good)));
}
