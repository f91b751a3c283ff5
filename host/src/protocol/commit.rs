//! One typed call per function of the Lua library: the only place where
//! their KEYS and ARGV are built. Each call is applied at most once whatever
//! happens (the done-set gate), so each is simply retried until Redis
//! answers.

use super::blob;
use super::connection::Store;
use super::keys::GROUP;
use super::tasks::{entry_fields, Entry};
use crate::input::ReadStats;

/// Most (key, count) pairs in one live-mode commit call: keeps each call far
/// below Redis's busy-reply threshold (a ZINCRBY costs a few µs).
pub const MAX_PAIRS_PER_CALL: usize = 20_000;

/// What `wc_fail_task` did with a failed task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Another attempt was already counted; nothing to do.
    AlreadyDone,
    /// Submitted again.
    Retry,
    /// Failed too often: recorded with its error in the dead letters.
    Dead,
}

impl Store {
    /// Reduce mode (`wc_commit_task_result`): the task's counts as one blob.
    /// True when applied, false for a duplicate.
    pub fn commit_task_result(&mut self, entry: &Entry, pairs: &[(&str, u64)], stats: &ReadStats) -> anyhow::Result<bool> {
        let blob = blob::encode(pairs);
        let tokens: u64 = pairs.iter().map(|(_, n)| n).sum();
        let applied: i64 = self.with_retry(|conn, keys| {
            let p = &keys.partitions[entry.partition as usize];
            redis::cmd("FCALL")
                .arg("wc_commit_task_result").arg(4)
                .arg(&p.stream).arg(&p.done).arg(&p.results).arg(&p.stats)
                .arg(GROUP).arg(&entry.id).arg(&entry.task.id)
                .arg(stats.rows).arg(stats.bytes).arg(stats.short_rows).arg(stats.invalid_utf8_rows).arg(stats.decoded_bytes)
                .arg(tokens).arg(pairs.len())
                .arg(&blob)
                .query(conn)
        })?;
        Ok(applied == 1)
    }

    /// Live mode (`atomic_increment_and_acknowledge`): ZINCRBYs in parts of
    /// at most [`MAX_PAIRS_PER_CALL`] pairs, each part gated. The parts must
    /// be the same on every attempt by any worker (part ids are remembered),
    /// so the pairs are put in a total order here before they are cut.
    /// True when anything was applied, false for a duplicate.
    ///
    /// The counts and the gate must share a slot, so live mode needs a job
    /// of one partition (the job's own hash tag).
    pub fn commit_live(&mut self, entry: &Entry, mut pairs: Vec<(&str, u64)>, stats: &ReadStats) -> anyhow::Result<bool> {
        anyhow::ensure!(self.keys.partitions.len() == 1, "live commit mode needs a job of one partition");
        pairs.sort_unstable();
        let parts: Vec<&[(&str, u64)]> = if pairs.is_empty() { vec![&[][..]] } else { pairs.chunks(MAX_PAIRS_PER_CALL).collect() };
        let total = parts.len();
        let mut applied = false;
        for (index, part) in parts.iter().enumerate() {
            let result: i64 = self.with_retry(|conn, keys| {
                let p = &keys.partitions[0];
                let mut cmd = redis::cmd("FCALL");
                cmd.arg("atomic_increment_and_acknowledge").arg(6)
                    .arg(&p.stream).arg(&keys.counts).arg(&p.done).arg(&p.parts).arg(&p.partcount).arg(&p.stats)
                    .arg(GROUP).arg(&entry.id).arg(&entry.task.id).arg(index).arg(total)
                    .arg(stats.rows).arg(stats.bytes).arg(stats.short_rows).arg(stats.invalid_utf8_rows).arg(stats.decoded_bytes);
                for (key, n) in part.iter() {
                    cmd.arg(key.as_bytes()).arg(*n);
                }
                cmd.query(conn)
            })?;
            applied |= result == 1;
        }
        Ok(applied)
    }

    /// `wc_fail_task`: records a failed attempt; the task is retried until
    /// it has failed `max_attempts` times, then dead-lettered with `error`.
    /// `max_attempts` = 1 dead-letters it now, whatever attempt this is: a
    /// worker's way to say "retrying cannot help" (a failure reproduced on
    /// a fresh plugin instance with the same rows).
    pub fn fail_task(&mut self, entry: &Entry, max_attempts: u32, error: &str) -> anyhow::Result<FailOutcome> {
        let outcome: String = self.with_retry(|conn, keys| {
            let p = &keys.partitions[entry.partition as usize];
            let mut cmd = redis::cmd("FCALL");
            cmd.arg("wc_fail_task").arg(5)
                .arg(&p.stream).arg(&p.done).arg(&p.attempts).arg(&p.dead).arg(&p.stats)
                .arg(GROUP).arg(&entry.id).arg(&entry.task.id).arg(max_attempts).arg(error);
            for (f, v) in entry_fields(&entry.task, keys) {
                cmd.arg(f).arg(v);
            }
            cmd.query(conn)
        })?;
        match outcome.as_str() {
            "done" => Ok(FailOutcome::AlreadyDone),
            "retry" => Ok(FailOutcome::Retry),
            "dead" => Ok(FailOutcome::Dead),
            other => anyhow::bail!("wc_fail_task answered `{other}`"),
        }
    }

    /// Reduce mode's last step (`wc_publish_counts`): the sorted set built
    /// under its temporary name replaces the job's counts, and the job is
    /// finished, only if it holds `expected` keys. An error otherwise
    /// (a restart lost part of the build): build it again. The per-task
    /// results, in other slots, stay until [`drop_results`](Self::drop_results).
    pub fn publish_counts(&mut self, expected: usize) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| {
            redis::cmd("FCALL")
                .arg("wc_publish_counts").arg(3)
                .arg(&keys.counts_building).arg(&keys.counts).arg(&keys.meta)
                .arg(expected)
                .query::<i64>(conn)
        })?;
        Ok(())
    }

    /// Drops the per-task results, once the published counts are safe
    /// (see the coordinator's `published_safely`). Not before: a failover
    /// between the two could keep the drop and lose the publish, leaving
    /// done tasks whose results no one will write again.
    pub fn drop_results(&mut self) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| conn.batch(keys.partitions.iter().map(|p| redis::Cmd::unlink(&p.results)).collect()))
    }
}
