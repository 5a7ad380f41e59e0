//! CORS for browser SDKs: which origins a request may come from, the
//! `Access-Control-Allow-Origin` on every answer, and the preflight answer.
//!
//! The list that applies is the key's connection's `allowedOrigins` when it names any
//! origin, else `ingest.cors_origins`. A request whose `Origin` is not allowed is
//! refused (403) once its key is known; a request without `Origin` (a server SDK) is
//! not checked. A preflight carries no credentials, so its list comes from a key in
//! its path (webhook, settings) or its `writeKey` query parameter when there is one,
//! else from `ingest.cors_origins`; an origin the list does not allow gets a 204 with
//! no allow headers, so the browser never sends the request.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

use super::answer::Answer;
use crate::index::OriginVerdict;
use crate::model::AllowedOrigins;

/// Methods every ingest route allows a browser to use.
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// Allowed headers when the preflight's list is absent or not echoed.
const DEFAULT_ALLOW_HEADERS: &str = "Authorization, Content-Type, Content-Encoding, X-Write-Key";
/// Most header names echoed from `Access-Control-Request-Headers`.
const MAX_ECHOED_HEADERS: usize = 32;
/// Longest `Access-Control-Request-Headers` value echoed.
const MAX_ECHOED_BYTES: usize = 1024;
/// How long a browser may reuse a preflight answer (one day).
const MAX_AGE: &str = "86400";

/// The CORS policy: `ingest.cors_origins`, and what a connection's own list changes.
pub struct Cors {
    global: AllowedOrigins,
}

impl Cors {
    /// A policy whose default list is `ingest.cors_origins`.
    pub fn new(global: AllowedOrigins) -> Self {
        Self { global }
    }

    /// Whether a request may proceed: it has no `Origin` (a server), or one its key's
    /// connection allows, or (the connection naming none) one `ingest.cors_origins`
    /// allows.
    pub fn admits(&self, verdict: OriginVerdict, origin: Option<&HeaderValue>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        match verdict {
            OriginVerdict::NoPolicy => self.global.allows(origin.as_bytes()),
            OriginVerdict::Allowed => true,
            OriginVerdict::Refused => false,
        }
    }

    /// Adds `Access-Control-Allow-Origin` (and `Vary: Origin` when it depends on the
    /// origin) to an answer; never `Access-Control-Allow-Credentials`.
    pub fn decorate(
        &self,
        answer: &mut Answer,
        origin: Option<&HeaderValue>,
        verdict: OriginVerdict,
    ) {
        let headers = answer.headers_mut();
        if verdict == OriginVerdict::NoPolicy && self.global.allows_any() {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            return;
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin.filter(|o| self.admits(verdict, Some(o))) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
    }

    /// The 204 answer to a preflight: methods, headers and max age when the origin is
    /// allowed (or absent), nothing when it is not. `decorate` adds the origin.
    pub fn preflight(&self, request: &HeaderMap, verdict: OriginVerdict) -> Answer {
        let mut answer = Response::new(Full::new(Bytes::new()));
        *answer.status_mut() = StatusCode::NO_CONTENT;
        if !self.admits(verdict, request.get(header::ORIGIN)) {
            return answer;
        }
        let headers = answer.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        let allow_headers = request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|requested| echoable(requested.as_bytes()))
            .cloned()
            .unwrap_or(HeaderValue::from_static(DEFAULT_ALLOW_HEADERS));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        answer
    }
}

