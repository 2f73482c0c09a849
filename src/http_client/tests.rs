//! Tests of `http_client`.

use super::*;

fn origin(url: &str) -> String {
    origin_of(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[test]
fn origins_are_normalised() {
    assert_eq!(origin("https://pod.example"), "https://pod.example");
    assert_eq!(origin("https://pod.example/"), "https://pod.example");
    assert_eq!(origin("HTTPS://Pod.EXAMPLE/Users/Alice?x=1#f"), "https://pod.example");
    assert_eq!(origin("https://pod.example:443/a"), "https://pod.example");
    assert_eq!(origin("http://pod.example:80"), "http://pod.example");
    assert_eq!(origin("https://pod.example:80"), "https://pod.example:80");
    assert_eq!(origin("http://pod.example:443"), "http://pod.example:443");
    assert_eq!(origin("https://pod.example:8443/x"), "https://pod.example:8443");
    assert_eq!(origin("https://pod.example.?q"), "https://pod.example");
    assert_eq!(origin("  https://pod.example  "), "https://pod.example");
    assert_eq!(origin("http://127.0.0.1:3000/"), "http://127.0.0.1:3000");
    assert_eq!(origin("https://[::1]:8443/"), "https://[::1]:8443");
    assert_eq!(origin("https://[2001:DB8:0:0::1]/"), "https://[2001:db8::1]");
    assert_eq!(origin("https://bücher.example/"), "https://xn--bcher-kva.example");
    assert_eq!(origin("https://pod.example#frag"), "https://pod.example");
}

#[test]
fn bad_origins_are_refused() {
    for url in [
        "",
        "pod.example",
        "pod.example:443",
        "//pod.example",
        "ftp://pod.example",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https:pod.example",
        "https://",
        "https:///path",
        "https://user@pod.example",
        "https://user:secret@pod.example/",
        "https://pod.example:0",
        "https://pod.example:65536",
        "https://pod.example:",
        "https://pod.example:+443",
        "https://pod.example:12ab",
        "https://pod..example",
        "https://pod example",
        "https://[::1",
        "https://[::1]x",
        "https://[not-ip]/",
        "https://127.1/",
        "https://0x7f.0.0.1/",
        "https://2130706433/",
        "https://pod.exa$mple/",
    ] {
        assert!(origin_of(url).is_err(), "{url:?} should be refused");
    }
    let e = origin_of("https://alice:hunter2@pod.example").unwrap_err();
    assert!(!e.to_string().contains("hunter2"));
    assert!(matches!(e, Error::BadRequest(_)));
}

#[test]
fn user_agent_format() {
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        user_agent("https://pod.example/"),
        format!("lifeboat/{v} (+https://pod.example)")
    );
}

#[test]
fn locations_are_joined() {
    let base = Target::parse("https://pod.example/a/b?x=1").unwrap();
    let j = |l: &str| base.join(l).map(|t| t.url());
    assert_eq!(j("/c").unwrap(), "https://pod.example/c");
    assert_eq!(j("c").unwrap(), "https://pod.example/a/c");
    assert_eq!(j("?y=2").unwrap(), "https://pod.example/a/b?y=2");
    assert_eq!(j("").unwrap(), "https://pod.example/a/b?x=1");
    assert_eq!(j("//other.example/d").unwrap(), "https://other.example/d");
    assert_eq!(
        j("http://other.example:8080/e#f").unwrap(),
        "http://other.example:8080/e"
    );
    assert!(j("file:///etc/passwd").is_err());
    assert!(j("gopher://x/").is_err());
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}
fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

#[test]
fn forbidden_ipv4_ranges() {
    for (ip, range) in [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("169.254.169.254", "link-local"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.0.0.8", "IETF"),
        ("192.0.2.1", "documentation"),
        ("192.168.1.1", "private"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
    ] {
        assert_forbidden_as(ip, forbidden_range(v4(ip)), range);
    }
}

#[test]
fn public_ipv4_addresses_pass() {
    for ip in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.0.3.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.101.1",
        "203.0.114.1",
        "223.255.255.255",
    ] {
        assert_eq!(forbidden_range(v4(ip)), None, "{ip} is public");
    }
}

fn assert_forbidden_as(ip: &str, got: Option<&str>, range: &str) {
    assert!(
        got.is_some_and(|g| g.contains(range)),
        "{ip}: expected {range}, got {got:?}"
    );
}

#[test]
fn forbidden_ipv6_ranges() {
    for (ip, range) in [
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::7f00:1", "IPv4-compatible"),
        ("::808:808", "IPv4-compatible"),
        ("64:ff9b:1::1", "local NAT64"),
        ("100::1", "discard"),
        ("2001::1", "IETF"),
        ("2001:1ff::1", "IETF"),
        ("2001:db8::1", "documentation"),
        ("2001:db8:ffff::1", "documentation"),
        ("3fff::1", "documentation"),
        ("3fff:fff::1", "documentation"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fec0::1", "site-local"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        // IPv4-mapped: judged by the IPv4 address.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:172.16.0.1", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:100.64.0.1", "CGNAT"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("::ffff:0.1.2.3", "unspecified"),
        ("::ffff:255.255.255.255", "broadcast"),
        ("::ffff:224.0.0.1", "multicast"),
        ("::ffff:192.0.2.1", "documentation"),
        ("::ffff:198.51.100.1", "documentation"),
        ("::ffff:203.0.113.1", "documentation"),
        // NAT64 and 6to4 carrying forbidden IPv4 addresses.
        ("64:ff9b::127.0.0.1", "loopback"),
        ("64:ff9b::10.0.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:c0a8:101::", "private"),
    ] {
        assert_forbidden_as(ip, forbidden_range(v6(ip)), range);
    }
}

#[test]
fn public_ipv6_addresses_pass() {
    for ip in [
        "2001:4860:4860::8888",
        "2606:4700:4700::1111",
        "2a01:4f8::1",
        "2001:200::1",
        "2001:db9::1",
        "3ffe::1",
        "4000::1",
        "fbff::1",
        "fe00::1",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
        "1::1",
    ] {
        assert_eq!(forbidden_range(v6(ip)), None, "{ip} is public");
    }
}

#[test]
fn guarded_resolver_exempts_exact_socket_addresses_only() {
    let exempt: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let resolver = GuardedResolver {
        allow_private: false,
        exempt: vec![exempt],
        system: DefaultResolver::default(),
    };
    let config = Config::builder().proxy(None).build();
    let timeout = NextTimeout::default;
    let ok = resolver
        .resolve(&"http://127.0.0.1:4000/".parse().unwrap(), &config, timeout())
        .unwrap();
    assert_eq!(&ok[..], &[exempt]);
    let err = resolver
        .resolve(&"http://127.0.0.1:4001/".parse().unwrap(), &config, timeout())
        .unwrap_err();
    assert!(matches!(classify(err), Failed::Refused(r) if r.contains("loopback")));
}
