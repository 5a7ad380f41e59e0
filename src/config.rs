//! Settings: the TOML file, `INTAKE_<SECTION>__<KEY>` environment overrides, defaults
//! and validation. Everything is checked before anything starts, and every problem is
//! reported at once, each on one line naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given and the file exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// Prefix of the environment overrides; `__` separates section and key.
const ENV_PREFIX: &str = "INTAKE_";

/// The whole, validated configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The public listener SDKs and webhooks post to.
    pub ingest: IngestConfig,
    /// The key-management listener.
    pub admin: AdminConfig,
    /// Where workspaces, connections and keys live.
    pub store: StoreConfig,
    /// Where accepted events go.
    pub sink: SinkConfig,
    /// Per-key and per-IP request budgets on the ingest listener.
    pub rate_limit: RateLimitConfig,
    /// messageId deduplication.
    pub dedup: DedupConfig,
}

/// `[ingest]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Address to bind; port 0 picks a free port (the bound one is logged).
    pub listen: String,
    /// Cap on a request body, measured after decompression.
    pub max_request_bytes: usize,
    /// Cap on one event's JSON.
    pub max_event_bytes: usize,
    /// Events one request may carry (Segment refuses batches over 2 500).
    pub max_events_per_request: usize,
    /// Origins allowed by CORS; `["*"]` allows all.
    pub cors_origins: Vec<String>,
    /// CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client may take to send its request headers (slowloris guard).
    pub header_read_timeout_secs: u64,
    /// Seconds a client may take to send its request body.
    pub body_read_timeout_secs: u64,
    /// Open connections at most; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Largest request head (at least 8192).
    pub max_header_bytes: usize,
    /// Seconds an answer may wait for the client to read it before the connection is
    /// closed.
    pub send_timeout_secs: u64,
    /// Seconds an HTTP/2 connection may stay without a request in flight.
    pub idle_timeout_secs: u64,
    /// Seconds after which any connection is asked to close (clients reconnect).
    pub max_connection_age_secs: u64,
    /// One log line per request (target `intake::access`).
    pub access_log: bool,
    /// The URL browsers reach intake at, for the SDK settings documents; unset: taken
    /// from the request's `Host`.
    pub public_url: Option<String>,
}

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: String,
    /// An operator API key created at start-up when missing.
    pub bootstrap_api_key: Option<String>,
    /// CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
}

/// Which store backs the key index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// redb file under `data_dir`: one node, no server.
    Embedded,
    /// A shared Redis: many nodes.
    Redis,
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which store to use.
    pub backend: StoreBackend,
    /// Root of everything intake writes locally.
    pub data_dir: PathBuf,
    /// Redis URL for the redis backend.
    pub redis_url: String,
    /// Full reload period, a safety net behind the change feed.
    pub resync_interval_secs: u64,
}

/// Which sink receives accepted events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkBackend {
    /// NDJSON segments under `<data_dir>/events`.
    Log,
    /// A Redis stream.
    Redis,
    /// A NATS JetStream stream.
    Nats,
}

/// `[sink]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Which sink to use.
    pub backend: SinkBackend,
    /// Stream name for the redis sink.
    pub stream: String,
    /// Spool for the redis sink; defaults to `<data_dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    /// A log segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// NATS servers for the nats sink, comma-separated.
    pub nats_url: String,
    /// JetStream stream the nats sink publishes to.
    pub nats_stream: String,
    /// Replicas of the stream when intake creates it.
    pub nats_replicas: usize,
    /// Longest a message is kept when intake creates the stream; 0 = unlimited.
    pub nats_max_age_secs: u64,
}

/// `[rate_limit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per second per write key; 0 turns the limit off.
    pub per_key_per_second: u32,
    /// Requests a write key may send at once before the rate applies.
    pub per_key_burst: u32,
    /// Events per second per write key; 0 = off.
    pub per_key_events_per_second: u32,
    /// Events a write key may send at once before the rate applies.
    pub per_key_events_burst: u32,
    /// Requests per second per client address; 0 = off.
    pub per_ip_per_second: u32,
}

