//! Tasks in Redis: submitting them, claiming them (new or stolen), keeping
//! a claim alive, and what Redis says about them (done, dead-lettered, or
//! still live in the stream).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply, StreamRangeReply,
    StreamReadOptions, StreamReadReply,
};
use redis::Commands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::connection::{ensure_group, Store};
use super::keys::{field, partition_index, Keys, GROUP};
use crate::input::InputRange;

/// One unit of work: a byte range of a file, with an id derived from what it
/// is, so that re-submissions and stolen copies are recognised as the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub range: InputRange,
}

impl Task {
    pub fn new(range: InputRange) -> Task {
        let identity = serde_json::to_vec(&range).expect("a range serialises");
        let id = hex::encode(&Sha256::digest(&identity)[..12]);
        Task { id, range }
    }
}

/// A stream entry as a worker sees it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The stream entry id (changes with every submission).
    pub id: String,
    pub task: Task,
    /// The partition whose stream it came from.
    pub partition: u32,
}

/// The fields of a task's stream entry: the seed's file-name field, the
/// task id and the full description.
pub fn entry_fields(task: &Task, keys: &Keys) -> Vec<(String, String)> {
    vec![
        (keys.fname_field.clone(), task.range.file.path.display().to_string()),
        (TASK_FIELD.into(), task.id.clone()),
        (SPEC_FIELD.into(), serde_json::to_string(task).expect("a task serialises")),
    ]
}

const TASK_FIELD: &str = "task";
const SPEC_FIELD: &str = "spec";

/// The XADD of one entry for `task`, to its partition's stream.
fn xadd_cmd(task: &Task, keys: &Keys) -> redis::Cmd {
    redis::Cmd::xadd(&keys.partition_of(&task.id).stream, "*", &entry_fields(task, keys))
}

/// Appends one entry for `task` to its partition's stream; its entry id.
pub fn xadd_task<C: redis::ConnectionLike>(conn: &mut C, keys: &Keys, task: &Task) -> redis::RedisResult<String> {
    xadd_cmd(task, keys).query(conn)
}

/// Entries of a stream reply split into tasks and ids of entries that are
/// not tasks of ours (a body deleted, or written by someone else).
fn entries_of(ids: Vec<StreamId>, partition: u32) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut unusable = Vec::new();
    for item in ids {
        match item.get::<String>(SPEC_FIELD).and_then(|s| serde_json::from_str::<Task>(&s).ok()) {
            Some(task) => entries.push(Entry { id: item.id, task, partition }),
            None => unusable.push(item.id),
        }
    }
    (entries, unusable)
}

impl Store {
    /// The partitions in the order a consumer visits them: its home
    /// partition first (so that workers spread over the primaries), then
    /// the others.
    fn visiting_order(&self, consumer: &str) -> Vec<usize> {
        let n = self.keys.partitions.len();
        let home = partition_index(consumer, n as u32) as usize;
        (0..n).map(|i| (home + i) % n).collect()
    }

