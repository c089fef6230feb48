//! Outbound network grants: `network = { outbound = ["https://api.example.com",
//! "http://127.0.0.1:*"] }` in an agent's capabilities.
//!
//! A grant is `scheme://host[:port]`: scheme `http` or `https`; host a DNS
//! name, `*.suffix` (any name under `suffix`, not `suffix` itself), `*` (any
//! name), an IPv4 literal or a bracketed IPv6 literal; port a number or `*`
//! (left out: the scheme's default). No path, query, user or fragment.
//!
//! Addresses: a name that resolves to a loopback, private, link-local or
//! otherwise non-public address is refused unless a matching grant names
//! that IP literally (or is `localhost` itself, for a loopback address), so
//! a wildcard grant cannot be turned against the machine by DNS.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// An agent's network capabilities. Nothing by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetCaps {
    /// Outbound grants, each parsed by [`Grant::parse`].
    pub outbound: Vec<String>,
    /// App secrets the host adds as request headers.
    pub secrets: Vec<SecretHeader>,
}

/// `{ secret = "API_KEY", server = "https://api.example.com", header =
/// "authorization", prefix = "Bearer " }`: the host adds header `header`
/// with value `prefix` + the app secret `secret` to every request whose
/// scheme, host and port `server` (a grant) allows. The value never
/// reaches the guest, the chain or a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretHeader {
    /// The secret's name in the app's store.
    pub secret: String,
    /// Which requests get it (grant syntax).
    pub server: String,
    /// The header name (lowercase).
    pub header: String,
    /// Text put before the value.
    pub prefix: String,
}

/// `[[routes]]`: inbound HTTP requests on `path` become messages to the
/// app's agent `agent`, whose reply is the response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// The exact path (`/hooks/github`).
    pub path: String,
    /// The agent's id in the app (sent to `<app>.<agent>`); empty for a
    /// component route.
    pub agent: String,
    /// Instead of an agent: a bundle path to a component exporting
    /// `wasi:http/incoming-handler`, instantiated for each request.
    pub component: Option<String>,
    /// Where that component may make HTTP requests, as the app.
    pub network: NetCaps,
    /// Largest request body, bytes (0: `[net] max_body_bytes`).
    pub max_body_bytes: u64,
    /// Time for the agent's reply, ms (0: `[net] route_timeout_ms`).
    pub timeout_ms: u64,
    /// An app secret the request must present as `Authorization: Bearer`.
    pub token_secret: Option<String>,
}

/// A route path: starts with `/`, at most 256 bytes, of unreserved URL
/// characters and `/`, no `//`, `.` or `..` segment.
pub fn valid_route_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 256
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        && (p == "/"
            || p[1..]
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."))
}

/// A secret name: `[A-Za-z0-9_.-]`, 1-64 bytes, not starting with `.`.
pub fn valid_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A header name a manifest may set: an HTTP token, lowercase.
pub fn valid_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

impl NetCaps {
    /// Grants nothing.
    pub fn is_empty(&self) -> bool {
        self.outbound.is_empty() && self.secrets.is_empty()
    }

    /// The parsed grants; the first bad one is an error naming its index.
    pub fn grants(&self) -> Result<Vec<Grant>, (usize, GrantError)> {
        self.outbound
            .iter()
            .enumerate()
            .map(|(i, s)| Grant::parse(s).map_err(|e| (i, e)))
            .collect()
    }

    /// The grants that allow `scheme://host:port` (unparsable grants allow
    /// nothing).
    pub fn matching(&self, scheme: Scheme, host: &str, port: u16) -> Vec<Grant> {
        self.outbound
            .iter()
            .filter_map(|s| Grant::parse(s).ok())
            .filter(|g| g.allows(scheme, host, port))
            .collect()
    }
}

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    /// Its default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `http` or `https`, case-insensitive.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// A grant's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// One DNS name (lowercase).
    Name(String),
    /// `*.suffix`: names ending in `.suffix`.
    Under(String),
    /// `*`: any name or address.
    Any,
    /// An IP literal.
    Ip(IpAddr),
}

/// A grant's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortPattern {
    /// One port.
    Is(u16),
    /// `*`.
    Any,
}

