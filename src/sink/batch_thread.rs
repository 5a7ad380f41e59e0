//! The log sink's writer as a batch thread (Linux `SCHED_BATCH`).
//!
//! A request that finds the writer parked wakes it. As an ordinary thread, the woken
//! writer preempts the tokio worker that woke it, mid-request: two context switches,
//! and a group of one or two requests. As a batch thread it takes a free core at once
//! and otherwise waits for the worker to reach a scheduling point, by when more
//! requests have queued: fewer wake-ups and bigger groups under load, the same
//! latency when a core is idle. Measured in README "Benchmarks" (the kernel time of a
//! request fell by a quarter at 256 connections).

/// Holds the calling thread in `SCHED_BATCH` until dropped, then returns it to
/// `SCHED_OTHER` (the writer runs on a tokio blocking-pool thread, which outlives it).
/// Where the policy cannot be set (another OS, a sandbox that forbids it) nothing
/// changes: it only costs throughput.
pub struct BatchThread {
    entered: bool,
}

impl BatchThread {
    /// Puts the calling thread in `SCHED_BATCH`.
    pub fn enter() -> Self {
        let entered = set_policy(true);
        if !entered {
            tracing::debug!("the log writer runs as an ordinary thread (SCHED_BATCH refused)");
        }
        Self { entered }
    }

    /// Whether the calling thread is in `SCHED_BATCH` now.
    pub fn entered(&self) -> bool {
        self.entered
    }
}

impl Drop for BatchThread {
    fn drop(&mut self) {
        if self.entered {
            set_policy(false);
        }
    }
}

#[cfg(target_os = "linux")]
fn set_policy(batch: bool) -> bool {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
    };
    let policy = if batch {
        NormalThreadSchedulePolicy::Batch
    } else {
        NormalThreadSchedulePolicy::Other
    };
    // Normal policies take static priority 0; the crate also sets the thread's nice
    // value, here to 0, the default (a niced process may refuse it: the policy holds).
    let priority = ThreadPriority::Os(ThreadPriorityOsValue::default());
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        priority,
        ThreadSchedulePolicy::Normal(policy),
    );
    set.is_ok() || current_policy_is(policy)
}

#[cfg(target_os = "linux")]
fn current_policy_is(policy: thread_priority::NormalThreadSchedulePolicy) -> bool {
    thread_priority::thread_schedule_policy()
        .is_ok_and(|now| now == thread_priority::ThreadSchedulePolicy::Normal(policy))
}

#[cfg(not(target_os = "linux"))]
fn set_policy(_batch: bool) -> bool {
    false
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

    fn policy() -> ThreadSchedulePolicy {
        thread_priority::thread_schedule_policy().expect("the thread's policy")
    }

    #[test]
    fn the_thread_is_batch_while_held_and_ordinary_after() {
        std::thread::spawn(|| {
            let before = policy();
            assert_eq!(
                before,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
            );
            let held = BatchThread::enter();
            assert!(held.entered(), "SCHED_BATCH needs no privilege on Linux");
            assert_eq!(
                policy(),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
            );
            drop(held);
            assert_eq!(policy(), before);
        })
        .join()
        .expect("the test thread");
    }
}
