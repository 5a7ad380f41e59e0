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
/// Only an ordinary thread at nice 0 is changed: one an operator started otherwise
/// (`chrt`, `nice`) keeps what it was given. Where the policy cannot be set (another
/// OS, a sandbox that forbids it) nothing changes: it only costs throughput.
pub struct BatchThread {
    entered: bool,
}

impl BatchThread {
    /// Puts the calling thread in `SCHED_BATCH`.
    pub fn enter() -> Self {
        let entered = ordinary_thread() && set_policy(true);
        if !entered {
            tracing::debug!("the log writer keeps its scheduling policy (not SCHED_BATCH)");
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
    // value, here to 0, which it already is (see `ordinary_thread`).
    let priority = ThreadPriority::Os(ThreadPriorityOsValue::default());
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        priority,
        ThreadSchedulePolicy::Normal(policy),
    );
    set.is_ok() || current_policy_is(policy)
}

/// Whether the calling thread is `SCHED_OTHER` at nice 0, as tokio starts it.
#[cfg(target_os = "linux")]
fn ordinary_thread() -> bool {
    current_policy_is(thread_priority::NormalThreadSchedulePolicy::Other) && nice() == Some(0)
}

/// The calling thread's nice value: field 19 of its `stat`, the 17th after the
/// command name (which may hold spaces, so counting starts at its closing parenthesis).
#[cfg(target_os = "linux")]
fn nice() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(16)?.parse().ok()
}

#[cfg(target_os = "linux")]
fn current_policy_is(policy: thread_priority::NormalThreadSchedulePolicy) -> bool {
    thread_priority::thread_schedule_policy()
        .is_ok_and(|now| now == thread_priority::ThreadSchedulePolicy::Normal(policy))
}

#[cfg(not(target_os = "linux"))]
fn ordinary_thread() -> bool {
    false
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
    fn an_ordinary_thread_is_batch_while_held_and_ordinary_after() {
        std::thread::spawn(|| {
            let (before, nice_before) = (policy(), nice());
            let ordinary = before
                == ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
                && nice_before == Some(0);
            let held = BatchThread::enter();
            // SCHED_BATCH needs no privilege on Linux: refused only to a thread that an
            // operator started as something else (then left as it is).
            assert_eq!(held.entered(), ordinary);
            let during = if ordinary {
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
            } else {
                before
            };
            assert_eq!(policy(), during);
            drop(held);
            assert_eq!(policy(), before);
            assert_eq!(nice(), nice_before);
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_niced_thread_is_left_as_it_is() {
        std::thread::spawn(|| {
            let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
            // Raising a thread's nice value needs no privilege; Min is nice 19.
            thread_priority::set_thread_priority_and_policy(
                thread_priority::thread_native_id(),
                thread_priority::ThreadPriority::Min,
                other,
            )
            .expect("nice 19");
            assert_eq!(nice(), Some(19));
            let held = BatchThread::enter();
            assert!(!held.entered());
            assert_eq!(policy(), other);
            drop(held);
            assert_eq!((policy(), nice()), (other, Some(19)));
        })
        .join()
        .expect("the test thread");
    }
}
