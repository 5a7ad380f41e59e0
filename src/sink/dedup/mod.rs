//! messageId deduplication: an event whose id was already stored for the same
//! connection within `dedup.window_secs` is acknowledged but not stored again.
//!
//! The window sits in the sink's single writer, which sees every group commit in
//! order: before a group is written its ids are looked up (`Window::check`, one call
//! for the whole group), repeats inside the group are dropped too, and only once the
//! sink acknowledged the rest are their ids recorded (`Window::record`). So a write
//! that failed is never remembered, and on one node a retry can never race its
//! original. The window is in memory (`memory`, embedded store) or in Redis shared by
//! every node (`redis`); the Redis stream sink instead checks, appends and records in
//! one script (`sink::redis`), which also closes the race between nodes.
//!
//! Ids are kept as 64-bit fingerprints of (connection, messageId), in time buckets of
//! an eighth of the window: a bucket is dropped whole once it is older than the window,
//! so an id is remembered for at least `window_secs` and at most an eighth longer.

pub mod memory;
pub mod redis;

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::pace::{Backoff, LogThrottle};
use super::queue::Group;
use super::Batch;
use crate::model::Id;

/// A (connection, messageId) pair as the window stores it.
pub type Fingerprint = i64;

/// The fingerprint of `message_id` on `connection_id`: the first 8 bytes of a SHA-256,
/// stable across versions and nodes (they share the Redis window).
pub fn fingerprint(connection_id: Id, message_id: &str) -> Fingerprint {
    let digest = Sha256::new()
        .chain_update(connection_id.to_le_bytes())
        .chain_update(message_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// Each envelope's fingerprint, in order; `None` for an id intake made up (never a
/// duplicate, never remembered). Those the request's task computed already
/// (`Batch::fingerprint`) are read back, not computed again.
pub fn fingerprints(batch: &Batch) -> impl Iterator<Item = Option<Fingerprint>> + '_ {
    let computed = batch.computed_fingerprints();
    batch
        .entries()
        .enumerate()
        .map(move |(i, e)| match computed {
            Some(prints) => prints[i],
            None => e
                .sender_id
                .then(|| fingerprint(batch.connection_id, e.message_id)),
        })
}

/// Keys fingerprints in the window's hash sets. Keyed per process (SipHash), not the
/// fingerprint itself: a sender who grinds messageIds whose fingerprints share their
/// low bits must not be able to pile them into one probe sequence.
pub type FingerprintHasher = std::hash::RandomState;

/// A set of fingerprints' keyed hashes, hashed by identity: each id is SipHashed once
/// per group, whatever looks it up (the group's own repeats, the in-memory buckets).
pub type KeySet = HashSet<u64, BuildHasherDefault<KeyIsHash>>;

/// A hasher for keys that already are keyed hashes.
#[derive(Default)]
pub struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// Buckets per window: more means a tighter upper bound on how long an id stays,
/// fewer means fewer sets to look in.
const BUCKETS_PER_WINDOW: u64 = 8;

/// The window cut into time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    window_secs: u64,
    bucket_secs: u64,
}

impl Buckets {
    /// `None` when the window is 0 (deduplication off).
    pub fn new(window_secs: u64) -> Option<Self> {
        (window_secs > 0).then(|| Self {
            window_secs,
            bucket_secs: window_secs.div_ceil(BUCKETS_PER_WINDOW),
        })
    }

    /// The window's length.
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// The bucket a record made at `unix_secs` goes to.
    pub fn at(&self, unix_secs: u64) -> u64 {
        unix_secs / self.bucket_secs
    }

    /// The oldest bucket still inside the window at `now`.
    pub fn oldest_live(&self, now: u64) -> u64 {
        self.at(now.saturating_sub(self.window_secs))
    }

    /// When a bucket has left the window (a Redis `EXPIREAT`).
    pub fn expires_at(&self, bucket: u64) -> u64 {
        (bucket.saturating_add(1))
            .saturating_mul(self.bucket_secs)
            .saturating_add(self.window_secs)
    }

    /// When a bucket began.
    pub fn start_of(&self, bucket: u64) -> u64 {
        bucket.saturating_mul(self.bucket_secs)
    }
}

/// Seconds since the Unix epoch, as buckets count them.
pub fn unix_now() -> u64 {
    crate::clock::now().unix_timestamp().max(0) as u64
}

