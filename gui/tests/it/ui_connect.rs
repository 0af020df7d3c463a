//! Connect against a real gateway on 127.0.0.1:0: the window says
//! "connected", lists every rule with its local port and target, data goes
//! through a forward; Disconnect stops them.

use crate::common::*;

#[test]
fn connect_shows_connected_and_the_rule_rows_then_disconnect() {
    let gw = TestGateway::start();
    let (home, _) = gw.approved_home("alice");
    let (echo1, echo2) = (gw.echo_server(), gw.echo_server());
    let (p1, p2) = (rule_port(), rule_port());
    gw.add_rule("alice", "mail", p1, echo1);
    gw.add_rule("alice", "web", p2, echo2);
    gw.pin_in(&home);

    let mut h = connecting(&home);
    let headline = format!("Connected to {} as alice", gw.addr);
    wait_until(&mut h, "connected", |h| shows(h, &headline));
    wait_until(&mut h, "both rows forwarding", |h| {
        h.query_all_by_label("forwarding").count() == 2
    });
    for (name, port, target) in [("mail", p1, echo1), ("web", p2, echo2)] {
        assert!(shows(&h, name), "{name}:\n{}", shown(&h));
        assert!(shows(&h, &format!("127.0.0.1:{port}")), "{}", shown(&h));
        assert!(shows(&h, &target.to_string()), "{}", shown(&h));
    }
    // The rows are real forwards.
    assert_eq!(echo_roundtrip(p1, b"hello mail"), b"hello mail");
    assert_eq!(echo_roundtrip(p2, b"hello web"), b"hello web");
    assert!(!shows(&h, "ERR("), "{}", shown(&h));

    click(&mut h, "Disconnect");
    wait_until(&mut h, "disconnected", |h| {
        shows(h, "Disconnected") && h.query_all_by_label("stopped").count() == 2
    });
    assert!(std::net::TcpStream::connect(("127.0.0.1", p1)).is_err());
    // The button comes back once the tunnel's thread has ended and released
    // the home's connection lock (a spinner until then).
    wait_until(&mut h, "Connect button back", |h| shows(h, "Connect"));
}

/// Connect while `pra connect` holds this home: no passphrase is asked,
/// the window names the running connection (ERR(10111)) and stays
/// disconnected.
#[test]
fn connect_while_pra_connect_runs_on_this_home_names_it() {
    let home = TestHome::new();
    home.keygen("alice");
    home.server_set("127.0.0.1:9", None);
    let held = pra_client::instance::acquire(&home.home, "pra connect").unwrap();
    let mut h = app(&home);
    h.step();
    click(&mut h, "Connect");
    wait_until(&mut h, "ERR(10111) shown", |h| shows(h, "ERR(10111)"));
    let text = text_containing(&h, "ERR(10111)");
    assert!(
        text.contains(&format!("pra connect, pid {}", std::process::id())),
        "{text:?}\n{}",
        shown(&h)
    );
    assert!(!shows(&h, "Passphrase of your key:"), "{}", shown(&h));
    assert!(h.state().app().tunnel().is_none());
    drop(held);
}