/// One parsed outbound grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Its scheme.
    pub scheme: Scheme,
    /// Its host pattern.
    pub host: HostPattern,
    /// Its port pattern.
    pub port: PortPattern,
}

/// Why a grant does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantError(pub String);

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GrantError {}

fn err(text: &str, why: impl fmt::Display) -> GrantError {
    GrantError(format!("\"{text}\": {why}"))
}

/// A DNS name: labels of letters, digits and `-`, not starting or ending
/// with `-`, at most 253 bytes.
pub fn valid_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Grant {
    /// Parse `scheme://host[:port]`.
    pub fn parse(text: &str) -> Result<Grant, GrantError> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| err(text, "expected scheme://host[:port]"))?;
        let scheme = Scheme::parse(scheme)
            .ok_or_else(|| err(text, format!("scheme `{scheme}` is not http or https")))?;
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err(
                text,
                "a grant names scheme, host and port only (no path, query, user or fragment)",
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| err(text, "unclosed `[` in an IPv6 host"))?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| err(text, format!("`{ip}` is not an IPv6 address")))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| err(text, "expected `:port` after `]`"))?,
                ),
            };
            (HostPattern::Ip(IpAddr::V6(ip)), port)
        } else {
            let (h, p) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            (host_pattern(text, h)?, p)
        };
        let port = match port {
            None => PortPattern::Is(scheme.default_port()),
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortPattern::Is(n),
                _ => return Err(err(text, format!("port `{p}` is not 1-65535 or `*`"))),
            },
        };
        Ok(Grant { scheme, host, port })
    }

    /// Does it allow `scheme://host:port` (`host` a name or an IP literal,
    /// IPv6 without brackets)?
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if self.scheme != scheme {
            return false;
        }
        if let PortPattern::Is(p) = self.port {
            if p != port {
                return false;
            }
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Name(n) => *n == host,
            HostPattern::Under(s) => host.len() > s.len() + 1 && host.ends_with(&format!(".{s}")),
            HostPattern::Ip(ip) => host.parse::<IpAddr>().map(|h| h == *ip).unwrap_or(false),
        }
    }

    /// May a connection under this grant go to `addr` (what the request's
    /// host resolved to)? Public addresses: yes. Others only when the grant
    /// names `addr` itself, or is `localhost` and `addr` a loopback.
    pub fn reaches(&self, addr: IpAddr) -> bool {
        if is_public(addr) {
            return true;
        }
        match &self.host {
            HostPattern::Ip(ip) => *ip == addr,
            HostPattern::Name(n) => n == "localhost" && addr.is_loopback(),
            _ => false,
        }
    }

    /// Is every request `self` allows also allowed by `ceiling`?
    pub fn within(&self, ceiling: &Grant) -> bool {
        let port = match (self.port, ceiling.port) {
            (_, PortPattern::Any) => true,
            (PortPattern::Is(a), PortPattern::Is(b)) => a == b,
            (PortPattern::Any, PortPattern::Is(_)) => false,
        };
        let host = match (&self.host, &ceiling.host) {
            (_, HostPattern::Any) => true,
            (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            (HostPattern::Name(a), HostPattern::Under(s)) => {
                a.len() > s.len() + 1 && a.ends_with(&format!(".{s}"))
            }
            (HostPattern::Under(a), HostPattern::Under(s)) => {
                a == s || a.ends_with(&format!(".{s}"))
            }
            _ => false,
        };
        self.scheme == ceiling.scheme && port && host
    }
}

fn host_pattern(text: &str, h: &str) -> Result<HostPattern, GrantError> {
    let h = h.to_ascii_lowercase();
    if h == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = h.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Ip(IpAddr::V4(ip)));
    }
    if let Some(s) = h.strip_prefix("*.") {
        if valid_dns_name(s) {
            return Ok(HostPattern::Under(s.to_string()));
        }
    } else if valid_dns_name(&h) && !h.contains('*') {
        return Ok(HostPattern::Name(h));
    }
    Err(err(
        text,
        format!("host `{h}` is not a DNS name, `*.name`, `*`, an IPv4 address or [IPv6]"),
    ))
}

