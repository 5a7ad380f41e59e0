//! Wiring: config → store → bootstrap key → index (loaded, then kept in sync) → sink →
//! both listeners; and the one shutdown path: stop accepting, drain in-flight
//! requests, flush the sink.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin};
use crate::config::{parse_cidrs, Config, SinkBackend, StoreBackend};
use crate::index::KeyIndex;
use crate::ingest::{self, answer::Cors, ConnectionLimits, Ingest};
use crate::limits::{self, AuthFailures, IpLimiter};
use crate::sink::{log::LogSink, redis::RedisSink, Sink};
use crate::store::{bootstrap, embedded::EmbeddedStore, redis::RedisStore, sync, Store};
use crate::telemetry::IngestMetrics;

/// Time in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Failed admin authentications an address may make per minute before it gets 429.
const ADMIN_AUTH_FAILURES_PER_MINUTE: u32 = 20;
/// How often histogram samples are folded into buckets.
const METRICS_UPKEEP_PERIOD: Duration = Duration::from_secs(5);
/// How often idle per-address limiter entries are dropped.
const LIMITER_EVICTION_PERIOD: Duration = Duration::from_secs(10);

/// A started gateway.
pub struct Running {
    /// Bound ingest address (port 0 resolved).
    pub ingest_addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    /// The API key generated at first start, if one was.
    pub generated_api_key: Option<String>,
    shutdown: CancellationToken,
    ingest_task: JoinHandle<()>,
    admin_task: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    sink: Arc<Sink>,
}

/// Starts everything; returns once both listeners accept connections.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    // The recorder first, so that the start-up load's gauges are kept.
    crate::telemetry::metrics_handle();
    let data_dir = config.store.data_dir.clone();
    let store: Arc<dyn Store> = match config.store.backend {
        StoreBackend::Embedded => Arc::new(
            EmbeddedStore::open(&data_dir)
                .with_context(|| format!("opening the embedded store in {}", data_dir.display()))?,
        ),
        StoreBackend::Redis => Arc::new(
            RedisStore::connect(&config.store.redis_url)
                .await
                .with_context(|| {
                    format!("store.redis_url: connecting to {}", config.store.redis_url)
                })?,
        ),
    };
    let generated_api_key = bootstrap::ensure_operator_key(
        store.as_ref(),
        config.admin.bootstrap_api_key.as_deref(),
        &data_dir,
    )
    .await
    .context("creating the bootstrap API key")?;

    let shutdown = CancellationToken::new();
    let make_limiter = limits::key_limiter_factory(&config.rate_limit)
        .map(|f| Box::new(f) as Box<dyn Fn() -> limits::KeyLimiter + Send + Sync>);
    let index = Arc::new(KeyIndex::new(make_limiter));
    let sync_task = sync::start(
        store.clone(),
        index.clone(),
        Duration::from_secs(config.store.resync_interval_secs),
        shutdown.clone(),
    )
    .await
    .context("loading the key index")?;

    let sink = Arc::new(open_sink(&config)?);

    let ingest_listener = bind(&config.ingest.listen, "ingest.listen").await?;
    let admin_listener = bind(&config.admin.listen, "admin.listen").await?;
    let ingest_addr = ingest_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let ip_limiter = IpLimiter::new(&config.rate_limit);
    let evict = ip_limiter.is_some();
    let ingest = Arc::new(Ingest {
        index: index.clone(),
        sink: sink.clone(),
        max_request_bytes: config.ingest.max_request_bytes,
        max_event_bytes: config.ingest.max_event_bytes,
        max_events_per_request: config.ingest.max_events_per_request,
        limits: ConnectionLimits {
            header_timeout: Duration::from_secs(config.ingest.header_read_timeout_secs),
            max_connections: config.ingest.max_connections,
            max_header_bytes: config.ingest.max_header_bytes,
        },
        body_timeout: Duration::from_secs(config.ingest.body_read_timeout_secs),
        cors: Cors::new(&config.ingest.cors_origins),
        trusted_proxies: parse_cidrs(&config.ingest.trusted_proxies)
            .map_err(|bad| anyhow::anyhow!("ingest.trusted_proxies: `{bad}` is not a CIDR"))?,
        ip_limiter,
        metrics: IngestMetrics::new(),
        access_log: config.ingest.access_log,
    });
    let admin_state = Arc::new(Admin {
        store,
        index,
        sink: sink.clone(),
        trusted_proxies: parse_cidrs(&config.admin.trusted_proxies)
            .map_err(|bad| anyhow::anyhow!("admin.trusted_proxies: `{bad}` is not a CIDR"))?,
        auth_failures: AuthFailures::new(ADMIN_AUTH_FAILURES_PER_MINUTE, Duration::from_secs(60)),
    });

    let mut background = vec![sync_task, tokio::spawn(metrics_upkeep(shutdown.clone()))];
    if evict {
        background.push(tokio::spawn(evict_idle_addresses(
            ingest.clone(),
            shutdown.clone(),
        )));
    }
    let ingest_task = tokio::spawn(ingest::serve(
        ingest_listener,
        ingest,
        shutdown.clone(),
        SHUTDOWN_GRACE,
    ));
    let admin_task = tokio::spawn(admin::serve(admin_listener, admin_state, shutdown.clone()));
    tracing::info!(ingest = %ingest_addr, admin = %admin_addr, "intake is listening");
    Ok(Running {
        ingest_addr,
        admin_addr,
        generated_api_key,
        shutdown,
        ingest_task,
        admin_task,
        background,
        sink,
    })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, flushes the sink.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.ingest_task.await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.admin_task).await;
        for task in self.background {
            let _ = task.await;
        }
        self.sink.close().await;
        tracing::info!("intake stopped cleanly");
    }
}

/// Runs until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    wait_for_signal().await?;
    tracing::info!("shutdown signal received; draining");
    running.stop().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn open_sink(config: &Config) -> anyhow::Result<Sink> {
    Ok(match config.sink.backend {
        SinkBackend::Log => {
            let dir = config.store.data_dir.join("events");
            Sink::Log(
                LogSink::open(&dir, config.sink.segment_bytes)
                    .with_context(|| format!("opening the event log in {}", dir.display()))?,
            )
        }
        SinkBackend::Nats => anyhow::bail!("sink.backend: \"nats\" is not available yet"),
        SinkBackend::Redis => Sink::Redis(
            RedisSink::open(
                &config.store.redis_url,
                config.sink.stream.clone(),
                &config.spool_dir(),
            )
            .context("sink: opening the Redis stream sink")?,
        ),
    })
}

async fn bind(address: &str, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("{setting}: cannot listen on {address}"))
}

/// Drains recorded histogram samples into their buckets, so that memory stays flat
/// between scrapes.
async fn metrics_upkeep(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(METRICS_UPKEEP_PERIOD);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => crate::telemetry::metrics_handle().run_upkeep(),
        }
    }
}

async fn evict_idle_addresses(ingest: Arc<Ingest>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(LIMITER_EVICTION_PERIOD);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Some(limiter) = &ingest.ip_limiter {
                    limiter.evict_idle();
                    crate::telemetry::record_ip_limiter(limiter.tracked());
                }
            }
        }
    }
}
