//! The ingest routes (SPEC §2) and the event types they carry: the event routes, with
//! Segment's short paths (`/v1/t` … `/v1/b`), and the browser SDKs' extra endpoints
//! (RudderStack's beacon, pixel and source config; Segment's settings document).

use crate::model::EventSource;

/// The six Segment-spec event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A user action.
    Track,
    /// Who the user is.
    Identify,
    /// A web page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// The user's group (account, company).
    Group,
    /// Two user ids are one user.
    Alias,
}

impl EventType {
    /// Parses the lower-case name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "track" => Self::Track,
            "identify" => Self::Identify,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "group" => Self::Group,
            "alias" => Self::Alias,
            _ => return None,
        })
    }

    /// Parses analytics.js's one-letter path (`t`, `i`, `p`, `s`, `g`, `a`).
    fn parse_short(name: &str) -> Option<Self> {
        Some(match name {
            "t" => Self::Track,
            "i" => Self::Identify,
            "p" => Self::Page,
            "s" => Self::Screen,
            "g" => Self::Group,
            "a" => Self::Alias,
            _ => return None,
        })
    }

    /// The lower-case name stored in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }
}

/// A matched ingest route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v1/batch`: `{"batch":[…]}`.
    Batch,
    /// `/v1/track` and friends, `/v1/events/{type}`: one event of that type.
    Single(EventType),
    /// `/v1/events`: a batch object, a bare array, or one typed event.
    Events,
    /// `/v1/webhook[/{key}]`: any payload.
    Webhook {
        /// The key from the path, when given there.
        path_key: Option<String>,
    },
}

impl Route {
    /// Matches a path; `None` is a 404.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v1/")?;
        match rest {
            "batch" | "b" => return Some(Self::Batch),
            "events" => return Some(Self::Events),
            "webhook" => return Some(Self::Webhook { path_key: None }),
            _ => {}
        }
        if let Some(kind) = rest.strip_prefix("events/") {
            return EventType::parse(kind).map(Self::Single);
        }
        if let Some(key) = rest.strip_prefix("webhook/") {
            if key.is_empty() || key.contains('/') {
                return None;
            }
            return Some(Self::Webhook {
                path_key: Some(key.to_string()),
            });
        }
        EventType::parse(rest)
            .or_else(|| EventType::parse_short(rest))
            .map(Self::Single)
    }

    /// Whether the route takes webhook keys (else SDK keys).
    pub fn is_webhook(&self) -> bool {
        matches!(self, Self::Webhook { .. })
    }

    /// The kind of connection whose keys the route takes.
    pub fn source(&self) -> EventSource {
        if self.is_webhook() {
            EventSource::Webhook
        } else {
            EventSource::Sdk
        }
    }
}

/// Every path the ingest listener answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Events in a POST body: SDK and webhook routes.
    Events(Route),
    /// RudderStack's `POST /beacon/v1/batch?writeKey=…`: a batch whose key is in the
    /// query string (sendBeacon cannot set headers).
    Beacon,
    /// RudderStack's `GET /pixel/v1/track|page?writeKey=…`: one event from the query
    /// string, answered with a 1×1 GIF.
    Pixel(EventType),
    /// Segment's `GET /v1/projects/{writeKey}/settings` (analytics.js's `cdnURL`).
    SegmentSettings(String),
    /// RudderStack's `GET /sourceConfig/?writeKey=…` (the JS SDK's `configUrl`).
    SourceConfig,
}

impl Endpoint {
    /// Matches a path; `None` is a 404.
    pub fn parse(path: &str) -> Option<Self> {
        match path {
            "/beacon/v1/batch" => return Some(Self::Beacon),
            "/pixel/v1/track" => return Some(Self::Pixel(EventType::Track)),
            "/pixel/v1/page" => return Some(Self::Pixel(EventType::Page)),
            "/sourceConfig" | "/sourceConfig/" => return Some(Self::SourceConfig),
            _ => {}
        }
        let settings_key = path
            .strip_prefix("/v1/projects/")
            .and_then(|rest| rest.strip_suffix("/settings"))
            .filter(|key| !key.is_empty() && !key.contains('/'));
        if let Some(key) = settings_key {
            return Some(Self::SegmentSettings(key.to_string()));
        }
        Route::parse(path).map(Self::Events)
    }

