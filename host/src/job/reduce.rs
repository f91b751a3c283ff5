//! Reduce mode's end of a job: merging the per-task results and publishing
//! them as the job's sorted set (see `wc_publish_counts`).

use std::collections::HashSet;
use std::time::Instant;

use super::{Coordinator, REDIS_PATIENCE};
use crate::count::CountMap;
use crate::store::tasks::done_mask;
use crate::store::{self, Keys, Store};

impl Coordinator {
    /// Reduce mode: merges the result blobs of tasks done since the last
    /// call into `merged`, so that most of the merging overlaps the counting.
    /// A blob is merged once per task id; since a task's blob is the same
    /// whichever attempt wrote it, a rollback that makes a merged task be
    /// redone changes nothing. [`reduce`](Self::reduce) checks at the end
    /// that exactly the done tasks were merged.
    pub(super) fn merge_new_results(&mut self) -> anyhow::Result<usize> {
        let ids: Vec<String> = self.manifest_ids().into_iter().filter(|id| !self.merged_tasks.contains(id)).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let done = self.store.with_retry(REDIS_PATIENCE, |conn, keys| done_mask(conn, keys, &ids))?;
        let fresh: Vec<&String> = ids.iter().zip(&done).filter(|(_, d)| **d).map(|(id, _)| id).collect();
        for chunk in fresh.chunks(32) {
            let blobs: Vec<Option<Vec<u8>>> =
                self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("HMGET").arg(&keys.results).arg(chunk).query(conn))?;
            for (id, blob) in chunk.iter().zip(blobs) {
                // Missing: a restore rolled the task back after the done
                // check; it will be done again and merged then.
                let Some(blob) = blob else { continue };
                store::blob::decode_into(&blob, &mut self.merged).map_err(|e| anyhow::anyhow!("task {id}: {e}"))?;
                self.merged_tasks.insert(id.to_string());
            }
        }
        Ok(fresh.len())
    }

    /// Reduce mode, at the end: completes the merge and publishes it as the
    /// job's sorted set, atomically and only if complete
    /// (`wc_publish_counts`). Idempotent: safe to redo.
    pub(super) fn reduce(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let ids = self.manifest_ids();
        let done = self.store.with_retry(REDIS_PATIENCE, |conn, keys| done_mask(conn, keys, &ids))?;
        let done_ids: HashSet<&String> = ids.iter().zip(&done).filter(|(_, d)| **d).map(|(id, _)| id).collect();
        if self.merged_tasks.iter().any(|id| !done_ids.contains(id)) {
            // Something merged is no longer done (a rollback, then a dead
            // letter): start the merge over from what Redis holds.
            tracing::warn!("merged results no longer match the done tasks; merging again from scratch");
            self.merged.clear();
            self.merged_tasks.clear();
        }
        self.merge_new_results()?;
        anyhow::ensure!(self.merged_tasks.len() == done_ids.len(), "results of some done tasks are missing; waiting for them to be redone");
        let merged = started.elapsed();
        // Redis inserts members in the order it gets them, into a skiplist:
        // in score order that is about 3x cheaper than in hash order.
        let pairs = sorted_by_count_then_key(&self.merged);
        let sorted = started.elapsed();
        let payload = store::dump::zset_payload(&pairs);
        let encoded = started.elapsed();
        let restored = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            // REPLACE: a build left by an earlier attempt is overwritten. A
            // refusal (an ACL without RESTORE) is not transient, so it is
            // not retried but falls back to ZADD below.
            redis::cmd("RESTORE").arg(&keys.counts_building).arg(0).arg(&payload).arg("REPLACE").query::<()>(conn)
        });
        if let Err(e) = restored {
            tracing::warn!("RESTORE of the sorted set refused ({e:#}); writing it with ZADD instead (slower)");
            self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("DEL").arg(&keys.counts_building).query::<i64>(conn))?;
            // Two connections: one formats and sends while Redis works on
            // the other's batch.
            let half = pairs.len().div_ceil(2);
            let (url, keys) = (self.url.clone(), self.store.keys.clone());
            std::thread::scope(|scope| -> anyhow::Result<()> {
                let writers: Vec<_> = pairs
                    .chunks(half.max(1))
                    .map(|part| {
                        let (url, keys) = (url.clone(), keys.clone());
                        scope.spawn(move || write_sorted_set(&url, keys, part))
                    })
                    .collect();
                for w in writers {
                    w.join().expect("a writer thread does not panic")?;
                }
                Ok(())
            })?;
        }
        let expected = self.merged.len();
        self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            redis::cmd("FCALL")
                .arg("wc_publish_counts").arg(4)
                .arg(&keys.counts_building).arg(&keys.counts).arg(&keys.meta).arg(&keys.results)
                .arg(expected)
                .query::<i64>(conn)
        })?;
        tracing::debug!(
            "reduce: last merge {merged:?}, sort {:?}, encode {:?}, sorted set of {expected} keys written in {:?}",
            sorted - merged,
            encoded - sorted,
            started.elapsed() - encoded
        );
        self.final_counts = Some(std::mem::take(&mut self.merged));
        Ok(())
    }

}

/// The counts in the sorted set's own order (count, then key). Sorted on
/// inline integers first (the count and the key's first 16 bytes), the
/// keys themselves compared only on a tie: several times faster than
/// comparing through the strings, which matters with millions of keys.
fn sorted_by_count_then_key(counts: &CountMap) -> Vec<(&String, &u64)> {
    let pairs: Vec<(&String, &u64)> = counts.iter().collect();
    let mut order: Vec<(u64, u128, u32)> = pairs
        .iter()
        .enumerate()
        .map(|(i, (key, n))| {
            let mut prefix = [0u8; 16];
            let head = &key.as_bytes()[..key.len().min(16)];
            prefix[..head.len()].copy_from_slice(head);
            (**n, u128::from_be_bytes(prefix), i as u32)
        })
        .collect();
    order.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| pairs[a.2 as usize].0.cmp(pairs[b.2 as usize].0)));
    order.into_iter().map(|(_, _, i)| pairs[i as usize]).collect()
}

/// ZADDs `pairs` into the sorted set being built, in pipelined batches.
fn write_sorted_set(url: &str, keys: Keys, pairs: &[(&String, &u64)]) -> anyhow::Result<()> {
    let mut store = Store::new(url, keys)?;
    for batch in pairs.chunks(ZADD_MEMBERS * 8) {
        store.with_retry(REDIS_PATIENCE, |conn, keys| {
            let mut pipe = redis::pipe();
            for chunk in batch.chunks(ZADD_MEMBERS) {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(&keys.counts_building);
                for (key, n) in chunk {
                    cmd.arg(**n).arg(key.as_bytes());
                }
                pipe.add_command(cmd).ignore();
            }
            pipe.query::<()>(conn)
        })?;
    }
    Ok(())
}

/// Members per ZADD when the sorted set is built (reduce mode).
const ZADD_MEMBERS: usize = 2000;

