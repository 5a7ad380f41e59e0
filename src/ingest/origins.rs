//! Origin allow-lists: `ingest.cors_origins` and a connection's `allowedOrigins`.
//!
//! An entry is an exact origin (`scheme://host[:port]`), a wildcard
//! `https://*.shop.example[:port]` (any subdomain, at any depth, of `shop.example`, but
//! not `shop.example` itself, as CSP's `*.` reads), or, where the caller allows it, `*`
//! (any origin). Entries are normalised once, when parsed: scheme and host lower-cased,
//! a trailing `/` and the scheme's default port dropped. Matching a request's `Origin`
//! allocates nothing: it is split into scheme, host and port and compared
//! case-insensitively, scheme and port exactly, a wildcard's suffix on a label boundary.
//! The admin side validates connections' lists with the same parser.

use std::fmt;

/// Most entries a list may hold (SPEC §4 caps a connection's list at 100).
pub const MAX_ORIGINS: usize = 100;
/// Longest entry or `Origin` considered (scheme, `://`, a 253-byte host and a port).
const MAX_ORIGIN_LEN: usize = 300;

/// Why an entry is refused; the message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not `scheme://host[:port]`.
    #[error("`{0}` is not an origin: expected scheme://host[:port], without a path")]
    Malformed(String),
    /// A `*` somewhere other than a leading `https://*.` label.
    #[error("`{0}`: a wildcard must be `https://*.domain` (one leading `*.` label)")]
    Wildcard(String),
    /// `*` where only exact origins and wildcards are allowed.
    #[error("`*` (every origin) is not allowed here; list the origins")]
    AnyNotAllowed,
    /// More than [`MAX_ORIGINS`] entries.
    #[error("at most {MAX_ORIGINS} origins")]
    TooMany,
}

/// A parsed allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    exact: Vec<Origin>,
    wildcards: Vec<Wildcard>,
}

/// An exact origin, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: Box<str>,
    host: Box<str>,
    /// `None` for the scheme's default port.
    port: Option<u16>,
}

/// `https://*.<suffix>[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wildcard {
    /// With its leading dot: `.shop.example`.
    suffix: Box<str>,
    port: Option<u16>,
}

impl AllowedOrigins {
    /// Parses a list; `any_allowed` says whether `*` may appear (`ingest.cors_origins`)
    /// or not (a connection's list).
    pub fn parse<S: AsRef<str>>(entries: &[S], any_allowed: bool) -> Result<Self, OriginError> {
        if entries.len() > MAX_ORIGINS {
            return Err(OriginError::TooMany);
        }
        let mut list = Self::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry == "*" {
                if !any_allowed {
                    return Err(OriginError::AnyNotAllowed);
                }
                list.any = true;
                continue;
            }
            let malformed = || OriginError::Malformed(entry.to_string());
            let (scheme, host, port) = split(entry.strip_suffix('/').unwrap_or(entry))
                .filter(|(scheme, _, _)| valid_scheme(scheme))
                .ok_or_else(malformed)?;
            let port = normal_port(scheme, port).ok_or_else(malformed)?;
            if let Some(domain) = host.strip_prefix("*.") {
                if !scheme.eq_ignore_ascii_case("https") || !valid_dns_name(domain) {
                    return Err(OriginError::Wildcard(entry.to_string()));
                }
                list.wildcards.push(Wildcard {
                    suffix: format!(".{}", domain.to_ascii_lowercase()).into(),
                    port,
                });
            } else if host.contains('*') {
                return Err(OriginError::Wildcard(entry.to_string()));
            } else if valid_host(host) {
                list.exact.push(Origin {
                    scheme: scheme.to_ascii_lowercase().into(),
                    host: host.to_ascii_lowercase().into(),
                    port,
                });
            } else {
                return Err(malformed());
            }
        }
        Ok(list)
    }

    /// Every origin.
    pub fn any() -> Self {
        Self {
            any: true,
            ..Self::default()
        }
    }

    /// Whether the list names no origin at all (a connection's empty list defers to
    /// `ingest.cors_origins`).
    pub fn is_empty(&self) -> bool {
        !self.any && self.exact.is_empty() && self.wildcards.is_empty()
    }

    /// Whether the list allows every origin (answers then carry
    /// `Access-Control-Allow-Origin: *`).
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether a request's `Origin` header value is allowed. `null`, and anything
    /// that is not one origin, is allowed only by `*`.
    pub fn allows(&self, origin: &[u8]) -> bool {
        if self.any {
            return true;
        }
        let Some((scheme, host, port)) = std::str::from_utf8(origin).ok().and_then(split) else {
            return false;
        };
        let Some(port) = normal_port(scheme, port) else {
            return false;
        };
        if !valid_host(host) {
            return false;
        }
        self.exact.iter().any(|o| {
            o.port == port
                && o.scheme.eq_ignore_ascii_case(scheme)
                && o.host.eq_ignore_ascii_case(host)
        }) || self
            .wildcards
            .iter()
            .any(|w| w.port == port && scheme.eq_ignore_ascii_case("https") && w.matches_host(host))
    }
}

