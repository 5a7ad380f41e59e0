//! An in-memory sink for tests where a fault is needed but a real one is not the
//! point: it keeps envelopes in memory and can be told to refuse writes. No setting
//! selects it; tests hand it to `app::start_with_sink`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Batch, SinkError, SinkState, Written};

/// A cloneable handle: the test keeps one, the gateway another.
#[derive(Clone, Default)]
pub struct MemorySink {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    envelopes: Mutex<Vec<Vec<u8>>>,
    refusing: AtomicBool,
    closed: AtomicBool,
}

/// The cause a refusing memory sink reports (for the log, never for clients).
#[derive(Debug, thiserror::Error)]
#[error("the memory sink was told to refuse writes")]
pub struct Refused;

impl MemorySink {
    /// An empty sink that takes writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes later writes fail (`true`) or succeed again (`false`).
    pub fn refuse(&self, refusing: bool) {
        self.inner.refusing.store(refusing, Ordering::Relaxed);
    }

    /// Every envelope stored so far, in order, without its newline.
    pub fn envelopes(&self) -> Vec<Vec<u8>> {
        self.lock().clone()
    }

    /// Stores the batch, or refuses it.
    pub fn write(&self, batch: Batch) -> Result<Written, SinkError> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(SinkError::Closed);
        }
        if self.inner.refusing.load(Ordering::Relaxed) {
            return Err(SinkError::unavailable(Refused));
        }
        self.lock()
            .extend(batch.entries().map(|entry| entry.line.to_vec()));
        Ok(Written::default())
    }

    /// Refusing or not.
    pub fn state(&self) -> SinkState {
        if self.inner.refusing.load(Ordering::Relaxed) {
            SinkState::Refusing
        } else {
            SinkState::Direct
        }
    }

    /// Later writes are refused.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.inner
            .envelopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
