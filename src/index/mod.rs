//! The lock-free key index: write key → target (workspace, connection, kind) for the
//! ingest hot path, and API key digest → authorisation for the admin listener.
//!
//! It also answers, for the ingest path, which browser origins a key's connection
//! allows.
//!
//! Readers load an immutable snapshot through `ArcSwap` (no lock, no await). Writers
//! (only the sync task) build a new snapshot and swap it in. To keep a write cheap on
//! a million keys, a snapshot is a large shared `base` map plus a small `overlay` of
//! recent changes; the overlay is folded into a new base once it grows past
//! `OVERLAY_LIMIT`, so a write costs O(overlay) and, amortised, O(base / limit).

pub mod feed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::limits::{EventsRefused, KeyLimiter, Throttled};
use crate::model::{AllowedOrigin, ApiKeyAuth, EventSource, Id};
use crate::secrets::{self, ApiKeyHash, WRITE_KEY_LEN};
use feed::{Change, ChangeMessage, Snapshot};

pub use crate::model::KeyTarget;

/// Overlay size at which it is folded into the base map.
const OVERLAY_LIMIT: usize = 4096;

/// A write key as the index stores it: its 32 bytes, inline.
pub type WriteKeyBytes = [u8; WRITE_KEY_LEN];

/// The index form of a write key; `None` when it cannot be one (wrong length).
pub fn write_key_bytes(key: &str) -> Option<WriteKeyBytes> {
    key.as_bytes().try_into().ok()
}

/// What the index holds for a known key.
#[derive(Debug)]
struct KeyEntry {
    /// Where events go.
    target: KeyTarget,
    /// This key's request and events budgets, made on the key's first request; it lives and dies
    /// with the key, so unknown keys never create limiter state, idle keys cost a
    /// pointer, and memory stays bounded by the number of keys.
    limiter: OnceLock<Box<KeyLimiter>>,
}

/// The verdict on a request's write key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Known, right kind, within budget.
    Admitted(KeyTarget),
    /// Unknown or revoked.
    Unknown,
    /// A key of the other kind of connection.
    WrongSource(EventSource),
    /// Over its budget.
    Throttled(Throttled),
}

/// Whether a browser origin may send with a connection's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginVerdict {
    /// The connection names no origins: `ingest.cors_origins` decides.
    NoPolicy,
    /// The origin is one the connection allows.
    Allowed,
    /// The connection names origins, and this is not one of them.
    Refused,
}

/// How an incoming change message related to the index's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Applied; the index is now at its version.
    Applied,
    /// Already reflected; ignored.
    Stale,
    /// A version was skipped: the caller must reload in full.
    Gap,
}

/// One immutable generation of the index.
#[derive(Default)]
struct Tables {
    version: u64,
    base: Arc<HashMap<WriteKeyBytes, Arc<KeyEntry>>>,
    /// Recent changes; `None` marks a key revoked since the base was built.
    overlay: HashMap<WriteKeyBytes, Option<Arc<KeyEntry>>>,
    /// API keys are few; the whole map is copied on change.
    api_keys: Arc<HashMap<ApiKeyHash, Arc<ApiKeyAuth>>>,
    /// Allowed origins of the connections that name any (few); copied on change.
    origins: Arc<HashMap<Id, Box<[AllowedOrigin]>>>,
}

/// The shared index. Cheap to read from any thread; written by the sync task.
pub struct KeyIndex {
    tables: ArcSwap<Tables>,
    /// Serialises writers so that two builds never race; readers never touch it.
    writer: Mutex<()>,
    /// Publishes the applied version so admin writes can wait for their own change.
    version: watch::Sender<u64>,
    loaded: AtomicBool,
    /// When the index last changed or was reloaded (for the sync-lag gauge).
    updated: Mutex<Instant>,
    /// Builds each key's limiter; `None` when per-key limiting is off.
    make_limiter: Option<Box<dyn Fn() -> KeyLimiter + Send + Sync>>,
}

impl KeyIndex {
    /// An empty, not yet loaded index. `make_limiter` gives each key its budget.
    pub fn new(make_limiter: Option<Box<dyn Fn() -> KeyLimiter + Send + Sync>>) -> Self {
        Self {
            tables: ArcSwap::from_pointee(Tables::default()),
            writer: Mutex::new(()),
            version: watch::channel(0).0,
            loaded: AtomicBool::new(false),
            updated: Mutex::new(Instant::now()),
            make_limiter,
        }
    }