/// `[dedup]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// How long an accepted messageId is remembered per connection; 0 = off.
    pub window_secs: u64,
    /// Remembered ids at most (embedded store only; the oldest go first).
    pub max_entries: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            max_request_bytes: 512_000,
            max_event_bytes: 32_768,
            max_events_per_request: 2_500,
            cors_origins: vec!["*".into()],
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_connections: 10_000,
            max_header_bytes: 16_384,
            send_timeout_secs: 30,
            idle_timeout_secs: 30,
            max_connection_age_secs: 600,
            access_log: false,
            public_url: None,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".into(),
            bootstrap_api_key: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Embedded,
            data_dir: PathBuf::from("data"),
            redis_url: "redis://127.0.0.1:6379".into(),
            resync_interval_secs: 300,
        }
    }
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            backend: SinkBackend::Log,
            stream: "intake:events".into(),
            spool_dir: None,
            segment_bytes: 64 * 1024 * 1024,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_stream: "INTAKE_EVENTS".into(),
            nats_replicas: 1,
            nats_max_age_secs: 0,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_key_per_second: 1000,
            per_key_burst: 2000,
            per_key_events_per_second: 20_000,
            per_key_events_burst: 50_000,
            per_ip_per_second: 0,
        }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window_secs: 86_400,
            max_entries: 10_000_000,
        }
    }
}

/// Every problem found in a configuration, one line each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the file (the explicit one, or the default when present), applies the
    /// environment overrides and validates the result.
    pub fn load(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match explicit {
            Some(path) => read_table(path)?,
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                read_table(Path::new(DEFAULT_CONFIG_PATH))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let setting = e.path().to_string();
                ConfigError(vec![format!(
                    "{setting}: {}",
                    describe_toml_error(e.inner())
                )])
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: addresses, URLs, CIDRs, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("ingest.listen", &self.ingest.listen),
            ("admin.listen", &self.admin.listen),
        ] {
            if value.parse::<SocketAddr>().is_err() {
                problems.push(format!(
                    "{name}: `{value}` is not an address like 127.0.0.1:8080"
                ));
            }
        }
        for (name, list) in [
            ("ingest.trusted_proxies", &self.ingest.trusted_proxies),
            ("admin.trusted_proxies", &self.admin.trusted_proxies),
        ] {
            if let Err(bad) = parse_cidrs(list) {
                problems.push(format!(
                    "{name}: `{bad}` is not an IP address or CIDR block"
                ));
            }
        }
        if self.ingest.max_request_bytes == 0 {
            problems.push("ingest.max_request_bytes: must be greater than 0".into());
        }
        if self.ingest.max_event_bytes == 0 {
            problems.push("ingest.max_event_bytes: must be greater than 0".into());
        }
        if self.ingest.max_events_per_request == 0 {
            problems.push("ingest.max_events_per_request: must be greater than 0".into());
        }
        if let Some(url) = &self.ingest.public_url {
            if !is_http_url(url) {
                problems.push(format!(
                    "ingest.public_url: `{url}` is not an http:// or https:// URL"
                ));
            }
        }
        if self.ingest.max_connections == 0 {
            problems.push("ingest.max_connections: must be greater than 0".into());
        }
        if self.ingest.max_header_bytes < 8192 {
            problems.push("ingest.max_header_bytes: must be at least 8192".into());
        }
        for (name, secs) in [
            (
                "header_read_timeout_secs",
                self.ingest.header_read_timeout_secs,
            ),
            ("body_read_timeout_secs", self.ingest.body_read_timeout_secs),
            ("send_timeout_secs", self.ingest.send_timeout_secs),
            ("idle_timeout_secs", self.ingest.idle_timeout_secs),
            (
                "max_connection_age_secs",
                self.ingest.max_connection_age_secs,
            ),
        ] {
            if secs == 0 {
                problems.push(format!("ingest.{name}: must be greater than 0"));
            }
        }
        if self.ingest.cors_origins.iter().any(|o| o.trim().is_empty()) {
            problems.push("ingest.cors_origins: an origin must not be empty".into());
        } else if let Err(e) =
            crate::ingest::origins::AllowedOrigins::parse(&self.ingest.cors_origins, true)
        {
            problems.push(format!("ingest.cors_origins: {e}"));
        }
        if let Some(key) = &self.admin.bootstrap_api_key {
            if !crate::secrets::is_api_key_shape(key) {
                problems.push(
                    "admin.bootstrap_api_key: must be `api_` followed by 40 characters of [A-Za-z0-9]"
                        .into(),
                );
            }
        }
        if !self.store.redis_url.starts_with("redis://")
            && !self.store.redis_url.starts_with("rediss://")
            && !self.store.redis_url.starts_with("redis+unix://")
            && !self.store.redis_url.starts_with("unix://")
        {
            problems.push(format!(
                "store.redis_url: `{}` is not a redis:// URL",
                self.store.redis_url
            ));
        }
        if self.store.resync_interval_secs == 0 {
            problems.push("store.resync_interval_secs: must be greater than 0".into());
        }
        if self.store.data_dir.as_os_str().is_empty() {
            problems.push("store.data_dir: must not be empty".into());
        }
        if self.sink.stream.is_empty() {
            problems.push("sink.stream: must not be empty".into());
        }
        if self.sink.segment_bytes == 0 {
            problems.push("sink.segment_bytes: must be greater than 0".into());
        }
        for server in self.sink.nats_url.split(',') {
            if !is_nats_url(server.trim()) {
                problems.push(format!(
                    "sink.nats_url: `{}` is not a nats:// or tls:// URL",
                    crate::secrets::redact_url(server.trim())
                ));
            }
        }
        if !is_stream_name(&self.sink.nats_stream) {
            problems.push(
                "sink.nats_stream: must be a JetStream stream name (letters, digits, - and _)"
                    .into(),
            );
        }
        if !(1..=5).contains(&self.sink.nats_replicas) {
            problems.push("sink.nats_replicas: must be from 1 to 5".into());
        }
        if self.rate_limit.per_key_events_per_second > 0
            && self.rate_limit.per_key_events_burst == 0
        {
            problems.push(
                "rate_limit.per_key_events_burst: must be at least 1 when per_key_events_per_second is set"
                    .into(),
            );
        }
        if self.dedup.max_entries == 0 {
            problems.push("dedup.max_entries: must be greater than 0".into());
        }
        if self.rate_limit.per_key_per_second > 0 && self.rate_limit.per_key_burst == 0 {
            problems.push(
                "rate_limit.per_key_burst: must be at least 1 when per_key_per_second is set"
                    .into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// The spool directory, defaulting under the data dir.
    pub fn spool_dir(&self) -> PathBuf {
        self.sink
            .spool_dir
            .clone()
            .unwrap_or_else(|| self.store.data_dir.join("spool"))
    }
}

fn is_http_url(text: &str) -> bool {
    text.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
    })
}

