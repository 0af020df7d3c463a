//! Japanese glyphs from a system CJK font, found at run time.
//!
//! egui's built-in fonts have no Japanese; shipping a CJK font would add
//! ~16 MB to the program, so the app looks for one the OS already has
//! (Windows Yu Gothic / Meiryo, macOS Hiragino, Linux Noto Sans CJK) and
//! adds it as a fallback after the built-in fonts. Without one the UI stays
//! in English ([`crate::settings::effective_lang`]) rather than showing boxes.

use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A font file and the face in it to use (`.ttc` collections hold several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Where the file is on a standard installation.
    pub path: PathBuf,
    /// Face index (the Japanese face in pan-CJK collections).
    pub index: u32,
}

/// A font file that was found and read.
#[derive(Clone)]
pub struct CjkFont {
    /// Where it came from.
    pub path: PathBuf,
    /// Face index in a `.ttc` collection.
    pub index: u32,
    /// The file's bytes.
    pub bytes: Arc<Vec<u8>>,
}

impl std::fmt::Debug for CjkFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CjkFont")
            .field("path", &self.path)
            .field("index", &self.index)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Name under which the font is registered with egui.
pub(crate) const FONT_NAME: &str = "system-cjk";

fn c(path: impl Into<PathBuf>, index: u32) -> Candidate {
    Candidate {
        path: path.into(),
        index,
    }
}

/// The places to look, best first, for this OS. `windir` is `%WINDIR%` on
/// Windows (usually `C:\Windows`).
pub(crate) fn candidates(os: Os, windir: Option<&Path>) -> Vec<Candidate> {
    match os {
        Os::Windows => {
            let fonts = windir.unwrap_or(Path::new(r"C:\Windows")).join("Fonts");
            vec![
                c(fonts.join("YuGothM.ttc"), 0),
                c(fonts.join("YuGothR.ttc"), 0),
                c(fonts.join("meiryo.ttc"), 0),
                c(fonts.join("msgothic.ttc"), 0),
            ]
        }
        Os::Mac => vec![
            c("/System/Library/Fonts/ヒラギノ角ゴシック W3.ttc", 0),
            c("/System/Library/Fonts/Hiragino Sans GB.ttc", 0),
            c("/System/Library/Fonts/ヒラギノ丸ゴ ProN W4.ttc", 0),
            c("/Library/Fonts/Arial Unicode.ttf", 0),
        ],
        Os::Unix => vec![
            // Debian/Ubuntu fonts-noto-cjk: face 0 of the collection is JP.
            c("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
            // Fedora google-noto-sans-cjk-fonts, Arch noto-fonts-cjk.
            c(
                "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
                0,
            ),
            c("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 0),
            c("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 0),
            // Debian fonts-ipafont-gothic, fonts-takao-gothic, fonts-vlgothic.
            c("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf", 0),
            c("/usr/share/fonts/truetype/takao-gothic/TakaoGothic.ttf", 0),
            c(
                "/usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf",
                0,
            ),
        ],
    }
}

/// The OS families with their own font folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Os {
    Windows,
    Mac,
    /// Linux and the BSDs.
    Unix,
}

impl Os {
    /// The OS this program runs on.
    pub(crate) fn current() -> Os {
        if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::Mac
        } else {
            Os::Unix
        }
    }
}

/// Find and read the first usable CJK font of this OS. `PRA_CJK_FONT`
/// (a file path) takes precedence, for unusual installations.
pub fn find() -> Option<CjkFont> {
    let mut list = Vec::new();
    if let Some(p) = std::env::var_os("PRA_CJK_FONT").filter(|p| !p.is_empty()) {
        list.push(c(p, 0));
    }
    let windir = std::env::var_os("WINDIR").map(PathBuf::from);
    list.extend(candidates(Os::current(), windir.as_deref()));
    find_in(&list)
}

/// The first candidate that exists and is a TrueType/OpenType file.
pub(crate) fn find_in(list: &[Candidate]) -> Option<CjkFont> {
    for cand in list {
        let Ok(bytes) = std::fs::read(&cand.path) else {
            continue;
        };
        if !looks_like_font(&bytes) {
            tracing::warn!(path = %cand.path.display(), "not a font file; skipped");
            continue;
        }
        return Some(CjkFont {
            path: cand.path.clone(),
            index: cand.index,
            bytes: Arc::new(bytes),
        });
    }
    None
}

/// TrueType/OpenType/collection magic numbers (pure).
pub(crate) fn looks_like_font(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(..4),
        Some(b"ttcf") | Some(b"OTTO") | Some(b"true") | Some([0, 1, 0, 0])
    )
}

/// Add the font to egui as the last fallback of both families, so Latin
/// text keeps egui's own look.
pub(crate) fn install(ctx: &egui::Context, font: &CjkFont) {
    let data = egui::FontData::from_blob(font.bytes.clone(), font.index);
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| egui::InsertFontFamily {
            family,
            priority: egui::FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(egui::FontInsert::new(FONT_NAME, data, families));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_os_has_candidates_with_cjk_names() {
        let win = candidates(Os::Windows, Some(Path::new(r"D:\Win")));
        assert!(win[0].path.starts_with(r"D:\Win"), "{win:?}");
        assert!(win.iter().any(|c| c.path.ends_with("meiryo.ttc")));
        assert!(
            candidates(Os::Mac, None)
                .iter()
                .any(|c| c.path.to_string_lossy().contains("ヒラギノ"))
        );
        assert_eq!(
            candidates(Os::Unix, None)[0].path,
            Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
        );
    }

    #[test]
    fn only_font_files_are_taken() {
        assert!(looks_like_font(b"ttcf\0\x02\0\0"));
        assert!(looks_like_font(b"OTTO...."));
        assert!(looks_like_font(&[0, 1, 0, 0, 0, 9]));
        assert!(!looks_like_font(b"<html>"));
        assert!(!looks_like_font(b"tt"));

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.ttc");
        std::fs::write(&junk, b"not a font").unwrap();
        let good = dir.path().join("good.ttf");
        std::fs::write(&good, [0u8, 1, 0, 0, 0, 0]).unwrap();
        let list = [
            c(dir.path().join("missing.ttc"), 0),
            c(&junk, 0),
            c(&good, 2),
        ];
        let found = find_in(&list).unwrap();
        assert_eq!(found.path, good);
        assert_eq!(found.index, 2);
        assert!(find_in(&list[..2]).is_none());
    }
}
