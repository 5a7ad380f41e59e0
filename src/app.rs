//! Wiring: settings → store → index (loaded, then kept in sync) → bootstrap key → sink
//! → both listeners, every long-lived task under one [`Tasks`]; and the one shutdown
//! path: stop accepting, drain in-flight requests, flush the sink, wait for every task,
//! all within one grace period, and log what actually happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin, AdminLimits, AuthFailures};
use crate::config::{Settings, StoreBackend};
use crate::control::{sync, Control};
use crate::index::KeyIndex;
use crate::ingest::{self, cors::Cors, ConnectionLimits, Ingest};
use crate::limits::{self, IpLimiter};
use crate::sink::{self, memory::MemorySink, Sink};
use crate::store::{embedded::EmbeddedStore, redis::RedisStore, Store};
use crate::tasks::Tasks;

pub use crate::tasks::Unfinished;
use crate::telemetry::IngestMetrics;

/// Time a shutdown may take: draining requests, flushing the sink, stopping tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
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
    tasks: Tasks,
    listeners: Vec<JoinHandle<()>>,
    sink: Arc<Sink>,
    index: Arc<KeyIndex>,
}

/// What a shutdown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Whether in-flight requests finished and the listeners closed in time.
    pub drained: bool,
    /// Whether the sink flushed and closed in time.
    pub sink_flushed: bool,
    /// Tasks still running when the grace period ended.
    pub unfinished: Option<Unfinished>,
}

impl Stopped {
    /// Whether everything finished within the grace period.
    pub fn is_clean(&self) -> bool {
        self.drained && self.sink_flushed && self.unfinished.is_none()
    }
}

/// Starts everything; returns once both listeners accept connections. On an error,
/// whatever was already started is stopped before the error is returned.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    start_inner(settings, None).await
}

/// Starts with an in-memory sink instead of the configured one (tests that need a
/// sink fault without a real one).
pub async fn start_with_sink(settings: Settings, sink: MemorySink) -> anyhow::Result<Running> {
    start_inner(settings, Some(sink)).await
}

async fn start_inner(settings: Settings, sink: Option<MemorySink>) -> anyhow::Result<Running> {
    let tasks = Tasks::default();
    match start_under(&settings, sink, &tasks).await {
        Ok(running) => Ok(running),
        Err(error) => {
            tasks.cancel();
            if let Err(unfinished) = tasks.wait(SHUTDOWN_GRACE).await {
                tracing::warn!(?unfinished, "tasks still running after a failed start");
            }
            Err(error)
        }
    }
}

async fn start_under(
    settings: &Settings,
    memory_sink: Option<MemorySink>,
    tasks: &Tasks,
) -> anyhow::Result<Running> {
    // The recorder first, so that the start-up load's gauges are kept.
    crate::telemetry::metrics_handle();
    let store = open_store(settings, tasks).await?;
    let make_limiter = limits::key_limiter_factory(&settings.rate_limit)
        .map(|f| Box::new(f) as Box<dyn Fn() -> limits::KeyLimiter + Send + Sync>);
    let index = Arc::new(KeyIndex::new(make_limiter));
    let resync = Duration::from_secs(settings.store.resync_interval_secs);
    sync::start(store.clone(), index.clone(), resync, tasks)
        .await
        .context("loading the key index")?;
    let control = Arc::new(Control::new(store, index.clone()));
    let bootstrap = settings
        .admin
        .bootstrap_api_key
        .as_ref()
        .map(|k| k.expose());
    let generated_api_key = control
        .ensure_operator_key(bootstrap, &settings.store.data_dir)
        .await
        .context("making sure of the bootstrap API key")?;

    let sink = Arc::new(match memory_sink {
        Some(memory) => Sink::Memory(memory),
        None => sink::open(settings, tasks.tracker()).await?,
    });
    let ingest_listener = bind(settings.ingest.listen, "ingest.listen").await?;
    let admin_listener = bind(settings.admin.listen, "admin.listen").await?;
    let ingest_addr = ingest_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let ingest = ingest_state(settings, index.clone(), sink.clone())?;
    let admin = Arc::new(Admin {
        control,
        index: index.clone(),
        sink: sink.clone(),
        trusted_proxies: settings.admin.trusted_proxies.clone(),
        auth_failures: AuthFailures::new(
            settings.admin.auth_failures_per_minute,
            Duration::from_secs(60),
        ),
        body_timeout: Duration::from_secs(settings.ingest.written.body_read_timeout_secs),
    });
    let admin_limits = AdminLimits {
        header_timeout: Duration::from_secs(settings.ingest.written.header_read_timeout_secs),
        max_connections: settings.admin.max_connections,
    };

    tasks.spawn("metrics upkeep", metrics_upkeep(tasks.shutdown()));
    if ingest.ip_limiter.is_some() {
        tasks.spawn(
            "address limiter eviction",
            evict_idle_addresses(ingest.clone(), tasks.shutdown()),
        );
    }
    let listeners = vec![
        tasks.spawn(
            "ingest listener",
            ingest::serve(ingest_listener, ingest, tasks.shutdown(), SHUTDOWN_GRACE),
        ),
        tasks.spawn(
            "admin listener",
            admin::serve(
                admin_listener,
                admin::router(admin),
                admin_limits,
                tasks.shutdown(),
            ),
        ),
    ];
    tracing::info!(ingest = %ingest_addr, admin = %admin_addr, "intake is listening");
    Ok(Running {
        ingest_addr,
        admin_addr,
        generated_api_key,
        tasks: tasks.clone(),
        listeners,
        sink,
        index,
    })
}

