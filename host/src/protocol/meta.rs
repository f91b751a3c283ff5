//! A job's meta hash: what the job is (so any worker can join it with just
//! the job id) and its counters, typed.

use std::collections::HashMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::keys::{field, Keys, STATE_FINISHED};
use crate::input::{ColumnMap, Header};

/// How workers commit counts; both go through the same done-set gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitMode {
    /// One blob per task; the sorted set is built once, at the end.
    Reduce,
    /// ZINCRBY per (task, key) as tasks land: the sorted set is live.
    Live,
}

impl CommitMode {
    pub const NAMES: [&'static str; 2] = ["reduce", "live"];

    pub fn as_str(self) -> &'static str {
        match self {
            CommitMode::Reduce => "reduce",
            CommitMode::Live => "live",
        }
    }
}

impl std::str::FromStr for CommitMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<CommitMode> {
        match s {
            "reduce" => Ok(CommitMode::Reduce),
            "live" => Ok(CommitMode::Live),
            other => anyhow::bail!("unknown commit mode `{other}` (known: reduce, live)"),
        }
    }
}

/// What a job is, stored in its meta hash.
#[derive(Clone, Debug, PartialEq)]
pub struct JobMeta {
    pub plugin_hash: String,
    pub plugin_name: String,
    pub params: Vec<(String, String)>,
    pub claim_timeout: f64,
    pub max_attempts: u32,
    pub stream_name: String,
    pub count_name: String,
    pub fname_field: String,
    pub total_tasks: u64,
    pub total_bytes: u64,
    pub commit_mode: CommitMode,
    /// Partitions the tasks are spread over (see `Keys`).
    pub partitions: u32,
    /// Replicas that must acknowledge each commit (0: none asked).
    pub replicas_ack: u32,
    /// The partitions' hash tags when chosen to spread over a Cluster's
    /// primaries; empty: the default `J.p`.
    pub partition_tags: Vec<String>,
    /// `--column`: where the plugin's columns are in the files' headers.
    pub columns: ColumnMap,
    /// `--delimiter`; `None`: by file name. (Each task carries its file's
    /// delimiter; this is what the job was asked.)
    pub delimiter: Option<u8>,
    /// The header every file must have (the first file's); `None`: any
    /// header with the plugin's columns (`--mixed-headers`).
    pub header: Option<Header>,
}

