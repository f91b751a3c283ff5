//! The names of a job's keys and of its meta hash's fields.
//!
//! Every key of a job carries the hash tag `{job id}`, so all keys one
//! function call touches live in one cluster slot.

/// The consumer group every worker of a job reads with.
pub const GROUP: &str = "workers";

/// Where `wc-host status`/`top` find the last job started on a Redis.
pub const LATEST_JOB_KEY: &str = "wc:latest-job";

/// The names of a job's keys.
#[derive(Clone, Debug)]
pub struct Keys {
    pub job: String,
    /// The task stream, read by the consumer group [`GROUP`].
    pub stream: String,
    /// The sorted set of counts (key -> count).
    pub counts: String,
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
    /// The job's description and counters (see [`field`]).
    pub meta: String,
    /// Reduce mode: task id -> encoded counts.
    pub results: String,
    /// Reduce mode: the sorted set being built before it is renamed.
    pub counts_building: String,
    /// The stream entry field holding the task's file name (the seed's FNAME).
    pub fname_field: String,
}

impl Keys {
    /// The keys of `job` under the names a config gives (the seed's IN,
    /// COUNT and FNAME).
    pub fn named(job: &str, stream: &str, count_key: &str, fname_field: &str) -> Keys {
        let k = |name: &str| format!("wc:{{{job}}}:{name}");
        Keys {
            job: job.to_string(),
            stream: k(stream),
            counts: k(count_key),
            done: k("done"),
            parts: k("parts"),
            partcount: k("partcount"),
            attempts: k("attempts"),
            dead: k("dead"),
            meta: k("meta"),
            results: k("results"),
            counts_building: k(&format!("{count_key}:building")),
            fname_field: fname_field.to_string(),
        }
    }

    /// Enough to read a job's meta hash, which names the other keys.
    pub fn for_meta(job: &str) -> Keys {
        Keys::named(job, "files", "count", "fname")
    }

    /// Every key a job may have (for `--fresh`).
    pub fn all(&self) -> [&str; 10] {
        [
            &self.stream,
            &self.counts,
            &self.done,
            &self.parts,
            &self.partcount,
            &self.attempts,
            &self.dead,
            &self.meta,
            &self.results,
            &self.counts_building,
        ]
    }
}

/// Field names of a job's meta hash. The Lua library names the fields it
/// writes in its `FIELD` table; a test checks the two agree.
pub mod field {
    // What the job is (written by the coordinator).
    pub const PLUGIN_HASH: &str = "plugin_hash";
    pub const PLUGIN_NAME: &str = "plugin_name";
    pub const PARAMS: &str = "params";
    pub const CLAIM_TIMEOUT: &str = "claim_timeout";
    pub const MAX_ATTEMPTS: &str = "max_attempts";
    pub const STREAM_NAME: &str = "stream_name";
    pub const COUNT_NAME: &str = "count_name";
    pub const FNAME_FIELD: &str = "fname_field";
    pub const TOTAL_TASKS: &str = "total_tasks";
    pub const TOTAL_BYTES: &str = "total_bytes";
    pub const COMMIT_MODE: &str = "commit_mode";
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

    /// The fields the Lua library writes, as its `FIELD` table names them.
    pub const WRITTEN_BY_FUNCTIONS: [&str; 13] =
        [TASKS_DONE, ROWS, BYTES, SHORT_ROWS, INVALID_UTF8_ROWS, DECODED_BYTES, TOKENS, PAIRS, DUPLICATES, DUPLICATE_PARTS, RETRIES, DEAD, STATE];
}

/// The job is being counted (or was interrupted).
pub const STATE_RUNNING: &str = "running";
/// Every task is done or dead-lettered and the counts are published.
pub const STATE_FINISHED: &str = "finished";