    /// Submits tasks: one stream entry each, to the task's partition, in one
    /// round trip per node. Submitting a task twice is harmless (the
    /// done-set gate counts it once).
    pub fn submit(&mut self, tasks: &[&Task]) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| conn.batch(tasks.iter().map(|t| xadd_cmd(t, keys)).collect()))
    }

    /// A task idle past `min_idle_ms` in another consumer's hands, claimed
    /// for `consumer` (XAUTOCLAIM), and counted as stolen.
    ///
    /// Ids of pending entries whose bodies were deleted (XAUTOCLAIM's third
    /// element) are dropped from the pending list by Redis itself; their
    /// tasks are re-submitted by the coordinator's reconciliation.
    pub fn steal(&mut self, consumer: &str, min_idle_ms: u64) -> anyhow::Result<Option<Entry>> {
        for p in self.visiting_order(consumer) {
            let claimed: StreamAutoClaimReply = self.with_retry(|conn, keys| {
                conn.xautoclaim_options(&keys.partitions[p].stream, GROUP, consumer, min_idle_ms, "0-0", StreamAutoClaimOptions::default().count(1))
            })?;
            let (entries, unusable) = entries_of(claimed.claimed, p as u32);
            self.drop_unusable(p, &unusable)?;
            if let Some(entry) = entries.into_iter().next() {
                self.with_retry(|conn, keys| conn.hincr::<_, _, _, i64>(&keys.partitions[p].stats, field::STOLEN, 1))?;
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// The next undelivered task for `consumer`: from any partition, home
    /// first; when there is none, waits up to `block_ms` on the home
    /// partition (a blocking read cannot span the slots of a Cluster).
    pub fn read_new(&mut self, consumer: &str, block_ms: usize) -> anyhow::Result<Option<Entry>> {
        let order = self.visiting_order(consumer);
        let single = order.len() == 1;
        for (i, &p) in order.iter().enumerate() {
            let last = i + 1 == order.len();
            let options = StreamReadOptions::default().group(GROUP, consumer).count(1);
            // One partition: block on it. Several: a quick look at each, then
            // a short wait at home, so that no partition is starved.
            let options = if single { options.block(block_ms) } else { options };
            let read: Option<StreamReadReply> = self.with_retry(|conn, keys| conn.xread_options(&[&keys.partitions[p].stream], &[">"], &options))?;
            let ids = read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
            let (entries, unusable) = entries_of(ids, p as u32);
            self.drop_unusable(p, &unusable)?;
            if let Some(entry) = entries.into_iter().next() {
                return Ok(Some(entry));
            }
            if last && !single {
                std::thread::sleep(Duration::from_millis(block_ms.min(MULTI_PARTITION_IDLE_MS) as u64));
            }
        }
        Ok(None)
    }

    /// Entries that are not tasks are acknowledged away, with a warning.
    fn drop_unusable(&mut self, partition: usize, ids: &[String]) -> anyhow::Result<()> {
        for id in ids {
            tracing::warn!("dropping stream entry {id}: not a wc-host task");
            self.with_retry(|conn, keys| conn.xack::<_, _, _, i64>(&keys.partitions[partition].stream, GROUP, &[id]))?;
        }
        Ok(())
    }

    /// Resets the idle time of `entry` (XCLAIM to self) if `consumer` still
    /// owns it: a slow but live worker keeps a large task, and never takes
    /// back one that another worker stole while it was stalled.
    pub fn keep_claimed(&mut self, consumer: &str, entry_id: &str, partition: u32) -> anyhow::Result<bool> {
        self.with_retry(|conn, keys| {
            let stream = &keys.partitions[partition as usize].stream;
            let pending: StreamPendingCountReply = conn.xpending_count(stream, GROUP, entry_id, entry_id, 1)?;
            let ours = pending.ids.first().is_some_and(|p| p.consumer == consumer);
            if ours {
                redis::cmd("XCLAIM").arg(stream).arg(GROUP).arg(consumer).arg(0).arg(entry_id).arg("JUSTID").query::<redis::Value>(conn)?;
            }
            Ok(ours)
        })
    }

    /// Task ids of the stream entries that some worker will still get, in
    /// every partition.
    pub fn live_task_ids(&mut self) -> anyhow::Result<HashSet<String>> {
        let mut all = HashSet::new();
        for p in 0..self.keys.partitions.len() {
            all.extend(self.with_retry(|conn, keys| live_task_ids(conn, &keys.partitions[p].stream))?);
        }
        Ok(all)
    }

    /// For each id: is it in its partition's done-set?
    pub fn done_mask(&mut self, ids: &[String]) -> anyhow::Result<Vec<bool>> {
        let mut mask = vec![false; ids.len()];
        for (p, members) in self.by_partition(ids) {
            let chunk_ids: Vec<&String> = members.iter().map(|&i| &ids[i]).collect();
            let found = self.with_retry(|conn, keys| done_mask(conn, &keys.partitions[p].done, &chunk_ids))?;
            for (&i, done) in members.iter().zip(found) {
                mask[i] = done;
            }
        }
        Ok(mask)
    }

    /// For each id: done, or dead-lettered.
    pub fn finished_mask(&mut self, ids: &[String]) -> anyhow::Result<Vec<bool>> {
        let mut mask = self.done_mask(ids)?;
        let dead = self.dead_letters()?;
        for (m, id) in mask.iter_mut().zip(ids) {
            *m |= dead.contains_key(id);
        }
        Ok(mask)
    }

    /// Dead-lettered tasks of every partition: id -> error.
    pub fn dead_letters(&mut self) -> anyhow::Result<HashMap<String, String>> {
        let mut all = HashMap::new();
        for p in 0..self.keys.partitions.len() {
            all.extend(self.with_retry(|conn, keys| conn.hgetall::<_, HashMap<String, String>>(&keys.partitions[p].dead))?);
        }
        Ok(all)
    }

    /// Positions of `ids` grouped by the partition each belongs to.
    pub(super) fn by_partition(&self, ids: &[impl AsRef<str>]) -> Vec<(usize, Vec<usize>)> {
        let n = self.keys.partitions.len() as u32;
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); n as usize];
        for (i, id) in ids.iter().enumerate() {
            groups[partition_index(id.as_ref(), n) as usize].push(i);
        }
        groups.into_iter().enumerate().filter(|(_, g)| !g.is_empty()).collect()
    }
}

/// How long a worker with nothing to do waits between looks at every
/// partition of a job with several.
const MULTI_PARTITION_IDLE_MS: usize = 200;

fn done_mask<C: redis::ConnectionLike>(conn: &mut C, done: &str, ids: &[&String]) -> redis::RedisResult<Vec<bool>> {
    let mut mask = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let part: Vec<bool> = redis::cmd("SMISMEMBER").arg(done).arg(chunk).query(conn)?;
        mask.extend(part);
    }
    Ok(mask)
}

/// Task ids of the stream entries that some worker will still get: not yet
/// delivered to the group, or pending (delivered, not acked). Entries are
/// deleted when their task is committed or retried, but one can also be
/// stranded — delivered, then its pending record lost with a recreated
/// group — and those must be submitted again.
fn live_task_ids<C: redis::ConnectionLike>(conn: &mut C, stream: &str) -> redis::RedisResult<HashSet<String>> {
    ensure_group(conn, stream)?;
    let groups: StreamInfoGroupsReply = conn.xinfo_groups(stream)?;
    let last_delivered = groups.groups.iter().find(|g| g.name == GROUP).and_then(|g| parse_stream_id(&g.last_delivered_id)).unwrap_or((0, 0));
    const PAGE: usize = 1000;
    let mut pending = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: StreamPendingCountReply = conn.xpending_count(stream, GROUP, &start, "+", PAGE)?;
        pending.extend(page.ids.iter().map(|p| p.id.clone()));
        match page.ids.last() {
            Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
            _ => break,
        }
    }
    let mut ids = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: StreamRangeReply = conn.xrange_count(stream, &start, "+", PAGE)?;
        for entry in &page.ids {
            let live = parse_stream_id(&entry.id).is_some_and(|id| id > last_delivered) || pending.contains(&entry.id);
            if live {
                ids.extend(entry.get::<String>(TASK_FIELD));
            }
        }
        match page.ids.last() {
            Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
            _ => break,
        }
    }
    Ok(ids)
}

fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}
