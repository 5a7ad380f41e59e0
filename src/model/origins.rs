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

/// Most origins a list may hold (SPEC §4 caps a connection's list at 100).
pub const MAX_ORIGINS: usize = 100;

/// An allow-list of origins: a connection's `allowedOrigins`, or `ingest.cors_origins`,
/// where `*` may also stand for every origin. Matching a request's `Origin` allocates
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    entries: Vec<AllowedOrigin>,
}

/// Why a list is refused; the message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginListError {
    /// One entry is not an origin.
    #[error("`{0}` {1}")]
    Entry(String, OriginError),
    /// `*` where only origins may be listed.
    #[error("`*` (every origin) is not allowed here; list the origins")]
    AnyNotAllowed,
    /// More than [`MAX_ORIGINS`] entries.
    #[error("at most {MAX_ORIGINS} origins")]
    TooMany,
}

impl AllowedOrigins {
    /// Parses a list as an operator writes it: entries trimmed, any case, a trailing
    /// `/` tolerated; `any_allowed` says whether `*` may appear.
    pub fn parse<S: AsRef<str>>(entries: &[S], any_allowed: bool) -> Result<Self, OriginListError> {
        if entries.len() > MAX_ORIGINS {
            return Err(OriginListError::TooMany);
        }
        let mut list = Self::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry == "*" {
                if !any_allowed {
                    return Err(OriginListError::AnyNotAllowed);
                }
                list.any = true;
                continue;
            }
            let written = entry
                .strip_suffix('/')
                .unwrap_or(entry)
                .to_ascii_lowercase();
            let origin = AllowedOrigin::parse(&written)
                .map_err(|why| OriginListError::Entry(entry.to_string(), why))?;
            list.entries.push(origin);
        }
        Ok(list)
    }

    /// Every origin.
    pub fn any() -> Self {
        Self {
            any: true,
            entries: Vec::new(),
        }
    }

    /// Whether the list allows every origin (answers then carry
    /// `Access-Control-Allow-Origin: *`).
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether a request's `Origin` header value is allowed. `null`, and anything that
    /// is not one origin, is allowed only by `*`.
    pub fn allows(&self, origin: &[u8]) -> bool {
        self.any || self.entries.iter().any(|entry| entry.matches(origin))
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let any = self.any.then_some("*");
        let entries = self.entries.iter().map(AllowedOrigin::as_str);
        for (n, text) in any.into_iter().chain(entries).enumerate() {
            let separator = if n == 0 { "" } else { ", " };
            write!(f, "{separator}{text}")?;
        }
        Ok(())
    }
}

impl Serialize for AllowedOrigins {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let any = self.any.then_some("*");
        let entries = self.entries.iter().map(AllowedOrigin::as_str);
        s.collect_seq(any.into_iter().chain(entries))
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

    #[test]
    fn lists_are_parsed_as_operators_write_them() {
        let list = AllowedOrigins::parse(
            &[
                " https://Shop.Example/ ",
                "HTTPS://*.shop.example",
                "http://localhost:3000",
            ],
            false,
        )
        .unwrap();
        assert!(list.allows(b"https://shop.example"));
        assert!(list.allows(b"https://www.shop.example"));
        assert!(list.allows(b"http://localhost:3000"));
        assert!(!list.allows(b"http://localhost:3001"));
        assert!(!list.allows(b"null"));
        assert!(!list.allows_any());
        assert_eq!(
            list.to_string(),
            "https://shop.example, https://*.shop.example, http://localhost:3000"
        );
    }

    #[test]
    fn star_allows_everything_where_permitted() {
        let any = AllowedOrigins::parse(&["*"], true).unwrap();
        assert!(any.allows_any());
        assert!(any.allows(b"null"));
        assert!(any.allows(b"https://anything.example"));
        assert_eq!(AllowedOrigins::any(), any);
        assert_eq!(
            AllowedOrigins::parse(&["*"], false),
            Err(OriginListError::AnyNotAllowed)
        );
        assert_eq!(serde_json::to_string(&any).unwrap(), "[\"*\"]");
    }

    #[test]
    fn bad_lists_are_refused_naming_the_entry() {
        let error =
            AllowedOrigins::parse(&["https://ok.example", "https://x/path"], false).unwrap_err();
        assert_eq!(
            error,
            OriginListError::Entry("https://x/path".into(), OriginError::Extra)
        );
        assert!(error.to_string().contains("https://x/path"));
        let many = vec!["https://a.example"; MAX_ORIGINS + 1];
        assert_eq!(
            AllowedOrigins::parse(&many, false),
            Err(OriginListError::TooMany)
        );
    }
}