/// Where remembered ids live.
pub enum Store {
    /// On this node (embedded store).
    Memory(memory::MemoryWindow),
    /// In Redis, shared by every node.
    Redis(redis::RedisWindow),
}

/// A window and how its failures are paced: while the Redis window fails, lookups are
/// skipped (events are stored, at least once) and retried with backoff, so that a
/// Redis outage never slows the sink.
pub struct Window {
    store: Store,
    /// Keys fingerprints for the Redis store's group screening (the in-memory store
    /// keys them itself, as its sets hold the keys).
    keys: FingerprintHasher,
    skip_until: Option<std::time::Instant>,
    backoff: Backoff,
    log: LogThrottle,
}

/// Longest pause of the window after a Redis failure.
const PAUSE_FIRST: Duration = Duration::from_millis(200);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// What `Window::screen` decided for a group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Screened {
    /// Per batch: envelopes dropped as duplicates.
    pub duplicates: Vec<usize>,
    /// Fingerprints of the envelopes kept, to record once they are stored.
    pub kept: Vec<Fingerprint>,
    /// Their keyed hashes, in the same order (what the in-memory window records).
    kept_keys: Vec<u64>,
}

/// Screens a writer's group before it is stored; with deduplication off
/// (`window` is `None`) nothing is dropped.
pub async fn screen_group(window: Option<&mut Window>, group: &mut Group) -> Screened {
    match window {
        Some(window) => {
            let mut batches: Vec<&mut Batch> = group.writes.iter_mut().map(|(b, _)| b).collect();
            window.screen(&mut batches).await
        }
        None => Screened::default(),
    }
}

impl Screened {
    /// Receipts for `batches` batches: their duplicates, or none when nothing was
    /// screened.
    pub fn receipts(&self, batches: usize) -> Vec<super::Written> {
        (0..batches)
            .map(|i| super::Written {
                duplicates: self.duplicates.get(i).copied().unwrap_or(0),
            })
            .collect()
    }
}

