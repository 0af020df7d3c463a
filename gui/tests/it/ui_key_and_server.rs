//! Everything the CLI does before connecting, from the app's menus: set the
//! server, generate the key (fingerprint shown), export the hand-over file,
//! submit it to a real registry API (pending), ask the key's state (pending,
//! then approved). Bad input is answered with its code in the dialog.
//! Key > Enroll with an invite… does all of that in one step with an
//! admin's invite. Saving Settings > Server keeps the alternate gateways.

use crate::common::*;
use egui_kittest::kittest::NodeT as _;
use pra_gui::credstore::{MemoryStore, SecretStore};
use pra_proto::api::KeyStatus;
use pra_proto::invite::{Invite, InviteSecret};
use std::sync::Arc;

#[test]
fn server_key_export_submit_and_state_from_the_menus() {
    let gw = TestGateway::start();
    let url = gw.api();
    gw.add_user("frank");
    let home = TestHome::new();
    let mut h = app(&home);
    h.step();
    assert!(shows(&h, "No gateway set"), "{}", shown(&h));

    // Settings > Server…: a bad address changes nothing, a good one is saved.
    menu(&mut h, "Settings", "Server…");
    // Settles and checks that every input has an accessible name.
    h.try_run().unwrap();
    type_into(&mut h, "Gateway address (HOST or HOST:PORT)", "gw:notaport");
    click(&mut h, "Save");
    wait_until(&mut h, "the bad address refused", |h| {
        shows(h, "ERR(10100)")
    });
    type_into(
        &mut h,
        "Gateway address (HOST or HOST:PORT)",
        &gw.addr.to_string(),
    );
    type_into(&mut h, "Pinned host key (SHA256:…)", &gw.fingerprint);
    click(&mut h, "Save");
    wait_until(&mut h, "saved", |h| shows(h, "Saved."));
    click(&mut h, "Close");
    wait_until(&mut h, "the gateway in the status", |h| {
        shows(h, &format!("Gateway: {}", gw.addr))
    });
    let cfg = std::fs::read_to_string(home.home.config_file()).unwrap();
    assert!(cfg.contains(&gw.fingerprint), "{cfg}");

    // Key > Generate…: entries that differ are refused, then the key is made.
    menu(&mut h, "Key", "Generate…");
    h.try_run().unwrap();
    type_into(&mut h, "Account name (from your administrator)", "frank");
    type_into(&mut h, "Passphrase", PASS);
    type_into(&mut h, "Passphrase again", "something else");
    click(&mut h, "Generate");
    wait_until(&mut h, "ERR(10195)", |h| shows(h, "ERR(10195)"));
    assert!(!home.home.key_file().exists());
    type_into(&mut h, "Passphrase", PASS);
    type_into(&mut h, "Passphrase again", PASS);
    click(&mut h, "Generate");
    wait_until(&mut h, "the key made", |h| {
        shows(h, "Created the key of frank")
    });
    let info = pra_client::keystore::read_public(&home.home).unwrap();
    let fp = info.fingerprint();
    assert!(shows(&h, &fp), "fingerprint not shown:\n{}", shown(&h));
    click(&mut h, "Close");

    // Key > Export public key…
    let file = home.dir.path().join("frank.pub.txt");
    menu(&mut h, "Key", "Export public key…");
    type_into(&mut h, "File", &file.display().to_string());
    click(&mut h, "Export");
    wait_until(&mut h, "exported", |h| {
        shows(h, "give this file to your administrator")
    });
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().next(), Some(info.meta.public_key.as_str()));
    click(&mut h, "Close");

    // Key > Submit to registry…
    menu(&mut h, "Key", "Submit to registry…");
    type_into(&mut h, "Registry URL", &url);
    type_into(&mut h, "Passphrase of your key:", PASS);
    click(&mut h, "Submit");
    wait_until(&mut h, "pending", |h| {
        shows(h, "Pending: ask your administrator")
    });
    assert_eq!(gw.key_status(&fp), Some(KeyStatus::Pending));
    click(&mut h, "Close");

    // Key > Show key state…: the URL was remembered by the submit.
    menu(&mut h, "Key", "Show key state…");
    wait_until(&mut h, "the key's facts", |h| shows(h, &fp));
    type_into(&mut h, "Passphrase of your key:", PASS);
    click(&mut h, "Ask the registry");
    wait_until(&mut h, "pending", |h| {
        shows(h, "pending: waiting for the administrator's approval")
    });
    gw.approve_fp(&fp);
    type_into(&mut h, "Passphrase of your key:", PASS);
    click(&mut h, "Ask the registry");
    wait_until(&mut h, "approved", |h| {
        h.query_by_label("approved").is_some()
    });
    click(&mut h, "Close");

    // Help > About PRA: the version.
    menu(&mut h, "Help", "About PRA");
    let version = format!("Version {}", env!("CARGO_PKG_VERSION"));
    wait_until(&mut h, "the version", |h| shows(h, &version));
}

