//! Follows `intake:changes`: forwards each message to the index's sync task, and after
//! a lost subscription (Redis restarted, network cut) resubscribes with backoff and
//! asks for a full reload, since pub/sub keeps no history. A message that does not
//! parse is logged and also answered by a full reload.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{unavailable, CHANNEL};
use crate::index::feed::{ChangeMessage, FeedItem};
use crate::store::StoreError;
use crate::tasks::Tasks;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Subscribes now (so that a load made after this returns misses nothing), then
/// follows the channel in a task under `tasks`.
pub(super) async fn start(
    client: redis::Client,
    feed: broadcast::Sender<FeedItem>,
    subscribed: Arc<AtomicBool>,
    tasks: &Tasks,
) -> Result<(), StoreError> {
    let first = subscribe(&client).await?;
    subscribed.store(true, Ordering::Relaxed);
    let shutdown = tasks.shutdown();
    tasks.spawn(
        "redis change feed",
        follow(client, first, feed, subscribed, shutdown),
    );
    Ok(())
}

async fn subscribe(client: &redis::Client) -> Result<redis::aio::PubSub, StoreError> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| StoreError::Unavailable("Redis did not answer the subscription".into()))?
        .map_err(unavailable)
}

/// What a published message means for the index.
fn item_of(message: &redis::Msg) -> FeedItem {
    let parsed = message
        .get_payload::<String>()
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<ChangeMessage>(&text).map_err(|e| e.to_string()));
    match parsed {
        Ok(message) => FeedItem::Changes(Arc::new(message)),
        Err(error) => {
            tracing::warn!(%error, "unreadable message on {CHANNEL}; reloading the key index");
            FeedItem::Resync
        }
    }
}

async fn follow(
    client: redis::Client,
    first: redis::aio::PubSub,
    feed: broadcast::Sender<FeedItem>,
    subscribed: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut pubsub = first;
    loop {
        {
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = messages.next() => message,
                };
                let Some(message) = message else { break };
                // No receiver yet (start-up) or any more (shutdown) is fine: the index
                // loads in full when it starts following.
                let _ = feed.send(item_of(&message));
            }
        }
        subscribed.store(false, Ordering::Relaxed);
        tracing::warn!("lost the Redis change feed; resubscribing");
        let mut backoff = FIRST_BACKOFF;
        pubsub = loop {
            match subscribe(&client).await {
                Ok(pubsub) => break pubsub,
                Err(_) => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
                },
            }
        };
        subscribed.store(true, Ordering::Relaxed);
        tracing::info!("Redis change feed back; reloading the key index");
        let _ = feed.send(FeedItem::Resync);
    }
}
