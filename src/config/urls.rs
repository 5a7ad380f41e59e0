//! URL settings, parsed once at load. Each keeps what its client needs and shows
//! itself (in `Debug`, `Display` and `check-config`) with the password redacted.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::secrets::redact_url;

/// `store.redis_url`: a parsed Redis connection info.
#[derive(Clone)]
pub struct RedisUrl {
    info: redis::ConnectionInfo,
    redacted: String,
}

impl RedisUrl {
    /// Parses a `redis://`, `redis+unix://` or `unix://` URL.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        use redis::IntoConnectionInfo;
        let redacted = redact_url(text);
        match text.into_connection_info() {
            Ok(info) => Ok(Self { info, redacted }),
            Err(_) => Err(format!("`{redacted}` is not a redis:// URL")),
        }
    }

    /// What the Redis client connects with.
    pub fn connection_info(&self) -> redis::ConnectionInfo {
        self.info.clone()
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted)
    }
}

impl Serialize for RedisUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted)
    }
}

/// One server of `sink.nats_url`.
#[derive(Clone)]
pub struct NatsServer {
    uri: http::Uri,
    text: String,
}

impl NatsServer {
    /// Parses a `nats://`, `tls://`, `ws://` or `wss://` URL with a host.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let parsed = text.parse::<http::Uri>().ok().filter(|uri| {
            matches!(uri.scheme_str(), Some("nats" | "tls" | "ws" | "wss")) && uri.host().is_some()
        });
        match parsed {
            Some(uri) => Ok(Self {
                uri,
                text: text.to_string(),
            }),
            None => Err(format!(
                "`{}` is not a nats:// or tls:// URL",
                redact_url(text)
            )),
        }
    }

    /// The parsed URL (credentials included: for the client only).
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// The URL as written (credentials included: for the client only).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for NatsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.text))
    }
}

impl fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsServer({self})")
    }
}

impl Serialize for NatsServer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `ingest.public_url`: an `http://` or `https://` URL with a host, split once into
/// what the settings documents show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    scheme: &'static str,
    /// Host, port and path prefix, without a trailing `/`: `intake.shop.example/t`.
    host_and_path: String,
}

impl PublicUrl {
    /// Parses the URL; anything but http(s) with a host is refused.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let refused = || format!("`{text}` is not an http:// or https:// URL");
        let uri = text.parse::<http::Uri>().map_err(|_| refused())?;
        let scheme = match uri.scheme_str() {
            Some("http") => "http",
            Some("https") => "https",
            _ => return Err(refused()),
        };
        let authority = uri.authority().ok_or_else(refused)?;
        let path = uri.path().trim_end_matches('/');
        Ok(Self {
            scheme,
            host_and_path: format!("{authority}{path}"),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// Host, port and path prefix, without a trailing `/`.
    pub fn host_and_path(&self) -> &str {
        &self.host_and_path
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_and_path)
    }
}

impl Serialize for PublicUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
