//! "Remember on this PC": the passphrase goes to the credential store and
//! the next Connect needs no dialog; without a credential store the app says
//! WAR(10230) and connects anyway.

use crate::common::*;
use pra_gui::credstore::{MemoryStore, SecretStore};
use std::sync::Arc;

fn setup() -> (TestGateway, TestHome, String) {
    let gw = TestGateway::start();
    let (home, key) = gw.approved_home("carol");
    gw.add_rule("carol", "mail", rule_port(), gw.echo_server());
    gw.pin_in(&home);
    (gw, home, key.fingerprint())
}

#[test]
fn remembered_passphrase_connects_without_the_dialog() {
    let (_gw, home, fp) = setup();
    let store = Arc::new(MemoryStore::new());
    let mut h = harness(options(&home, store.clone()));
    h.step();
    connect_with(&mut h, PASS, true);
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));
    assert!(shows(&h, "The passphrase is remembered on this PC."));
    assert_eq!(store.get(&fp).unwrap().unwrap().expose(), PASS);

    click(&mut h, "Disconnect");
    wait_until(&mut h, "disconnected", |h| {
        shows(h, "Disconnected") && h.query_by_label("Connect").is_some()
    });
    click(&mut h, "Connect");
    wait_until(&mut h, "connected again", |h| shows(h, "Connected to"));
    assert!(!shows(&h, "Passphrase of your key:"), "{}", shown(&h));
}

#[test]
fn without_a_credential_store_it_warns_and_connects() {
    let (_gw, home, _) = setup();
    let mut h = harness(options(&home, Arc::new(MemoryStore::unavailable())));
    h.step();
    connect_with(&mut h, PASS, true);
    wait_until(&mut h, "connected", |h| shows(h, "Connected to"));
    let line = text_containing(&h, "WAR(10230)");
    assert!(line.contains("credential store unavailable"), "{line}");
}
