//! The admin API suite (SPEC §4), run on both stores: every test here runs once on the
//! embedded store and once on a Redis store of its own, and must pass on both.

use std::ops::Deref;

use intake::config::{Config, StoreBackend};

use crate::redis_server::RedisServer;
use crate::support::TestApp;

/// Generates, for each suite function `f(Store)`, a test on each store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(crate::admin::Store::Embedded).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(crate::admin::Store::Redis).await
                }
            )*
        }
    };
}

mod access;
mod api_keys;
mod connections;
mod origins;
mod paging;
mod workspaces;
mod write_keys;

#[derive(Clone, Copy, Debug)]
pub enum Store {
    Embedded,
    Redis,
}

/// An app on one store (with its redis-server, for the Redis store).
pub struct Node {
    app: TestApp,
    _redis: Option<RedisServer>,
}

impl Deref for Node {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub async fn start(store: Store) -> Node {
    start_with(store, |_| {}).await
}

pub async fn start_with(store: Store, adjust: impl FnOnce(&mut Config)) -> Node {
    match store {
        Store::Embedded => Node {
            app: TestApp::start_with(adjust).await,
            _redis: None,
        },
        Store::Redis => {
            let redis = RedisServer::start().await;
            let url = redis.url();
            let app = TestApp::start_with(move |c| {
                c.store.backend = StoreBackend::Redis;
                c.store.redis_url = url;
                adjust(c);
            })
            .await;
            Node {
                app,
                _redis: Some(redis),
            }
        }
    }
}
