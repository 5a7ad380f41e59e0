//! The in-memory window of the embedded store: one set of fingerprints per time
//! bucket, oldest first, at most `dedup.max_entries` ids in all (when full, the oldest
//! bucket goes first and the `intake_dedup_window_seconds` gauge shows how much
//! history is left). Rebuilt at start-up from the log segments, so that a restart
//! does not forget. Owned by the sink's writer: no lock.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::path::Path;

use super::{fingerprint, unix_now, Buckets, Fingerprint, FingerprintHasher, KeySet};
use crate::sink::envelope::EnvelopeHead;

/// Remembered ids on this node.
pub struct MemoryWindow {
    /// Keys fingerprints per process, so that ids ground to share low bits do not
    /// share a probe sequence.
    keys: FingerprintHasher,
    buckets: Buckets,
    max_entries: usize,
    /// (bucket, ids recorded in it), oldest first; each id as its keyed hash, which
    /// `KeySet` hashes by identity: one SipHash per id instead of one per set looked
    /// in (eight in a full window).
    sets: VecDeque<(u64, KeySet)>,
    entries: usize,
    /// The newest bucket the cap dropped, if any.
    dropped_through: Option<u64>,
}

impl MemoryWindow {
    /// An empty window.
    pub fn new(buckets: Buckets, max_entries: usize) -> Self {
        Self {
            keys: FingerprintHasher::default(),
            buckets,
            max_entries,
            sets: VecDeque::new(),
            entries: 0,
            dropped_through: None,
        }
    }

    /// The keyed hash `fingerprint` is kept under.
    pub fn key(&self, fingerprint: Fingerprint) -> u64 {
        self.keys.hash_one(fingerprint)
    }

    /// Which of `fingerprints` are remembered at `now`.
    pub fn check(&mut self, fingerprints: &[Fingerprint], now: u64) -> Vec<bool> {
        let keys: Vec<u64> = fingerprints.iter().map(|&p| self.key(p)).collect();
        self.check_keys(&keys, now)
    }

    /// Which of the fingerprints keyed as `keys` (see `key`) are remembered at `now`.
    pub fn check_keys(&mut self, keys: &[u64], now: u64) -> Vec<bool> {
        self.expire(now);
        keys.iter()
            .map(|key| self.sets.iter().any(|(_, set)| set.contains(key)))
            .collect()
    }

    /// Remembers `fingerprints` as recorded at `now`.
    pub fn record(&mut self, fingerprints: &[Fingerprint], now: u64) {
        let keys: Vec<u64> = fingerprints.iter().map(|&p| self.key(p)).collect();
        self.record_keys(&keys, now);
    }

    /// Remembers the fingerprints keyed as `keys` (see `key`) as recorded at `now`.
    pub fn record_keys(&mut self, keys: &[u64], now: u64) {
        self.record_at(keys.iter().copied(), now);
        self.expire(now);
        self.publish(now);
    }

    fn record_at(&mut self, keys: impl Iterator<Item = u64>, at: u64) {
        let bucket = self.buckets.at(at);
        let position = match self.sets.iter().rposition(|(b, _)| *b <= bucket) {
            Some(i) if self.sets[i].0 == bucket => i,
            Some(i) => {
                self.sets.insert(i + 1, (bucket, KeySet::default()));
                i + 1
            }
            None => {
                self.sets.push_front((bucket, KeySet::default()));
                0
            }
        };
        let set = &mut self.sets[position].1;
        for key in keys {
            if set.insert(key) {
                self.entries += 1;
            }
        }
        while self.entries > self.max_entries {
            let Some((bucket, oldest)) = self.sets.pop_front() else {
                break;
            };
            self.entries -= oldest.len();
            self.dropped_through = Some(bucket);
        }
    }

