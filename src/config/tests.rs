//! One test per validation rule, plus loading, overrides and typed results.

use std::path::PathBuf;

use super::*;

fn load_with(toml_text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml_text).unwrap();
    Config::load(
        Some(&path),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// A file breaking one rule is refused with exactly one line, naming the setting.
fn refused(toml_text: &str, setting: &str) -> String {
    let error = load_with(toml_text, &[]).unwrap_err();
    assert_eq!(error.0.len(), 1, "{error}");
    assert!(error.0[0].starts_with(&format!("{setting}:")), "{error}");
    error.0[0].clone()
}

macro_rules! rule {
    ($name:ident, $toml:expr, $setting:expr) => {
        #[test]
        fn $name() {
            refused($toml, $setting);
        }
    };
}

rule!(
    ingest_listen_is_an_address,
    "[ingest]\nlisten = \"nowhere\"",
    "ingest.listen"
);
rule!(
    admin_listen_is_an_address,
    "[admin]\nlisten = \"localhost\"",
    "admin.listen"
);
rule!(
    ingest_proxies_are_cidrs,
    "[ingest]\ntrusted_proxies = [\"10.0.0.0/99\"]",
    "ingest.trusted_proxies"
);
rule!(
    admin_proxies_are_cidrs,
    "[admin]\ntrusted_proxies = [\"x\"]",
    "admin.trusted_proxies"
);
rule!(
    request_cap_is_positive,
    "[ingest]\nmax_request_bytes = 0",
    "ingest.max_request_bytes"
);
rule!(
    event_cap_is_positive,
    "[ingest]\nmax_event_bytes = 0",
    "ingest.max_event_bytes"
);
rule!(
    events_per_request_is_positive,
    "[ingest]\nmax_events_per_request = 0",
    "ingest.max_events_per_request"
);
rule!(
    public_url_is_http,
    "[ingest]\npublic_url = \"ftp://x\"",
    "ingest.public_url"
);
rule!(
    ingest_connections_are_positive,
    "[ingest]\nmax_connections = 0",
    "ingest.max_connections"
);
rule!(
    admin_connections_are_positive,
    "[admin]\nmax_connections = 0",
    "admin.max_connections"
);
rule!(
    header_cap_is_at_least_8k,
    "[ingest]\nmax_header_bytes = 100",
    "ingest.max_header_bytes"
);
rule!(
    header_timeout_is_positive,
    "[ingest]\nheader_read_timeout_secs = 0",
    "ingest.header_read_timeout_secs"
);
rule!(
    body_timeout_is_positive,
    "[ingest]\nbody_read_timeout_secs = 0",
    "ingest.body_read_timeout_secs"
);
rule!(
    send_timeout_is_positive,
    "[ingest]\nsend_timeout_secs = 0",
    "ingest.send_timeout_secs"
);
rule!(
    idle_timeout_is_positive,
    "[ingest]\nidle_timeout_secs = 0",
    "ingest.idle_timeout_secs"
);
rule!(
    connection_age_is_positive,
    "[ingest]\nmax_connection_age_secs = 0",
    "ingest.max_connection_age_secs"
);
rule!(
    cors_origins_are_origins,
    "[ingest]\ncors_origins = [\"https://shop.example/path\"]",
    "ingest.cors_origins"
);
rule!(
    cors_origins_are_not_empty,
    "[ingest]\ncors_origins = [\" \"]",
    "ingest.cors_origins"
);
rule!(
    bootstrap_key_has_the_api_key_shape,
    "[admin]\nbootstrap_api_key = \"api_short\"",
    "admin.bootstrap_api_key"
);
rule!(
    redis_url_is_a_redis_url,
    "[store]\nredis_url = \"http://x\"",
    "store.redis_url"
);
rule!(
    resync_interval_is_positive,
    "[store]\nresync_interval_secs = 0",
    "store.resync_interval_secs"
);
rule!(
    data_dir_is_not_empty,
    "[store]\ndata_dir = \"\"",
    "store.data_dir"
);
rule!(stream_is_not_empty, "[sink]\nstream = \"\"", "sink.stream");
rule!(
    segment_size_is_positive,
    "[sink]\nsegment_bytes = 0",
    "sink.segment_bytes"
);
rule!(
    nats_urls_are_nats_urls,
    "[sink]\nnats_url = \"nats://a:4222, http://b\"",
    "sink.nats_url"
);
rule!(
    nats_stream_is_a_stream_name,
    "[sink]\nnats_stream = \"a.b\"",
    "sink.nats_stream"
);
rule!(
    nats_replicas_are_1_to_5,
    "[sink]\nnats_replicas = 7",
    "sink.nats_replicas"
);
rule!(
    key_burst_needs_a_rate,
    "[rate_limit]\nper_key_burst = 0",
    "rate_limit.per_key_burst"
);
rule!(
    events_burst_needs_a_rate,
    "[rate_limit]\nper_key_events_burst = 0",
    "rate_limit.per_key_events_burst"
);
rule!(
    dedup_entries_are_positive,
    "[dedup]\nmax_entries = 0",
    "dedup.max_entries"
);
rule!(
    unknown_keys_are_refused,
    "[ingest]\nlistn = \"x\"",
    "ingest.listn"
);
rule!(
    wrong_types_are_refused,
    "[ingest]\nmax_event_bytes = \"big\"",
    "ingest.max_event_bytes"
);

#[test]
fn defaults_match_the_contract_and_are_typed() {
    let c = load_with("", &[]).unwrap();
    assert_eq!(c.ingest.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(c.ingest.written.max_request_bytes, 512_000);
    assert_eq!(c.ingest.written.max_event_bytes, 32_768);
    assert_eq!(c.ingest.written.max_events_per_request, 2_500);
    assert_eq!(c.ingest.cors_origins, crate::model::AllowedOrigins::any());
    assert_eq!(c.ingest.public_url, None);
    assert_eq!(c.admin.listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(c.admin.max_connections, 1_024);
    assert_eq!(c.store.backend, StoreBackend::Embedded);
    assert_eq!(c.store.data_dir, PathBuf::from("data"));
    assert_eq!(c.store.redis_url.to_string(), "redis://127.0.0.1:6379");
    assert_eq!(c.store.resync_interval_secs, 300);
    assert_eq!(c.sink.backend, SinkBackend::Log);
    assert_eq!(c.sink.stream, "intake:events");
    assert_eq!(c.sink.spool_dir, PathBuf::from("data/spool"));
    assert_eq!(c.sink.nats_url.len(), 1);
    assert_eq!(c.sink.nats_url[0].as_str(), "nats://127.0.0.1:4222");
    assert_eq!(c.sink.nats_stream, "INTAKE_EVENTS");
    assert_eq!(c.sink.nats_replicas, 1);
    assert_eq!(c.sink.nats_max_age_secs, 0);
    assert_eq!(c.rate_limit.per_key_per_second, 1000);
    assert_eq!(c.rate_limit.per_key_burst, 2000);
    assert_eq!(c.rate_limit.per_key_events_per_second, 20_000);
    assert_eq!(c.rate_limit.per_key_events_burst, 50_000);
    assert_eq!(c.rate_limit.per_ip_per_second, 0);
    assert_eq!(c.dedup.window_secs, 86_400);
}

#[test]
fn values_are_parsed_once_into_types() {
    let c = load_with(
        "[ingest]\ntrusted_proxies = [\"10.0.0.0/8\", \"::ffff:127.0.0.1\"]\npublic_url = \"https://intake.shop.example\"\n[sink]\nbackend = \"nats\"\nnats_url = \"nats://a:4222, nats://user:pw@b:4223\"\nspool_dir = \"/var/spool/intake\"\n",
        &[],
    )
    .unwrap();
    let proxies: Vec<String> = c
        .ingest
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "127.0.0.1/32"]);
    assert_eq!(
        c.ingest.public_url.unwrap().host_and_path(),
        "intake.shop.example"
    );
    assert_eq!(c.sink.backend, SinkBackend::Nats);
    assert_eq!(c.sink.nats_url[1].uri().port_u16(), Some(4223));
    assert_eq!(c.sink.nats_url[1].to_string(), "nats://user:***@b:4223");
    assert_eq!(c.sink.spool_dir, PathBuf::from("/var/spool/intake"));
}

#[test]
fn passwords_never_show() {
    let c = load_with(
        "[store]\nredis_url = \"redis://:hunter2@redis.internal:6379/0\"\n[sink]\nnats_url = \"nats://app:hunter2@a:4222\"\n[admin]\nbootstrap_api_key = \"api_0123456789012345678901234567890123456789\"\n",
        &[],
    )
    .unwrap();
    let printed = toml::to_string_pretty(&c).unwrap();
    let debugged = format!("{c:?}");
    for text in [&printed, &debugged] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            !text.contains("0123456789012345678901234567890123456789"),
            "{text}"
        );
    }
    assert!(
        printed.contains("redis://:***@redis.internal:6379/0"),
        "{printed}"
    );
    let e = load_with("[sink]\nnats_url = \"http://u:hunter2@b\"\n", &[]).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
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
    assert_eq!(c.ingest.listen, "127.0.0.1:18080".parse().unwrap());
    assert_eq!(c.ingest.written.max_event_bytes, 100);
    assert_eq!(c.ingest.cors_origins.to_string(), "https://a.example");
    let e = load_with("", &[("INTAKE_SINK__COLOUR", "red")]).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = load_with(
        "[store]\nredis_url = \"http://x\"\n[ingest]\ntrusted_proxies = [\"10.0.0.0/99\"]\nlisten = \"x\"\n[sink]\nnats_replicas = 0\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.0.len(), 4, "{e}");
}

#[test]
fn public_urls_split_into_scheme_and_host_path() {
    let url = PublicUrl::parse("https://intake.shop.example/").unwrap();
    assert_eq!(
        (url.scheme(), url.host_and_path()),
        ("https", "intake.shop.example")
    );
    let url = PublicUrl::parse("http://10.0.0.1:8080/t/").unwrap();
    assert_eq!(
        (url.scheme(), url.host_and_path()),
        ("http", "10.0.0.1:8080/t")
    );
    assert!(PublicUrl::parse("ftp://x").is_err());
    assert!(PublicUrl::parse("/relative").is_err());
}
