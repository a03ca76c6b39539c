//! `[gate] trusted_proxies`: the proxies whose word is taken for a client's address, and that
//! address read from a WebSocket upgrade's `X-Forwarded-For` or `Forwarded` (RFC 7239)
//! header.
//!
//! Each proxy appends the address it received the request from, so the list is read from
//! the right: the first address that is not itself a trusted proxy is the client (what is
//! further left was written by the client, or by proxies nobody vouches for). An entry that
//! is not an address (`unknown`, an obfuscated `_node`, garbage) ends the walk: the last
//! address checked stands.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The trusted proxies: addresses and blocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `trusted_proxies`: each entry an address or a block; the error names the entry.
    pub(crate) fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        list.iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is not an IP address or a CIDR block"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether the list is empty (nobody is trusted).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy (an IPv4 address seen as IPv6, `::ffff:a.b.c.d`,
    /// counts as the IPv4 one).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer`: from the forwarded headers when
    /// `peer` is trusted and they name one, else `peer` itself.
    pub(crate) fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        let mut client = peer;
        for entry in chain(headers).into_iter().rev() {
            let Some(addr) = parse_node(entry) else {
                break;
            };
            client = addr;
            if !self.contains(addr.ip()) {
                break;
            }
        }
        client
    }
}

/// The forwarded chain, left to right: every `X-Forwarded-For` entry, else every `for=` of
/// `Forwarded`. One header only, never a mix: a proxy that sets one passes the other on as
/// the client wrote it.
fn chain(headers: &HeaderMap) -> Vec<&str> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff;
    }
    values("forwarded")
        .into_iter()
        .map(|element| {
            element
                .split(';')
                .find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then_some(value.trim())
                })
                .unwrap_or("")
        })
        .collect()
}

/// One node of the chain: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:4711`,
/// each perhaps in quotes (`Forwarded`); port 0 when none is given.
fn parse_node(node: &str) -> Option<SocketAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = node.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    let ip = bare.unwrap_or(node).parse::<IpAddr>().ok()?;
    Some(SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    const PROXY: &str = "10.0.0.7:40000";

    fn client(t: &TrustedProxies, pairs: &[(&'static str, &str)]) -> String {
        t.client(PROXY.parse().unwrap(), &headers(pairs))
            .to_string()
    }

    #[test]
    fn entries_are_addresses_or_blocks() {
        assert!(
            trusted(&["10.0.0.0/8", "::1", "192.168.1.1", "fd00::/8"])
                .contains("10.1.2.3".parse().unwrap())
        );
        let err = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse(&["example.com".into()]).is_err());
        let t = trusted(&["10.0.0.0/8"]);
        assert!(t.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_chain_is_read_from_the_right_past_trusted_proxies() {
        let t = trusted(&["10.0.0.0/8"]);
        let xff = "x-forwarded-for";
        assert_eq!(client(&t, &[(xff, "203.0.113.9")]), "203.0.113.9:0");
        // What the client wrote itself (the left) is not believed.
        assert_eq!(
            client(&t, &[(xff, "1.1.1.1, 203.0.113.9, 10.0.0.3")]),
            "203.0.113.9:0"
        );
        // Several header lines are one list.
        assert_eq!(
            client(&t, &[(xff, "1.1.1.1"), (xff, "203.0.113.9:5555")]),
            "203.0.113.9:5555"
        );
        assert_eq!(client(&t, &[(xff, "[2001:db8::1]:80")]), "[2001:db8::1]:80");
        // All trusted: the leftmost.
        assert_eq!(client(&t, &[(xff, "10.0.0.1, 10.0.0.2")]), "10.0.0.1:0");
        // Garbage ends the walk at the last address checked.
        assert_eq!(client(&t, &[(xff, "1.1.1.1, garbage")]), PROXY);
        assert_eq!(client(&t, &[(xff, "garbage, 10.0.0.3")]), "10.0.0.3:0");
        assert_eq!(client(&t, &[]), PROXY);
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let t = trusted(&["10.0.0.0/8"]);
        let fwd = "forwarded";
        assert_eq!(
            client(&t, &[(fwd, "for=192.0.2.60;proto=https;by=10.0.0.7")]),
            "192.0.2.60:0"
        );
        assert_eq!(
            client(
                &t,
                &[(fwd, r#"for=1.1.1.1, For="[2001:db8:cafe::17]:4711""#)]
            ),
            "[2001:db8:cafe::17]:4711"
        );
        assert_eq!(client(&t, &[(fwd, "for=unknown")]), PROXY);
        // X-Forwarded-For wins: a proxy that sets it passes a client's Forwarded on.
        assert_eq!(
            client(
                &t,
                &[(fwd, "for=6.6.6.6"), ("x-forwarded-for", "203.0.113.9")]
            ),
            "203.0.113.9:0"
        );
    }

    #[test]
    fn an_untrusted_peer_is_its_own_address_whatever_it_says() {
        let t = trusted(&["10.9.0.0/16"]);
        assert_eq!(client(&t, &[("x-forwarded-for", "203.0.113.9")]), PROXY);
        assert_eq!(
            client(
                &TrustedProxies::default(),
                &[("x-forwarded-for", "1.2.3.4")]
            ),
            PROXY
        );
    }
}
