//! [`Settings`]: the configuration with every value parsed, made by
//! [`Config::validate`], which reports every problem at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use super::urls::{NatsServer, PublicUrl, RedisUrl};
use super::{
    AdminConfig, Config, ConfigError, DedupConfig, IngestConfig, RateLimitConfig, SinkBackend,
    SinkConfig, StoreBackend, StoreConfig,
};
use crate::model::AllowedOrigins;
use crate::net;
use crate::secrets::{self, Secret};

/// The checked configuration every part of intake is built from.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// `[ingest]`
    pub ingest: IngestSettings,
    /// `[admin]`
    pub admin: AdminSettings,
    /// `[store]`
    pub store: StoreSettings,
    /// `[sink]`
    pub sink: SinkSettings,
    /// `[rate_limit]`
    pub rate_limit: RateLimitConfig,
    /// `[dedup]`
    pub dedup: DedupConfig,
}

/// `[ingest]`, checked: the values that needed parsing, typed; the plain numbers and
/// switches as written (`written`), already checked.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSettings {
    /// Address to bind (port 0: any free port).
    pub listen: SocketAddr,
    /// Origins allowed by CORS when a connection names none; `["*"]` allows all.
    pub cors_origins: AllowedOrigins,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The URL browsers reach intake at.
    pub public_url: Option<PublicUrl>,
    /// The section as written: its caps, timeouts and switches are used as they are.
    pub written: IngestConfig,
}

/// `[admin]`, checked.
#[derive(Debug, Clone, Serialize)]
pub struct AdminSettings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The operator key made sure of at start-up; shown redacted.
    pub bootstrap_api_key: Option<Secret>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Open admin connections at most.
    pub max_connections: usize,
    /// Failed authentications per client and minute before 429; 0 = off.
    pub auth_failures_per_minute: u32,
}

/// `[store]`, checked.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSettings {
    /// Which store.
    pub backend: StoreBackend,
    /// Root of everything intake writes locally.
    pub data_dir: PathBuf,
    /// The Redis store's (and sink's) server.
    pub redis_url: RedisUrl,
    /// Full reload period of the key index.
    pub resync_interval_secs: u64,
}

/// `[sink]`, checked.
#[derive(Debug, Clone, Serialize)]
pub struct SinkSettings {
    /// Which sink.
    pub backend: SinkBackend,
    /// Redis stream name.
    pub stream: String,
    /// Spool directory (resolved: `<data_dir>/spool` unless set).
    pub spool_dir: PathBuf,
    /// Log segment roll size.
    pub segment_bytes: u64,
    /// NATS servers, in the order given.
    pub nats_url: Vec<NatsServer>,
    /// JetStream stream name.
    pub nats_stream: String,
    /// Replicas when intake creates the stream.
    pub nats_replicas: usize,
    /// Message age limit when intake creates the stream; 0 = none.
    pub nats_max_age_secs: u64,
}

/// Collects the problems of one validation, one line each.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, setting: &str, rule: &str) {
        if !ok {
            self.0.push(format!("{setting}: {rule}"));
        }
    }

    /// The parsed value, or `None` with the problem recorded.
    fn parsed<T>(&mut self, setting: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|problem| self.0.push(format!("{setting}: {problem}")))
            .ok()
    }
}

impl Config {
    /// Parses and checks every setting; all problems are reported together.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let mut problems = Problems::default();
        let ingest = self.ingest.checked(&mut problems);
        let admin = self.admin.checked(&mut problems);
        let store = self.store.checked(&mut problems);
        let sink = self.sink.checked(&self.store.data_dir, &mut problems);
        let rate_limit = self.rate_limit.checked(&mut problems);
        let dedup = self.dedup.checked(&mut problems);
        match (ingest, admin, store, sink) {
            (Some(ingest), Some(admin), Some(store), Some(sink)) if problems.0.is_empty() => {
                Ok(Settings {
                    ingest,
                    admin,
                    store,
                    sink,
                    rate_limit,
                    dedup,
                })
            }
            _ => Err(ConfigError(problems.0)),
        }
    }
}

fn address(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8080"))
}

fn cidrs(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| {
            net::parse_cidr(s).ok_or_else(|| format!("`{s}` is not an IP address or CIDR block"))
        })
        .collect()
}

