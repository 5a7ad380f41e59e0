//! Allowed browser origins of a connection: exact origins (`scheme://host[:port]`) and
//! `https://*.domain` wildcards. Parsed once, when an admin sets them; matched against
//! a request's `Origin` header on the ingest hot path without allocating.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest origin accepted.
pub const MAX_ORIGIN_LEN: usize = 200;

/// The accepted forms as a JSON Schema pattern (with [`MAX_ORIGIN_LEN`]): exactly what
/// [`AllowedOrigin::parse`] accepts, IPv6 literals aside.
pub const ORIGIN_PATTERN: &str = concat!(
    "^(https?://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    "|https://\\*(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?){2,})",
    "(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
);

/// One allowed origin, in canonical form: lower case, no default port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedOrigin {
    /// `scheme://host[:port]`, or `https://*.domain[:port]`.
    text: String,
    /// Length of `scheme://`.
    host_start: usize,
    /// Whether the host is `*.domain`.
    wildcard: bool,
}

/// Why an origin was refused; the sentence completes "allowedOrigins: `x` …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not `http://` or `https://` followed by a host, or over 200 characters.
    #[error("must be scheme://host[:port] with scheme http or https, at most 200 characters")]
    Shape,
    /// Paths, queries, user info and the like have no place in an origin.
    #[error("must not carry a path, query or user info")]
    Extra,
    /// A host that is not a DNS name or IP literal.
    #[error("has an invalid host")]
    Host,
    /// A port outside 1..65535.
    #[error("has an invalid port")]
    Port,
    /// `*` elsewhere than `https://*.domain`.
    #[error("may use a wildcard only as https://*.domain with at least two labels")]
    Wildcard,
}

impl AllowedOrigin {
    /// Parses and canonicalises one origin.
    pub fn parse(text: &str) -> Result<Self, OriginError> {
        if text.len() > MAX_ORIGIN_LEN {
            return Err(OriginError::Shape);
        }
        let (scheme, rest) = text.split_once("://").ok_or(OriginError::Shape)?;
        let rest = rest.to_ascii_lowercase();
        let default_port = match scheme {
            "http" => "80",
            "https" => "443",
            _ => return Err(OriginError::Shape),
        };
        if rest.contains(['/', '?', '#', '@', '\\']) || rest.contains(char::is_whitespace) {
            return Err(OriginError::Extra);
        }
        let (host, port) = split_port(&rest)?;
        let wildcard = host.starts_with("*.");
        if wildcard {
            let domain = &host[2..];
            if scheme != "https" || !domain.contains('.') || !is_dns_name(domain) {
                return Err(OriginError::Wildcard);
            }
        } else if host.contains('*') {
            return Err(OriginError::Wildcard);
        } else if !is_dns_name(host) && !is_ip_literal(host) {
            return Err(OriginError::Host);
        }
        let mut canonical = format!("{scheme}://{host}");
        if let Some(port) = port.filter(|p| *p != default_port) {
            canonical.push(':');
            canonical.push_str(port);
        }
        Ok(Self {
            host_start: scheme.len() + 3,
            text: canonical,
            wildcard,
        })
    }

