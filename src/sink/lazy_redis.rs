//! The sink's Redis connections (the stream backend, the dedup window): connected on
//! first use and reconnected with a short backoff, so that a Redis that is down
//! means spooling, or no deduplication for a while, never a failed start.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A lazily connecting manager for `url`; `response_timeout` bounds each command.
pub(crate) fn connect(
    url: redis::ConnectionInfo,
    response_timeout: Duration,
) -> Result<ConnectionManager, redis::RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(response_timeout))
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(redis::Client::open(url)?, config)
}
