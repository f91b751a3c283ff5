//! The names of a job's keys and of its meta hash's fields.
//!
//! Every key of a job carries the hash tag `{job id}`, so all keys one
//! function call touches live in one cluster slot.

/// The consumer group every worker of a job reads with.
pub const GROUP: &str = "workers";

/// Where `wc-host status`/`top` find the last job started on a Redis.
pub const LATEST_JOB_KEY: &str = "wc:latest-job";

/// The names of a job's keys: the job's own (one slot, hash tag `{J}`)
/// and those of each of its partitions.
#[derive(Clone, Debug)]
pub struct Keys {
    pub job: String,
    /// What the job is, its state, and (with one partition) its counters.
    pub meta: String,
    /// The sorted set of counts (key -> count).
    pub counts: String,
    /// Reduce mode: the sorted set being built before it is renamed.
    pub counts_building: String,
    /// The job's story: fault and progress events, a capped stream
    /// (see `protocol::events`).
    pub events: String,
    /// Workers alive: consumer name -> JSON of what it is doing, refreshed
    /// by its heartbeat (see `protocol::events`).
    pub workers: String,
    /// The stream entry field holding the task's file name (the seed's FNAME).
    pub fname_field: String,
    /// At least one. A task belongs to partition `hash(task id) mod P`.
    pub partitions: Vec<PartitionKeys>,
}

/// The keys of one partition: everything one commit touches, under one
/// hash tag, so that a commit is one atomic call in one cluster slot. With
/// one partition the tag is the job's own (`{J}`, the layout of every
/// earlier version); with P > 1, partition p has the tag `{J.p}`, so the
/// partitions spread over a Cluster's primaries.
#[derive(Clone, Debug)]
pub struct PartitionKeys {
    pub index: u32,
    /// The hash tag's content.
    pub tag: String,
    /// The task stream, read by the consumer group [`GROUP`].
    pub stream: String,
    /// The done-set: ids of tasks whose counts are applied. The gate.
    pub done: String,
    /// Live mode: ids of applied parts of unfinished tasks.
    pub parts: String,
    /// Live mode: task id -> parts applied so far.
    pub partcount: String,
    /// Task id -> failed attempts.
    pub attempts: String,
    /// Task id -> the error that dead-lettered it.
    pub dead: String,
    /// Reduce mode: task id -> encoded counts.
    pub results: String,
    /// The partition's counters (see [`field`]); the job's meta hash itself
    /// when the job has one partition.
    pub stats: String,
}

impl Keys {
    /// The keys of `job` under the names a config gives (the seed's IN,
    /// COUNT and FNAME), in `partitions` partitions.
    pub fn named(job: &str, stream: &str, count_key: &str, fname_field: &str, partitions: u32) -> Keys {
        Keys::tagged(job, stream, count_key, fname_field, &default_tags(job, partitions))
    }

    /// Like [`named`](Self::named), with the partitions' hash tags given
    /// (chosen so that they spread over a Cluster's primaries; see
    /// `Store::balanced_tags`).
    pub fn tagged(job: &str, stream: &str, count_key: &str, fname_field: &str, tags: &[String]) -> Keys {
        let k = |tag: &str, name: &str| format!("wc:{{{tag}}}:{name}");
        let partitions = tags.len().max(1) as u32;
        Keys {
            job: job.to_string(),
            meta: k(job, "meta"),
            counts: k(job, count_key),
            counts_building: k(job, &format!("{count_key}:building")),
            events: k(job, "events"),
            workers: k(job, "workers"),
            fname_field: fname_field.to_string(),
            partitions: (0..partitions)
                .map(|index| {
                    let tag = tags.get(index as usize).cloned().unwrap_or_else(|| job.to_string());
                    PartitionKeys {
                        index,
                        stream: k(&tag, stream),
                        done: k(&tag, "done"),
                        parts: k(&tag, "parts"),
                        partcount: k(&tag, "partcount"),
                        attempts: k(&tag, "attempts"),
                        dead: k(&tag, "dead"),
                        results: k(&tag, "results"),
                        stats: if partitions == 1 { k(&tag, "meta") } else { k(&tag, "stats") },
                        tag,
                    }
                })
                .collect(),
        }
    }

    /// Enough to read a job's meta hash, which names the other keys.
    pub fn for_meta(job: &str) -> Keys {
        Keys::named(job, "files", "count", "fname", 1)
    }

    /// The partition a task belongs to.
    pub fn partition_of(&self, task_id: &str) -> &PartitionKeys {
        &self.partitions[partition_index(task_id, self.partitions.len() as u32) as usize]
    }

