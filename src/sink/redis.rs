//! The Redis stream backend: `XADD <stream> * data <envelope>`, one round trip for a
//! whole group of requests, acknowledged as a whole. With deduplication on, the group
//! is one script that, per envelope, looks its messageId up in the shared window
//! (`dedup::redis` layout), appends it only if unseen and records it in the same
//! step: atomic in Redis, so the stream receives each messageId once per window,
//! whichever node a copy arrives on. Spool replays go through the same script. The
//! spool, its replay and the probe live in `spooled`.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::dedup::{self, fingerprint, Buckets};
use super::envelope::EnvelopeHead;
use super::spooled::{Backend, BackendError};
use super::{Batch, Written};

/// Longest wait for Redis to answer one command or pipeline.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// ARGV: stream, window prefix, oldest live bucket, current bucket, its expiry, then
/// per envelope (shard, fingerprint, line); an empty shard means "not deduplicated".
/// Answers how many envelopes were duplicates, per envelope in order (1 or 0).
const APPEND_ONCE: &str = concat!(
    dedup::redis::lua_seen!(),
    r"
local stream, prefix = ARGV[1], ARGV[2]
local first, last, expire_at = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local current = tonumber(last)
local dropped = {}
for i = 6, #ARGV, 3 do
  local shard, print = ARGV[i], ARGV[i + 1]
  local duplicate = shard ~= '' and seen(prefix, first, current, shard, print)
  if not duplicate then
    redis.call('XADD', stream, '*', 'data', ARGV[i + 2])
    if shard ~= '' then
      local key = prefix .. last .. ':' .. shard
      redis.call('SADD', key, print)
      redis.call('EXPIREAT', key, expire_at)
    end
  end
  dropped[#dropped + 1] = duplicate and 1 or 0
end
return dropped
"
);

/// A shared connection to the stream's Redis.
#[derive(Clone)]
pub struct RedisBackend {
    connection: ConnectionManager,
    stream: String,
    /// `None`: deduplication off.
    window: Option<Buckets>,
    append_once: Script,
}

/// One envelope as the script takes it.
struct Item<'a> {
    print: Option<dedup::Fingerprint>,
    line: &'a [u8],
}

impl RedisBackend {
    /// Connects lazily: a Redis that is down at start-up means spooling, not failing.
    pub fn new(
        url: redis::ConnectionInfo,
        stream: &str,
        window: Option<Buckets>,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self {
            connection: super::lazy_redis::connect(url, RESPONSE_TIMEOUT)?,
            stream: stream.to_string(),
            window,
            append_once: Script::new(APPEND_ONCE),
        })
    }

    /// One pipeline of `XADD`s, acknowledged as a whole.
    async fn xadd<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), BackendError> {
        let mut pipe = redis::pipe();
        for line in lines {
            pipe.cmd("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("data")
                .arg(line)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection).await?;
        Ok(())
    }

    /// The script over `items`; per item, whether it was a duplicate.
    async fn append_once(
        &mut self,
        buckets: Buckets,
        items: &[Item<'_>],
    ) -> Result<Vec<bool>, BackendError> {
        let now = dedup::unix_now();
        let current = buckets.at(now);
        let mut call = self.append_once.prepare_invoke();
        call.arg(&self.stream)
            .arg(dedup::redis::PREFIX)
            .arg(buckets.oldest_live(now))
            .arg(current)
            .arg(buckets.expires_at(current));
        for item in items {
            match item.print {
                Some(print) => call.arg(dedup::redis::shard(print)).arg(print),
                None => call.arg("").arg(""),
            };
            call.arg(item.line);
        }
        let dropped: Vec<u8> = call.invoke_async(&mut self.connection).await?;
        Ok(dropped.into_iter().map(|d| d == 1).collect())
    }
}

impl Backend for RedisBackend {
    const NAME: &'static str = "Redis";

    fn deduplicates(&self) -> bool {
        self.window.is_some()
    }

    async fn send(&mut self, batches: &[&Batch]) -> Result<Vec<Written>, BackendError> {
        let Some(buckets) = self.window else {
            let lines = batches.iter().flat_map(|b| b.entries()).map(|e| e.line);
            self.xadd(lines).await?;
            return Ok(vec![Written::default(); batches.len()]);
        };
        let items: Vec<Item<'_>> = batches
            .iter()
            .flat_map(|batch| {
                dedup::fingerprints(batch)
                    .zip(batch.entries())
                    .map(|(print, e)| Item {
                        print,
                        line: e.line,
                    })
            })
            .collect();
        let mut dropped = self.append_once(buckets, &items).await?.into_iter();
        Ok(batches
            .iter()
            .map(|batch| Written {
                duplicates: dropped.by_ref().take(batch.len()).filter(|&d| d).count(),
            })
            .collect())
    }

    async fn replay(&mut self, lines: &[&[u8]]) -> Result<(), BackendError> {
        let Some(buckets) = self.window else {
            return self.xadd(lines.iter().copied()).await;
        };
        let items: Vec<Item<'_>> = lines
            .iter()
            .map(|&line| {
                let head = serde_json::from_slice::<EnvelopeHead>(line).ok();
                let print = head.and_then(|h| Some(fingerprint(h.connection_id, h.message_id()?)));
                Item { print, line }
            })
            .collect();
        self.append_once(buckets, &items).await.map(drop)
    }

    async fn probe(&mut self) -> Result<(), BackendError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection)
            .await?;
        Ok(())
    }
}
