//! The window in Redis, shared by every node: per time bucket, the fingerprints are
//! spread over `SHARDS` sets, `intake:dedup:<bucket>:<shard>`, so that each set stays
//! small enough for Redis's compact integer-set encoding (8 bytes per id, up to
//! `set-max-intset-entries`, 512 by default, per set). Each key expires as a whole
//! when its bucket leaves the window (`EXPIREAT`), never per id. A group's lookups are
//! one script call, its records another: two round trips per group commit, never one
//! per event.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::{Buckets, Fingerprint};

/// Key prefix of the window's sets.
pub const PREFIX: &str = "intake:dedup:";
/// Sets per bucket: 65 536 × 512 ≈ 33 million ids per bucket stay in the compact
/// encoding (≈ 3 000 new ids a second with the default 24-hour window); beyond that
/// Redis turns the fullest sets into hash tables, which still work at about eight
/// times the memory (README: "Deduplication" has the measurements).
pub const SHARDS: u64 = 65_536;
/// Longest wait for Redis on the writer's path; a failure pauses the window.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The set a fingerprint goes to within a bucket.
pub fn shard(print: Fingerprint) -> u64 {
    (print as u64) % SHARDS
}

/// Lua: `seen(prefix, first, last, shard, print)`, whether `print` is in its shard of
/// one of the buckets `last` down to `first`. The one lookup of the window, shared by
/// `CHECK` and the Redis stream sink's append-once script.
macro_rules! lua_seen {
    () => {
        r"
local function seen(prefix, first, last, shard, print)
  for b = last, first, -1 do
    if redis.call('SISMEMBER', prefix .. b .. ':' .. shard, print) == 1 then
      return true
    end
  end
  return false
end
"
    };
}
pub(crate) use lua_seen;

/// Looks each `(shard, fingerprint)` pair of ARGV (from the 4th on) up in buckets
/// ARGV[3] down to ARGV[2]; answers 1 (seen) or 0 per pair.
const CHECK: &str = concat!(
    lua_seen!(),
    r"
local prefix, first, last = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local answers = {}
for i = 4, #ARGV, 2 do
  answers[#answers + 1] = seen(prefix, first, last, ARGV[i], ARGV[i + 1]) and 1 or 0
end
return answers
"
);

/// Adds each `(shard, fingerprint)` pair of ARGV (from the 4th on) to bucket ARGV[2],
/// whose sets expire at ARGV[3].
const RECORD: &str = r"
local prefix, bucket, expire_at = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV, 2 do
  local key = prefix .. bucket .. ':' .. ARGV[i]
  redis.call('SADD', key, ARGV[i + 1])
  redis.call('EXPIREAT', key, expire_at)
end
return 0
";

/// The shared window on one Redis connection.
pub struct RedisWindow {
    connection: ConnectionManager,
    buckets: Buckets,
    check: Script,
    record: Script,
}

impl RedisWindow {
    /// Connects lazily: a Redis that is down means no deduplication for a while, not
    /// a failed start.
    pub fn new(url: redis::ConnectionInfo, buckets: Buckets) -> Result<Self, redis::RedisError> {
        Ok(Self {
            connection: crate::sink::lazy_redis::connect(url, RESPONSE_TIMEOUT)?,
            buckets,
            check: Script::new(CHECK),
            record: Script::new(RECORD),
        })
    }

    /// Which of `fingerprints` are remembered at `now`.
    pub async fn check(
        &mut self,
        fingerprints: &[Fingerprint],
        now: u64,
    ) -> Result<Vec<bool>, redis::RedisError> {
        let mut call = self.check.prepare_invoke();
        call.arg(PREFIX)
            .arg(self.buckets.oldest_live(now))
            .arg(self.buckets.at(now));
        for &print in fingerprints {
            call.arg(shard(print)).arg(print);
        }
        let seen: Vec<u8> = call.invoke_async(&mut self.connection).await?;
        Ok(seen.into_iter().map(|s| s == 1).collect())
    }

    /// Remembers `fingerprints` as recorded at `now`.
    pub async fn record(
        &mut self,
        fingerprints: &[Fingerprint],
        now: u64,
    ) -> Result<(), redis::RedisError> {
        let bucket = self.buckets.at(now);
        let mut call = self.record.prepare_invoke();
        call.arg(PREFIX)
            .arg(bucket)
            .arg(self.buckets.expires_at(bucket));
        for &print in fingerprints {
            call.arg(shard(print)).arg(print);
        }
        call.invoke_async::<()>(&mut self.connection).await
    }
}