/// Is `addr` a public unicast address (not loopback, private, link-local,
/// shared, unspecified, broadcast, multicast, documentation or reserved)?
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10, shared
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Grant {
        Grant::parse(s).unwrap()
    }

    #[test]
    fn parses_the_grammar() {
        assert_eq!(
            g("https://api.example.com"),
            Grant {
                scheme: Scheme::Https,
                host: HostPattern::Name("api.example.com".into()),
                port: PortPattern::Is(443)
            }
        );
        assert_eq!(g("http://127.0.0.1:*").port, PortPattern::Any);
        assert_eq!(
            g("HTTP://*.Example.com:8080").host,
            HostPattern::Under("example.com".into())
        );
        assert_eq!(
            g("http://[::1]:80").host,
            HostPattern::Ip("::1".parse().unwrap())
        );
        assert_eq!(g("https://*").host, HostPattern::Any);
        for bad in [
            "api.example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://x.com?q",
            "https://u@x.com",
            "https://x.com:0",
            "https://x.com:99999",
            "https://x.com:abc",
            "https://a*b.com",
            "https://*.",
            "https://[::1",
            "https://-x.com",
            "https://",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad} parsed");
        }
        assert!(Grant::parse("ftp://x")
            .unwrap_err()
            .0
            .contains("not http or https"));
    }

    #[test]
    fn allows_by_scheme_host_and_port() {
        let a = g("https://*.example.com");
        assert!(a.allows(Scheme::Https, "api.example.com", 443));
        assert!(a.allows(Scheme::Https, "A.B.Example.COM.", 443));
        assert!(!a.allows(Scheme::Https, "example.com", 443));
        assert!(!a.allows(Scheme::Https, "evilexample.com", 443));
        assert!(!a.allows(Scheme::Http, "api.example.com", 443));
        assert!(!a.allows(Scheme::Https, "api.example.com", 8443));
        let l = g("http://127.0.0.1:*");
        assert!(l.allows(Scheme::Http, "127.0.0.1", 9));
        assert!(!l.allows(Scheme::Http, "localhost", 9));
        assert!(g("http://[::1]:*").allows(Scheme::Http, "::1", 1));
    }

    #[test]
    fn private_addresses_need_a_literal_grant() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!g("http://*:*").reaches(lo));
        assert!(!g("http://*.example.com").reaches("10.1.2.3".parse().unwrap()));
        assert!(g("http://*").reaches("93.184.216.34".parse().unwrap()));
        assert!(g("http://127.0.0.1:*").reaches(lo));
        assert!(!g("http://127.0.0.2:*").reaches(lo));
        assert!(g("http://localhost:*").reaches(lo));
        assert!(!g("http://localhost:*").reaches("192.168.1.1".parse().unwrap()));
        for a in [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        assert!(is_public("2606:4700::1".parse().unwrap()));
    }

    #[test]
    fn route_paths() {
        for ok in ["/", "/hooks/github", "/a-b/c_d.e~"] {
            assert!(valid_route_path(ok), "{ok}");
        }
        for bad in [
            "", "hooks", "/a//b", "/a/../b", "/a/", "/a?b", "/a b", "/%2e",
        ] {
            assert!(!valid_route_path(bad), "{bad}");
        }
        assert!(valid_secret_name("API_KEY") && !valid_secret_name("../x"));
        assert!(valid_header_name("x-api-key") && !valid_header_name("X-Api"));
    }

    #[test]
    fn within_a_ceiling() {
        assert!(g("https://api.example.com").within(&g("https://*.example.com")));
        assert!(g("https://*.a.example.com").within(&g("https://*.example.com")));
        assert!(!g("https://example.com").within(&g("https://*.example.com")));
        assert!(!g("http://api.example.com").within(&g("https://*.example.com")));
        assert!(g("http://127.0.0.1:8080").within(&g("http://127.0.0.1:*")));
        assert!(!g("http://127.0.0.1:*").within(&g("http://127.0.0.1:8080")));
        assert!(g("https://x.org").within(&g("https://*")));
        assert!(!g("https://*").within(&g("https://*.example.com")));
    }
}
