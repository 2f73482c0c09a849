//! Pod URLs and origins: the one normalisation every cache, limit and list keys on.

use super::*;

/// lower case (international names in their ASCII form, IPv6 addresses bracketed and
/// compressed), the default port omitted, path, query and fragment dropped. Only
/// `http` and `https` URLs are accepted, without user information; numeric hosts
/// must be plain dotted-quad IPv4 addresses. Whether `http` is allowed is the
/// client's decision, not this function's.
pub fn origin_of(url: &str) -> Result<String> {
    Target::parse(url)
        .map(|t| t.origin.to_string())
        .map_err(|reason| Error::bad(format!("not a pod URL: {reason}")))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) https: bool,
    /// ASCII, lower case; IPv6 addresses in brackets.
    pub(super) host: String,
    pub(super) port: u16,
}

impl Origin {
    pub(super) fn default_port(https: bool) -> u16 {
        if https {
            443
        } else {
            80
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host)?;
        if self.port != Origin::default_port(self.https) {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// An absolute http(s) URL, split into its origin and the rest.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub(super) origin: Origin,
    /// Starts with `/`; no fragment.
    pub(super) path_and_query: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL. The error is a reason that
    /// never repeats the URL.
    pub(super) fn parse(input: &str) -> std::result::Result<Target, String> {
        let input = input.trim();
        if input.chars().any(|c| c.is_control() || c == ' ') {
            return Err("the URL contains spaces or control characters".into());
        }
        let Some((scheme, rest)) = split_scheme(input) else {
            return Err("not an absolute URL (it must start with https://)".into());
        };
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err("only http and https URLs are supported".into()),
        };
        let Some(rest) = rest.strip_prefix("//") else {
            return Err("not an absolute URL (it must start with https://)".into());
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err("user information in URLs is not accepted".into());
        }
        let (host, port) = split_host_port(authority)?;
        let host = normalise_host(host)?;
        let port = match port {
            None => Origin::default_port(https),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err("the port is not a number from 1 to 65535".into()),
            },
        };
        let tail = tail.split('#').next().unwrap_or("");
        let path_and_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Target {
            origin: Origin { https, host, port },
            path_and_query,
        })
    }

    pub(super) fn url(&self) -> String {
        format!("{}{}", self.origin, self.path_and_query)
    }

    /// Resolves a `Location` header against this URL.
    pub(super) fn join(&self, location: &str) -> std::result::Result<Target, String> {
        let location = location.trim();
        if split_scheme(location).is_some() {
            return Target::parse(location);
        }
        if location.starts_with("//") {
            let scheme = if self.origin.https { "https:" } else { "http:" };
            return Target::parse(&format!("{scheme}{location}"));
        }
        let base_path = self.path_and_query.split('?').next().unwrap_or("/");
        let joined = if location.is_empty() || location.starts_with('#') {
            self.path_and_query.clone()
        } else if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{base_path}{location}")
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            let dir = if dir.is_empty() { "/" } else { dir };
            format!("{dir}{location}")
        };
        Target::parse(&format!("{}{}", self.origin, joined))
    }
}

/// Splits `scheme:rest` when `input` starts with a syntactically valid scheme.
pub(super) fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let colon = input.find(':')?;
    let scheme = &input[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| (scheme, &input[colon + 1..]))
}

pub(super) fn split_host_port(authority: &str) -> std::result::Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some(close) = bracketed.find(']') else {
            return Err("unclosed [ in the host".into());
        };
        let host = &authority[..close + 2];
        let after = &bracketed[close + 1..];
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("unexpected characters after the IPv6 address".into()),
            },
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

pub(super) fn normalise_host(host: &str) -> std::result::Result<String, String> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.trim_end_matches(']');
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| format!("[{ip}]"))
            .map_err(|_| "the bracketed host is not an IPv6 address".into());
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    let ascii = idna::domain_to_ascii_cow(host.as_bytes(), idna::AsciiDenyList::URL)
        .map_err(|_| "the host name is not valid".to_string())?;
    let ascii = ascii.into_owned();
    if ascii.is_empty()
        || ascii.split('.').any(str::is_empty)
        || !ascii
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err("the host name is not valid".into());
    }
    // A name whose last label is numeric is an IPv4 address; only the plain dotted
    // quad is accepted, so that one address has one spelling ("127.1", "0x7f.1" and
    // "2130706433" are refused).
    let last = ascii.rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return match ascii.parse::<Ipv4Addr>() {
            Ok(ip) if ip.to_string() == ascii => Ok(ascii),
            _ => Err("a numeric host must be a dotted-quad IPv4 address".into()),
        };
    }
    Ok(ascii)
}