/// Whether a requested header list may be echoed: at most `MAX_ECHOED_HEADERS` names
/// in `MAX_ECHOED_BYTES`, each a valid header name token (RFC 9110 `tchar`s).
fn echoable(requested: &[u8]) -> bool {
    requested.len() <= MAX_ECHOED_BYTES
        && requested.split(|b| *b == b',').count() <= MAX_ECHOED_HEADERS
        && requested.split(|b| *b == b',').all(|name| {
            let name = name.trim_ascii();
            !name.is_empty() && name.iter().all(|b| is_tchar(*b))
        })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ingest::test_headers as headers;

    fn get<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
        answer.headers().get(name).map(|v| v.to_str().unwrap())
    }

    fn origins(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::parse(entries, true).unwrap()
    }

    #[test]
    fn preflight_echoes_valid_requested_headers() {
        let cors = Cors::new(AllowedOrigins::any());
        let request = headers(&[
            ("origin", "http://localhost:3000"),
            (
                "access-control-request-headers",
                "anonymousid,authorization,content-type,rsa-retry-attempt,sentat, X-Retry-Count",
            ),
        ]);
        let answer = cors.preflight(&request, OriginVerdict::NoPolicy);
        assert_eq!(answer.status(), 204);
        assert_eq!(
            get(&answer, "access-control-allow-headers"),
            Some("anonymousid,authorization,content-type,rsa-retry-attempt,sentat, X-Retry-Count")
        );
        assert_eq!(
            get(&answer, "access-control-allow-methods"),
            Some("GET, POST, OPTIONS")
        );
        assert_eq!(get(&answer, "access-control-max-age"), Some("86400"));
        assert_eq!(get(&answer, "access-control-allow-credentials"), None);
    }

    #[test]
    fn invalid_or_oversized_lists_are_not_echoed() {
        let long_name = "x".repeat(MAX_ECHOED_BYTES + 1);
        let many = vec!["x-a"; MAX_ECHOED_HEADERS + 1].join(",");
        let at_cap = vec!["x-a"; MAX_ECHOED_HEADERS].join(",");
        for (requested, echoed) in [
            ("x-ok,bad header", false),
            ("x-ok,,x-b", false),
            ("x-ok,(paren)", false),
            ("x-ok;x", false),
            (long_name.as_str(), false),
            (many.as_str(), false),
            (at_cap.as_str(), true),
            ("x-ok", true),
        ] {
            assert_eq!(echoable(requested.as_bytes()), echoed, "{requested}");
        }
        let cors = Cors::new(AllowedOrigins::any());
        let request = headers(&[("access-control-request-headers", "bad header")]);
        let answer = cors.preflight(&request, OriginVerdict::NoPolicy);
        assert_eq!(
            get(&answer, "access-control-allow-headers"),
            Some(DEFAULT_ALLOW_HEADERS)
        );
    }

    #[test]
    fn a_disallowed_origin_gets_no_allow_headers() {
        let cors = Cors::new(origins(&["https://shop.example"]));
        let request = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-headers", "authorization"),
        ]);
        let mut answer = cors.preflight(&request, OriginVerdict::NoPolicy);
        cors.decorate(&mut answer, request.get("origin"), OriginVerdict::NoPolicy);
        assert_eq!(answer.status(), 204);
        for name in [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ] {
            assert_eq!(get(&answer, name), None, "{name}");
        }
    }

    #[test]
    fn the_connections_verdict_replaces_the_global_list() {
        use OriginVerdict::{Allowed, NoPolicy, Refused};
        let cors = Cors::new(AllowedOrigins::any());
        let page = HeaderValue::from_static("https://www.shop.example");
        assert!(cors.admits(Allowed, Some(&page)));
        assert!(!cors.admits(Refused, Some(&page)));
        assert!(cors.admits(Refused, None), "no Origin: a server");
        assert!(cors.admits(NoPolicy, Some(&page)), "global *");

        let mut answer = Response::new(Full::new(Bytes::new()));
        cors.decorate(&mut answer, Some(&page), Allowed);
        assert_eq!(
            get(&answer, "access-control-allow-origin"),
            Some("https://www.shop.example")
        );
        assert_eq!(get(&answer, "vary"), Some("Origin"));
        let mut answer = Response::new(Full::new(Bytes::new()));
        cors.decorate(&mut answer, Some(&page), Refused);
        assert_eq!(get(&answer, "access-control-allow-origin"), None);
        let mut answer = Response::new(Full::new(Bytes::new()));
        cors.decorate(&mut answer, Some(&page), NoPolicy);
        assert_eq!(get(&answer, "access-control-allow-origin"), Some("*"));

        let request = headers(&[("origin", "https://evil.example")]);
        let answer = cors.preflight(&request, Refused);
        assert_eq!(get(&answer, "access-control-allow-methods"), None);
    }
}
