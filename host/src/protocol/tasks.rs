//! Tasks in Redis: submitting them, claiming them (new or stolen), keeping
//! a claim alive, and what Redis says about them (done, dead-lettered, or
//! still live in the stream).

use std::collections::{HashMap, HashSet};

use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply, StreamRangeReply,
    StreamReadOptions, StreamReadReply,
};
use redis::Commands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::connection::{ensure_group, Store};
use super::keys::{field, Keys, GROUP};
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

/// Appends one entry for `task` to the stream; its entry id.
pub fn xadd_task(conn: &mut redis::Connection, keys: &Keys, task: &Task) -> redis::RedisResult<String> {
    conn.xadd(&keys.stream, "*", &entry_fields(task, keys))
}

/// Entries of a stream reply split into tasks and ids of entries that are
/// not tasks of ours (a body deleted, or written by someone else).
fn entries_of(ids: Vec<StreamId>) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut unusable = Vec::new();
    for item in ids {
        match item.get::<String>(SPEC_FIELD).and_then(|s| serde_json::from_str::<Task>(&s).ok()) {
            Some(task) => entries.push(Entry { id: item.id, task }),
            None => unusable.push(item.id),
        }
    }
    (entries, unusable)
}

impl Store {
    /// Submits tasks: one stream entry each, in one pipeline. Submitting a
    /// task twice is harmless (the done-set gate counts it once).
    pub fn submit(&mut self, tasks: &[&Task]) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| {
            let mut pipe = redis::pipe();
            for task in tasks {
                pipe.xadd(&keys.stream, "*", &entry_fields(task, keys)).ignore();
            }
            pipe.query::<()>(conn)
        })
    }

    /// A task idle past `min_idle_ms` in another consumer's hands, claimed
    /// for `consumer` (XAUTOCLAIM), and counted as stolen.
    ///
    /// Ids of pending entries whose bodies were deleted (XAUTOCLAIM's third
    /// element) are dropped from the pending list by Redis itself; their
    /// tasks are re-submitted by the coordinator's reconciliation.
    pub fn steal(&mut self, consumer: &str, min_idle_ms: u64) -> anyhow::Result<Option<Entry>> {
        let claimed: StreamAutoClaimReply = self.with_retry(|conn, keys| {
            conn.xautoclaim_options(&keys.stream, GROUP, consumer, min_idle_ms, "0-0", StreamAutoClaimOptions::default().count(1))
        })?;
        let (entries, unusable) = entries_of(claimed.claimed);
        self.drop_unusable(&unusable)?;
        let entry = entries.into_iter().next();
        if entry.is_some() {
            self.with_retry(|conn, keys| conn.hincr::<_, _, _, i64>(&keys.meta, field::STOLEN, 1))?;
        }
        Ok(entry)
    }

    /// The next undelivered task for `consumer`, waiting up to `block_ms`.
    pub fn read_new(&mut self, consumer: &str, block_ms: usize) -> anyhow::Result<Option<Entry>> {
        let read: Option<StreamReadReply> = self.with_retry(|conn, keys| {
            let options = StreamReadOptions::default().group(GROUP, consumer).count(1).block(block_ms);
            conn.xread_options(&[&keys.stream], &[">"], &options)
        })?;
        let ids = read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        let (entries, unusable) = entries_of(ids);
        self.drop_unusable(&unusable)?;
        Ok(entries.into_iter().next())
    }

    /// Entries that are not tasks are acknowledged away, with a warning.
    fn drop_unusable(&mut self, ids: &[String]) -> anyhow::Result<()> {
        for id in ids {
            tracing::warn!("dropping stream entry {id}: not a wc-host task");
            self.with_retry(|conn, keys| conn.xack::<_, _, _, i64>(&keys.stream, GROUP, &[id]))?;
        }
        Ok(())
    }

    /// Resets the idle time of `entry_id` (XCLAIM to self) if `consumer`
    /// still owns it: a slow but live worker keeps a large task, and never
    /// takes back one that another worker stole while it was stalled.
    pub fn keep_claimed(&mut self, consumer: &str, entry_id: &str) -> anyhow::Result<bool> {
        self.with_retry(|conn, keys| {
            let pending: StreamPendingCountReply = conn.xpending_count(&keys.stream, GROUP, entry_id, entry_id, 1)?;
            let ours = pending.ids.first().is_some_and(|p| p.consumer == consumer);
            if ours {
                redis::cmd("XCLAIM").arg(&keys.stream).arg(GROUP).arg(consumer).arg(0).arg(entry_id).arg("JUSTID").query::<redis::Value>(conn)?;
            }
            Ok(ours)
        })
    }

    /// Task ids of the stream entries that some worker will still get.
    pub fn live_task_ids(&mut self) -> anyhow::Result<HashSet<String>> {
        self.with_retry(live_task_ids)
    }

    /// For each id: is it in the done-set?
    pub fn done_mask(&mut self, ids: &[String]) -> anyhow::Result<Vec<bool>> {
        self.with_retry(|conn, keys| done_mask(conn, keys, ids))
    }

    /// For each id: done, or dead-lettered.
    pub fn finished_mask(&mut self, ids: &[String]) -> anyhow::Result<Vec<bool>> {
        self.with_retry(|conn, keys| {
            let mut mask = done_mask(conn, keys, ids)?;
            let dead: HashSet<String> = conn.hkeys(&keys.dead)?;
            for (m, id) in mask.iter_mut().zip(ids) {
                *m |= dead.contains(id);
            }
            Ok(mask)
        })
    }

    /// Dead-lettered tasks: id -> error.
    pub fn dead_letters(&mut self) -> anyhow::Result<HashMap<String, String>> {
        self.with_retry(|conn, keys| conn.hgetall(&keys.dead))
    }
}

fn done_mask(conn: &mut redis::Connection, keys: &Keys, ids: &[String]) -> redis::RedisResult<Vec<bool>> {
    let mut mask = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let part: Vec<bool> = redis::cmd("SMISMEMBER").arg(&keys.done).arg(chunk).query(conn)?;
        mask.extend(part);
    }
    Ok(mask)
}

/// Task ids of the stream entries that some worker will still get: not yet
/// delivered to the group, or pending (delivered, not acked). Entries are
/// deleted when their task is committed or retried, but one can also be
/// stranded — delivered, then its pending record lost with a recreated
/// group — and those must be submitted again.
fn live_task_ids(conn: &mut redis::Connection, keys: &Keys) -> redis::RedisResult<HashSet<String>> {
    ensure_group(conn, keys)?;
    let groups: StreamInfoGroupsReply = conn.xinfo_groups(&keys.stream)?;
    let last_delivered = groups.groups.iter().find(|g| g.name == GROUP).and_then(|g| parse_stream_id(&g.last_delivered_id)).unwrap_or((0, 0));
    const PAGE: usize = 1000;
    let mut pending = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: StreamPendingCountReply = conn.xpending_count(&keys.stream, GROUP, &start, "+", PAGE)?;
        pending.extend(page.ids.iter().map(|p| p.id.clone()));
        match page.ids.last() {
            Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
            _ => break,
        }
    }
    let mut ids = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: StreamRangeReply = conn.xrange_count(&keys.stream, &start, "+", PAGE)?;
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
