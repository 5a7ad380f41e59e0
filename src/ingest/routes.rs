//! The ingest routes (SPEC §2) and the event types they carry.

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
            "batch" => return Some(Self::Batch),
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
        EventType::parse(rest).map(Self::Single)
    }

    /// Whether the route takes webhook keys (else SDK keys).
    pub fn is_webhook(&self) -> bool {
        matches!(self, Self::Webhook { .. })
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