fn is_nats_url(text: &str) -> bool {
    text.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("nats" | "tls" | "ws" | "wss")) && uri.host().is_some()
    })
}

/// JetStream stream names may not hold spaces, `.`, `*`, `>` or path separators.
fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a list of addresses or CIDR blocks; a bare address is a /32 or /128 block.
pub fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| parse_cidr(s).ok_or_else(|| s.clone()))
        .collect()
}

/// One address or CIDR block.
pub fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(vec![format!(
            "--config: cannot read {}: {e}",
            path.display()
        )])
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        ConfigError(vec![format!(
            "{}: {}",
            path.display(),
            describe_toml_error(&e)
        )])
    })
}

/// toml's messages span several lines with a source excerpt; keep the sentence.
fn describe_toml_error(error: &toml::de::Error) -> String {
    error.message().trim().replace('\n', " ")
}

/// Lays `INTAKE_<SECTION>__<KEY>=value` over the file's table. A value that parses as a
/// TOML value (number, boolean, array) is taken as such, anything else as a string.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue; // e.g. INTAKE_LOG_FORMAT: not a setting of the file
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let value = parse_env_value(&raw);
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(section_table) => {
                section_table.insert(key, value);
            }
            _ => problems.push(format!("{name}: [{section}] is not a section")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(problems))
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).unwrap();
        Config::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = load_with("", &[]).unwrap();
        assert_eq!(c.ingest.listen, "0.0.0.0:8080");
        assert_eq!(c.ingest.max_request_bytes, 512_000);
        assert_eq!(c.ingest.max_event_bytes, 32_768);
        assert_eq!(c.ingest.cors_origins, vec!["*".to_string()]);
        assert_eq!(c.admin.listen, "127.0.0.1:9090");
        assert_eq!(c.store.backend, StoreBackend::Embedded);
        assert_eq!(c.store.data_dir, PathBuf::from("data"));
        assert_eq!(c.store.resync_interval_secs, 300);
        assert_eq!(c.sink.backend, SinkBackend::Log);
        assert_eq!(c.sink.stream, "intake:events");
        assert_eq!(c.spool_dir(), PathBuf::from("data/spool"));
        assert_eq!(c.rate_limit.per_key_per_second, 1000);
        assert_eq!(c.rate_limit.per_key_burst, 2000);
        assert_eq!(c.rate_limit.per_ip_per_second, 0);
        assert_eq!(c.ingest.max_events_per_request, 2_500);
        assert_eq!(c.ingest.public_url, None);
        assert_eq!(c.sink.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(c.sink.nats_stream, "INTAKE_EVENTS");
        assert_eq!(c.sink.nats_replicas, 1);
        assert_eq!(c.sink.nats_max_age_secs, 0);
        assert_eq!(c.rate_limit.per_key_events_per_second, 20_000);
        assert_eq!(c.rate_limit.per_key_events_burst, 50_000);
        assert_eq!(c.dedup.window_secs, 86_400);
    }

    #[test]
    fn new_settings_are_validated() {
        let e = load_with(
            "[ingest]\nmax_events_per_request = 0\npublic_url = \"ftp://x\"\n[sink]\nnats_url = \"nats://a:4222, http://b\"\nnats_stream = \"a.b\"\nnats_replicas = 7\n[dedup]\nmax_entries = 0\n",
            &[],
        )
        .unwrap_err();
        for setting in [
            "ingest.max_events_per_request",
            "ingest.public_url",
            "sink.nats_url",
            "sink.nats_stream",
            "sink.nats_replicas",
            "dedup.max_entries",
        ] {
            assert!(e.to_string().contains(setting), "{setting}: {e}");
        }
        let ok = load_with(
            "[ingest]\npublic_url = \"https://intake.shop.example\"\n[sink]\nbackend = \"nats\"\nnats_url = \"nats://a:4222,nats://user:pw@b:4223\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.sink.backend, SinkBackend::Nats);
    }

    #[test]
    fn cors_origins_are_parsed_as_origins() {
        let e = load_with(
            "[ingest]\ncors_origins = [\"https://shop.example/path\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("ingest.cors_origins"), "{e}");
        let ok = load_with(
            "[ingest]\ncors_origins = [\"https://shop.example\", \"https://*.shop.example\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.ingest.cors_origins.len(), 2);
    }

    #[test]
    fn env_overrides_file() {
        let c = load_with(
            "[ingest]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("INTAKE_INGEST__LISTEN", "127.0.0.1:18080"),
                ("INTAKE_INGEST__MAX_EVENT_BYTES", "100"),
                ("INTAKE_INGEST__CORS_ORIGINS", "[\"https://a.example\"]"),
                ("INTAKE_LOG_FORMAT", "json"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.ingest.listen, "127.0.0.1:18080");
        assert_eq!(c.ingest.max_event_bytes, 100);
        assert_eq!(c.ingest.cors_origins, vec!["https://a.example".to_string()]);
    }

    #[test]
    fn unknown_key_is_refused_naming_it() {
        let e = load_with("[ingest]\nlistn = \"x\"\n", &[]).unwrap_err();
        assert!(e.to_string().starts_with("ingest"), "{e}");
        assert!(e.to_string().contains("listn"), "{e}");
        let e = load_with("", &[("INTAKE_SINK__COLOUR", "red")]).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn bad_address_is_refused_naming_the_setting() {
        let e = load_with("", &[("INTAKE_ADMIN__LISTEN", "nowhere")]).unwrap_err();
        assert!(e.to_string().starts_with("admin.listen:"), "{e}");
    }

    #[test]
    fn bad_url_and_cidr_are_all_reported_at_once() {
        let e = load_with(
            "[store]\nredis_url = \"http://x\"\n[ingest]\ntrusted_proxies = [\"10.0.0.0/99\"]\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(e.to_string().contains("store.redis_url"));
        assert!(e.to_string().contains("ingest.trusted_proxies"));
    }

    #[test]
    fn bad_bootstrap_key_is_refused() {
        let e = load_with("", &[("INTAKE_ADMIN__BOOTSTRAP_API_KEY", "api_short")]).unwrap_err();
        assert!(e.to_string().contains("admin.bootstrap_api_key"));
    }

    #[test]
    fn wrong_type_is_refused() {
        let e = load_with("[ingest]\nmax_event_bytes = \"big\"\n", &[]).unwrap_err();
        assert!(e.to_string().starts_with("ingest.max_event_bytes:"), "{e}");
    }

    #[test]
    fn cidrs_accept_bare_addresses() {
        let nets = parse_cidrs(&["10.0.0.0/8".into(), "::1".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(nets.len(), 3);
        assert_eq!(nets[2].prefix_len(), 32);
    }
}