    /// The hot-path check of a request's key: known, allowed on this kind of route,
    /// within its budget. No lock, no allocation, no await, and no write to shared
    /// memory but the key's own budget (the target is copied out under the guard).
    pub fn admit(&self, key: &str, route: EventSource) -> Admission {
        self.with_entry(key, |entry| {
            if entry.target.source != route {
                return Admission::WrongSource(entry.target.source);
            }
            let budget = match &self.make_limiter {
                Some(make) => entry.limiter.get_or_init(|| Box::new(make())).check(),
                None => Ok(()),
            };
            match budget {
                Ok(()) => Admission::Admitted(entry.target),
                Err(throttled) => Admission::Throttled(throttled),
            }
        })
        .unwrap_or(Admission::Unknown)
    }

    /// Where a key's events go, without taking from its budget (preflights and the
    /// settings documents, which only need to know the key): no lock, no allocation.
    pub fn lookup(&self, key: &str) -> Option<KeyTarget> {
        self.with_entry(key, |entry| entry.target)
    }

    /// Takes a request's events from its key's events budget (after the body is read:
    /// the count is known only then). A key revoked meanwhile is not charged.
    pub fn charge_events(&self, key: &str, count: usize) -> Result<(), EventsRefused> {
        let Some(make) = &self.make_limiter else {
            return Ok(());
        };
        self.with_entry(key, |entry| {
            entry
                .limiter
                .get_or_init(|| Box::new(make()))
                .check_events(count)
        })
        .unwrap_or(Ok(()))
    }

    fn with_entry<R>(&self, key: &str, f: impl FnOnce(&KeyEntry) -> R) -> Option<R> {
        let bytes: &WriteKeyBytes = key.as_bytes().try_into().ok()?;
        let tables = self.tables.load();
        let entry = match tables.overlay.get(bytes) {
            Some(slot) => slot.as_deref()?,
            None => tables.base.get(bytes)?.as_ref(),
        };
        Some(f(entry))
    }

    /// Whether a request's `Origin` header value may send with `connection`'s keys:
    /// one snapshot load and a scan of that connection's few origins; no lock, no
    /// allocation, no store access.
    pub fn origin_verdict(&self, connection: Id, origin: &[u8]) -> OriginVerdict {
        let tables = self.tables.load();
        match tables.origins.get(&connection) {
            None => OriginVerdict::NoPolicy,
            Some(allowed) if allowed.iter().any(|a| a.matches(origin)) => OriginVerdict::Allowed,
            Some(_) => OriginVerdict::Refused,
        }
    }

    /// Authorisation for an API key, by the digest of the presented secret.
    pub(crate) fn api_key(&self, presented: &str) -> Option<Arc<ApiKeyAuth>> {
        if !secrets::is_api_key_shape(presented) {
            return None;
        }
        let hash = secrets::hash_api_key(presented);
        self.tables.load().api_keys.get(&hash).cloned()
    }

    /// Number of write keys the index answers for.
    pub fn write_key_count(&self) -> usize {
        let t = self.tables.load();
        let added = t
            .overlay
            .iter()
            .filter(|(k, v)| v.is_some() && !t.base.contains_key(*k));
        let removed = t
            .overlay
            .iter()
            .filter(|(k, v)| v.is_none() && t.base.contains_key(*k));
        t.base.len() + added.count() - removed.count()
    }

