//! Everything the CLI does before connecting, from the app's menus: set the
//! server, generate the key (fingerprint shown), export the hand-over file,
//! submit it to a real registry API (pending), ask the key's state (pending,
//! then approved). Bad input is answered with its code in the dialog.
mod common;

use common::*;
use pra_proto::api::KeyStatus;

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
