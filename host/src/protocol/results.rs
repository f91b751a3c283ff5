//! The counts in Redis: reduce mode's per-task result blobs, the job's
//! sorted set as it is built and published, and reading it back.

use redis::Commands;
use rustc_hash::FxHashMap;

use super::connection::{Patience, Store};
use super::{blob, dump};
use crate::tally::Tally;

/// Members per ZADD when the sorted set is written without RESTORE.
const ZADD_MEMBERS: usize = 2000;

impl Store {
    /// Adds the result blobs of `ids` into `total`; returns the ids that
    /// had one (a restore may have rolled a done task back since it was
    /// seen done: it will be done and merged again).
    pub fn merge_results(&mut self, ids: &[&String], total: &mut Tally) -> anyhow::Result<Vec<String>> {
        let mut merged = Vec::new();
        for (p, members) in self.by_partition(ids) {
            let ids: Vec<&String> = members.iter().map(|&i| ids[i]).collect();
            for chunk in ids.chunks(32) {
                let blobs: Vec<Option<Vec<u8>>> =
                    self.with_retry(|conn, keys| redis::cmd("HMGET").arg(&keys.partitions[p].results).arg(chunk).query(conn))?;
                for (id, blob) in chunk.iter().zip(blobs) {
                    let Some(blob) = blob else { continue };
                    blob::decode_into(&blob, total).map_err(|e| anyhow::anyhow!("task {id}: {e}"))?;
                    merged.push(id.to_string());
                }
            }
        }
        Ok(merged)
    }

    /// Writes `pairs` (in the sorted set's own order: count, then key) as
    /// the sorted set being built, replacing any earlier build: one RESTORE
    /// of a DUMP payload, or pipelined ZADDs over two connections when
    /// RESTORE is refused (an ACL without it). Nothing to write for no pairs:
    /// Redis has no empty sorted set. Returns the time spent building the
    /// payload (the rest is Redis's).
    pub fn write_building_counts(&mut self, pairs: &[(&str, u64)]) -> anyhow::Result<std::time::Duration> {
        if pairs.is_empty() {
            self.with_retry(|conn, keys| conn.del::<_, ()>(&keys.counts_building))?;
            return Ok(std::time::Duration::ZERO);
        }
        let started = std::time::Instant::now();
        let payload = dump::zset_payload(pairs);
        let encoded = started.elapsed();
        // A refusal is not transient, so it is not retried.
        let restored = self.with_retry(|conn, keys| {
            redis::cmd("RESTORE").arg(&keys.counts_building).arg(0).arg(&payload).arg("REPLACE").query::<()>(conn)
        });
        let Err(e) = restored else { return Ok(encoded) };
        tracing::warn!("RESTORE of the sorted set refused ({e:#}); writing it with ZADD instead (slower)");
        self.with_retry(|conn, keys| conn.del::<_, ()>(&keys.counts_building))?;
        // Two connections: one formats and sends while Redis works on the
        // other's batch.
        let half = pairs.len().div_ceil(2);
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let writers: Vec<_> = pairs
                .chunks(half)
                .map(|part| {
                    let mut store = self.another(Patience::Coordinator);
                    scope.spawn(move || store.zadd_building(part))
                })
                .collect();
            for w in writers {
                w.join().expect("a writer thread does not panic")?;
            }
            Ok(())
        })?;
        Ok(encoded)
    }

    fn zadd_building(&mut self, pairs: &[(&str, u64)]) -> anyhow::Result<()> {
        for batch in pairs.chunks(ZADD_MEMBERS * 8) {
            self.with_retry(|conn, keys| {
                let cmds = batch
                    .chunks(ZADD_MEMBERS)
                    .map(|chunk| {
                        let members: Vec<(u64, &[u8])> = chunk.iter().map(|(k, n)| (*n, k.as_bytes())).collect();
                        redis::Cmd::zadd_multiple(&keys.counts_building, &members)
                    })
                    .collect();
                conn.batch(cmds)
            })?;
        }
        Ok(())
    }

    /// The top `n` keys by count desc, then key asc (ties at the cut
    /// included before sorting, so the order is exact), and the number of keys.
    pub fn top_keys(&mut self, n: usize) -> anyhow::Result<(Vec<(String, u64)>, u64)> {
        self.with_retry(|conn, keys| {
            let key = &keys.counts;
            let distinct: u64 = conn.zcard(key)?;
            if n == 0 || distinct == 0 {
                return Ok((vec![], distinct));
            }
            let nth: Vec<(Vec<u8>, f64)> = conn.zrevrange_withscores(key, n as isize - 1, n as isize - 1)?;
            let min = nth.first().map_or(0.0, |(_, s)| *s);
            let candidates: Vec<(Vec<u8>, f64)> = conn.zrevrangebyscore_withscores(key, "+inf", min)?;
            let mut top: Vec<(String, u64)> = candidates.into_iter().map(|(k, s)| (String::from_utf8_lossy(&k).into_owned(), s as u64)).collect();
            top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(n);
            Ok((top, distinct))
        })
    }

    /// The count at each of `ranks` (1 = the most frequent key) of the
    /// job's sorted set, for a rank-frequency plot; ranks past the end are
    /// left out. One pipelined round trip.
    pub fn counts_at_ranks(&mut self, ranks: &[u64]) -> anyhow::Result<Vec<(u64, u64)>> {
        if ranks.is_empty() {
            return Ok(vec![]);
        }
        self.with_retry(|conn, keys| {
            let mut pipe = redis::pipe();
            for rank in ranks {
                let i = rank.saturating_sub(1) as isize;
                pipe.zrevrange_withscores(&keys.counts, i, i);
            }
            let replies: Vec<Vec<(Vec<u8>, f64)>> = pipe.query(conn)?;
            Ok(ranks.iter().zip(replies).filter_map(|(rank, r)| r.first().map(|(_, s)| (*rank, *s as u64))).collect())
        })
    }

    /// Every count of the job's sorted set, read in pages.
    pub fn all_counts(&mut self) -> anyhow::Result<FxHashMap<String, u64>> {
        self.with_retry(|conn, keys| {
            let mut counts = FxHashMap::default();
            let mut cursor = 0u64;
            loop {
                let (next, page): (u64, Vec<(Vec<u8>, f64)>) = redis::cmd("ZSCAN").arg(&keys.counts).arg(cursor).arg("COUNT").arg(10_000).query(conn)?;
                for (k, s) in page {
                    counts.insert(String::from_utf8_lossy(&k).into_owned(), s as u64);
                }
                if next == 0 {
                    return Ok(counts);
                }
                cursor = next;
            }
        })
    }
}
