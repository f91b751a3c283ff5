//! Recovery: registering the job, noticing a Redis restart or failover (the
//! run id of a server holding the job's keys changes), and re-submitting
//! what a restore or a promoted replica lost.

use std::time::{Duration, Instant};

use super::Coordinator;
use crate::protocol::{EventKind, Task};

impl Coordinator {
    /// Writes the job's meta (again, after a restore may have lost it) and
    /// submits every task that is neither done, dead nor live in the stream.
    pub(super) fn register(&mut self) -> anyhow::Result<()> {
        self.store.register_job(&self.meta)?;
        self.reconcile()
    }

    /// True when Redis restarted since the last look; then the job is
    /// registered again and lost tasks re-submitted.
    pub(super) fn detect_restart(&mut self) -> anyhow::Result<bool> {
        // With Sentinel, a failover leaves the old master answering (and
        // accepting writes) for a while: ask the sentinels, once a second,
        // and follow the master they name.
        if self.last_master_check.elapsed() > Duration::from_secs(1) {
            self.last_master_check = Instant::now();
            if !self.store.still_the_master()? {
                tracing::warn!("the sentinels name another master: following it");
                self.store.reconnect();
            }
        }
        let run_ids = self.store.serving_run_ids()?;
        let Some(before) = &self.run_ids else {
            self.run_ids = Some(run_ids);
            return Ok(false);
        };
        if *before == run_ids {
            return Ok(false);
        }
        // Servers, not partitions: several partitions may live on one.
        let changed: std::collections::HashSet<&String> = before.iter().zip(&run_ids).filter(|(a, b)| a != b).map(|(_, b)| b).collect();
        self.redis_restarts += changed.len() as u64;
        tracing::warn!(
            "Redis restarted or failed over ({} server{} with a new run id): restoring the library, groups and lost tasks",
            changed.len(),
            if changed.len() == 1 { "" } else { "s" }
        );
        self.run_ids = Some(run_ids);
        self.store.record_event(EventKind::RedisRestart, &[("restarts", self.redis_restarts.to_string())]);
        self.register()?;
        // What was merged may have been rolled back; merge again.
        self.merged.clear();
        self.merged_tasks.clear();
        Ok(true)
    }

    /// Re-submits lost tasks. Duplicates are harmless (the done-set gate),
    /// so this errs on the side of submitting.
    pub(super) fn reconcile(&mut self) -> anyhow::Result<()> {
        let ids = self.manifest_ids();
        // The stream first: a task committed meanwhile then shows as done.
        let live = self.store.live_task_ids()?;
        let finished = self.store.finished_mask(&ids)?;
        let missing: Vec<&Task> = self.tasks.iter().zip(&finished).filter(|(t, done)| !**done && !live.contains(&t.id)).map(|(t, _)| t).collect();
        if missing.is_empty() {
            return Ok(());
        }
        tracing::debug!("submitting {} tasks", missing.len());
        let mut again = 0;
        for task in &missing {
            if !self.submitted.insert(task.id.clone()) {
                again += 1;
            }
        }
        self.store.submit(&missing)?;
        if again > 0 {
            self.resubmissions += again;
            self.store.record_event(EventKind::TasksResubmitted, &[("count", again.to_string())]);
        }
        Ok(())
    }
}
