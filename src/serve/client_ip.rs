//! Who the client is, for the rate limiter and the access log: the TCP peer,
//! or, only when that peer is a trusted reverse proxy, the address the proxies
//! recorded in `X-Forwarded-For`.
//!
//! Headers are never trusted by default: any client can send
//! `X-Forwarded-For`, so believing it from an untrusted peer would let one
//! client pose as many and walk around the per-IP rate limit.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed; empty trusts no header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts these addresses and networks.
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies {
            nets: nets.iter().map(IpNet::trunc).collect(),
        }
    }

    /// True when no proxy is trusted, so headers are never read.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer`.
    ///
    /// When `peer` is trusted, `X-Forwarded-For` (every field line, in order)
    /// is read from the right, the end each proxy appends to, skipping trusted
    /// addresses: the first untrusted one is the client. Entries further left
    /// were written by the client or by untrusted hops and are ignored. When
    /// every entry is trusted, the leftmost is the client; when there is no
    /// header, or the first untrusted entry is not an IP address, the peer is.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|line| line.to_str().unwrap_or("").rsplit(','));
        for hop in hops {
            let hop = hop.trim();
            if hop.is_empty() {
                continue;
            }
            let Some(ip) = parse_hop(hop) else {
                return peer;
            };
            if !self.trusts(ip) {
                return ip;
            }
            client = ip;
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an IP address, possibly with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Parses a `--trusted-proxy` value: an address (`10.0.0.1`, `::1`) or a
/// network in CIDR notation (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_trusted(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("\"{s}\" is not an IP address or CIDR network such as 10.0.0.0/8 or ::1")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(trusted: &[&str], peer: &str, xff: &[&str], expected: &str) {
        let proxies =
            TrustedProxies::new(trusted.iter().map(|t| parse_trusted(t).unwrap()).collect());
        let mut headers = HeaderMap::new();
        for line in xff {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        let got = proxies.client(peer.parse().unwrap(), &headers);
        assert_eq!(
            got,
            expected.parse::<IpAddr>().unwrap(),
            "trusted {trusted:?}, peer {peer}, X-Forwarded-For {xff:?}"
        );
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_peers_and_from_the_right() {
        // Nothing trusted: the header is never read.
        check(&[], "203.0.113.9", &["198.51.100.1"], "203.0.113.9");
        // Peer not trusted: spoofing changes nothing.
        check(&["10.0.0.0/8"], "203.0.113.9", &["10.0.0.1"], "203.0.113.9");
        // Trusted peer: the rightmost untrusted entry is the client, and what
        // the client wrote further left is ignored.
        check(
            &["127.0.0.1"],
            "127.0.0.1",
            &["198.51.100.1"],
            "198.51.100.1",
        );
        check(
            &["127.0.0.1", "10.0.0.0/8"],
            "127.0.0.1",
            &["6.6.6.6, 198.51.100.1, 10.1.2.3"],
            "198.51.100.1",
        );
        check(
            &["127.0.0.1", "10.0.0.0/8"],
            "127.0.0.1",
            &["6.6.6.6", "198.51.100.1 ,10.1.2.3"],
            "198.51.100.1",
        );
        // Ports, IPv6, IPv4-mapped peers.
        check(&["::1"], "::1", &["[2001:db8::7]:4711"], "2001:db8::7");
        check(
            &["127.0.0.1"],
            "::ffff:127.0.0.1",
            &["198.51.100.1:80"],
            "198.51.100.1",
        );
        check(&["fd00::/8"], "fd00::1", &["2001:db8::7"], "2001:db8::7");
        // No header, all trusted, or garbage where the client should be.
        check(&["127.0.0.1"], "127.0.0.1", &[], "127.0.0.1");
        check(
            &["10.0.0.0/8"],
            "10.0.0.1",
            &["10.0.0.2, 10.0.0.3"],
            "10.0.0.2",
        );
        check(
            &["127.0.0.1"],
            "127.0.0.1",
            &["198.51.100.1, unknown"],
            "127.0.0.1",
        );
        check(
            &["127.0.0.1"],
            "127.0.0.1",
            &["unknown, 198.51.100.1"],
            "198.51.100.1",
        );
        check(&["127.0.0.1"], "127.0.0.1", &[" , "], "127.0.0.1");
    }

    #[test]
    fn trusted_proxy_values() {
        assert_eq!(
            parse_trusted("10.1.2.3/8").unwrap().to_string(),
            "10.1.2.3/8"
        );
        assert_eq!(parse_trusted("::1").unwrap().to_string(), "::1/128");
        assert_eq!(
            parse_trusted("127.0.0.1").unwrap().to_string(),
            "127.0.0.1/32"
        );
        for bad in ["", "10.0.0.0/33", "localhost", "10.0.0"] {
            let e = parse_trusted(bad).unwrap_err();
            assert!(e.contains("not an IP address or CIDR network"), "{e}");
        }
    }
}
