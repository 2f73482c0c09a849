//! Resolution with the address rule: the resolver every request connects through, and
//! the ranges no request may reach unless configuration allows it (tests).

use super::*;

/// The resolver ureq connects through: the system resolver, minus every address the
/// policy forbids. ureq connects only to what this returns.
#[derive(Debug)]
pub(super) struct GuardedResolver {
    pub(super) allow_private: bool,
    pub(super) exempt: Vec<SocketAddr>,
    pub(super) system: DefaultResolver,
}

/// Every address a name resolved to is forbidden.
#[derive(Debug)]
pub(super) struct AddressRefused {
    pub(super) range: &'static str,
}

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "it is not on a public address ({})", self.range)
    }
}

impl std::error::Error for AddressRefused {}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = self.system.resolve(uri, config, timeout)?;
        let mut allowed = self.empty();
        let mut refused = None;
        for addr in resolved.iter() {
            match forbidden_range(addr.ip()) {
                Some(range) if !self.allow_private && !self.exempt.contains(addr) => {
                    refused.get_or_insert(range);
                }
                _ => allowed.push(*addr),
            }
        }
        match refused {
            Some(range) if allowed.is_empty() => Err(ureq::Error::Other(Box::new(AddressRefused { range }))),
            _ => Ok(allowed),
        }
    }
}

/// The name of the non-public range `ip` belongs to, or `None` when it is a public
/// address. Every `Some` is refused as a destination unless
/// [`ClientPolicy::allow_private_addresses`].
///
/// IPv4: 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12,
/// 192.0.0/24 (IETF protocol assignments), the documentation ranges 192.0.2/24,
/// 198.51.100/24 and 203.0.113/24, 192.168/16, 198.18/15 (benchmarking), 224/4
/// (multicast), 240/4 (reserved) and 255.255.255.255 (broadcast).
///
/// IPv6: `::` and `::1`, the rest of ::/96 (deprecated IPv4-compatible), IPv4-mapped
/// ::ffff:0:0/96 and NAT64 64:ff9b::/96 and 6to4 2002::/16 by the IPv4 address they
/// embed, 64:ff9b:1::/48 (local NAT64), 100::/64 (discard), 2001::/23 (IETF protocol
/// assignments, Teredo included), the documentation ranges 2001:db8::/32 and
/// 3fff::/20, fc00::/7 (unique local), fec0::/10 (site-local), fe80::/10
/// (link-local) and ff00::/8 (multicast).
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

pub(super) const V4_RANGES: &[([u8; 4], u32, &str)] = &[
    ([255, 255, 255, 255], 32, "broadcast"),
    ([0, 0, 0, 0], 8, "unspecified (\"this network\")"),
    ([10, 0, 0, 0], 8, "private"),
    ([100, 64, 0, 0], 10, "shared (CGNAT)"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 0, 0, 0], 24, "IETF protocol assignment"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

pub(super) fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let n = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, bits, _)| {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            n & mask == u32::from_be_bytes(*net) & mask
        })
        .map(|(_, _, name)| *name)
}

pub(super) const V6_RANGES: &[(u128, u32, &str)] = &[
    (0, 128, "unspecified"),
    (1, 128, "loopback"),
    (0, 96, "IPv4-compatible (deprecated)"),
    (0x0064_ff9b_0001 << 80, 48, "local NAT64"),
    (0x0100 << 112, 64, "discard-only"),
    (0x2001_0db8 << 96, 32, "documentation"),
    (0x2001 << 112, 23, "IETF protocol assignment"),
    (0x3fff << 112, 20, "documentation"),
    (0xfc00 << 112, 7, "unique local (private)"),
    (0xfec0 << 112, 10, "site-local"),
    (0xfe80 << 112, 10, "link-local"),
    (0xff00 << 112, 8, "multicast"),
];

pub(super) fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let n = u128::from(ip);
    // Addresses that carry an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if n >> 32 == 0x0064_ff9b << 64 {
        return forbidden_v4(Ipv4Addr::from(n as u32));
    }
    if n >> 112 == 0x2002 {
        return forbidden_v4(Ipv4Addr::from((n >> 80) as u32));
    }
    V6_RANGES
        .iter()
        .find(|(net, bits, _)| {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            n & mask == net & mask
        })
        .map(|(_, _, name)| *name)
}
