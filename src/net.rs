//! IP addresses: the one canonical form every comparison uses (IPv4-mapped IPv6 as
//! IPv4), address and CIDR parsing for settings and allow-lists, and the client
//! address of a request: the peer, or, when the peer is a trusted proxy, the nearest
//! untrusted address of `X-Forwarded-For` (read right to left, so that a client cannot
//! forge its address by prepending entries).

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use ipnet::{IpNet, Ipv4Net};

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) compare as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address as text, formatted without allocating (the request path writes the
/// client's address into every envelope): IPv4 by hand, which `Display` makes
/// costly, IPv6 through `Display`.
pub struct IpText {
    bytes: [u8; 45],
    len: usize,
}

impl IpText {
    /// The text of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        let mut text = Self {
            bytes: [0; 45],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b".");
                    }
                    text.push(itoa::Buffer::new().format(octet).as_bytes());
                }
            }
            IpAddr::V6(v6) => {
                use std::fmt::Write;
                // 45 bytes hold the longest IPv6 text (IPv4-mapped, in full).
                let _ = write!(text, "{v6}");
            }
        }
        text
    }

    fn push(&mut self, part: &[u8]) {
        let end = (self.len + part.len()).min(self.bytes.len());
        self.bytes[self.len..end].copy_from_slice(&part[..end - self.len]);
        self.len = end;
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, part: &str) -> std::fmt::Result {
        self.push(part.as_bytes());
        Ok(())
    }
}

/// One address or CIDR block, in canonical form: a bare address is a /32 or /128
/// block, and an IPv4-mapped block (`::ffff:10.0.0.0/104`) is the IPv4 block it maps,
/// so that it matches client addresses, which are canonicalised the same way.
pub fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))?;
    Some(canonical_net(net))
}

fn canonical_net(net: IpNet) -> IpNet {
    const MAPPED_PREFIX: u8 = 96;
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= MAPPED_PREFIX => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - MAPPED_PREFIX)
                .map_or(net, |n| IpNet::V4(n.trunc())),
            None => net,
        },
        other => other,
    }
}

/// The bucket an address is counted in by per-address limits: an IPv4 address alone,
/// an IPv6 address by its /64 (one subscriber's usual allocation), so that a client
/// cannot escape a limit by rotating through the addresses of its own network.
pub fn subscriber_of(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let high = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(high))
        }
        v4 => v4,
    }
}

/// The address a request is attributed to.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical_ip(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        nearest = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    nearest
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical_ip(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical_ip(s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for text in [
            "0.0.0.0",
            "203.0.113.7",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
            "0:0:0:0:0:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(IpText::of(ip).as_str(), ip.to_string(), "{text}");
        }
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let got = client_ip(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &[]);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn trusted_peer_yields_the_nearest_untrusted_hop() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["1.1.1.1, junk"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn cidrs_accept_bare_addresses_and_canonicalise_mapped_ones() {
        let parse = |s: &str| parse_cidr(s).map(|n| n.to_string());
        assert_eq!(parse("10.0.0.0/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(parse("127.0.0.1").as_deref(), Some("127.0.0.1/32"));
        assert_eq!(parse("::1").as_deref(), Some("::1/128"));
        assert_eq!(parse("::ffff:127.0.0.1").as_deref(), Some("127.0.0.1/32"));
        assert_eq!(parse("::ffff:10.1.0.0/104").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(parse("10.0.0.0/33"), None);
        assert_eq!(parse("junk"), None);
    }

    #[test]
    fn ipv6_subscribers_are_their_64() {
        assert_eq!(
            subscriber_of(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(subscriber_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(subscriber_of(ip("10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_v4_peer_is_compared_as_v4() {
        let trusted = vec!["127.0.0.1/32".parse().unwrap()];
        let h = headers(&["9.9.9.9"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("9.9.9.9")
        );
    }
}
