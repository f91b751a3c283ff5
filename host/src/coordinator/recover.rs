//! Recovery: registering the job, noticing a Redis restart (its run id
//! changes), and re-submitting what a restore lost.

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
        let run_id = self.store.run_id()?;
        if self.run_id.as_ref() == Some(&run_id) {
            return Ok(false);
        }
        self.redis_restarts += 1;
        self.store.record_event(EventKind::RedisRestart, &[("restarts", self.redis_restarts.to_string())]);
        tracing::warn!("Redis restarted (run id changed): restoring the library, group and lost tasks");
        self.run_id = Some(run_id);
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