    /// Every key a job may have (for `--fresh`).
    pub fn all(&self) -> Vec<&str> {
        let mut all = vec![self.meta.as_str(), &self.counts, &self.counts_building, &self.events, &self.workers];
        for p in &self.partitions {
            all.extend([p.stream.as_str(), &p.done, &p.parts, &p.partcount, &p.attempts, &p.dead, &p.results, &p.stats]);
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The partitions' hash tags when none were chosen: `J` for one partition
/// (the layout of every earlier version), `J.p` for several.
pub fn default_tags(job: &str, partitions: u32) -> Vec<String> {
    match partitions.max(1) {
        1 => vec![job.to_string()],
        n => (0..n).map(|p| format!("{job}.{p}")).collect(),
    }
}

/// `hash(task id) mod partitions`: task ids are hex digests, so their first
/// 16 digits are already uniform.
pub fn partition_index(task_id: &str, partitions: u32) -> u32 {
    let head = &task_id[..task_id.len().min(16)];
    let hash = u64::from_str_radix(head, 16).unwrap_or_else(|_| task_id.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    (hash % partitions.max(1) as u64) as u32
}

/// Field names of a job's meta hash. The Lua library names the fields it
/// writes in its `FIELD` table; a test checks the two agree.
pub mod field {
    // What the job is (written by the coordinator).
    pub const PLUGIN_HASH: &str = "plugin_hash";
    pub const PLUGIN_NAME: &str = "plugin_name";
    /// A hash of the input files' identities (path, size, mtime): tells a
    /// later job over the same files that it follows this one.
    pub const INPUTS_ID: &str = "inputs_id";
    pub const PARAMS: &str = "params";
    pub const CLAIM_TIMEOUT: &str = "claim_timeout";
    pub const MAX_ATTEMPTS: &str = "max_attempts";
    pub const STREAM_NAME: &str = "stream_name";
    pub const COUNT_NAME: &str = "count_name";
    pub const FNAME_FIELD: &str = "fname_field";
    pub const TOTAL_TASKS: &str = "total_tasks";
    pub const TOTAL_BYTES: &str = "total_bytes";
    pub const COMMIT_MODE: &str = "commit_mode";
    /// How many partitions the job's tasks are spread over (absent: 1).
    pub const PARTITIONS: &str = "partitions";
    /// Replicas that must acknowledge each commit (`--replicas-ack`; absent: 0).
    pub const REPLICAS_ACK: &str = "replicas_ack";
    /// JSON list of the partitions' hash tags, when chosen for a Cluster
    /// (absent: `J.p`, see `default_tags`).
    pub const PARTITION_TAGS: &str = "partition_tags";
    /// JSON `[[plugin column, file header], ...]` (`--column`); absent: none.
    pub const COLUMNS: &str = "columns";
    /// The `--delimiter` character; absent: by file name (`.tsv`: tab, else comma).
    pub const DELIMITER: &str = "delimiter";
    /// JSON `{file, names}`: the header every file must have; absent: any.
    pub const HEADER: &str = "header";
    /// [`STATE_RUNNING`](super::STATE_RUNNING) or [`STATE_FINISHED`](super::STATE_FINISHED).
    pub const STATE: &str = "state";

    // Counters (written by the Lua library, except `stolen`).
    pub const TASKS_DONE: &str = "tasks_done";
    pub const ROWS: &str = "rows";
    pub const BYTES: &str = "bytes";
    /// Bytes of CSV text parsed (decoded bytes of compressed inputs).
    pub const DECODED_BYTES: &str = "decoded_bytes";
    pub const SHORT_ROWS: &str = "short_rows";
    pub const INVALID_UTF8_ROWS: &str = "invalid_utf8_rows";
    pub const TOKENS: &str = "tokens";
    pub const PAIRS: &str = "pairs";
    pub const DUPLICATES: &str = "duplicates";
    pub const DUPLICATE_PARTS: &str = "duplicate_parts";
    pub const RETRIES: &str = "retries";
    pub const DEAD: &str = "dead";
    /// Written by workers when they steal a task (XAUTOCLAIM).
    pub const STOLEN: &str = "stolen";
    /// Written by workers when a commit was not acknowledged by the
    /// replicas `--replicas-ack` asks for, in time.
    pub const UNREPLICATED: &str = "unreplicated_commits";

    // Written by the coordinator while it runs (for `status` and `report`).
    /// Tasks planned so far (`total_tasks` is written once planning is complete).
    pub const PLANNED_TASKS: &str = "planned_tasks";
    /// Reduce mode: distinct keys in the coordinator's merge so far.
    pub const MERGED_KEYS: &str = "merged_keys";
    /// Input files of the job.
    pub const FILES: &str = "files";
    /// When this run of the job started, ms since the epoch.
    pub const STARTED_AT_MS: &str = "started_at_ms";
    pub const REDIS_RESTARTS: &str = "redis_restarts";
    pub const WORKER_RESPAWNS: &str = "worker_respawns";
    pub const RESUBMITTED: &str = "resubmitted";
    pub const CHECKPOINTS_FAILED: &str = "checkpoints_failed";
    /// The run that finished the job: wall seconds, MB/s, and when (ms since
    /// the epoch); a re-report prints these.
    pub const FIRST_WALL_SECONDS: &str = "first_wall_seconds";
    pub const FIRST_MB_PER_SECOND: &str = "first_mb_per_second";
    pub const FINISHED_AT_MS: &str = "finished_at_ms";

    /// The fields the Lua library writes, as its `FIELD` table names them.
    pub const WRITTEN_BY_FUNCTIONS: [&str; 13] =
        [TASKS_DONE, ROWS, BYTES, SHORT_ROWS, INVALID_UTF8_ROWS, DECODED_BYTES, TOKENS, PAIRS, DUPLICATES, DUPLICATE_PARTS, RETRIES, DEAD, STATE];
}

/// The job is being counted (or was interrupted).
pub const STATE_RUNNING: &str = "running";
/// Every task is done or dead-lettered and the counts are published.
pub const STATE_FINISHED: &str = "finished";