impl Wildcard {
    /// A strict subdomain of the suffix's domain: `a.shop.example` and
    /// `a.b.shop.example`, never `shop.example` or `evilshop.example`.
    fn matches_host(&self, host: &str) -> bool {
        let suffix = self.suffix.as_bytes();
        let host = host.as_bytes();
        host.len() > suffix.len()
            && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            && valid_dns_name_bytes(&host[..host.len() - suffix.len()])
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut item = |f: &mut fmt::Formatter<'_>, text: fmt::Arguments<'_>| {
            let separator = if first { "" } else { ", " };
            first = false;
            write!(f, "{separator}{text}")
        };
        if self.any {
            item(f, format_args!("*"))?;
        }
        for o in &self.exact {
            match o.port {
                Some(port) => item(f, format_args!("{}://{}:{port}", o.scheme, o.host))?,
                None => item(f, format_args!("{}://{}", o.scheme, o.host))?,
            }
        }
        for w in &self.wildcards {
            match w.port {
                Some(port) => item(f, format_args!("https://*{}:{port}", w.suffix))?,
                None => item(f, format_args!("https://*{}", w.suffix))?,
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]` into its parts (the port still text); `None` when there is a
/// path, query, user info or anything else an origin cannot hold.
fn split(text: &str) -> Option<(&str, &str, Option<&str>)> {
    if text.len() > MAX_ORIGIN_LEN {
        return None;
    }
    let (scheme, rest) = text.split_once("://")?;
    if rest
        .bytes()
        .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\') || !b.is_ascii_graphic())
    {
        return None;
    }
    if let Some(bracketed) = rest.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        let (inside, after) = bracketed.split_once(']')?;
        let host = &rest[..inside.len() + 2];
        return match after {
            "" => Some((scheme, host, None)),
            _ => Some((scheme, host, Some(after.strip_prefix(':')?))),
        };
    }
    match rest.split_once(':') {
        Some((host, port)) => Some((scheme, host, Some(port))),
        None => Some((scheme, rest, None)),
    }
}

/// The port, with the scheme's default (http 80, https 443) as `None`; `None` outer
/// when the text is not a port.
fn normal_port(scheme: &str, port: Option<&str>) -> Option<Option<u16>> {
    let Some(text) = port else {
        return Some(None);
    };
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = text.parse().ok().filter(|p| *p != 0)?;
    let default = (scheme.eq_ignore_ascii_case("http") && port == 80)
        || (scheme.eq_ignore_ascii_case("https") && port == 443);
    Some((!default).then_some(port))
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn valid_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// A DNS name, an IPv4 address, or a bracketed IPv6 literal.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => valid_dns_name(host),
    }
}

fn valid_dns_name(name: &str) -> bool {
    valid_dns_name_bytes(name.as_bytes())
}

/// Labels of 1 to 63 letters, digits, `-` or `_`, not starting or ending with `-`; at
/// most 253 bytes. (IPv4 addresses pass too.)
fn valid_dns_name_bytes(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split(|b| *b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::parse(entries, false).unwrap()
    }

    #[test]
    fn exact_origins_match_after_normalising() {
        let l = list(&[
            "https://Shop.Example/",
            "http://localhost:3000",
            "https://a.example:443",
        ]);
        assert!(l.allows(b"https://shop.example"));
        assert!(l.allows(b"HTTPS://SHOP.EXAMPLE"));
        assert!(l.allows(b"https://shop.example:443"));
        assert!(l.allows(b"http://localhost:3000"));
        assert!(l.allows(b"https://a.example"));
        assert!(!l.allows(b"http://shop.example"), "scheme is exact");
        assert!(!l.allows(b"https://shop.example:8443"), "port is exact");
        assert!(!l.allows(b"http://localhost"), "port is exact");
        assert!(!l.allows(b"https://www.shop.example"));
        assert!(!l.allows(b"https://shop.example.evil"));
        assert!(!l.allows(b"null"));
        assert!(!l.allows(b""));
        assert!(!l.allows(b"https://shop.example/path"));
        assert_eq!(
            l.to_string(),
            "https://shop.example, http://localhost:3000, https://a.example"
        );
    }

    #[test]
    fn wildcards_match_subdomains_on_a_label_boundary() {
        let l = list(&["https://*.shop.example"]);
        for yes in [
            "https://a.shop.example",
            "https://a.b.shop.example",
            "https://A.SHOP.EXAMPLE",
            "https://a.shop.example:443",
            "https://x-1.shop.example",
        ] {
            assert!(l.allows(yes.as_bytes()), "{yes}");
        }
        for no in [
            "https://shop.example",
            "https://evilshop.example",
            "https://a.evilshop.example",
            "https://.shop.example",
            "https://a..shop.example",
            "http://a.shop.example",
            "https://a.shop.example:8443",
            "https://a.shop.example.evil",
            "https://a.shop.example/",
            "https://user@a.shop.example",
            "https://-.shop.example",
        ] {
            assert!(!l.allows(no.as_bytes()), "{no}");
        }
        let ported = list(&["https://*.shop.example:8443"]);
        assert!(ported.allows(b"https://a.shop.example:8443"));
        assert!(!ported.allows(b"https://a.shop.example"));
    }

    #[test]
    fn ip_literals_match_exactly() {
        let l = list(&["http://127.0.0.1:8080", "http://[::1]:3000"]);
        assert!(l.allows(b"http://127.0.0.1:8080"));
        assert!(l.allows(b"http://[::1]:3000"));
        assert!(!l.allows(b"http://[::1]"));
        assert!(!l.allows(b"http://[::2]:3000"));
    }

    #[test]
    fn other_schemes_are_exact_origins() {
        let l = list(&[
            "chrome-extension://abcdefghijklmnop",
            "capacitor://localhost",
        ]);
        assert!(l.allows(b"chrome-extension://abcdefghijklmnop"));
        assert!(l.allows(b"capacitor://localhost"));
        assert!(!l.allows(b"https://localhost"));
    }

    #[test]
    fn bad_entries_are_refused_with_their_text() {
        for bad in [
            "shop.example",
            "https://",
            "https://shop.example/path",
            "https://shop.example?q",
            "https://user@shop.example",
            "https://shop.example:0",
            "https://shop.example:99999",
            "https://shop.example:",
            "https://[::1",
            "https://sh op.example",
            "1https://shop.example",
        ] {
            let error = AllowedOrigins::parse(&[bad], false).unwrap_err();
            assert_eq!(error, OriginError::Malformed(bad.to_string()), "{bad}");
        }
        for bad in [
            "http://*.shop.example",
            "https://*.",
            "https://a.*.shop.example",
            "https://*shop.example",
        ] {
            assert!(
                matches!(
                    AllowedOrigins::parse(&[bad], false),
                    Err(OriginError::Wildcard(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            AllowedOrigins::parse(&["*"], false),
            Err(OriginError::AnyNotAllowed)
        );
        let many: Vec<String> = (0..=MAX_ORIGINS)
            .map(|i| format!("https://s{i}.example"))
            .collect();
        assert_eq!(
            AllowedOrigins::parse(&many, false),
            Err(OriginError::TooMany)
        );
    }

    #[test]
    fn star_allows_everything_where_permitted() {
        let l = AllowedOrigins::parse(&["*"], true).unwrap();
        assert!(l.allows_any() && l.allows(b"null") && l.allows(b"https://x.example"));
        assert!(!l.is_empty());
        assert!(list(&[]).is_empty());
        assert!(!list(&[]).allows(b"https://x.example"));
        assert_eq!(AllowedOrigins::any(), l);
    }
}
