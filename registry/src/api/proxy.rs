//! Who the client is: the TCP peer, or, when the peer is a trusted reverse
//! proxy (`serve --trusted-proxy ADDR`), the address it names in
//! `X-Forwarded-For`. A header from any other peer is ignored, so a client
//! cannot choose its own address (and with it its rate-limit bucket or the
//! source written to the audit log).
//!
//! The header is read from the right: the rightmost entry was added by the
//! proxy that connected to us; entries of further trusted proxies are
//! skipped; the first entry that is not a trusted proxy is the client.
//! Anything left of it was written by the client and is not believed.

use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpAddr>);

/// An IPv4-mapped IPv6 address as IPv4, others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// These addresses.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> TrustedProxies {
        TrustedProxies(addrs.into_iter().map(canonical).collect())
    }

    /// No proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Is `ip` one of them?
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        let values = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok());
        self.client_of(peer, values)
    }

    /// [`TrustedProxies::client`] on the header's values (pure). The
    /// client's port is not known: it is 0.
    pub fn client_of<'a>(
        &self,
        peer: SocketAddr,
        values: impl DoubleEndedIterator<Item = &'a str>,
    ) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        let entries: Vec<&str> = values.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // Garbage: stop at the last hop we could read.
                break;
            };
            client = SocketAddr::new(canonical(ip), 0);
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an IP address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    e.parse::<IpAddr>()
        .ok()
        .or_else(|| e.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            e.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_is_believed_only_from_a_trusted_peer() {
        let t = TrustedProxies::new(["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()]);
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mapped_proxy: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let c = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 0);
        // (peer, header values, client)
        for (peer, values, want) in [
            (stranger, vec!["198.51.100.7"], stranger),
            (proxy, vec![], proxy),
            (proxy, vec!["198.51.100.7"], c("198.51.100.7")),
            (mapped_proxy, vec!["198.51.100.7"], c("198.51.100.7")),
            // the client's own claim (left) is not believed
            (proxy, vec!["1.2.3.4, 198.51.100.7"], c("198.51.100.7")),
            (proxy, vec!["1.2.3.4", "198.51.100.7"], c("198.51.100.7")),
            // a chain of trusted proxies is skipped
            (proxy, vec!["198.51.100.7, 10.0.0.2"], c("198.51.100.7")),
            (proxy, vec!["10.0.0.2"], c("10.0.0.2")),
            (proxy, vec!["[2001:db8::5]:443"], c("2001:db8::5")),
            (proxy, vec!["2001:db8::5"], c("2001:db8::5")),
            (proxy, vec!["198.51.100.7:1234"], c("198.51.100.7")),
            // garbage: the last readable hop
            (proxy, vec!["unknown"], proxy),
            (proxy, vec!["1.2.3.4, garbage, 10.0.0.2"], c("10.0.0.2")),
        ] {
            assert_eq!(
                t.client_of(peer, values.iter().copied()),
                want,
                "{peer} {values:?}"
            );
        }
        assert_eq!(
            TrustedProxies::default().client_of(proxy, ["198.51.100.7"].into_iter()),
            proxy
        );
    }
}
