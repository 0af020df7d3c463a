//! UI language: Japanese on a Japanese system when a CJK font exists, a
//! menu to switch (saved in gui.toml), and English rather than boxes when
//! there is no Japanese font.

use crate::common::*;
use pra_gui::credstore::MemoryStore;
use pra_gui::i18n::Lang;
use std::sync::Arc;

fn japanese_system(home: &TestHome, font: bool) -> pra_gui::AppOptions {
    let mut o = options(home, Arc::new(MemoryStore::new()));
    o.os_lang = Lang::Ja;
    o.lang_override = None;
    o.cjk_font = if font {
        let f = pra_gui::fonts::find();
        assert!(
            f.is_some(),
            "no CJK font found: install fonts-noto-cjk with scripts/deps.sh"
        );
        f
    } else {
        None
    };
    o
}

#[test]
fn japanese_system_gets_japanese_and_can_switch_to_english() {
    let home = TestHome::new();
    let mut h = harness(japanese_system(&home, true));
    h.step();
    assert!(h.state().app().lang() == Lang::Ja);
    assert!(h.query_by_label("接続").is_some(), "{}", shown(&h));
    assert!(shows(&h, "未接続"), "{}", shown(&h));

    menu(&mut h, "設定", "言語");
    wait_until(&mut h, "the language choices", |h| {
        h.query_by_label("English").is_some()
    });
    click(&mut h, "English");
    wait_until(&mut h, "English", |h| h.query_by_label("Connect").is_some());
    assert_eq!(h.state().app().lang(), Lang::En);
    let saved = std::fs::read_to_string(pra_gui::settings::file(&home.home)).unwrap();
    assert!(saved.contains("language = \"en\""), "{saved}");
}

#[test]
fn without_a_japanese_font_the_app_stays_in_english() {
    let home = TestHome::new();
    let mut h = harness(japanese_system(&home, false));
    h.step();
    assert_eq!(h.state().app().lang(), Lang::En);
    assert!(h.query_by_label("Connect").is_some(), "{}", shown(&h));
    assert!(shows(&h, "Disconnected"), "{}", shown(&h));
}
