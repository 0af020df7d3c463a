//! `pra server set|show` with the real binary and a temp home.
use crate::common::{TestEnv, read};

const FP: &str = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
const FP2: &str = "SHA256:AAAAuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";

#[test]
fn set_and_show_with_default_port_and_pin() {
    let env = TestEnv::new();
    env.run(&["server", "show"])
        .err("ERR(10101) no gateway address is set: run `pra server set HOST`");

    let out = env.run(&["server", "set", "gw.example.com", "--host-key", FP]);
    assert_eq!(
        out.ok(),
        format!("gateway: gw.example.com:10022\nhost key: pinned {FP}\n")
    );
    assert_eq!(
        env.run(&["server", "show"]).ok(),
        format!("gateway: gw.example.com:10022\nhost key: pinned {FP}\n")
    );

    // Same address again without --host-key: the pin stays.
    let out = env.run(&["server", "set", "gw.example.com:10022"]);
    assert!(
        out.ok().contains(&format!("host key: pinned {FP}")),
        "{out:?}"
    );
}

#[test]
fn changing_the_address_clears_the_old_pin_and_says_so() {
    let env = TestEnv::new();
    env.run(&["server", "set", "gw.example.com", "--host-key", FP])
        .ok();
    let out = env.run(&["server", "set", "[2001:db8::1]:2222"]);
    let text = out.ok();
    assert!(
        text.contains("gateway address changed from gw.example.com:10022 to [2001:db8::1]:2222"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "the host key {FP} pinned for the old address was removed"
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "gateway: [2001:db8::1]:2222\nhost key: not pinned: the first connection will pin it (trust on first use)\n"
        ),
        "{text}"
    );
    assert!(!read(&env.config_file()).contains("host_key"));

    let out = env.run(&["server", "set", "[2001:db8::1]:2222", "--host-key", FP2]);
    assert!(out.ok().contains(&format!("host key: pinned {FP2}")));
}

#[test]
fn bad_addresses_and_fingerprints_change_nothing() {
    let env = TestEnv::new();
    env.run(&["server", "set", "gw.example.com", "--host-key", FP])
        .ok();
    let before = read(&env.config_file());
    for (args, prefix) in [
        (
            vec!["server", "set", "gw:99999"],
            "ERR(10100) gateway address: bad port `99999` (expected 1-65535): ",
        ),
        (
            vec!["server", "set", "gw:0"],
            "ERR(10100) gateway address: bad port `0`",
        ),
        (
            vec!["server", "set", "2001:db8::1"],
            "ERR(10100) gateway address: `2001:db8::1`: write IPv6 addresses in brackets",
        ),
        (
            vec!["server", "set", "ssh://gw"],
            "ERR(10100) gateway address: `ssh://gw` has a scheme",
        ),
        (
            vec!["server", "set", "gw", "--host-key", "SHA256:tooshort"],
            "ERR(10100) --host-key: `SHA256:tooshort` is not a SHA256 fingerprint",
        ),
        (
            vec![
                "server",
                "set",
                "gw",
                "--host-key",
                "O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10",
            ],
            "ERR(10100) --host-key: ",
        ),
    ] {
        env.run(&args).err(prefix);
        assert_eq!(
            read(&env.config_file()),
            before,
            "{args:?} changed the config"
        );
    }
}

#[test]
fn broken_config_is_reported_by_key_and_never_overwritten() {
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.home).unwrap();
    let cfg = env.config_file();
    for (text, prefix) in [
        (
            "[server]\naddress = \"gw\"\ngatway = \"x\"\n",
            "line 3 in [server]: unknown key `gatway`",
        ),
        ("gatway = \"x\"\n", "line 1: unknown key `gatway`"),
        (
            "[server]\naddress = \"gw:http\"\n",
            "server.address: bad port `http`",
        ),
        (
            "[server]\naddress = \"gw\"\nhost_key = \"SHA256:x\"\n",
            "server.host_key: `SHA256:x` is not a SHA256 fingerprint",
        ),
        (
            "[registry]\nurl = \"registry.example.com\"\n",
            "registry.url: ",
        ),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let want = format!("ERR(10100) {}: {prefix}", cfg.display());
        env.run(&["server", "show"]).err(&want);
        env.run(&["server", "set", "gw.example.com"]).err(&want);
        assert_eq!(read(&cfg), text, "the broken config was overwritten");
    }
}

#[test]
fn several_gateways_share_one_pin_and_are_listed() {
    let env = TestEnv::new();
    let out = env.run(&[
        "server",
        "set",
        "gw1.example.com",
        "gw2.example.com:2222",
        "[2001:db8::1]",
        "gw1.example.com:10022",
        "--host-key",
        FP,
    ]);
    assert_eq!(
        out.ok(),
        format!(
            "gateway: gw1.example.com:10022\nalternate gateway: gw2.example.com:2222\n\
             alternate gateway: [2001:db8::1]:10022\nhost key: pinned {FP}\n"
        )
    );
    assert_eq!(
        read(&env.config_file()),
        format!(
            "[server]\naddress = \"gw1.example.com:10022\"\n\
             alternates = [\"gw2.example.com:2222\", \"[2001:db8::1]:10022\"]\nhost_key = \"{FP}\"\n"
        )
    );
    let v: serde_json::Value =
        serde_json::from_str(env.run(&["server", "show", "--json"]).ok()).unwrap();
    assert_eq!(v["gateway"], "gw1.example.com:10022");
    assert_eq!(
        v["alternates"],
        serde_json::json!(["gw2.example.com:2222", "[2001:db8::1]:10022"])
    );

    // Another order of the same registry: the pin stays.
    let out = env.run(&["server", "set", "gw2.example.com:2222", "gw1.example.com"]);
    let text = out.ok();
    assert!(
        text.starts_with(
            "gateway address changed from gw1.example.com:10022 to gw2.example.com:2222\n"
        ),
        "{text}"
    );
    assert!(text.contains(&format!("host key: pinned {FP}")), "{text}");

    // One address again: exactly the single-gateway file of before.
    env.run(&["server", "set", "gw1.example.com"]).ok();
    assert_eq!(
        read(&env.config_file()),
        format!("[server]\naddress = \"gw1.example.com:10022\"\nhost_key = \"{FP}\"\n")
    );

    // A bad one among several names it; nothing changes.
    let before = read(&env.config_file());
    env.run(&["server", "set", "gw1.example.com", "gw2:0"])
        .err("ERR(10100) gateway address `gw2:0`: bad port `0`");
    assert_eq!(read(&env.config_file()), before);
    env.run(&["server", "set"]).err("ERR(10110) ");
}