    /// Time since the index last changed or was reloaded.
    pub(crate) fn update_age(&self) -> Duration {
        self.updated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    fn touched(&self, version: u64) {
        *self.updated.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.version.send_replace(version);
        crate::telemetry::record_index(self.write_key_count(), version);
    }

    /// Whether a full load has happened.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// The store version the index reflects.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Waits until the index reflects `version`; false on timeout.
    pub(crate) async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        let mut rx = self.version.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|v| *v >= version))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Replaces everything with a full snapshot.
    pub fn replace(&self, snapshot: Snapshot) {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut base = HashMap::with_capacity(snapshot.write_keys.len());
        for (key, target) in snapshot.write_keys {
            base.insert(key, entry(target));
        }
        let api_keys = snapshot
            .api_keys
            .into_iter()
            .filter_map(|a| Some((secrets::hash_from_hex(&a.hash)?, Arc::new(a))))
            .collect();
        let origins = snapshot
            .origins
            .into_iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(id, list)| (id, list.into_boxed_slice()))
            .collect();
        self.tables.store(Arc::new(Tables {
            version: snapshot.version,
            base: Arc::new(base),
            overlay: HashMap::new(),
            api_keys: Arc::new(api_keys),
            origins: Arc::new(origins),
        }));
        self.loaded.store(true, Ordering::Release);
        self.touched(snapshot.version);
    }

    /// Applies one mutation's changes if it is the next version.
    pub fn apply(&self, message: &ChangeMessage) -> ApplyOutcome {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.tables.load_full();
        if message.version <= current.version {
            return ApplyOutcome::Stale;
        }
        if message.version != current.version + 1 {
            return ApplyOutcome::Gap;
        }
        let mut overlay = current.overlay.clone();
        let mut api_keys = None;
        let mut origins = None;
        for change in &message.changes {
            match change {
                Change::WriteKeyAdded { key, target } => {
                    if let Ok(bytes) = WriteKeyBytes::try_from(key.as_bytes()) {
                        overlay.insert(bytes, Some(entry(*target)));
                    }
                }
                Change::WriteKeyRevoked { key } => {
                    if let Ok(bytes) = WriteKeyBytes::try_from(key.as_bytes()) {
                        overlay.insert(bytes, None);
                    }
                }
                Change::ApiKeyPut { auth } => {
                    if let Some(hash) = secrets::hash_from_hex(&auth.hash) {
                        let map = api_keys.get_or_insert_with(|| (*current.api_keys).clone());
                        map.insert(hash, Arc::new(auth.clone()));
                    }
                }
                Change::ApiKeyRevoked { hash } => {
                    if let Some(hash) = secrets::hash_from_hex(hash) {
                        let map = api_keys.get_or_insert_with(|| (*current.api_keys).clone());
                        map.remove(&hash);
                    }
                }
                Change::OriginsSet {
                    connection_id,
                    origins: list,
                } => {
                    let map = origins.get_or_insert_with(|| (*current.origins).clone());
                    if list.is_empty() {
                        map.remove(connection_id);
                    } else {
                        map.insert(*connection_id, list.clone().into_boxed_slice());
                    }
                }
            }
        }
        let (base, overlay) = if overlay.len() > OVERLAY_LIMIT {
            (Arc::new(fold(&current.base, overlay)), HashMap::new())
        } else {
            (current.base.clone(), overlay)
        };
        self.tables.store(Arc::new(Tables {
            version: message.version,
            base,
            overlay,
            api_keys: api_keys
                .map(Arc::new)
                .unwrap_or_else(|| current.api_keys.clone()),
            origins: origins
                .map(Arc::new)
                .unwrap_or_else(|| current.origins.clone()),
        }));
        self.touched(message.version);
        ApplyOutcome::Applied
    }
}

fn entry(target: KeyTarget) -> Arc<KeyEntry> {
    Arc::new(KeyEntry {
        target,
        limiter: OnceLock::new(),
    })
}

