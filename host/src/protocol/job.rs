//! A job's own record: registering it, its state, its counters, forgetting it.

use std::collections::HashMap;

use redis::Commands;

use super::connection::Store;
use super::keys::{field, LATEST_JOB_KEY, STATE_FINISHED, STATE_RUNNING};
use super::meta::{JobCounters, JobMeta};

impl Store {
    /// Writes what the job is (again, after a restore may have lost it),
    /// marks it running unless it already has a state, and makes it the
    /// Redis's latest job (for `status` and `top` without `--job`).
    pub fn register_job(&mut self, meta: &JobMeta) -> anyhow::Result<()> {
        let fields = meta.to_fields();
        self.with_retry(|conn, keys| {
            // HSET with many fields, not hset_multiple's HMSET: the documented ACL rules grant +hset.
            redis::cmd("HSET").arg(&keys.meta).arg(&fields).query::<i64>(conn)?;
            conn.hset_nx::<_, _, _, i64>(&keys.meta, field::STATE, STATE_RUNNING)?;
            conn.set(LATEST_JOB_KEY, &keys.job)
        })
    }

    /// Records the number of tasks once planning is complete.
    pub fn set_total_tasks(&mut self, total: u64) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| conn.hset(&keys.meta, field::TOTAL_TASKS, total))
    }

    /// Writes fields of the meta hash the coordinator keeps up to date
    /// (tasks planned so far, keys merged, its fault counters): they are
    /// what `status` and `report` read. Idempotent.
    pub fn set_meta_fields(&mut self, fields: &[(&str, String)]) -> anyhow::Result<()> {
        if fields.is_empty() {
            return Ok(());
        }
        self.with_retry(|conn, keys| redis::cmd("HSET").arg(&keys.meta).arg(fields).query::<i64>(conn).map(drop))
    }

    /// Records the wall time and throughput of the run that finished the
    /// job, unless an earlier run already did (a re-report keeps the first).
    pub fn record_first_run(&mut self, wall_seconds: f64, mb_per_second: f64, finished_at_ms: u64) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| {
            conn.hset_nx::<_, _, _, i64>(&keys.meta, field::FIRST_WALL_SECONDS, wall_seconds)?;
            conn.hset_nx::<_, _, _, i64>(&keys.meta, field::FIRST_MB_PER_SECOND, mb_per_second)?;
            conn.hset_nx::<_, _, _, i64>(&keys.meta, field::FINISHED_AT_MS, finished_at_ms)
        })?;
        Ok(())
    }

    /// Live mode's end: the counts are already in place.
    pub fn mark_finished(&mut self) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| conn.hset(&keys.meta, field::STATE, STATE_FINISHED))
    }

    /// The job's state field (`None` for a job this Redis does not know).
    pub fn job_state(&mut self) -> anyhow::Result<Option<String>> {
        self.with_retry(|conn, keys| conn.hget(&keys.meta, field::STATE))
    }

    /// The raw meta hash (empty for an unknown job).
    pub fn read_meta(&mut self) -> anyhow::Result<HashMap<String, String>> {
        self.with_retry(|conn, keys| conn.hgetall(&keys.meta))
    }

    /// The job's counters: its meta hash, plus each partition's counters
    /// when it has several.
    pub fn counters(&mut self) -> anyhow::Result<JobCounters> {
        let meta = self.read_meta()?;
        let mut partitions = Vec::new();
        if self.keys.partitions.len() > 1 {
            for p in 0..self.keys.partitions.len() {
                partitions.push(self.with_retry(|conn, keys| conn.hgetall::<_, HashMap<String, String>>(&keys.partitions[p].stats))?);
            }
        }
        Ok(JobCounters::from_hashes(&meta, &partitions))
    }

    /// The id of the last job started on this Redis.
    pub fn latest_job(&mut self) -> anyhow::Result<Option<String>> {
        self.with_retry(|conn, _| conn.get(LATEST_JOB_KEY))
    }

    /// Removes every key of the job (for `--fresh`).
    pub fn delete_job(&mut self) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| conn.del(&keys.all()[..]))
    }
}