impl IngestConfig {
    fn checked(&self, problems: &mut Problems) -> Option<IngestSettings> {
        problems.check(
            self.max_request_bytes > 0,
            "ingest.max_request_bytes",
            "must be greater than 0",
        );
        problems.check(
            self.max_event_bytes > 0,
            "ingest.max_event_bytes",
            "must be greater than 0",
        );
        problems.check(
            self.max_events_per_request > 0,
            "ingest.max_events_per_request",
            "must be greater than 0",
        );
        problems.check(
            self.max_connections > 0,
            "ingest.max_connections",
            "must be greater than 0",
        );
        problems.check(
            self.max_header_bytes >= 8192,
            "ingest.max_header_bytes",
            "must be at least 8192",
        );
        problems.check(
            self.header_read_timeout_secs > 0,
            "ingest.header_read_timeout_secs",
            "must be greater than 0",
        );
        for (name, secs) in [
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("send_timeout_secs", self.send_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("max_connection_age_secs", self.max_connection_age_secs),
        ] {
            problems.check(
                secs > 0,
                &format!("ingest.{name}"),
                "must be greater than 0",
            );
        }
        let cors_origins = problems.parsed(
            "ingest.cors_origins",
            AllowedOrigins::parse(&self.cors_origins, true).map_err(|e| e.to_string()),
        );
        let public_url = self.public_url.as_deref().map(PublicUrl::parse).transpose();
        let listen = problems.parsed("ingest.listen", address(&self.listen));
        let trusted_proxies =
            problems.parsed("ingest.trusted_proxies", cidrs(&self.trusted_proxies));
        let public_url = problems.parsed("ingest.public_url", public_url);
        Some(IngestSettings {
            listen: listen?,
            trusted_proxies: trusted_proxies?,
            public_url: public_url?,
            cors_origins: cors_origins?,
            written: self.clone(),
        })
    }
}

impl AdminConfig {
    fn checked(&self, problems: &mut Problems) -> Option<AdminSettings> {
        problems.check(
            self.bootstrap_api_key
                .as_deref()
                .is_none_or(secrets::is_api_key_shape),
            "admin.bootstrap_api_key",
            "must be `api_` followed by 40 characters of [A-Za-z0-9]",
        );
        problems.check(
            self.max_connections > 0,
            "admin.max_connections",
            "must be greater than 0",
        );
        let listen = problems.parsed("admin.listen", address(&self.listen));
        let trusted_proxies =
            problems.parsed("admin.trusted_proxies", cidrs(&self.trusted_proxies));
        Some(AdminSettings {
            listen: listen?,
            bootstrap_api_key: self.bootstrap_api_key.clone().map(Secret::new),
            trusted_proxies: trusted_proxies?,
            max_connections: self.max_connections,
            auth_failures_per_minute: self.auth_failures_per_minute,
        })
    }
}

impl StoreConfig {
    fn checked(&self, problems: &mut Problems) -> Option<StoreSettings> {
        problems.check(
            self.resync_interval_secs > 0,
            "store.resync_interval_secs",
            "must be greater than 0",
        );
        problems.check(
            !self.data_dir.as_os_str().is_empty(),
            "store.data_dir",
            "must not be empty",
        );
        let redis_url = problems.parsed("store.redis_url", RedisUrl::parse(&self.redis_url));
        Some(StoreSettings {
            backend: self.backend,
            data_dir: self.data_dir.clone(),
            redis_url: redis_url?,
            resync_interval_secs: self.resync_interval_secs,
        })
    }
}

impl SinkConfig {
    fn checked(&self, data_dir: &std::path::Path, problems: &mut Problems) -> Option<SinkSettings> {
        problems.check(!self.stream.is_empty(), "sink.stream", "must not be empty");
        problems.check(
            self.segment_bytes > 0,
            "sink.segment_bytes",
            "must be greater than 0",
        );
        problems.check(
            is_stream_name(&self.nats_stream),
            "sink.nats_stream",
            "must be a JetStream stream name (letters, digits, - and _)",
        );
        problems.check(
            (1..=5).contains(&self.nats_replicas),
            "sink.nats_replicas",
            "must be from 1 to 5",
        );
        let mut nats_url = Vec::new();
        for server in self.nats_url.split(',') {
            match NatsServer::parse(server) {
                Ok(server) => nats_url.push(server),
                Err(problem) => problems.0.push(format!("sink.nats_url: {problem}")),
            }
        }
        Some(SinkSettings {
            backend: self.backend,
            stream: self.stream.clone(),
            spool_dir: self
                .spool_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("spool")),
            segment_bytes: self.segment_bytes,
            nats_url,
            nats_stream: self.nats_stream.clone(),
            nats_replicas: self.nats_replicas,
            nats_max_age_secs: self.nats_max_age_secs,
        })
    }
}

impl RateLimitConfig {
    fn checked(&self, problems: &mut Problems) -> RateLimitConfig {
        problems.check(
            self.per_key_per_second == 0 || self.per_key_burst > 0,
            "rate_limit.per_key_burst",
            "must be at least 1 when per_key_per_second is set",
        );
        problems.check(
            self.per_key_events_per_second == 0 || self.per_key_events_burst > 0,
            "rate_limit.per_key_events_burst",
            "must be at least 1 when per_key_events_per_second is set",
        );
        self.clone()
    }
}

impl DedupConfig {
    fn checked(&self, problems: &mut Problems) -> DedupConfig {
        problems.check(
            self.max_entries > 0,
            "dedup.max_entries",
            "must be greater than 0",
        );
        problems.check(
            self.webhook_id_header
                .as_deref()
                .is_none_or(|name| http::HeaderName::from_bytes(name.as_bytes()).is_ok()),
            "dedup.webhook_id_header",
            "must be a valid HTTP header name",
        );
        self.clone()
    }
}

/// JetStream stream names may not hold spaces, `.`, `*`, `>` or path separators.
fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
