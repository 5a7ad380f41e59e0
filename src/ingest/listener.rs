//! The ingest listener's connections: accepting within the connection cap, telling
//! HTTP/1.1 from HTTP/2 (prior knowledge) by the first bytes, and bounding how long any
//! connection may hold its slot — a request head that never completes (header
//! timeout), an answer the client never reads (send timeout), an HTTP/2 connection with
//! no request in flight (idle timeout), any connection past its maximum age — so that
//! no client, with or without a key, can keep slots or answer buffers for long.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{handle, Ingest};

/// Streams one HTTP/2 connection may have open at once.
const H2_MAX_STREAMS: u32 = 64;
/// Bytes a client may send on one HTTP/2 stream, and on the whole connection, before
/// intake has read them: what one connection can park in memory uninvited.
const H2_STREAM_WINDOW: u32 = 64 * 1024;
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// Answer bytes buffered per HTTP/2 stream while the client's window is closed.
const H2_SEND_BUFFER: usize = 64 * 1024;

/// Limits applied to every ingest connection.
pub struct ConnectionLimits {
    /// Time allowed to send a request's headers; also bounds an idle HTTP/1 keep-alive
    /// wait and a client that connects and sends nothing.
    pub header_timeout: Duration,
    /// Open connections at most; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Largest request head (HTTP/1) or header list (HTTP/2).
    pub max_header_bytes: usize,
    /// Longest a write of an answer may wait for the client to read; past it the
    /// connection is closed, freeing the answer and the slot.
    pub send_timeout: Duration,
    /// An HTTP/2 connection with no request in flight for this long is sent GOAWAY.
    pub idle_timeout: Duration,
    /// A connection older than this is asked to close (GOAWAY, or `Connection: close`
    /// after the request in flight), so long-lived clients reconnect and spread.
    pub max_age: Duration,
}

/// Serves connections from `listener` (HTTP/1.1, and HTTP/2 with prior knowledge)
/// until `shutdown`, then lets in-flight requests finish (bounded by `grace`).
pub async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let builders = Arc::new(Builders::new(&ingest.limits));
    let slots = Arc::new(Semaphore::new(ingest.limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "ingest accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            ingest: ingest.clone(),
            builders: builders.clone(),
            peer,
            shutdown: shutdown.clone(),
            grace,
        };
        connections.spawn(async move {
            connection.run(stream).await;
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("ingest connections still open after the grace period");
    }
}

/// The protocol builders, configured once.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    limits: Limits,
}

/// The timing limits a connection applies itself.
#[derive(Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    send_timeout: Duration,
    idle_timeout: Duration,
    max_age: Duration,
}

impl Builders {
    fn new(limits: &ConnectionLimits) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(limits.max_header_bytes as u32)
            .max_concurrent_streams(H2_MAX_STREAMS)
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONNECTION_WINDOW)
            .max_send_buf_size(H2_SEND_BUFFER)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(10));
        Self {
            http1,
            http2,
            limits: Limits {
                header_timeout: limits.header_timeout,
                send_timeout: limits.send_timeout,
                idle_timeout: limits.idle_timeout,
                max_age: limits.max_age,
            },
        }
    }
}

