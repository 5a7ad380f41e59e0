//! Settings. The TOML file and the `INTAKE_<SECTION>__<KEY>` environment overrides are
//! read into [`Config`], the configuration as written; [`Config::validate`] turns it
//! into [`Settings`], where every address, CIDR block and URL is parsed once, and
//! reports every problem at once, each on one line naming the setting. Nothing
//! downstream parses a setting again.

mod settings;
#[cfg(test)]
mod tests;
mod urls;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::secrets::Secret;
pub use settings::{AdminSettings, IngestSettings, Settings, SinkSettings, StoreSettings};
pub use urls::{NatsServer, PublicUrl, RedisUrl};

/// The file read when `--config` is not given and the file exists.
const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// Prefix of the environment overrides; `__` separates section and key.
const ENV_PREFIX: &str = "INTAKE_";

/// The configuration as written: file, environment and defaults, not yet checked.
/// Tests adjust this form; [`Config::validate`] makes the [`Settings`] intake runs on.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[ingest]`: the public listener SDKs and webhooks post to.
    pub ingest: IngestConfig,
    /// `[admin]`: the key-management listener.
    pub admin: AdminConfig,
    /// `[store]`: where workspaces, connections and keys live.
    pub store: StoreConfig,
    /// `[sink]`: where accepted events go.
    pub sink: SinkConfig,
    /// `[rate_limit]`: budgets on the ingest listener.
    pub rate_limit: RateLimitConfig,
    /// `[dedup]`: messageId deduplication.
    pub dedup: DedupConfig,
}

/// `[ingest]` as written.
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
    /// The URL browsers reach intake at; unset: taken from the request's `Host`.
    pub public_url: Option<String>,
}

/// `[admin]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: String,
    /// An operator API key created (or made active again) at start-up.
    pub bootstrap_api_key: Option<String>,
    /// CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Open admin connections at most.
    pub max_connections: usize,
    /// Failed authentications a client may make per minute before it gets 429 for
    /// the rest of the minute; 0 turns the limit off.
    pub auth_failures_per_minute: u32,
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

/// `[store]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which store to use.
    pub backend: StoreBackend,
    /// Root of everything intake writes locally.
    pub data_dir: PathBuf,
    /// Redis URL for the redis store and sink.
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

/// `[sink]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Which sink to use.
    pub backend: SinkBackend,
    /// Stream name for the redis sink.
    pub stream: String,
    /// Spool for the redis and nats sinks; defaults to `<data_dir>/spool`.
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

/// `[rate_limit]`: plain numbers, the same written and checked.
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

/// `[dedup]`: plain numbers, the same written and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// How long an accepted messageId is remembered per connection; 0 = off.
    pub window_secs: u64,
    /// Remembered ids at most (embedded store only; the oldest go first).
    pub max_entries: usize,
    /// A header carrying a webhook sender's delivery id (besides GitHub's
    /// `X-GitHub-Delivery` and Stripe's event id, which are always used).
    pub webhook_id_header: Option<String>,
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
            max_connections: 1_024,
            auth_failures_per_minute: 20,
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
            webhook_id_header: None,
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
    ) -> Result<Settings, ConfigError> {
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
        config.validate()
    }
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
