//! Reduce mode's end of a job: merging the per-task results and publishing
//! them as the job's sorted set (see `wc_publish_counts`).

use std::collections::HashSet;
use std::time::Instant;

use super::Coordinator;
use crate::protocol::SetEncoding;
use crate::tally::Tally;

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
        let done = self.store.done_mask(&ids)?;
        let fresh: Vec<&String> = ids.iter().zip(&done).filter(|(_, d)| **d).map(|(id, _)| id).collect();
        let merged = self.store.merge_results(&fresh, &mut self.merged)?;
        self.merged_tasks.extend(merged);
        Ok(fresh.len())
    }

    /// Reduce mode, at the end: completes the merge and publishes it as the
    /// job's sorted set, atomically and only if complete
    /// (`wc_publish_counts`). Idempotent: safe to redo, so the merged counts
    /// stay in `merged` until the publish is known to be safe.
    pub(super) fn reduce(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let ids = self.manifest_ids();
        let done = self.store.done_mask(&ids)?;
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
        let (pairs, order) = sorted_by_count_then_key(&self.merged);
        let view = PublishedView::of(&pairs, self.config.top.max(crate::report_cmd::REPORT_TOP));
        let sorted = started.elapsed();
        let (encode, encoding) = self.store.write_building_counts(&pairs, self.set_encoding)?;
        let expected = self.merged.len();
        self.store.publish_counts(expected)?;
        let written = started.elapsed();
        self.published = Some(Published { order, view, encoding });
        tracing::debug!(
            "reduce: last merge {merged:?}, sort {:?}, sorted set of {expected} keys encoded in {encode:?}, written and published in {:?}",
            sorted - merged,
            written - sorted - encode
        );
        // A reduce redone (after a restart) replaces the timings of the one before.
        let phases = &mut self.phases;
        phases.last_merge = merged.as_secs_f64();
        phases.sort = (sorted - merged).as_secs_f64();
        phases.encode = encode.as_secs_f64();
        phases.load = (written - sorted - encode).as_secs_f64();
        Ok(())
    }
}

/// The counts in the sorted set's own order (count, then key), and that
/// order as positions in the tally's iteration order (kept for `--output`).
/// Sorted on inline integers first (the count and the key's first 16
/// bytes), the keys themselves compared only on a tie: several times faster
/// than comparing through the strings, which matters with millions of keys.
/// Each entry carries its key, so the result is read in order rather than
/// gathered from the tally at random (a cache miss a key).
pub(super) fn sorted_by_count_then_key(counts: &Tally) -> (Vec<(&str, u64)>, Vec<u32>) {
    use rayon::prelude::*;
    struct Entry<'a> {
        prefix: u128,
        count: u64,
        index: u32,
        key: &'a str,
    }
    let pairs: Vec<(&str, u64)> = counts.iter().collect();
    let mut entries: Vec<Entry> = pairs
        .par_iter()
        .enumerate()
        .map(|(i, &(key, count))| {
            let mut prefix = [0u8; 16];
            let head = &key.as_bytes()[..key.len().min(16)];
            prefix[..head.len()].copy_from_slice(head);
            Entry { prefix: u128::from_be_bytes(prefix), count, index: i as u32, key }
        })
        .collect();
    drop(pairs);
    // Nothing else runs after the last commit: the sort uses every core.
    entries.par_sort_unstable_by(|a, b| (a.count, a.prefix).cmp(&(b.count, b.prefix)).then_with(|| a.key.cmp(b.key)));
    let sorted = entries.par_iter().map(|e| (e.key, e.count)).collect();
    let order = entries.par_iter().map(|e| e.index).collect();
    (sorted, order)
}

/// The pairs of `counts` in `order` (from [`sorted_by_count_then_key`]).
fn in_order<'a>(counts: &'a Tally, order: &[u32]) -> Vec<(&'a str, u64)> {
    use rayon::prelude::*;
    let pairs: Vec<(&str, u64)> = counts.iter().collect();
    order.par_iter().map(|&i| pairs[i as usize]).collect()
}

