//! The app's own settings, `gui.toml` in the client's home folder (next to
//! `config.toml`, which belongs to the client library):
//!
//! ```toml
//! language = "auto"   # or "en", "ja"
//! ```
//!
//! Unknown keys are refused with the key named; a broken file is reported
//! and left alone (the app then runs with the defaults).

use crate::i18n::Lang;
use pra_client::home::Home;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The language setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LangChoice {
    /// Follow the OS locale.
    #[default]
    Auto,
    En,
    Ja,
}

/// `gui.toml` in the home: the app's own settings, apart from `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuiSettings {
    #[serde(default)]
    pub language: LangChoice,
}

/// The settings file in `home`.
pub fn file(home: &Home) -> PathBuf {
    home.root().join("gui.toml")
}

impl GuiSettings {
    /// Read `gui.toml`; a missing file gives the defaults.
    pub(crate) fn load(home: &Home) -> Result<GuiSettings, String> {
        let path = file(home);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GuiSettings::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Write `gui.toml` (creating the home folder).
    pub(crate) fn save(&self, home: &Home) -> Result<(), String> {
        home.ensure().map_err(|e| e.line())?;
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        let path = file(home);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The language to show (pure): the choice, or the OS's for `Auto`; English
/// when Japanese is asked for but no CJK font was found (boxes help nobody).
pub(crate) fn effective_lang(choice: LangChoice, os: Lang, cjk_font: bool) -> Lang {
    let want = match choice {
        LangChoice::Auto => os,
        LangChoice::En => Lang::En,
        LangChoice::Ja => Lang::Ja,
    };
    if want == Lang::Ja && !cjk_font {
        Lang::En
    } else {
        want
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn language_decision() {
        use LangChoice::*;
        for (choice, os, font, want) in [
            (Auto, Lang::Ja, true, Lang::Ja),
            (Auto, Lang::Ja, false, Lang::En),
            (Auto, Lang::En, true, Lang::En),
            (En, Lang::Ja, true, Lang::En),
            (Ja, Lang::En, true, Lang::Ja),
            (Ja, Lang::En, false, Lang::En),
        ] {
            assert_eq!(
                effective_lang(choice, os, font),
                want,
                "{choice:?} {os:?} {font}"
            );
        }
    }

    #[test]
    fn file_round_trip_and_bad_keys_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        assert_eq!(GuiSettings::load(&home).unwrap(), GuiSettings::default());
        let s = GuiSettings {
            language: LangChoice::Ja,
        };
        s.save(&home).unwrap();
        assert_eq!(GuiSettings::load(&home).unwrap(), s);
        assert!(
            std::fs::read_to_string(file(&home))
                .unwrap()
                .contains("language = \"ja\"")
        );
        std::fs::write(file(&home), "lang = \"ja\"\n").unwrap();
        let e = GuiSettings::load(&home).unwrap_err();
        assert!(e.contains("lang"), "{e}");
        std::fs::write(file(&home), "language = \"fr\"\n").unwrap();
        assert!(GuiSettings::load(&home).is_err());
    }
}
