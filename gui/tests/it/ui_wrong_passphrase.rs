//! Connect with a wrong passphrase: the window shows ERR(10193) and its fix,
//! stays disconnected, and nothing is remembered.

use crate::common::*;
use pra_gui::credstore::{MemoryStore, SecretStore};
use std::sync::Arc;

#[test]
fn wrong_passphrase_shows_err_10193_and_its_fix() {
    let home = TestHome::new();
    let key = home.keygen("alice");
    // Never contacted: the key fails to open first.
    home.server_set("127.0.0.1:9", None);
    let store = Arc::new(MemoryStore::new());
    let mut h = harness(options(&home, store.clone()));
    h.step();
    assert!(shows(&h, "Disconnected"), "{}", shown(&h));
    assert!(shows(&h, "Gateway: 127.0.0.1:9"), "{}", shown(&h));

    connect_with(&mut h, "not the passphrase", true);
    wait_until(&mut h, "ERR(10193) shown", |h| shows(h, "ERR(10193)"));

    let text = text_containing(&h, "ERR(10193)");
    assert!(
        text.contains("the key could not be loaded") || text.contains("passphrase"),
        "{text:?}\n{}",
        shown(&h)
    );
    assert!(
        shows(&h, "What to do: type the passphrase again"),
        "fix not shown:\n{}",
        shown(&h)
    );
    assert!(shows(&h, "Disconnected"), "{}", shown(&h));
    assert!(h.state().app().tunnel().is_none());
    // A passphrase that did not open the key is not remembered.
    assert!(store.get(&key.fingerprint()).unwrap().is_none());
}