    /// Whether a request's `Origin` header value is this origin (or, for a wildcard,
    /// an origin on a subdomain of it, any depth, same scheme and port). Browsers send
    /// origins in lower case without default ports; other casings are compared
    /// case-insensitively.
    pub fn matches(&self, origin: &[u8]) -> bool {
        if !self.wildcard {
            return origin.eq_ignore_ascii_case(self.text.as_bytes());
        }
        // `https://*` + `.domain[:port]`: the origin must be `https://` + label(s) +
        // `.domain[:port]`, the labels non-empty and free of `/`, `:` and `@`.
        let prefix = &self.text.as_bytes()[..self.host_start];
        let suffix = &self.text.as_bytes()[self.host_start + 1..];
        if origin.len() <= prefix.len() + suffix.len()
            || !origin[..prefix.len()].eq_ignore_ascii_case(prefix)
            || !origin[origin.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        {
            return false;
        }
        let labels = &origin[prefix.len()..origin.len() - suffix.len()];
        labels
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
            && labels.first() != Some(&b'.')
            && labels.last() != Some(&b'.')
            && !labels.windows(2).any(|pair| pair == b"..")
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn split_port(rest: &str) -> Result<(&str, Option<&str>), OriginError> {
    let (host, port) = if rest.starts_with('[') {
        match rest.split_once("]:") {
            Some((host, port)) => (&rest[..host.len() + 1], Some(port)),
            None => (rest, None),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && !port.starts_with('0')
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Err(OriginError::Port);
        }
    }
    Ok((host, port))
}

fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_ip_literal(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

impl TryFrom<String> for AllowedOrigin {
    type Error = OriginError;

    fn try_from(text: String) -> Result<Self, OriginError> {
        Self::parse(&text)
    }
}

impl From<AllowedOrigin> for String {
    fn from(origin: AllowedOrigin) -> Self {
        origin.text
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> AllowedOrigin {
        AllowedOrigin::parse(text).unwrap()
    }

    #[test]
    fn exact_origins_are_canonical() {
        assert_eq!(
            origin("https://Shop.Example").as_str(),
            "https://shop.example"
        );
        assert_eq!(
            origin("https://shop.example:443").as_str(),
            "https://shop.example"
        );
        assert_eq!(
            origin("http://localhost:3000").as_str(),
            "http://localhost:3000"
        );
        assert_eq!(origin("http://127.0.0.1:80").as_str(), "http://127.0.0.1");
        assert_eq!(origin("http://[::1]:8080").as_str(), "http://[::1]:8080");
        assert_eq!(
            origin("https://*.shop.example").as_str(),
            "https://*.shop.example"
        );
    }

    #[test]
    fn malformed_origins_are_refused() {
        for (text, why) in [
            ("shop.example", OriginError::Shape),
            ("HTTPS://shop.example", OriginError::Shape),
            (" https://shop.example", OriginError::Shape),
            ("ftp://shop.example", OriginError::Shape),
            ("https://shop.example/", OriginError::Extra),
            ("https://shop.example/path", OriginError::Extra),
            ("https://user@shop.example", OriginError::Extra),
            ("https://shop..example", OriginError::Host),
            ("https://-shop.example", OriginError::Host),
            ("https://shop.example:0", OriginError::Port),
            ("https://shop.example:08080", OriginError::Port),
            ("https://shop.example:99999", OriginError::Port),
            ("https://shop.example:", OriginError::Port),
            ("http://*.shop.example", OriginError::Wildcard),
            ("https://*.example", OriginError::Wildcard),
            ("https://a.*.example", OriginError::Wildcard),
            ("https://*", OriginError::Wildcard),
        ] {
            assert_eq!(AllowedOrigin::parse(text), Err(why), "{text}");
        }
    }

    #[test]
    fn exact_origins_match_only_themselves() {
        let allowed = origin("https://shop.example");
        assert!(allowed.matches(b"https://shop.example"));
        assert!(allowed.matches(b"https://SHOP.example"));
        assert!(!allowed.matches(b"http://shop.example"));
        assert!(!allowed.matches(b"https://shop.example:8443"));
        assert!(!allowed.matches(b"https://evilshop.example"));
        assert!(!allowed.matches(b"https://shop.example.evil"));
    }

    #[test]
    fn wildcards_match_subdomains_on_a_label_boundary() {
        let allowed = origin("https://*.shop.example");
        assert!(allowed.matches(b"https://www.shop.example"));
        assert!(allowed.matches(b"https://a.b.shop.example"));
        assert!(!allowed.matches(b"https://shop.example"), "not the apex");
        assert!(!allowed.matches(b"https://evilshop.example"));
        assert!(!allowed.matches(b"https://www.shop.example:444"));
        assert!(!allowed.matches(b"http://www.shop.example"));
        assert!(!allowed.matches(b"https://x@y.shop.example"));
        assert!(!allowed.matches(b"https://.shop.example"));
        let with_port = origin("https://*.shop.example:8443");
        assert!(with_port.matches(b"https://a.shop.example:8443"));
        assert!(!with_port.matches(b"https://a.shop.example"));
    }

    #[test]
    fn serde_round_trips_the_canonical_text() {
        let parsed: AllowedOrigin = serde_json::from_str("\"https://A.example:443\"").unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            "\"https://a.example\""
        );
        assert!(serde_json::from_str::<AllowedOrigin>("\"nope\"").is_err());
    }
}