/// A new base map: the old one with the overlay's additions and removals.
fn fold(
    base: &HashMap<WriteKeyBytes, Arc<KeyEntry>>,
    overlay: HashMap<WriteKeyBytes, Option<Arc<KeyEntry>>>,
) -> HashMap<WriteKeyBytes, Arc<KeyEntry>> {
    let mut next = base.clone();
    for (key, slot) in overlay {
        match slot {
            Some(entry) => next.insert(key, entry),
            None => next.remove(&key),
        };
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(connection_id: Id) -> KeyTarget {
        KeyTarget {
            workspace_id: 1,
            connection_id,
            source: EventSource::Sdk,
        }
    }

    fn key(n: usize) -> String {
        format!("{n:032}")
    }

    /// What the hot path sees for a key (limits off).
    fn lookup(index: &KeyIndex, key: &str) -> Option<KeyTarget> {
        match index.admit(key, EventSource::Sdk) {
            Admission::Admitted(target) => Some(target),
            _ => None,
        }
    }

    fn added(version: u64, n: usize) -> ChangeMessage {
        ChangeMessage {
            version,
            changes: vec![Change::WriteKeyAdded {
                key: key(n),
                target: target(n as Id),
            }],
        }
    }

    #[test]
    fn lookup_sees_snapshot_then_changes() {
        let index = KeyIndex::new(None);
        assert!(!index.is_loaded());
        index.replace(Snapshot {
            version: 5,
            write_keys: vec![(write_key_bytes(&key(1)).unwrap(), target(1))],
            ..Snapshot::default()
        });
        assert!(index.is_loaded());
        assert_eq!(lookup(&index, &key(1)).unwrap(), target(1));
        assert!(lookup(&index, &key(2)).is_none());
        assert!(lookup(&index, "short").is_none());

        assert_eq!(index.apply(&added(6, 2)), ApplyOutcome::Applied);
        assert_eq!(lookup(&index, &key(2)).unwrap(), target(2));
        let revoke = ChangeMessage {
            version: 7,
            changes: vec![Change::WriteKeyRevoked { key: key(1) }],
        };
        assert_eq!(index.apply(&revoke), ApplyOutcome::Applied);
        assert!(lookup(&index, &key(1)).is_none());
        assert_eq!(index.write_key_count(), 1);
        assert_eq!(index.version(), 7);
    }

    #[test]
    fn stale_and_gapped_messages_are_told_apart() {
        let index = KeyIndex::new(None);
        index.replace(Snapshot {
            version: 10,
            ..Snapshot::default()
        });
        assert_eq!(index.apply(&added(10, 1)), ApplyOutcome::Stale);
        assert_eq!(index.apply(&added(12, 1)), ApplyOutcome::Gap);
        assert!(lookup(&index, &key(1)).is_none());
    }

    #[test]
    fn overlay_folds_into_base_without_losing_keys() {
        let index = KeyIndex::new(None);
        index.replace(Snapshot::default());
        for n in 0..OVERLAY_LIMIT + 10 {
            assert_eq!(index.apply(&added(n as u64 + 1, n)), ApplyOutcome::Applied);
        }
        assert_eq!(index.write_key_count(), OVERLAY_LIMIT + 10);
        for n in [0, OVERLAY_LIMIT / 2, OVERLAY_LIMIT + 9] {
            assert!(lookup(&index, &key(n)).is_some(), "{n}");
        }
    }

    #[test]
    fn api_keys_are_found_by_digest_only() {
        let secret = secrets::new_api_key();
        let auth = ApiKeyAuth {
            id: "k1".into(),
            hash: secrets::hash_hex(&secrets::hash_api_key(&secret)),
            company_id: 1,
            workspace_id: None,
            whitelisted_ips: vec!["10.0.0.0/8".parse().unwrap()],
            operator: true,
        };
        let index = KeyIndex::new(None);
        index.replace(Snapshot {
            version: 1,
            api_keys: vec![auth.clone()],
            ..Snapshot::default()
        });
        let found = index.api_key(&secret).unwrap();
        assert!(found.allows("10.1.2.3".parse().unwrap()));
        assert!(found.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!found.allows("127.0.0.1".parse().unwrap()));
        assert!(index.api_key(&secrets::new_api_key()).is_none());
        let revoke = ChangeMessage {
            version: 2,
            changes: vec![Change::ApiKeyRevoked { hash: auth.hash }],
        };
        index.apply(&revoke);
        assert!(index.api_key(&secret).is_none());
    }

    #[test]
    fn origins_follow_snapshots_and_changes() {
        use OriginVerdict::{Allowed, NoPolicy, Refused};
        let origin = |text: &str| AllowedOrigin::parse(text).unwrap();
        let index = KeyIndex::new(None);
        index.replace(Snapshot {
            version: 1,
            origins: vec![(7, vec![origin("https://shop.example")]), (8, vec![])],
            ..Snapshot::default()
        });
        let verdicts = |cases: &[(Id, &str, OriginVerdict)]| {
            for (connection, text, wanted) in cases {
                let got = index.origin_verdict(*connection, text.as_bytes());
                assert_eq!(got, *wanted, "{connection} {text}");
            }
        };
        verdicts(&[
            (7, "https://shop.example", Allowed),
            (7, "https://evil.example", Refused),
            (8, "https://evil.example", NoPolicy),
        ]);
        let set = |version, connection_id, origins| ChangeMessage {
            version,
            changes: vec![Change::OriginsSet {
                connection_id,
                origins,
            }],
        };
        index.apply(&set(2, 8, vec![origin("https://*.shop.example")]));
        verdicts(&[
            (8, "https://www.shop.example", Allowed),
            (8, "https://shop.example", Refused),
        ]);
        index.apply(&set(3, 7, vec![]));
        verdicts(&[
            (7, "https://evil.example", NoPolicy),
            (8, "https://a.shop.example", Allowed),
        ]);
    }

    #[tokio::test]
    async fn waiting_for_a_version_returns_once_applied() {
        let index = Arc::new(KeyIndex::new(None));
        index.replace(Snapshot::default());
        let waiter = {
            let index = index.clone();
            tokio::spawn(async move { index.wait_for_version(1, Duration::from_secs(5)).await })
        };
        index.apply(&added(1, 1));
        assert!(waiter.await.unwrap());
        assert!(!index.wait_for_version(2, Duration::from_millis(10)).await);
    }
}