impl JobMeta {
    pub fn keys(&self, job: &str) -> Keys {
        if self.partition_tags.is_empty() {
            Keys::named(job, &self.stream_name, &self.count_name, &self.fname_field, self.partitions)
        } else {
            Keys::tagged(job, &self.stream_name, &self.count_name, &self.fname_field, &self.partition_tags)
        }
    }

    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            (field::PLUGIN_HASH, self.plugin_hash.clone()),
            (field::PLUGIN_NAME, self.plugin_name.clone()),
            (field::PARAMS, serde_json::to_string(&self.params).expect("params serialise")),
            (field::CLAIM_TIMEOUT, self.claim_timeout.to_string()),
            (field::MAX_ATTEMPTS, self.max_attempts.to_string()),
            (field::STREAM_NAME, self.stream_name.clone()),
            (field::COUNT_NAME, self.count_name.clone()),
            (field::FNAME_FIELD, self.fname_field.clone()),
            (field::TOTAL_TASKS, self.total_tasks.to_string()),
            (field::TOTAL_BYTES, self.total_bytes.to_string()),
            (field::COMMIT_MODE, self.commit_mode.as_str().to_string()),
            (field::PARTITIONS, self.partitions.to_string()),
            (field::REPLICAS_ACK, self.replicas_ack.to_string()),
        ];
        if !self.columns.is_empty() {
            fields.push((field::COLUMNS, serde_json::to_string(&self.columns.0).expect("columns serialise")));
        }
        if let Some(d) = self.delimiter {
            fields.push((field::DELIMITER, char::from(d).to_string()));
        }
        if let Some(header) = &self.header {
            fields.push((field::HEADER, serde_json::to_string(header).expect("a header serialises")));
        }
        if !self.partition_tags.is_empty() {
            fields.push((field::PARTITION_TAGS, serde_json::to_string(&self.partition_tags).expect("tags serialise")));
        }
        fields
    }

    pub fn from_hash(h: &HashMap<String, String>) -> anyhow::Result<JobMeta> {
        let get = |f: &str| h.get(f).cloned().with_context(|| format!("job meta lacks `{f}`"));
        Ok(JobMeta {
            plugin_hash: get(field::PLUGIN_HASH)?,
            plugin_name: get(field::PLUGIN_NAME)?,
            params: serde_json::from_str(&get(field::PARAMS)?).context("job meta: bad params")?,
            claim_timeout: get(field::CLAIM_TIMEOUT)?.parse().context("job meta: bad claim_timeout")?,
            max_attempts: get(field::MAX_ATTEMPTS)?.parse().context("job meta: bad max_attempts")?,
            stream_name: get(field::STREAM_NAME)?,
            count_name: get(field::COUNT_NAME)?,
            fname_field: get(field::FNAME_FIELD)?,
            total_tasks: number(h, field::TOTAL_TASKS),
            total_bytes: number(h, field::TOTAL_BYTES),
            commit_mode: match h.get(field::COMMIT_MODE) {
                Some(mode) => mode.parse().context("job meta")?,
                None => CommitMode::Reduce,
            },
            partitions: match h.get(field::PARTITIONS) {
                Some(p) => p.parse().ok().filter(|p| *p >= 1).with_context(|| format!("job meta: bad partitions `{p}`"))?,
                None => 1,
            },
            replicas_ack: number(h, field::REPLICAS_ACK) as u32,
            partition_tags: match h.get(field::PARTITION_TAGS) {
                Some(json) => serde_json::from_str(json).context("job meta: bad partition_tags")?,
                None => Vec::new(),
            },
            columns: match h.get(field::COLUMNS) {
                Some(json) => ColumnMap(serde_json::from_str(json).context("job meta: bad columns")?),
                None => ColumnMap::default(),
            },
            delimiter: match h.get(field::DELIMITER) {
                Some(d) if d.len() == 1 => Some(d.as_bytes()[0]),
                Some(d) => anyhow::bail!("job meta: bad delimiter `{d}`"),
                None => None,
            },
            header: match h.get(field::HEADER) {
                Some(json) => Some(serde_json::from_str(json).context("job meta: bad header")?),
                None => None,
            },
        })
    }
}

/// The job's counters as the meta hash holds them (0 when absent).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JobCounters {
    /// `running`, `finished`, or empty when the job is unknown.
    pub state: String,
    pub total_tasks: u64,
    pub total_bytes: u64,
    pub tasks_done: u64,
    pub dead: u64,
    pub rows: u64,
    pub bytes: u64,
    pub decoded_bytes: u64,
    pub short_rows: u64,
    pub invalid_utf8_rows: u64,
    pub tokens: u64,
    pub pairs: u64,
    pub duplicates: u64,
    pub duplicate_parts: u64,
    pub retries: u64,
    pub stolen: u64,
    pub unreplicated_commits: u64,
    /// Written by the coordinator (see `field::PLANNED_TASKS` and below).
    pub planned_tasks: u64,
    pub merged_keys: u64,
    pub files: u64,
    pub started_at_ms: u64,
    pub redis_restarts: u64,
    pub worker_respawns: u64,
    pub resubmitted: u64,
    pub checkpoints_failed: u64,
    /// The finishing run's wall time and throughput (None before it finished).
    pub first_wall_seconds: Option<f64>,
    pub first_mb_per_second: Option<f64>,
    pub finished_at_ms: u64,
}

impl JobCounters {
    /// From the job's meta hash and each partition's counters (with one
    /// partition they are the same hash: pass none).
    pub fn from_hashes(meta: &HashMap<String, String>, partitions: &[HashMap<String, String>]) -> JobCounters {
        let mut c = JobCounters::from_hash(meta);
        for p in partitions {
            c.add(&JobCounters::from_hash(p));
        }
        c
    }