impl Window {
    /// A window over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            keys: FingerprintHasher::default(),
            skip_until: None,
            backoff: Backoff::new(PAUSE_FIRST, PAUSE_MAX),
            log: LogThrottle::new(Duration::from_secs(10)),
        }
    }

    /// Drops from `batches` every envelope whose id is remembered, and every repeat of
    /// an id within them (the first copy stays).
    pub async fn screen(&mut self, batches: &mut [&mut Batch]) -> Screened {
        let prints: Vec<Option<Fingerprint>> = batches
            .iter()
            .flat_map(|batch| fingerprints(batch))
            .collect();
        let asked: Vec<Fingerprint> = prints.iter().flatten().copied().collect();
        let keys: Vec<u64> = asked.iter().map(|&print| self.key(print)).collect();
        let mut seen = self.check(&asked, &keys).await.into_iter();
        let mut asked_keys = keys.iter().copied();
        let mut in_group = KeySet::with_capacity_and_hasher(keys.len(), Default::default());
        let mut screened = Screened::default();
        let mut prints = prints.into_iter();
        for batch in batches.iter_mut() {
            let mut keep = Vec::with_capacity(batch.len());
            for print in prints.by_ref().take(batch.len()) {
                let Some(print) = print else {
                    keep.push(true);
                    continue;
                };
                let key = asked_keys.next().unwrap_or_default();
                let fresh = !seen.next().unwrap_or(false) && in_group.insert(key);
                if fresh {
                    screened.kept.push(print);
                    screened.kept_keys.push(key);
                }
                keep.push(fresh);
            }
            screened
                .duplicates
                .push(keep.iter().filter(|&&k| !k).count());
            batch.retain(&keep);
        }
        screened
    }

    /// The keyed hash of `print` the store's sets (or the group's screening) use.
    fn key(&self, print: Fingerprint) -> u64 {
        match &self.store {
            Store::Memory(window) => window.key(print),
            Store::Redis(_) => self.keys.hash_one(print),
        }
    }

    /// Which of `fingerprints` (with their `keys`) are remembered; none while the
    /// window is paused.
    async fn check(&mut self, fingerprints: &[Fingerprint], keys: &[u64]) -> Vec<bool> {
        if fingerprints.is_empty() || self.paused() {
            return vec![false; fingerprints.len()];
        }
        let now = unix_now();
        let outcome = match &mut self.store {
            Store::Memory(window) => Ok(window.check_keys(keys, now)),
            Store::Redis(window) => window.check(fingerprints, now).await,
        };
        match outcome {
            Ok(seen) => seen,
            Err(error) => {
                self.failed(&error);
                vec![false; fingerprints.len()]
            }
        }
    }

    /// Remembers the ids `screened` kept, once the sink acknowledged them.
    pub async fn record(&mut self, screened: &Screened) {
        if screened.kept.is_empty() || self.paused() {
            return;
        }
        let now = unix_now();
        let outcome = match &mut self.store {
            Store::Memory(window) => {
                window.record_keys(&screened.kept_keys, now);
                Ok(())
            }
            Store::Redis(window) => window.record(&screened.kept, now).await,
        };
        match outcome {
            Ok(()) => {
                self.backoff.reset();
                if self.log.recovered() {
                    tracing::info!("the dedup window answers again");
                }
            }
            Err(error) => self.failed(&error),
        }
    }

    fn paused(&mut self) -> bool {
        match self.skip_until {
            Some(until) if std::time::Instant::now() < until => true,
            _ => {
                self.skip_until = None;
                false
            }
        }
    }

    fn failed(&mut self, error: &::redis::RedisError) {
        let pause = self.backoff.failed();
        self.skip_until = Some(std::time::Instant::now() + pause);
        if let Some(held_back) = self.log.allow() {
            tracing::warn!(%error, failures_not_logged = held_back,
                "the dedup window in Redis failed; storing events without deduplication until it answers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_at_least_the_window() {
        let b = Buckets::new(86_400).unwrap();
        assert_eq!(b.bucket_secs, 10_800);
        let recorded = 1_000_000;
        let bucket = b.at(recorded);
        // Still looked at one window later, gone by the time the bucket expires.
        assert!(b.oldest_live(recorded + 86_400) <= bucket);
        assert!(b.expires_at(bucket) >= recorded + 86_400);
        assert!(b.expires_at(bucket) <= recorded + 86_400 + 10_800);
        assert!(Buckets::new(0).is_none());
        assert_eq!(Buckets::new(3).unwrap().bucket_secs, 1);
        // Any configured window, however long, gives bounds instead of an overflow.
        let endless = Buckets::new(u64::MAX).unwrap();
        assert_eq!(endless.expires_at(endless.at(recorded)), u64::MAX);
    }

    #[test]
    fn fingerprints_depend_on_the_connection_and_the_id() {
        assert_eq!(fingerprint(1, "m"), fingerprint(1, "m"));
        assert_ne!(fingerprint(1, "m"), fingerprint(2, "m"));
        assert_ne!(fingerprint(1, "m"), fingerprint(1, "n"));
    }

    fn batch(ids: &[(&str, bool)]) -> Batch {
        let mut batch = Batch::new(1, 7, 64);
        for (id, sender) in ids {
            batch
                .push(id, *sender, |buf| {
                    buf.extend_from_slice(format!("{{\"id\":\"{id}\"}}").as_bytes());
                    Ok::<_, ()>(())
                })
                .unwrap();
        }
        batch
    }

    #[tokio::test]
    async fn repeats_within_a_group_and_remembered_ids_are_dropped() {
        let memory = memory::MemoryWindow::new(Buckets::new(60).unwrap(), 100);
        let mut window = Window::new(Store::Memory(memory));
        let (mut a, mut b) = (
            batch(&[("x", true), ("x", true), ("n", false)]),
            batch(&[("x", true), ("y", true)]),
        );
        let screened = window.screen(&mut [&mut a, &mut b]).await;
        assert_eq!(screened.duplicates, [1, 1]);
        assert_eq!(screened.kept, [fingerprint(7, "x"), fingerprint(7, "y")]);
        assert_eq!((a.len(), b.len()), (2, 1));
        // Nothing is remembered before `record`.
        let mut again = batch(&[("x", true)]);
        assert_eq!(window.screen(&mut [&mut again]).await.duplicates, [0]);
        window.record(&screened).await;
        let mut again = batch(&[("x", true), ("n", false)]);
        assert_eq!(window.screen(&mut [&mut again]).await.duplicates, [1]);
        assert_eq!(again.len(), 1);
    }
}
