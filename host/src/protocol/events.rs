//! The job's story, kept in Redis so that any machine can read it later:
//! fault and progress events in a capped stream (`wc:{J}:events`), and the
//! workers alive in a hash (`wc:{J}:workers`) refreshed by their heartbeats.
//!
//! Neither is part of the exactly-once protocol: an event is a record of what
//! happened, written best-effort (a failure to write one is logged and
//! ignored, never retried for long), and a restore may roll the last few
//! back like any other write since the snapshot.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::streams::StreamRangeReply;
use redis::Commands;
use serde::{Deserialize, Serialize};

use super::connection::Store;

/// At most about this many events per job (`XADD MAXLEN ~`): hours of
/// progress samples (two a second), and every fault of a troubled job.
pub const EVENTS_CAP: usize = 20_000;

/// How long a worker's record counts without a heartbeat (one about every
/// second) before readers treat the worker as gone; Redis drops the whole
/// hash three times as long after the last heartbeat of any worker.
pub const WORKER_TTL: Duration = Duration::from_secs(5);

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A coordinator started (or resumed) the job.
    Started,
    /// Planning is complete (`tasks` planned).
    Planned,
    /// A progress sample: `bytes` and `tasks` done so far.
    Progress,
    /// A worker stole a task idle past the claim timeout.
    TaskStolen,
    /// A worker process exited (or was killed).
    WorkerDied,
    /// The coordinator started a worker in place of a dead one.
    WorkerRespawned,
    /// The coordinator saw Redis's run id change.
    RedisRestart,
    /// Tasks submitted again (lost in a restore, or stranded).
    TasksResubmitted,
    /// A BGSAVE completed.
    CheckpointTaken,
    /// A BGSAVE failed or was refused.
    CheckpointFailed,
    /// A task failed `MAX_ATTEMPTS` times.
    DeadLetter,
    /// Every task done or dead-lettered; the counts are published.
    Finished,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Planned => "planned",
            EventKind::Progress => "progress",
            EventKind::TaskStolen => "task_stolen",
            EventKind::WorkerDied => "worker_died",
            EventKind::WorkerRespawned => "worker_respawned",
            EventKind::RedisRestart => "redis_restart",
            EventKind::TasksResubmitted => "tasks_resubmitted",
            EventKind::CheckpointTaken => "checkpoint_taken",
            EventKind::CheckpointFailed => "checkpoint_failed",
            EventKind::DeadLetter => "dead_letter",
            EventKind::Finished => "finished",
        }
    }

    /// Faults (as opposed to progress and milestones).
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            EventKind::TaskStolen
                | EventKind::WorkerDied
                | EventKind::WorkerRespawned
                | EventKind::RedisRestart
                | EventKind::TasksResubmitted
                | EventKind::CheckpointFailed
                | EventKind::DeadLetter
        )
    }

    const ALL: [EventKind; 12] = [
        EventKind::Started,
        EventKind::Planned,
        EventKind::Progress,
        EventKind::TaskStolen,
        EventKind::WorkerDied,
        EventKind::WorkerRespawned,
        EventKind::RedisRestart,
        EventKind::TasksResubmitted,
        EventKind::CheckpointTaken,
        EventKind::CheckpointFailed,
        EventKind::DeadLetter,
        EventKind::Finished,
    ];

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event as read back: when (ms since the epoch, Redis's clock: the
/// stream entry id), what, and its fields (`task`, `worker`, `error`,
/// `bytes`, `tasks`, `count`, ...).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub kind: EventKind,
    pub fields: Vec<(String, String)>,
}

impl Event {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn number(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// What a worker publishes about itself at each heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub name: String,
    pub host: String,
    pub pid: u32,
    /// The task being counted (file and byte range), if any.
    pub task: Option<String>,
    /// Bytes counted and committed since the worker started, per second.
    pub bytes_per_second: f64,
    /// The last heartbeat, ms since the epoch (the worker's clock).
    pub heartbeat_ms: u64,
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Events are extras: a Redis that is down costs at most this much waiting.
const EVENT_PATIENCE: Duration = Duration::from_secs(2);

impl Store {
    /// Appends an event to the job's capped stream; best-effort (see the
    /// module doc).
    pub fn record_event(&mut self, kind: EventKind, fields: &[(&str, String)]) {
        let result = self.with_retry_for(EVENT_PATIENCE, |conn, keys| {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&keys.events).arg("MAXLEN").arg("~").arg(EVENTS_CAP).arg("*").arg("kind").arg(kind.as_str());
            for (name, value) in fields {
                cmd.arg(*name).arg(value);
            }
            cmd.query::<String>(conn)
        });
        if let Err(e) = result {
            tracing::debug!("event {} not recorded: {e:#}", kind.as_str());
        }
    }

    /// Every event of the job still in the stream, oldest first.
    pub fn events(&mut self) -> anyhow::Result<Vec<Event>> {
        self.with_retry(|conn, keys| {
            const PAGE: usize = 1000;
            let mut events = Vec::new();
            let mut start = "-".to_string();
            loop {
                let page: StreamRangeReply = conn.xrange_count(&keys.events, &start, "+", PAGE)?;
                for entry in &page.ids {
                    let at_ms = entry.id.split('-').next().and_then(|ms| ms.parse().ok()).unwrap_or(0);
                    let mut kind = None;
                    let mut fields = Vec::new();
                    for (name, value) in &entry.map {
                        let value: String = redis::from_redis_value(value).unwrap_or_default();
                        if name == "kind" {
                            kind = EventKind::parse(&value);
                        } else {
                            fields.push((name.clone(), value));
                        }
                    }
                    fields.sort();
                    if let Some(kind) = kind {
                        events.push(Event { at_ms, kind, fields });
                    }
                }
                match page.ids.last() {
                    Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
                    _ => break,
                }
            }
            Ok(events)
        })
    }

    /// Publishes `record` under its name in the job's worker hash and gives
    /// the hash [`WORKER_TTL`] more to live; best-effort.
    pub fn heartbeat_worker(&mut self, record: &WorkerRecord) {
        let value = serde_json::to_string(record).expect("a worker record serialises");
        let result = self.with_retry_for(EVENT_PATIENCE, |conn, keys| {
            conn.hset::<_, _, _, i64>(&keys.workers, &record.name, &value)?;
            conn.expire::<_, i64>(&keys.workers, 3 * WORKER_TTL.as_secs() as i64)
        });
        if let Err(e) = result {
            tracing::debug!("worker record not written: {e:#}");
        }
    }

    /// Removes a worker's record (it is exiting, or its coordinator saw it
    /// die); best-effort.
    pub fn forget_worker(&mut self, name: &str) {
        let _ = self.with_retry_for(EVENT_PATIENCE, |conn, keys| conn.hdel::<_, _, i64>(&keys.workers, name));
    }

    /// The workers whose last heartbeat is recent (within [`WORKER_TTL`]),
    /// by name.
    pub fn live_workers(&mut self) -> anyhow::Result<Vec<WorkerRecord>> {
        let raw: std::collections::HashMap<String, String> = self.with_retry(|conn, keys| conn.hgetall(&keys.workers))?;
        let now = now_ms();
        let mut workers: Vec<WorkerRecord> = raw
            .into_values()
            .filter_map(|v| serde_json::from_str::<WorkerRecord>(&v).ok())
            .filter(|w| now.saturating_sub(w.heartbeat_ms) <= WORKER_TTL.as_millis() as u64)
            .collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(workers)
    }
}