    fn add(&mut self, o: &JobCounters) {
        self.tasks_done += o.tasks_done;
        self.dead += o.dead;
        self.rows += o.rows;
        self.bytes += o.bytes;
        self.short_rows += o.short_rows;
        self.invalid_utf8_rows += o.invalid_utf8_rows;
        self.tokens += o.tokens;
        self.pairs += o.pairs;
        self.duplicates += o.duplicates;
        self.duplicate_parts += o.duplicate_parts;
        self.retries += o.retries;
        self.stolen += o.stolen;
        self.unreplicated_commits += o.unreplicated_commits;
    }

    fn from_hash(h: &HashMap<String, String>) -> JobCounters {
        let n = |f: &str| number(h, f);
        JobCounters {
            state: h.get(field::STATE).cloned().unwrap_or_default(),
            total_tasks: n(field::TOTAL_TASKS),
            total_bytes: n(field::TOTAL_BYTES),
            tasks_done: n(field::TASKS_DONE),
            dead: n(field::DEAD),
            rows: n(field::ROWS),
            bytes: n(field::BYTES),
            decoded_bytes: n(field::DECODED_BYTES),
            short_rows: n(field::SHORT_ROWS),
            invalid_utf8_rows: n(field::INVALID_UTF8_ROWS),
            tokens: n(field::TOKENS),
            pairs: n(field::PAIRS),
            duplicates: n(field::DUPLICATES),
            duplicate_parts: n(field::DUPLICATE_PARTS),
            retries: n(field::RETRIES),
            stolen: n(field::STOLEN),
            unreplicated_commits: n(field::UNREPLICATED),
            planned_tasks: n(field::PLANNED_TASKS),
            merged_keys: n(field::MERGED_KEYS),
            files: n(field::FILES),
            started_at_ms: n(field::STARTED_AT_MS),
            redis_restarts: n(field::REDIS_RESTARTS),
            worker_respawns: n(field::WORKER_RESPAWNS),
            resubmitted: n(field::RESUBMITTED),
            checkpoints_failed: n(field::CHECKPOINTS_FAILED),
            first_wall_seconds: h.get(field::FIRST_WALL_SECONDS).and_then(|v| v.parse().ok()),
            first_mb_per_second: h.get(field::FIRST_MB_PER_SECOND).and_then(|v| v.parse().ok()),
            finished_at_ms: n(field::FINISHED_AT_MS),
        }
    }

    pub fn finished(&self) -> bool {
        self.state == STATE_FINISHED
    }

    /// Tasks known so far: the total once planning is complete, else those
    /// planned so far.
    pub fn tasks_known(&self) -> u64 {
        self.total_tasks.max(self.planned_tasks)
    }

    /// Still planning: the total is not written yet.
    pub fn planning(&self) -> bool {
        self.total_tasks == 0 && !self.finished()
    }
}

fn number(h: &HashMap<String, String>, f: &str) -> u64 {
    h.get(f).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While planning, `total_tasks` is 0 and the tasks planned so far are
    /// the total to show (`status` printed `tasks 95/0` before).
    #[test]
    fn totals_while_planning_are_the_tasks_planned_so_far() {
        let h: HashMap<String, String> =
            [(field::TASKS_DONE, "95"), (field::PLANNED_TASKS, "120"), (field::TOTAL_TASKS, "0"), (field::STATE, "running")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let c = JobCounters::from_hash(&h);
        assert!(c.planning());
        assert_eq!(c.tasks_known(), 120);
        let mut h = h;
        h.insert(field::TOTAL_TASKS.into(), "140".into());
        h.insert(field::PLANNED_TASKS.into(), "140".into());
        let c = JobCounters::from_hash(&h);
        assert!(!c.planning());
        assert_eq!(c.tasks_known(), 140);
        assert_eq!(c.first_wall_seconds, None);
    }
}