/// The enroll dialog, from the main window of a PC without a key, with real
/// invites of the gateway's registry (`pra-registry invite create`): a
/// tampered invite is refused as it is pasted (`ERR(10250)`, nothing
/// stored); one with a wrong secret is refused by the gateway
/// (`ERR(10254)`); the `--approve` invite then hands the same key over
/// again: approved, the key in the home, the gateway pinned, the
/// passphrase remembered.
#[test]
fn enroll_with_an_invite_from_the_main_window() {
    let gw = TestGateway::start();
    gw.add_user("hana");
    let home = TestHome::new();
    let store = Arc::new(MemoryStore::new());
    let mut h = harness(options(&home, store.clone()));
    wait_until(&mut h, "the offer to enroll", |h| {
        shows(h, "No key on this PC yet.")
    });
    click(&mut h, "Enroll with an invite…");
    h.try_run().unwrap();

    // Tampered: one character changed. Refused before anything happens.
    let good = gw.invite("hana", &["--approve"]);
    let mut bytes = good.clone().into_bytes();
    let n = bytes.len() - 10;
    bytes[n] = if bytes[n] == b'A' { b'B' } else { b'A' };
    type_into(&mut h, "Invite", &String::from_utf8(bytes).unwrap());
    wait_until(&mut h, "ERR(10250)", |h| shows(h, "ERR(10250)"));
    let enroll = h.get_all_by_label("Enroll").last().unwrap();
    assert!(enroll.accesskit_node().is_disabled(), "{}", shown(&h));
    assert!(!home.home.key_file().exists());
    assert!(!home.home.config_file().exists());

    // A wrong secret: the invite's account and gateway are shown, the
    // gateway refuses the hand-over.
    let mut wrong = Invite::decode(&good).unwrap();
    wrong.secret = InviteSecret::new("not-the-secret".into());
    type_into(&mut h, "Invite", &format!("  {}  ", wrong.encode()));
    let check = format!("For the account hana at the gateway {}", gw.addr);
    wait_until(&mut h, "the invite's account and gateway", |h| {
        shows(h, &check)
    });
    type_into(&mut h, "Passphrase", PASS);
    type_into(&mut h, "Passphrase again", PASS);
    click(&mut h, "Enroll");
    wait_until(&mut h, "ERR(10254)", |h| shows(h, "ERR(10254)"));

    // The right invite: the key made by the refused try is handed over
    // again, asking only its passphrase.
    type_into(&mut h, "Invite", &good);
    wait_until(&mut h, "the key handed over again", |h| {
        shows(h, "is handed over again")
    });
    type_into(&mut h, "Passphrase of your key:", PASS);
    h.get_by_label("Remember on this PC").click();
    h.step();
    click(&mut h, "Enroll");
    wait_until(&mut h, "approved", |h| {
        shows(h, "In the registry: approved")
    });
    let info = pra_client::keystore::read_public(&home.home).unwrap();
    let fp = info.fingerprint();
    assert_eq!(info.meta.user, "hana");
    assert!(shows(&h, &fp), "fingerprint not shown:\n{}", shown(&h));
    assert!(shows(&h, "Next: press Connect."), "{}", shown(&h));
    assert_eq!(gw.key_status(&fp), Some(KeyStatus::Approved));
    assert_eq!(store.get(&fp).unwrap().unwrap().expose(), PASS);
    let cfg = std::fs::read_to_string(home.home.config_file()).unwrap();
    assert!(cfg.contains(&gw.fingerprint), "{cfg}");
    click(&mut h, "Close");
    wait_until(&mut h, "the gateway in the status", |h| {
        shows(h, &format!("Gateway: {}", gw.addr))
    });
    assert!(!shows(&h, "No key on this PC yet."), "{}", shown(&h));
}

#[test]
fn saving_the_server_keeps_the_alternate_gateways() {
    const FP: &str = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
    let home = TestHome::new();
    pra_client::config::set_gateways(
        &home.home,
        &["gw1.example.com", "gw2.example.com:2222"],
        Some(FP),
    )
    .unwrap();
    let mut h = app(&home);
    h.step();
    menu(&mut h, "Settings", "Server…");
    h.try_run().unwrap();
    assert!(
        shows(&h, "(kept when you save): gw2.example.com:2222"),
        "{}",
        shown(&h)
    );
    // Choosing the alternate as the address moves it to the front.
    type_into(
        &mut h,
        "Gateway address (HOST or HOST:PORT)",
        "gw2.example.com:2222",
    );
    click(&mut h, "Save");
    wait_until(&mut h, "saved", |h| shows(h, "Saved."));
    let cfg = std::fs::read_to_string(home.home.config_file()).unwrap();
    assert_eq!(
        cfg,
        format!(
            "[server]\naddress = \"gw2.example.com:2222\"\nalternates = [\"gw1.example.com:10022\"]\nhost_key = \"{FP}\"\n"
        )
    );
}