/// What a reduce published: the order of the merged counts (positions in
/// the tally's iteration order, for `--output`), what the summary and
/// report show of them, and how the set is held.
#[derive(Debug)]
pub(super) struct Published {
    pub order: Vec<u32>,
    pub view: PublishedView,
    pub encoding: SetEncoding,
}

/// What the summary and the report show of the published counts, taken
/// from the sorted pairs as they are made (reading them back from a compact
/// set would scan it once per read).
#[derive(Debug, Clone)]
pub(super) struct PublishedView {
    /// The most frequent keys, count descending then key.
    pub top: Vec<(String, u64)>,
    /// The count at each rank of the report's rank-frequency plot.
    pub rank_counts: Vec<(u64, u64)>,
    pub distinct: u64,
}

impl PublishedView {
    /// `ascending`: the pairs in the sorted set's order.
    fn of(ascending: &[(&str, u64)], top: usize) -> PublishedView {
        let len = ascending.len();
        // The keys with at least the top-th largest count, ties included,
        // then in the summary's order.
        let floor = len.checked_sub(top.max(1)).map_or(0, |i| ascending[i].1);
        let from = ascending.partition_point(|&(_, n)| n < floor);
        let mut best: Vec<(String, u64)> = ascending[from..].iter().map(|&(k, n)| (k.to_string(), n)).collect();
        best.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        best.truncate(top);
        let rank_counts = crate::report_cmd::sample_ranks(len as u64).into_iter().map(|r| (r, ascending[len - r as usize].1)).collect();
        PublishedView { top: best, rank_counts, distinct: len as u64 }
    }
}

/// `--output`'s order, count descending then key, from the sorted set's
/// (`order`, of these very counts): its runs of equal counts, last run
/// first, so that nothing is sorted twice.
pub(super) fn by_count_descending<'a>(counts: &'a Tally, order: &[u32]) -> Vec<(&'a str, u64)> {
    debug_assert_eq!(order.len(), counts.len(), "the order of other counts");
    let ascending = in_order(counts, order);
    let mut out = Vec::with_capacity(ascending.len());
    let mut end = ascending.len();
    while end > 0 {
        let count = ascending[end - 1].1;
        let start = ascending[..end].partition_point(|&(_, n)| n < count);
        out.extend_from_slice(&ascending[start..end]);
        end = start;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_count_then_key_bytes_even_past_the_inline_prefix() {
        let mut counts = crate::count::CountMap::default();
        let mut seed = 7u64;
        for i in 0..50_000u64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Shared 16-byte prefixes, so ties are broken past the inline part.
            let key = format!("{}{:x}", ["sixteen-bytes-xx", "sixteen-bytes-xy", "", "é"][(seed >> 60) as usize % 4], seed >> 40);
            *counts.entry(key).or_insert(0) += 1 + (i % 7) * ((seed >> 33) % 3);
        }
        let mut tally = Tally::new();
        tally.add_all(counts.iter().map(|(k, n)| (k.as_str(), *n)));
        let (got, order) = sorted_by_count_then_key(&tally);
        assert_eq!(in_order(&tally, &order), got);
        let mut want: Vec<(&str, u64)> = counts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        want.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
        assert_eq!(got, want);
        // `--output`'s order is the one `count::sort_desc` gives.
        let want_desc = crate::count::sort_desc(counts.iter().map(|(k, n)| (k.as_str(), *n)).collect());
        assert_eq!(by_count_descending(&tally, &order), want_desc);
        // The summary's top keys and the report's ranks, from the same pairs.
        let view = PublishedView::of(&got, 25);
        let want_top: Vec<(String, u64)> = want_desc.iter().take(25).map(|(k, n)| (k.to_string(), *n)).collect();
        assert_eq!(view.top, want_top);
        assert_eq!(view.distinct, want_desc.len() as u64);
        for (rank, count) in &view.rank_counts {
            assert_eq!(*count, want_desc[*rank as usize - 1].1, "rank {rank}");
        }
        assert_eq!(view.rank_counts.last().map(|r| r.0), Some(want_desc.len() as u64));
    }
}
