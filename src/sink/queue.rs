//! The queue in front of a sink's single writer: requests hand over their envelopes and
//! wait for the verdict; the writer takes every request queued behind the first one as
//! one group, so that one fsync or one Redis round trip serves them all.

use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use super::{Batch, SinkError, SinkState, StateCell, Written};

/// Requests waiting for a writer; senders wait when it is full.
const QUEUE_DEPTH: usize = 4096;

/// What a writer receives.
pub enum Job {
    /// Make these envelopes durable, then answer.
    Write {
        /// The envelopes.
        batch: Batch,
        /// Where the verdict goes.
        done: Waiter,
    },
    /// Finish what is queued, then stop and answer.
    Close {
        /// Answered once stopped.
        done: oneshot::Sender<()>,
    },
}

/// A waiting request.
pub type Waiter = oneshot::Sender<Result<Written, SinkError>>;

/// The requests one group commit serves, and the close request that ended it, if any.
pub struct Group {
    /// Envelopes with their waiters, in arrival order.
    pub writes: Vec<(Batch, Waiter)>,
    /// Set when a close followed these writes.
    pub closing: Option<oneshot::Sender<()>>,
}

impl Group {
    /// Takes `first` and whatever `next` yields, up to `max_bytes` of envelopes.
    pub fn gather(first: Job, mut next: impl FnMut() -> Option<Job>, max_bytes: usize) -> Self {
        let mut group = Self {
            writes: Vec::new(),
            closing: None,
        };
        let mut bytes = 0;
        let mut job = Some(first);
        while let Some(current) = job.take() {
            match current {
                Job::Write { batch, done } => {
                    bytes += batch.lines().len();
                    group.writes.push((batch, done));
                }
                Job::Close { done } => {
                    group.closing = Some(done);
                    break;
                }
            }
            if bytes < max_bytes {
                job = next();
            }
        }
        group
    }

    /// The envelope buffers, in order.
    pub fn buffers(&self) -> impl Iterator<Item = &[u8]> {
        self.writes.iter().map(|(batch, _)| batch.lines())
    }

    /// The batches, in order.
    pub fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.writes.iter().map(|(batch, _)| batch)
    }

    /// How many envelopes the group holds.
    pub fn envelopes(&self) -> usize {
        self.batches().map(Batch::len).sum()
    }

    /// Answers each waiter: its own receipt (in order) on success, the same error
    /// otherwise.
    pub fn answer(self, outcome: Result<Vec<Written>, SinkError>) -> Option<oneshot::Sender<()>> {
        match outcome {
            Ok(receipts) => {
                let mut receipts = receipts.into_iter();
                for (_, done) in self.writes {
                    let _ = done.send(Ok(receipts.next().unwrap_or_default()));
                }
            }
            Err(error) => {
                for (_, done) in self.writes {
                    let _ = done.send(Err(error.clone()));
                }
            }
        }
        self.closing
    }
}

/// A sink with one writer, as requests see it: the queue to its writer, and the state
/// the writer keeps. The log, Redis and NATS sinks are each one of these.
pub struct Queue {
    jobs: mpsc::Sender<Job>,
    state: Arc<StateCell>,
    /// Whether requests compute their envelopes' dedup fingerprints before handing
    /// them over (the writer screens against a window).
    fingerprint: bool,
}

impl Queue {
    /// A queue and the receiver its writer drains; the writer updates `state`.
    /// `fingerprint`: the writer deduplicates, so each request fingerprints its own
    /// envelopes (in parallel) rather than leave it to the one writer.
    pub fn new(state: Arc<StateCell>, fingerprint: bool) -> (Self, mpsc::Receiver<Job>) {
        let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
        let queue = Self {
            jobs,
            state,
            fingerprint,
        };
        (queue, receiver)
    }

    /// Hands `batch` to the writer and waits for the verdict.
    pub async fn write(&self, mut batch: Batch) -> Result<Written, SinkError> {
        if self.fingerprint {
            batch.fingerprint();
        }
        let (done, verdict) = oneshot::channel();
        self.jobs
            .send(Job::Write { batch, done })
            .await
            .map_err(|_| closed())?;
        verdict.await.map_err(|_| closed())?
    }

    /// Where the writer's writes go now.
    pub fn state(&self) -> SinkState {
        self.state.get()
    }

    /// Lets queued writes finish, then stops the writer (and whatever it stops).
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.jobs.send(Job::Close { done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// The answer to writes after the sink closed.
pub fn closed() -> SinkError {
    SinkError::Closed
}

/// Refuses whatever is still queued once a writer has stopped.
pub fn refuse_rest(receiver: &mut mpsc::Receiver<Job>) {
    receiver.close();
    while let Ok(job) = receiver.try_recv() {
        if let Job::Write { done, .. } = job {
            let _ = done.send(Err(closed()));
        }
    }
}
