//! Logs and metrics. Logs: `tracing`, human-readable by default, JSON with
//! `INTAKE_LOG_FORMAT=json`, level from `RUST_LOG` (default `info`). Metrics: the
//! `metrics` facade with a Prometheus recorder rendered by the admin listener's
//! `/metrics`. Names are constants here; the ingest hot path's per-request metrics
//! are counted in per-thread shards (`shards`) and its rarer ones through
//! pre-registered handles (`IngestMetrics`), so that recording is an atomic add, not a
//! registry lookup.
//! No label ever carries a key, an address or an id.

pub mod shards;

use std::sync::OnceLock;

use metrics::{counter, gauge, Counter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use shards::{write_histogram, Shards, Total};

/// Ingest requests by `route` and `status`.
pub const REQUESTS: &str = "intake_http_requests_total";
/// Ingest request latency by `route`.
pub const REQUEST_SECONDS: &str = "intake_http_request_duration_seconds";
/// Request body bytes received (after decompression).
pub const BODY_BYTES: &str = "intake_request_body_bytes_total";
/// Events accepted.
pub const EVENTS_ACCEPTED: &str = "intake_events_accepted_total";
/// Events rejected, by `reason` (the reject code).
pub const EVENTS_REJECTED: &str = "intake_events_rejected_total";
/// Time for the sink to make a request's events durable.
pub const SINK_SECONDS: &str = "intake_sink_write_duration_seconds";
/// Requests refused for their budget, by `scope` (key or ip).
pub const RATE_LIMITED: &str = "intake_rate_limited_total";
/// Write keys in the index.
pub const INDEX_WRITE_KEYS: &str = "intake_index_write_keys";
/// Store version the index reflects.
pub const INDEX_VERSION: &str = "intake_index_version";
/// Unix time of the last full load of the index.
pub const INDEX_LAST_FULL_LOAD: &str = "intake_index_last_full_load_timestamp_seconds";
/// Duration of the last full load.
pub const INDEX_FULL_LOAD_SECONDS: &str = "intake_index_full_load_duration_seconds";
/// Seconds since the index last changed or was confirmed by a reload (sync lag bound).
pub const INDEX_UPDATE_AGE: &str = "intake_index_last_update_age_seconds";
/// Envelopes written to the spool because the backend (Redis, NATS) refused them.
pub const SPOOLED: &str = "intake_spool_envelopes_total";
/// Envelopes in the spool, waiting to be replayed into the stream (spool depth).
pub const SPOOL_DEPTH: &str = "intake_spool_depth";
/// Where the sink's writes go: 0 straight to the log/Redis/NATS, 1 to the local spool
/// (backend unreachable or being caught up), 2 refused (503s).
pub const SINK_STATE: &str = "intake_sink_state";
/// Client addresses tracked by the per-address limiter.
pub const IP_LIMITER_ENTRIES: &str = "intake_ip_limiter_entries";
/// Failed admin authentications.
pub const ADMIN_AUTH_FAILURES: &str = "intake_admin_auth_failures_total";
/// Counter: accepted events not stored again because their messageId was already
/// stored for the connection within `dedup.window_secs`.
pub const EVENTS_DEDUPLICATED: &str = "intake_events_deduplicated_total";
/// Gauge: seconds of history the in-memory dedup window holds now (below
/// `dedup.window_secs` once `dedup.max_entries` made it drop its oldest ids).
pub const DEDUP_WINDOW: &str = "intake_dedup_window_seconds";
/// Gauge: messageIds the in-memory dedup window remembers.
pub const DEDUP_ENTRIES: &str = "intake_dedup_entries";

/// Latency buckets in seconds: 100 µs to 5 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Route labels of the ingest listener.
pub const ROUTES: [&str; 8] = [
    "batch",
    "single",
    "events",
    "webhook",
    "preflight",
    "unknown",
    "pixel",
    "settings",
];
/// Statuses the ingest listener answers with.
pub const STATUSES: [u16; 13] = [
    200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 429, 500, 503,
];
/// Reject codes.
pub const REJECT_REASONS: [&str; 3] = ["InvalidValue", "PayloadTooLarge", "BadRequest"];

/// Installs the global subscriber; call once, early in `main`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("INTAKE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The process's Prometheus recorder, installed on first use (several in-process
/// gateways, as in tests, share it).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // No histogram is in the registry (the shards keep and write the two there
        // are), so the builder needs no buckets.
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// The ingest hot path's metrics: per-request ones in the shards, the rest through
/// pre-registered handles.
pub struct IngestMetrics {
    shards: &'static Shards,
    rejected: Vec<Counter>,
    /// Requests over a key's budget.
    pub limited_key: Counter,
    /// Requests over an address's budget.
    pub limited_ip: Counter,
    /// Events answered as duplicates.
    pub deduplicated: Counter,
}

impl IngestMetrics {
    /// Registers every handle (the recorder must be installed first).
    pub fn new() -> Self {
        metrics_handle();
        Self {
            shards: Shards::global(),
            rejected: REJECT_REASONS
                .iter()
                .map(|reason| counter!(EVENTS_REJECTED, "reason" => *reason))
                .collect(),
            limited_key: counter!(RATE_LIMITED, "scope" => "key"),
            limited_ip: counter!(RATE_LIMITED, "scope" => "ip"),
            deduplicated: counter!(EVENTS_DEDUPLICATED),
        }
    }

    /// One answered request.
    pub fn request(&self, route: usize, status: u16, seconds: f64) {
        let status_index = STATUSES.iter().position(|s| *s == status).unwrap_or(11);
        self.shards.request(route, status_index, seconds);
    }

    /// `count` events accepted.
    pub fn accepted(&self, count: u64) {
        self.shards.add_total(Total::Accepted, count);
    }

    /// A request body of `bytes` read.
    pub fn body_bytes(&self, bytes: u64) {
        self.shards.add_total(Total::BodyBytes, bytes);
    }

    /// One write to the sink took `seconds`.
    pub fn sink_write(&self, seconds: f64) {
        self.shards.sink_write(seconds);
    }

    /// `count` rejected events of one code.
    pub fn rejected(&self, code: &str, count: u64) {
        let index = REJECT_REASONS.iter().position(|r| *r == code).unwrap_or(2);
        self.rejected[index].increment(count);
    }
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Index gauges, set whenever the index changes.
pub fn record_index(write_keys: usize, version: u64) {
    gauge!(INDEX_WRITE_KEYS).set(write_keys as f64);
    gauge!(INDEX_VERSION).set(version as f64);
}

/// A completed full load of the index.
pub fn record_full_load(seconds: f64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    gauge!(INDEX_LAST_FULL_LOAD).set(now);
    gauge!(INDEX_FULL_LOAD_SECONDS).set(seconds);
}

/// Spool activity of the Redis or NATS sink: envelopes just spooled, and the depth now.
pub fn record_spool(spooled: u64, depth: u64) {
    counter!(SPOOLED).increment(spooled);
    gauge!(SPOOL_DEPTH).set(depth as f64);
}

/// The sink's state (see `SINK_STATE`).
pub fn record_sink_state(state: u8) {
    gauge!(SINK_STATE).set(f64::from(state));
}

/// An error and its causes on one line, for the log (public answers carry fixed
/// sentences; the causes go here).
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The in-memory dedup window: how many ids, covering how many seconds.
pub fn record_dedup_window(entries: usize, seconds: u64) {
    gauge!(DEDUP_ENTRIES).set(entries as f64);
    gauge!(DEDUP_WINDOW).set(seconds as f64);
}

/// Addresses tracked by the per-address limiter.
pub fn record_ip_limiter(entries: usize) {
    gauge!(IP_LIMITER_ENTRIES).set(entries as f64);
}

/// A failed admin authentication.
pub fn record_admin_auth_failure() {
    counter!(ADMIN_AUTH_FAILURES).increment(1);
}

/// Sets the index's update age, then renders every metric (Prometheus text format):
/// the registry's, after it has been handed the shards' counters, and the shards'
/// histograms.
pub fn render(index_update_age_seconds: f64) -> String {
    let handle = metrics_handle();
    gauge!(INDEX_UPDATE_AGE).set(index_update_age_seconds);
    let shards = Shards::global();
    for (route_index, route) in ROUTES.iter().enumerate() {
        for (status_index, status) in STATUSES.iter().enumerate() {
            let total = shards.requests(route_index, status_index);
            counter!(REQUESTS, "route" => *route, "status" => status.to_string()).absolute(total);
        }
    }
    counter!(EVENTS_ACCEPTED).absolute(shards.total(Total::Accepted));
    counter!(BODY_BYTES).absolute(shards.total(Total::BodyBytes));
    handle.run_upkeep();
    let mut text = handle.render();
    text.push_str(&format!("# TYPE {REQUEST_SECONDS} histogram\n"));
    for (route_index, route) in ROUTES.iter().enumerate() {
        let labels = format!("route=\"{route}\"");
        write_histogram(
            &mut text,
            REQUEST_SECONDS,
            &labels,
            &shards.latency(route_index),
        );
    }
    text.push_str(&format!("# TYPE {SINK_SECONDS} histogram\n"));
    write_histogram(&mut text, SINK_SECONDS, "", &shards.sink());
    text
}
