//! Keeps the key index in step with the store: subscribe first, then load in full, then
//! apply newer changes in order. A version gap, a lagging or lost feed, or the resync
//! interval triggers a full reload; the index keeps serving its last state meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::index::feed::FeedItem;
use crate::index::{ApplyOutcome, KeyIndex};
use crate::store::{Store, StoreError};
use crate::tasks::Tasks;

/// Pause before retrying a failed load, doubled up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Loads the index once (so that the node starts with every key), then keeps it in
/// step in a task under `tasks` until shutdown.
pub(crate) async fn start(
    store: Arc<dyn Store>,
    index: Arc<KeyIndex>,
    resync_every: Duration,
    tasks: &Tasks,
) -> Result<(), StoreError> {
    let feed = store.subscribe();
    let started = std::time::Instant::now();
    index.replace(store.load().await?);
    crate::telemetry::record_full_load(started.elapsed().as_secs_f64());
    tracing::info!(
        version = index.version(),
        write_keys = index.write_key_count(),
        "key index loaded"
    );
    let shutdown = tasks.shutdown();
    tasks.spawn(
        "key index sync",
        follow(store, index, feed, resync_every, shutdown),
    );
    Ok(())
}

async fn follow(
    store: Arc<dyn Store>,
    index: Arc<KeyIndex>,
    mut feed: broadcast::Receiver<FeedItem>,
    resync_every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let why = apply_until_reload(&index, &mut feed, resync_every, &shutdown).await;
        let Some(why) = why else { return };
        tracing::debug!(reason = why, "reloading the key index");
        let mut backoff = FIRST_BACKOFF;
        loop {
            feed = store.subscribe();
            let started = std::time::Instant::now();
            match store.load().await {
                Ok(snapshot) => {
                    index.replace(snapshot);
                    crate::telemetry::record_full_load(started.elapsed().as_secs_f64());
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "key index reload failed; serving the last index");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Applies changes until a reload is needed (returns why) or shutdown (returns None).
async fn apply_until_reload(
    index: &KeyIndex,
    feed: &mut broadcast::Receiver<FeedItem>,
    resync_every: Duration,
    shutdown: &CancellationToken,
) -> Option<&'static str> {
    let resync = tokio::time::sleep(resync_every);
    tokio::pin!(resync);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = &mut resync => return Some("resync interval"),
            item = feed.recv() => match item {
                Ok(FeedItem::Changes(message)) => {
                    if index.apply(&message) == ApplyOutcome::Gap {
                        return Some("version gap");
                    }
                }
                Ok(FeedItem::Resync) => return Some("feed asked for a resync"),
                Err(RecvError::Lagged(_)) => return Some("feed lagged"),
                Err(RecvError::Closed) => return None,
            },
        }
    }
}
