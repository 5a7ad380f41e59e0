//! Follows `intake:changes`: forwards each message to the index's sync task, and after
//! a lost subscription (Redis restarted, network cut) resubscribes with backoff and
//! asks for a full reload, since pub/sub keeps no history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::CHANNEL;
use crate::store::feed::{ChangeMessage, FeedItem};
use crate::store::StoreError;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Subscribes now (so that a load made after this returns misses nothing), then
/// follows the channel in a background task.
pub async fn start(
    client: redis::Client,
    feed: broadcast::Sender<FeedItem>,
    subscribed: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    let first = subscribe(&client).await?;
    subscribed.store(true, Ordering::Relaxed);
    tokio::spawn(follow(client, first, feed, subscribed));
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
        .map_err(StoreError::redis)
}

async fn follow(
    client: redis::Client,
    first: redis::aio::PubSub,
    feed: broadcast::Sender<FeedItem>,
    subscribed: Arc<AtomicBool>,
) {
    let mut pubsub = first;
    loop {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let item = message
                .get_payload::<String>()
                .ok()
                .and_then(|text| serde_json::from_str::<ChangeMessage>(&text).ok())
                .map_or(FeedItem::Resync, |m| FeedItem::Changes(Arc::new(m)));
            // No receiver yet (start-up) or any more (shutdown) is fine: the index
            // loads in full when it starts following.
            let _ = feed.send(item);
        }
        subscribed.store(false, Ordering::Relaxed);
        tracing::warn!("lost the Redis change feed; resubscribing");
        let mut backoff = FIRST_BACKOFF;
        pubsub = loop {
            match subscribe(&client).await {
                Ok(pubsub) => break pubsub,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        subscribed.store(true, Ordering::Relaxed);
        tracing::info!("Redis change feed back; reloading the key index");
        let _ = feed.send(FeedItem::Resync);
    }
}
