//! A rule whose local port another program holds shows WAR(10102) "port
//! busy" with the holder, while the other rule forwards.

use crate::common::*;

#[test]
fn busy_port_row_is_busy_while_the_other_forwards() {
    let gw = TestGateway::start();
    let (home, _) = gw.approved_home("bob");
    let (echo1, echo2) = (gw.echo_server(), gw.echo_server());
    let (busy, free) = (rule_port(), rule_port());
    // "Another program": this test process holds the port.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
    gw.add_rule("bob", "mail", busy, echo1);
    gw.add_rule("bob", "web", free, echo2);
    gw.pin_in(&home);

    let mut h = connecting(&home);
    wait_until(&mut h, "connected with one busy row", |h| {
        shows(h, "Connected to") && shows(h, "WAR(10102) port busy: used by")
    });
    wait_until(&mut h, "the other row forwarding", |h| {
        h.query_all_by_label("forwarding").count() == 1
    });
    let state = text_containing(&h, "WAR(10102)");
    if cfg!(target_os = "linux") {
        // The holder is named (from /proc): this test binary.
        assert!(state.contains("(pid "), "{state}");
    }
    assert!(
        shows(&h, "What to do: close the program that holds the port"),
        "{}",
        shown(&h)
    );
    assert_eq!(echo_roundtrip(free, b"still works"), b"still works");
    // The busy port is still the other program's.
    assert!(shows(&h, &format!("127.0.0.1:{busy}")));
}