impl Running {
    /// The node's key index: what the ingest path reads (keys, origins).
    pub fn index(&self) -> &KeyIndex {
        &self.index
    }

    /// Stops accepting, lets in-flight requests finish, flushes the sink and waits for
    /// every task, all within the grace period; logs and returns what happened.
    pub async fn stop(self) -> Stopped {
        self.stop_within(SHUTDOWN_GRACE).await
    }

    /// [`Running::stop`] with another grace period.
    pub async fn stop_within(self, grace: Duration) -> Stopped {
        let deadline = Instant::now() + grace;
        let left = || deadline.saturating_duration_since(Instant::now());
        self.tasks.cancel();
        let listeners = async {
            for listener in self.listeners {
                let _ = listener.await;
            }
        };
        let drained = tokio::time::timeout(left(), listeners).await.is_ok();
        let sink_flushed = tokio::time::timeout(left(), self.sink.close())
            .await
            .is_ok();
        let unfinished = self.tasks.wait(left()).await.err();
        let stopped = Stopped {
            drained,
            sink_flushed,
            unfinished,
        };
        if stopped.is_clean() {
            tracing::info!(
                "intake stopped cleanly: requests drained, sink flushed, every task ended"
            );
        } else {
            tracing::warn!(
                drained = stopped.drained,
                sink_flushed = stopped.sink_flushed,
                unfinished = ?stopped.unfinished,
                grace_secs = grace.as_secs_f64(),
                "intake stopped with work left after the grace period"
            );
        }
        stopped
    }
}

/// Runs until SIGTERM or SIGINT, then shuts down. The handlers are installed before
/// anything starts: a SIGTERM sent as soon as the listening line appears (a supervisor
/// stopping a node that just started) must drain it, not kill it with the default
/// action.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let running = start(settings).await?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutdown signal received; draining");
    running.stop().await;
    Ok(())
}

async fn open_store(settings: &Settings, tasks: &Tasks) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match settings.store.backend {
        StoreBackend::Embedded => {
            let dir = &settings.store.data_dir;
            Arc::new(EmbeddedStore::open(dir).with_context(|| {
                format!(
                    "store.data_dir: opening the embedded store in {}",
                    dir.display()
                )
            })?)
        }
        StoreBackend::Redis => {
            let url = &settings.store.redis_url;
            Arc::new(
                RedisStore::connect(url, tasks)
                    .await
                    .with_context(|| format!("store.redis_url: connecting to {url}"))?,
            )
        }
    })
}

fn ingest_state(
    settings: &Settings,
    index: Arc<KeyIndex>,
    sink: Arc<Sink>,
) -> anyhow::Result<Arc<Ingest>> {
    let config = &settings.ingest;
    let written = &config.written;
    Ok(Arc::new(Ingest {
        index,
        sink,
        max_request_bytes: written.max_request_bytes,
        max_event_bytes: written.max_event_bytes,
        max_events_per_request: written.max_events_per_request,
        limits: ConnectionLimits {
            header_timeout: Duration::from_secs(written.header_read_timeout_secs),
            max_connections: written.max_connections,
            max_header_bytes: written.max_header_bytes,
            send_timeout: Duration::from_secs(written.send_timeout_secs),
            idle_timeout: Duration::from_secs(written.idle_timeout_secs),
            max_age: Duration::from_secs(written.max_connection_age_secs),
        },
        body_timeout: Duration::from_secs(written.body_read_timeout_secs),
        cors: Cors::new(config.cors_origins.clone()),
        public_url: config.public_url.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        ip_limiter: IpLimiter::new(&settings.rate_limit),
        metrics: IngestMetrics::new(),
        access_log: written.access_log,
        webhook_id_header: settings
            .dedup
            .webhook_id_header
            .as_deref()
            .map(|name| http::HeaderName::from_bytes(name.as_bytes()))
            .transpose()
            .context("dedup.webhook_id_header")?,
    }))
}

async fn bind(address: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("{setting}: cannot listen on {address}"))
}

/// Drains recorded histogram samples into their buckets, so that memory stays flat
/// between scrapes.
async fn metrics_upkeep(shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(METRICS_UPKEEP_PERIOD);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => crate::telemetry::metrics_handle().run_upkeep(),
        }
    }
}

async fn evict_idle_addresses(ingest: Arc<Ingest>, shutdown: tokio_util::sync::CancellationToken) {
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