    /// The methods besides OPTIONS (the `Allow` header of a 405).
    pub fn methods(&self) -> &'static str {
        match self {
            Self::Events(_) | Self::Beacon => "POST, OPTIONS",
            _ => "GET, OPTIONS",
        }
    }

    /// A write key in the path itself (webhook, settings), which a preflight carries.
    pub fn path_key(&self) -> Option<&str> {
        match self {
            Self::Events(Route::Webhook {
                path_key: Some(key),
            })
            | Self::SegmentSettings(key) => Some(key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_route_matches() {
        assert_eq!(Route::parse("/v1/batch"), Some(Route::Batch));
        for t in ["track", "identify", "page", "screen", "group", "alias"] {
            let single = Some(Route::Single(EventType::parse(t).unwrap()));
            assert_eq!(Route::parse(&format!("/v1/{t}")), single);
            assert_eq!(Route::parse(&format!("/v1/events/{t}")), single);
        }
        assert_eq!(Route::parse("/v1/events"), Some(Route::Events));
        assert_eq!(
            Route::parse("/v1/webhook/abc"),
            Some(Route::Webhook {
                path_key: Some("abc".into())
            })
        );
        assert_eq!(
            Route::parse("/v1/webhook"),
            Some(Route::Webhook { path_key: None })
        );
    }

    #[test]
    fn segments_short_paths_match_the_long_ones() {
        // Each short path is the long one's first letter.
        for long in [
            "track", "identify", "page", "screen", "group", "alias", "batch",
        ] {
            let short = &long[..1];
            let parsed = Route::parse(&format!("/v1/{short}"));
            assert!(parsed.is_some(), "{short}");
            assert_eq!(parsed, Route::parse(&format!("/v1/{long}")), "{short}");
        }
        for p in ["/v1/x", "/v1/events/t", "/v1/tt", "/v1/T"] {
            assert_eq!(Route::parse(p), None, "{p}");
        }
    }

    #[test]
    fn browser_endpoints_match() {
        assert_eq!(Endpoint::parse("/beacon/v1/batch"), Some(Endpoint::Beacon));
        assert_eq!(
            Endpoint::parse("/pixel/v1/track"),
            Some(Endpoint::Pixel(EventType::Track))
        );
        assert_eq!(
            Endpoint::parse("/pixel/v1/page"),
            Some(Endpoint::Pixel(EventType::Page))
        );
        for p in ["/sourceConfig", "/sourceConfig/"] {
            assert_eq!(Endpoint::parse(p), Some(Endpoint::SourceConfig), "{p}");
        }
        let settings = Endpoint::parse("/v1/projects/KEY/settings").unwrap();
        assert_eq!(settings, Endpoint::SegmentSettings("KEY".into()));
        assert_eq!(settings.path_key(), Some("KEY"));
        assert_eq!(settings.methods(), "GET, OPTIONS");
        assert_eq!(
            Endpoint::parse("/v1/t"),
            Some(Endpoint::Events(Route::Single(EventType::Track)))
        );
        assert_eq!(Endpoint::Beacon.methods(), "POST, OPTIONS");
        for p in [
            "/v1/projects//settings",
            "/v1/projects/a/b/settings",
            "/v1/projects/KEY",
            "/pixel/v1/identify",
            "/beacon/v1/track",
            "/sourceconfig",
            "/sourceConfig/x",
        ] {
            assert_eq!(Endpoint::parse(p), None, "{p}");
        }
    }

    #[test]
    fn unknown_paths_do_not_match() {
        for p in [
            "/",
            "/v1/",
            "/v1/events/click",
            "/v2/track",
            "/v1/webhook/a/b",
            "/v1/track/",
        ] {
            assert_eq!(Route::parse(p), None, "{p}");
        }
    }
}
