//! The counts in Redis: reduce mode's per-task result blobs, the job's
//! sorted set as it is built and published, and reading it back.

use redis::Commands;
use rustc_hash::FxHashMap;

use super::connection::{Patience, Store};
use super::{blob, dump};
use crate::tally::Tally;

/// Members per ZADD when the sorted set is written without RESTORE.
const ZADD_MEMBERS: usize = 2000;

/// How the job's sorted set is held in Redis once published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetEncoding {
    /// Redis's skiplist and hash table: a member's score or rank in
    /// O(log n); about 100 bytes a key, loaded at about 0.5 µs a key.
    Indexed,
    /// One listpack (see `dump`): about a seventh of the memory and loaded
    /// ten times faster, but every ZSCORE, ZRANK, ZCARD or top-N read walks
    /// the whole set (about 10-30 ms at 2 M keys, Redis blocked meanwhile).
    /// Redis makes it indexed when it next loads it from disk (with its
    /// default limits).
    Compact,
}

impl SetEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            SetEncoding::Indexed => "indexed",
            SetEncoding::Compact => "compact",
        }
    }
}

/// The server settings that let a sorted set stay a listpack, set for the
/// time of the RESTORE of a compact set and put back after it.
const LISTPACK_LIMITS: [&str; 2] = ["zset-max-listpack-entries", "zset-max-listpack-value"];

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
    /// Redis has no empty sorted set. `Compact` falls back to `Indexed` when
    /// the server cannot keep the set a listpack (Redis before 7.0, CONFIG
    /// refused, a Cluster, over a listpack's size). Returns the time spent
    /// building the payload (the rest is Redis's) and the encoding written.
    pub fn write_building_counts(&mut self, pairs: &[(&str, u64)], encoding: SetEncoding) -> anyhow::Result<(std::time::Duration, SetEncoding)> {
        if pairs.is_empty() {
            self.with_retry(|conn, keys| conn.del::<_, ()>(&keys.counts_building))?;
            return Ok((std::time::Duration::ZERO, encoding));
        }
        if encoding == SetEncoding::Compact {
            if let Some(written) = self.write_compact(pairs) {
                return Ok(written);
            }
        }
        let started = std::time::Instant::now();
        let payload = dump::zset_payload(pairs);
        let encoded = started.elapsed();
        // A refusal is not transient, so it is not retried.
        let restored = self.with_retry(|conn, keys| {
            redis::cmd("RESTORE").arg(&keys.counts_building).arg(0).arg(&payload).arg("REPLACE").query::<()>(conn)
        });
        let Err(e) = restored else { return Ok((encoded, SetEncoding::Indexed)) };
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
        Ok((encoded, SetEncoding::Indexed))
    }

    /// The compact set, when this server can hold one (else `None`, having
    /// said why, and nothing written): the time spent on the payload, and
    /// the encoding the server holds.
    fn write_compact(&mut self, pairs: &[(&str, u64)]) -> Option<(std::time::Duration, SetEncoding)> {
        if self.deployment().is_cluster() {
            tracing::warn!("--set-encoding compact is not done on a Cluster (the node holding the set cannot be configured through the cluster connection); publishing it indexed");
            return None;
        }
        let started = std::time::Instant::now();
        let Some(payload) = dump::zset_listpack_payload(pairs) else {
            tracing::warn!("the sorted set does not fit one listpack (1 GiB, counts below 2^53); publishing it indexed");
            return None;
        };
        let encoded = started.elapsed();
        let longest = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        if let Err(e) = self.restore_as_listpack(&payload, pairs.len(), longest) {
            tracing::warn!("the sorted set cannot be published compact here ({e:#}); publishing it indexed");
            return None;
        }
        tracing::debug!("compact sorted set of {} keys: payload {} bytes, restored in {:?}", pairs.len(), payload.len(), started.elapsed() - encoded);
        // A server restarted between raising its limits and the RESTORE
        // (which was then retried) made the set indexed as it loaded it:
        // say what it holds.
        let held: Option<String> =
            self.with_retry(|conn, keys| redis::cmd("OBJECT").arg("ENCODING").arg(&keys.counts_building).query(conn)).ok().flatten();
        let written = if held.as_deref().is_none_or(|e| e == "listpack") { SetEncoding::Compact } else { SetEncoding::Indexed };
        Some((encoded, written))
    }

    /// RESTOREs a listpack payload with the server's listpack limits raised
    /// to hold it, then puts them back: the set stays a listpack (Redis
    /// checks the limits only as a set is loaded or grows), and nothing
    /// else on the server is affected past this call. Fails, writing
    /// nothing, when the server cannot (Redis before 7.0, CONFIG refused).
    fn restore_as_listpack(&mut self, payload: &[u8], members: usize, longest: usize) -> anyhow::Result<()> {
        let mut before = [0u64; 2];
        for (limit, value) in LISTPACK_LIMITS.iter().zip(&mut before) {
            let reply: Vec<String> = self.with_retry(|conn, _| redis::cmd("CONFIG").arg("GET").arg(limit).query(conn))?;
            *value = reply.get(1).and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("CONFIG GET {limit}: no value"))?;
        }
        let needed = [members as u64, longest as u64];
        let raised = [before[0].max(needed[0]), before[1].max(needed[1])];
        let set_limits = |store: &mut Store, values: [u64; 2]| {
            store.with_retry(|conn, _| {
                redis::cmd("CONFIG").arg("SET").arg(LISTPACK_LIMITS[0]).arg(values[0]).arg(LISTPACK_LIMITS[1]).arg(values[1]).query::<()>(conn)
            })
        };
        set_limits(self, raised)?;
        let restored = self.with_retry(|conn, keys| {
            redis::cmd("RESTORE").arg(&keys.counts_building).arg(0).arg(payload).arg("REPLACE").query::<()>(conn)
        });
        if let Err(e) = set_limits(self, before) {
            tracing::warn!(
                "could not put the server's listpack limits back ({e:#}): run CONFIG SET {} {} {} {} on it",
                LISTPACK_LIMITS[0],
                before[0],
                LISTPACK_LIMITS[1],
                before[1]
            );
        }
        restored
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

    /// The count at each of `ranks` (ascending; 1 = the most frequent key)
    /// of the job's sorted set, for a rank-frequency plot; ranks past the
    /// end are left out. An indexed set: one pipelined round trip. A compact
    /// one, where each read by rank scans the set: read in pages of
    /// members, once through.
    pub fn counts_at_ranks(&mut self, ranks: &[u64]) -> anyhow::Result<Vec<(u64, u64)>> {
        if ranks.is_empty() {
            return Ok(vec![]);
        }
        // Unknown (an ACL without OBJECT): read by rank, which is right for
        // either encoding.
        let encoding: Option<String> =
            self.with_retry(|conn, keys| redis::cmd("OBJECT").arg("ENCODING").arg(&keys.counts).query(conn)).ok().flatten();
        if encoding.as_deref() == Some("listpack") {
            const PAGE: u64 = 200_000;
            let mut found = Vec::with_capacity(ranks.len());
            let mut wanted = ranks.iter().copied().filter(|&r| r > 0).peekable();
            let mut start = 0u64; // rank - 1 of the page's first member
            while let Some(&next) = wanted.peek() {
                start = start.max((next - 1) / PAGE * PAGE);
                let page: Vec<(Vec<u8>, f64)> = self.with_retry(|conn, keys| conn.zrevrange_withscores(&keys.counts, start as isize, (start + PAGE - 1) as isize))?;
                while let Some(&rank) = wanted.peek().filter(|&&r| r - 1 < start + PAGE) {
                    if let Some((_, score)) = page.get((rank - 1 - start) as usize) {
                        found.push((rank, *score as u64));
                    }
                    wanted.next();
                }
                if (page.len() as u64) < PAGE {
                    break;
                }
                start += PAGE;
            }
            return Ok(found);
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
