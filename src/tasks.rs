//! Every long-lived task of a running intake (listeners, index sync, the Redis change
//! feed, upkeep loops, the sink's writers) runs under one `TaskTracker` and stops on one
//! `CancellationToken`, so that a shutdown can wait for them all and say truthfully
//! which did not finish.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tracker, the token, and the names of the named tasks still running.
#[derive(Clone, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Task name → instances running.
    running: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

/// Deregisters a named task when it ends, however it ends.
struct Running {
    name: &'static str,
    running: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = running.get_mut(self.name) {
            *count -= 1;
            if *count == 0 {
                running.remove(self.name);
            }
        }
    }
}

impl Tasks {
    /// Spawns a named task on the tracker. The task must return once `shutdown()` is
    /// cancelled (or sooner).
    pub(crate) fn spawn<F>(&self, name: &'static str, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        *self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default() += 1;
        let guard = Running {
            name,
            running: self.running.clone(),
        };
        self.tracker().spawn(async move {
            let _guard = guard;
            task.await;
        })
    }

    /// The token every task watches.
    pub(crate) fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The tracker, for components that spawn their own tasks (the sinks).
    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Tells every task to stop.
    pub(crate) fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// Waits up to `grace` for every task to end; on time-out, the names of the named
    /// tasks still running and the number of unnamed ones.
    pub(crate) async fn wait(&self, grace: Duration) -> Result<(), Unfinished> {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return Ok(());
        }
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let named: usize = running.values().sum();
        Err(Unfinished {
            named: running.keys().map(|name| name.to_string()).collect(),
            unnamed: self.tracker.len().saturating_sub(named),
        })
    }
}

/// Tasks still running when the grace period ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// Names of the named tasks.
    pub named: Vec<String>,
    /// Tasks spawned on the tracker without a name (a sink's writers).
    pub unnamed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_names_the_tasks_that_ignore_the_token() {
        let tasks = Tasks::default();
        let token = tasks.shutdown();
        tasks.spawn("polite", async move { token.cancelled().await });
        tasks.spawn("stubborn", std::future::pending());
        tasks.cancel();
        let unfinished = tasks.wait(Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(unfinished.named, ["stubborn"]);
        assert_eq!(unfinished.unnamed, 0);
    }

    #[tokio::test]
    async fn wait_succeeds_once_all_stopped() {
        let tasks = Tasks::default();
        for _ in 0..3 {
            let token = tasks.shutdown();
            tasks.spawn("loop", async move { token.cancelled().await });
        }
        tasks.cancel();
        assert_eq!(tasks.wait(Duration::from_secs(5)).await, Ok(()));
    }
}
