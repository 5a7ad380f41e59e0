//! The local spool of the Redis and NATS sinks: segment files of NDJSON envelopes
//! (the log sink's format), fsynced before a spooled request is answered 200, replayed
//! oldest first once the backend is back. Every method here does blocking file I/O:
//! callers run them on `spawn_blocking`, never on a tokio worker.
//!
//! Order: while anything is spooled, new envelopes go behind it, and the writer sends
//! straight to the backend only once `is_spooling` is false. Only an append turns it on
//! and only `files_to_replay`, under the same lock, turns it off (when no file is
//! left), so an envelope never overtakes one spooled before it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::segments::Segments;
use super::{SinkState, StateCell};

/// Spool segments roll at this size.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// The spool directory and what the sink's tasks share about it.
pub struct Spool {
    segments: Mutex<Segments>,
    spooling: AtomicBool,
    /// Envelopes spooled and not yet replayed.
    depth: AtomicU64,
    state: Arc<StateCell>,
}

impl Spool {
    /// Opens `dir` (created if missing). Files left by an earlier run, or
    /// `start_spooling`, make the sink start spooling.
    pub fn open(dir: &Path, start_spooling: bool, state: Arc<StateCell>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let segments = Segments::new(dir.to_path_buf(), SEGMENT_BYTES)?;
        let mut depth = 0;
        for file in segments.files()? {
            depth += envelopes(&std::fs::read(file)?).count() as u64;
        }
        let spooling = start_spooling || !segments.files()?.is_empty();
        crate::telemetry::record_spool(0, depth);
        state.set(if spooling {
            SinkState::Spooling
        } else {
            SinkState::Direct
        });
        Ok(Self {
            segments: Mutex::new(segments),
            spooling: AtomicBool::new(spooling),
            depth: AtomicU64::new(depth),
            state,
        })
    }

    /// Whether new envelopes must go behind spooled ones.
    pub fn is_spooling(&self) -> bool {
        self.spooling.load(Ordering::Acquire)
    }

    /// Appends newline-terminated envelopes (`count` of them) with one fsync.
    pub fn append<'a>(
        &self,
        buffers: impl Iterator<Item = &'a [u8]>,
        count: u64,
    ) -> std::io::Result<()> {
        let mut segments = self.lock();
        segments.append(buffers)?;
        self.spooling.store(true, Ordering::Release);
        self.state.set(SinkState::Spooling);
        let depth = self.depth.fetch_add(count, Ordering::Relaxed) + count;
        crate::telemetry::record_spool(count, depth);
        Ok(())
    }

    /// Closes the segment being written and lists every file, oldest first. When there
    /// is none, spooling ends here: the writer may send straight to the backend again.
    pub fn files_to_replay(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut segments = self.lock();
        segments.seal()?;
        let files = segments.files()?;
        if files.is_empty() {
            self.spooling.store(false, Ordering::Release);
            self.state.set(SinkState::Direct);
            self.depth.store(0, Ordering::Relaxed);
            crate::telemetry::record_spool(0, 0);
        }
        Ok(files)
    }

    /// Counts `count` envelopes as delivered.
    pub fn replayed(&self, count: u64) {
        let depth = self
            .depth
            .fetch_sub(count, Ordering::Relaxed)
            .saturating_sub(count);
        crate::telemetry::record_spool(0, depth);
    }

    fn lock(&self) -> MutexGuard<'_, Segments> {
        // A panic while holding the lock leaves the segments usable: every append
        // either completed or was cut off.
        self.segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The envelopes of a buffer of newline-terminated lines.
pub fn envelopes(buffer: &[u8]) -> impl Iterator<Item = &[u8]> {
    buffer.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spooling_ends_only_when_no_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(StateCell::new(SinkState::Direct));
        let spool = Spool::open(dir.path(), false, state.clone()).unwrap();
        assert!(!spool.is_spooling());
        spool.append([&b"{\"a\":1}\n"[..]].into_iter(), 1).unwrap();
        assert!(spool.is_spooling());
        assert_eq!(state.get(), SinkState::Spooling);
        let files = spool.files_to_replay().unwrap();
        assert_eq!(files.len(), 1);
        assert!(spool.is_spooling(), "a file is left");
        // An append after the seal goes to a new segment, behind the sealed one.
        spool.append([&b"{\"b\":2}\n"[..]].into_iter(), 1).unwrap();
        std::fs::remove_file(&files[0]).unwrap();
        let files = spool.files_to_replay().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), b"{\"b\":2}\n");
        std::fs::remove_file(&files[0]).unwrap();
        assert!(spool.files_to_replay().unwrap().is_empty());
        assert!(!spool.is_spooling());
        assert_eq!(state.get(), SinkState::Direct);
        // A restart finds files left behind and spools first.
        spool.append([&b"{\"c\":3}\n"[..]].into_iter(), 1).unwrap();
        let again = Spool::open(dir.path(), false, state).unwrap();
        assert!(again.is_spooling());
        assert_eq!(again.depth.load(Ordering::Relaxed), 1);
    }
}
