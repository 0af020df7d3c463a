//! `pra-registry invite create/list/revoke` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use crate::common::assert_only_hash_stored;
use pra_proto::invite::Invite;

/// `invite create` for alice through vpn.example.com.
const INVITE_ALICE: [&str; 6] = [
    "invite",
    "create",
    "--user",
    "alice",
    "--gateway",
    "vpn.example.com",
];

#[test]
fn an_invite_is_printed_once_and_only_its_secrets_hash_is_stored() {
    let env = TestEnv::new();
    let line = env.run(&INVITE_ALICE).error_line();
    assert!(line.starts_with("ERR(10303) no user named alice"), "{line}");
    env.ok(&["user", "add", "alice"]);
    let mut args = INVITE_ALICE.to_vec();
    args.extend(["--gateway", "10.1.2.3:2222", "--expires", "2d", "--approve"]);
    let r = env.run(&args);
    assert!(r.success(), "{}", r.stderr());
    let text = r.stdout().trim().to_string();
    assert!(
        text.starts_with("pra-invite:") && !text.contains(' '),
        "{text}"
    );
    let invite = Invite::decode(&text).unwrap();
    assert_eq!(invite.gateways, ["vpn.example.com:10022", "10.1.2.3:2222"]);
    assert_eq!(invite.user, "alice");
    let fingerprint = env.ok(&["hostkey"]);
    assert_eq!(invite.host_key, fingerprint.trim());
    let left = invite.expires_at - pra_registry::model::now();
    assert!((2 * 86_400 - 60..=2 * 86_400).contains(&left), "{left}");
    assert!(
        r.stderr().contains("shown only this once"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains(invite.secret.expose()));

    // the secret is nowhere in the data folder, its hash is
    let secret = invite.secret.expose();
    let hash = invite.secret.hash();
    assert_only_hash_stored(&env.data(), secret, hash.as_ref());

    let list = env.json(&["invite", "list", "--json"]);
    let invites = list["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0]["id"], invite.id.as_str());
    assert_eq!(invites[0]["approve"], true);
    assert!(!list.to_string().contains(secret) && !list.to_string().contains(&hash));
    let table = env.ok(&["invite", "list"]);
    assert!(
        table.contains(&invite.id) && table.contains("outstanding"),
        "{table}"
    );

    let out = env.ok(&["invite", "revoke", &invite.id]);
    assert!(out.contains("revoked invite"), "{out}");
    assert!(env.ok(&["invite", "list"]).contains("revoked"));
    let line = env.run(&["invite", "revoke", &invite.id]).error_line();
    assert!(line.starts_with("ERR(10302)"), "{line}");
    let line = env.run(&["invite", "revoke", "feedbeef"]).error_line();
    assert!(
        line.starts_with("ERR(10303) no invite with id feedbeef"),
        "{line}"
    );
    let audit = env.ok(&["audit"]);
    assert!(
        audit.contains("invite.create") && audit.contains("invite.revoke"),
        "{audit}"
    );
    assert!(!audit.contains(secret));
}

#[test]
fn bad_arguments_store_nothing() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "bob"]);
    for args in [
        &["--gateway", "bad host"][..],
        &["--gateway", "h:0"][..],
        &["--gateway", "h", "--expires", "forever"][..],
    ] {
        let mut all = vec!["invite", "create", "--user", "bob"];
        all.extend_from_slice(args);
        let line = env.run(&all).error_line();
        assert!(line.starts_with("ERR(10301)"), "{args:?}: {line}");
    }
    assert!(env.ok(&["invite", "list"]).starts_with("no invites"));
}
