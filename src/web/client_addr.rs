//! Who the client really is: the socket address, or — only when the socket peer is a
//! configured trusted proxy — the rightmost untrusted address of `X-Forwarded-For`.
//! IPv6 clients are grouped by /64, since one host usually holds a whole /64.

use std::net::{IpAddr, Ipv6Addr};

/// The client address as rate limits should see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// Finds the real client from the socket peer and the `X-Forwarded-For` header.
    pub fn resolve(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted_proxies: &[IpAddr]) -> ClientAddr {
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let peer = canonical(peer);
        if !trusted_proxies.contains(&peer) {
            return ClientAddr(peer);
        }
        let Some(header) = forwarded_for else {
            return ClientAddr(peer);
        };
        let mut last_trusted = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    let ip = canonical(ip);
                    if !trusted_proxies.contains(&ip) {
                        return ClientAddr(ip);
                    }
                    last_trusted = ip;
                }
                // A hop we cannot read: trust nothing further left of it.
                Err(_) => return ClientAddr(last_trusted),
            }
        }
        ClientAddr(last_trusted)
    }

    /// The key rate limits use: the IPv4 address, or the IPv6 /64 prefix.
    pub fn key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_socket_counts() {
        let c = ClientAddr::resolve(Some(ip("203.0.113.9")), Some("1.2.3.4"), &[]);
        assert_eq!(c.0, ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_address_counts() {
        let proxies = [ip("127.0.0.1"), ip("10.0.0.2")];
        let c = ClientAddr::resolve(Some(ip("127.0.0.1")), Some("6.6.6.6, 198.51.100.7, 10.0.0.2"), &proxies);
        assert_eq!(c.0, ip("198.51.100.7"), "the spoofable leftmost entry is ignored");
        let c = ClientAddr::resolve(Some(ip("127.0.0.1")), None, &proxies);
        assert_eq!(c.0, ip("127.0.0.1"));
        let c = ClientAddr::resolve(Some(ip("127.0.0.1")), Some("garbage, 10.0.0.2"), &proxies);
        assert_eq!(c.0, ip("10.0.0.2"));
        let c = ClientAddr::resolve(Some(ip("::ffff:127.0.0.1")), Some("198.51.100.7"), &proxies);
        assert_eq!(c.0, ip("198.51.100.7"), "IPv4-mapped peers match IPv4 proxies");
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a = ClientAddr(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientAddr(ip("2001:db8:1:2:bbbb::2"));
        let c = ClientAddr(ip("2001:db8:1:3::1"));
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_eq!(a.key(), "2001:db8:1:2::/64");
    }
}