    fn expire(&mut self, now: u64) {
        let oldest_live = self.buckets.oldest_live(now);
        while self.sets.front().is_some_and(|(b, _)| *b < oldest_live) {
            if let Some((_, set)) = self.sets.pop_front() {
                self.entries -= set.len();
            }
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Bytes the sets hold (8 per slot plus one control byte, over their capacity).
    pub fn heap_bytes(&self) -> usize {
        self.sets
            .iter()
            .map(|(_, set)| set.capacity() * (std::mem::size_of::<u64>() + 1))
            .sum()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Seconds of history held: the whole window, or less once the cap dropped
    /// buckets that were still inside it.
    pub fn effective_window_secs(&self, now: u64) -> u64 {
        let window = self.buckets.window_secs();
        match self.dropped_through {
            Some(dropped) if dropped >= self.buckets.oldest_live(now) => now
                .saturating_sub(self.buckets.start_of(dropped + 1))
                .min(window),
            _ => window,
        }
    }

    fn publish(&self, now: u64) {
        crate::telemetry::record_dedup_window(self.entries, self.effective_window_secs(now));
    }

    /// Fills the window from the log's segments in `dir`: the ids of every envelope
    /// received within the window, in the bucket of its `receivedAt`. Segments last
    /// written before the window began are not read, and the newest are read first
    /// until the window is full, so a start reads at most what the window can hold.
    pub fn rebuild_from_log(&mut self, dir: &Path) -> std::io::Result<usize> {
        let now = unix_now();
        let since = now.saturating_sub(self.buckets.window_secs());
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".ndjson"))
            .filter(|entry| {
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                let secs = modified
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(u64::MAX, |d| d.as_secs());
                secs >= since
            })
            .map(|entry| entry.path())
            .collect();
        files.sort_by(|a, b| b.cmp(a));
        let mut loaded = 0;
        for file in files {
            if self.entries >= self.max_entries {
                break;
            }
            let text = std::fs::read(&file)?;
            for line in text.split(|&b| b == b'\n') {
                let Ok(head) = serde_json::from_slice::<EnvelopeHead>(line) else {
                    continue;
                };
                let received = head
                    .received_at
                    .as_deref()
                    .and_then(crate::clock::parse_iso8601)
                    .map_or(0, |t| t.unix_timestamp().max(0) as u64);
                if received < since {
                    continue;
                }
                if let Some(id) = head.message_id() {
                    let key = self.key(fingerprint(head.connection_id, id));
                    self.record_at(std::iter::once(key), received.min(now));
                    loaded += 1;
                }
            }
        }
        self.expire(now);
        self.publish(now);
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_expire_with_their_bucket() {
        let mut window = MemoryWindow::new(Buckets::new(80).unwrap(), 100);
        window.record(&[1, 2], 1000);
        assert_eq!(window.check(&[1, 3], 1050), [true, false]);
        assert_eq!(window.check(&[1], 1000 + 80), [true]);
        assert_eq!(window.check(&[1], 1000 + 80 + 10 + 1), [false]);
        assert!(window.is_empty());
    }

    #[test]
    fn a_full_window_drops_its_oldest_bucket_and_says_so() {
        let mut window = MemoryWindow::new(Buckets::new(80).unwrap(), 3);
        window.record(&[1, 2], 1000);
        assert_eq!(window.effective_window_secs(1030), 80);
        window.record(&[3, 4], 1030);
        assert_eq!(window.len(), 2);
        assert_eq!(window.check(&[1, 3], 1030), [false, true]);
        assert_eq!(window.effective_window_secs(1035), 25);
    }

    #[test]
    fn the_window_is_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::clock::format_millis(crate::clock::now());
        let old = "2001-01-01T00:00:00.000Z";
        let lines = format!(
            "{{\"workspaceId\":1,\"connectionId\":5,\"receivedAt\":\"{now}\",\"kind\":\"sdk\",\"event\":{{\"messageId\":\"a\"}}}}\n\
             {{\"workspaceId\":1,\"connectionId\":5,\"receivedAt\":\"{now}\",\"kind\":\"webhook\",\"messageId\":\"w\",\"event\":{{}}}}\n\
             {{\"workspaceId\":1,\"connectionId\":5,\"receivedAt\":\"{old}\",\"kind\":\"sdk\",\"event\":{{\"messageId\":\"b\"}}}}\n\
             {{\"torn"
        );
        std::fs::write(dir.path().join("00000000000000000001.ndjson"), lines).unwrap();
        let mut window = MemoryWindow::new(Buckets::new(3600).unwrap(), 100);
        assert_eq!(window.rebuild_from_log(dir.path()).unwrap(), 2);
        let asked = [
            fingerprint(5, "a"),
            fingerprint(5, "w"),
            fingerprint(5, "b"),
        ];
        assert_eq!(window.check(&asked, unix_now()), [true, true, false]);
    }

    #[test]
    fn a_full_window_stops_the_rebuild_at_the_newest_segments() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::clock::format_millis(crate::clock::now());
        for (n, id) in [(1, "old"), (2, "new")] {
            let line = format!(
                "{{\"workspaceId\":1,\"connectionId\":5,\"receivedAt\":\"{now}\",\"kind\":\"sdk\",\"event\":{{\"messageId\":\"{id}\"}}}}\n"
            );
            std::fs::write(dir.path().join(format!("{n:020}.ndjson")), line).unwrap();
        }
        let mut window = MemoryWindow::new(Buckets::new(3600).unwrap(), 1);
        assert_eq!(window.rebuild_from_log(dir.path()).unwrap(), 1);
        let asked = [fingerprint(5, "new"), fingerprint(5, "old")];
        assert_eq!(window.check(&asked, unix_now()), [true, false]);
    }
}
