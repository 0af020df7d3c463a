//! Help > Run diagnostics lists the doctor's checks as they complete (key
//! checks with the remembered passphrase), and Help > Export logs writes the
//! helpdesk zip.

use crate::common::*;
use pra_client::passphrase::Passphrase;
use pra_gui::credstore::{MemoryStore, SecretStore};
use std::sync::Arc;

#[test]
fn diagnostics_list_every_check_and_logs_export_writes_the_zip() {
    let gw = TestGateway::start();
    let (home, key) = gw.approved_home("dave");
    let port = rule_port();
    gw.add_rule("dave", "mail", port, gw.echo_server());
    gw.pin_in(&home);
    let store = Arc::new(MemoryStore::new());
    store
        .set(&key.fingerprint(), &Passphrase::new(PASS))
        .unwrap();

    let mut h = harness(options(&home, store));
    h.step();
    menu(&mut h, "Help", "Run diagnostics…");
    wait_until(&mut h, "the doctor's summary", |h| {
        shows(h, "doctor: all ") || shows(h, "checks failed")
    });
    let summary = text_containing(&h, "doctor: ");
    assert!(
        summary.contains("checks passed"),
        "{summary}\n{}",
        shown(&h)
    );
    assert!(!summary.contains("skipped"), "key checks ran: {summary}");
    // One line per check, the per-rule ones included.
    assert!(
        h.query_all_by_label_contains("OK ").count() >= 8,
        "{}",
        shown(&h)
    );
    assert!(shows(&h, &format!("{port}")), "{}", shown(&h));
    click(&mut h, "Close");

    menu(&mut h, "Help", "Export logs for helpdesk…");
    let zip = home.dir.path().join("bundle.zip");
    h.get_by_label("File")
        .set_text_value_accesskit(&zip.display().to_string());
    h.step();
    click(&mut h, "Export");
    wait_until(&mut h, "the bundle written", |h| {
        shows(h, "send this file to the helpdesk")
    });
    let bytes = std::fs::read(&zip).unwrap();
    assert!(bytes.starts_with(b"PK"), "not a zip");
    let text = String::from_utf8_lossy(&bytes);
    for entry in ["System.log", "User.log", "config.toml", "doctor.txt"] {
        assert!(text.contains(entry), "{entry} missing from the bundle");
    }
}