/// What a connection is told apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One accepted connection.
struct Connection {
    ingest: Arc<Ingest>,
    builders: Arc<Builders>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    grace: Duration,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let limits = self.builders.limits;
        // The protocol is told from the first bytes, within the header timeout, so
        // that a client sending nothing holds its slot no longer than a slow one.
        let Some(protocol) = detect_protocol(&stream, limits.header_timeout).await else {
            return;
        };
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.send_timeout));
        let io = TokioIo::new(Box::pin(stream));
        // Per connection, so that the Arc cloned for every request is this
        // connection's, not the one all connections share (its count would bounce
        // between cores). Only HTTP/2 has an idle timeout, so only it tracks activity.
        let context = Arc::new(RequestContext {
            ingest: self.ingest.clone(),
            peer: self.peer,
            activity: (protocol == Protocol::Http2).then(Activity::new),
        });
        let service = {
            let context = context.clone();
            service_fn(move |request| {
                let context = context.clone();
                async move {
                    let _busy = context.activity.as_ref().map(Activity::begin);
                    Ok::<_, Infallible>(handle(&context.ingest, request, context.peer).await)
                }
            })
        };
        let activity = context.activity.as_ref();
        let result = match protocol {
            Protocol::Http1 => {
                let connection = self.builders.http1.serve_connection(io, service);
                self.drive(connection, activity, None).await
            }
            Protocol::Http2 => {
                let connection = self.builders.http2.serve_connection(io, service);
                self.drive(connection, activity, Some(limits.idle_timeout))
                    .await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "ingest connection ended with an error");
        }
    }

    /// Runs the connection until it ends. At shutdown, past the maximum age, or (HTTP/2)
    /// idle for `idle_timeout`, it is asked to finish gracefully; if it has not within
    /// the drain bound (the grace period at shutdown, else the send timeout), it is
    /// dropped, which closes it.
    ///
    /// The watch for those three sits in a `FuturesUnordered`, which polls it only when
    /// one of its own timers or the shutdown wakes it: the connection wakes this task on
    /// every read and write, and polling the shutdown token (a mutex) and the age timer
    /// on each of those wakes cost 2 % of the CPU under load.
    async fn drive<C>(
        &self,
        connection: C,
        activity: Option<&Activity>,
        idle_timeout: Option<Duration>,
    ) -> Result<(), C::Error>
    where
        C: GracefulConnection,
    {
        tokio::pin!(connection);
        let mut watch = FuturesUnordered::new();
        watch.push(self.drain_bound(activity, idle_timeout));
        let bound = tokio::select! {
            // The connection first: it is what wakes this task on nearly every poll.
            biased;
            result = connection.as_mut() => return result,
            Some(bound) = watch.next() => bound,
        };
        connection.as_mut().graceful_shutdown();
        tokio::time::timeout(bound, connection)
            .await
            .unwrap_or(Ok(()))
    }

    /// Waits for the reason to close the connection, and says how long it may drain:
    /// the grace period at shutdown, else the send timeout.
    async fn drain_bound(
        &self,
        activity: Option<&Activity>,
        idle_timeout: Option<Duration>,
    ) -> Duration {
        let limits = self.builders.limits;
        let idle = async {
            let (Some(activity), Some(idle)) = (activity, idle_timeout) else {
                return std::future::pending().await;
            };
            let mut check = tokio::time::interval((idle / 4).max(ONE_TICK));
            while activity.idle_for() < idle {
                check.tick().await;
            }
        };
        tokio::select! {
            _ = self.shutdown.cancelled() => self.grace,
            _ = tokio::time::sleep(limits.max_age) => limits.send_timeout,
            _ = idle => limits.send_timeout,
        }
    }
}

/// What every request of one connection shares.
struct RequestContext {
    ingest: Arc<Ingest>,
    peer: SocketAddr,
    /// HTTP/2 only: requests in flight, for the idle timeout.
    activity: Option<Activity>,
}

/// Finest idle-check period.
const ONE_TICK: Duration = Duration::from_millis(50);

/// Requests in flight on a connection and when the last one ended, for the idle timeout.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` when the connection last had no request in flight.
    quiet_since_ms: AtomicU64,
}

/// Marks a request in flight until dropped.
struct Busy<'a>(&'a Activity);

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            quiet_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self)
    }

    /// How long the connection has had no request in flight (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.quiet_since_ms.load(Ordering::Acquire));
        self.started.elapsed().saturating_sub(since)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let now = self.0.started.elapsed().as_millis() as u64;
        self.0.quiet_since_ms.store(now, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Peeks at the first bytes until they tell HTTP/2's preface from anything else;
/// `None` when the client closes or sends too little within `timeout`.
async fn detect_protocol(stream: &TcpStream, timeout: Duration) -> Option<Protocol> {
    let mut buf = [0u8; 24];
    let detect = async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if buf[..n] != H2_PREFACE[..n] {
                return Some(Protocol::Http1);
            }
            if n == H2_PREFACE.len() {
                return Some(Protocol::Http2);
            }
            // A partial preface: wait for more without spinning.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(timeout, detect).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_counts_quiet_time_only_without_requests_in_flight() {
        let activity = Activity::new();
        let busy = activity.begin();
        assert_eq!(activity.idle_for(), Duration::ZERO);
        drop(busy);
        std::thread::sleep(Duration::from_millis(20));
        assert!(activity.idle_for() >= Duration::from_millis(20));
        let _again = activity.begin();
        assert_eq!(activity.idle_for(), Duration::ZERO);
    }
}
