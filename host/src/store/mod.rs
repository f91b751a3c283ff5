//! The Redis store of a job: key layout, connections, and the calls that
//! change a job's state.
//!
//! Every key of a job carries the hash tag `{job id}`, so all keys one
//! function call touches live in one cluster slot. The exactly-once logic is
//! in `wc_functions.lua` (loaded with `FUNCTION LOAD REPLACE` on every
//! (re)connect: an old dump can bring back an old library).

use std::time::Duration;

use anyhow::Context;
use redis::{Connection, RedisError, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::input::InputRange;

pub mod blob;
pub mod dump;
pub mod tasks;

/// How workers commit counts; both go through the same done-set gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitMode {
    /// One blob per task; the sorted set is built once, at the end.
    Reduce,
    /// ZINCRBY per (task, key) as tasks land: the sorted set is live.
    Live,
}

impl CommitMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitMode::Reduce => "reduce",
            CommitMode::Live => "live",
        }
    }
}

/// The function library (registers `atomic_increment_and_acknowledge`).
pub const FUNCTIONS: &str = include_str!("wc_functions.lua");

/// The consumer group every worker of a job reads with.
pub const GROUP: &str = "workers";

/// Most (key, count) pairs in one commit call: keeps each call far below
/// Redis's busy-reply threshold (a ZINCRBY costs a few µs).
pub const MAX_PAIRS_PER_CALL: usize = 20_000;

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

/// The names of a job's keys.
#[derive(Clone, Debug)]
pub struct Keys {
    pub job: String,
    pub stream: String,
    pub counts: String,
    pub done: String,
    pub parts: String,
    pub partcount: String,
    pub attempts: String,
    pub dead: String,
    pub meta: String,
    /// Reduce mode: task id -> encoded counts.
    pub results: String,
    /// Reduce mode: the sorted set being built before it is renamed.
    pub counts_building: String,
    pub fname_field: String,
}

/// Where `wc-host status`/`top` find the last job started on a Redis.
pub const LATEST_JOB_KEY: &str = "wc:latest-job";

impl Keys {
    pub fn new(job: &str, config: &Config) -> Keys {
        Keys::named(job, &config.stream, &config.count_key, &config.fname_field)
    }

    /// Enough to read a job's meta hash, which names the other keys.
    pub fn for_meta(job: &str) -> Keys {
        Keys::new(job, &Config::default())
    }

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
}

/// A connection that knows how to come back after Redis restarts.
pub struct Store {
    client: redis::Client,
    conn: Option<Connection>,
    pub keys: Keys,
    /// Read timeout: longer than any blocking read we issue.
    timeout: Duration,
}

/// Is this error worth reconnecting for (as opposed to a bug or bad input)?
pub fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN"))
}

/// Errors that mean "the library was lost": reload it and retry.
fn is_missing_function(e: &RedisError) -> bool {
    e.to_string().contains("Function not found")
}

impl Store {
    pub fn new(url: &str, keys: Keys) -> anyhow::Result<Store> {
        let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {}", redact(url)))?;
        Ok(Store { client, conn: None, keys, timeout: Duration::from_secs(10) })
    }

    /// Connects once, without retrying: for the first contact, where a wrong
    /// URL or password should fail fast with a clear message.
    pub fn connect_once(&mut self) -> anyhow::Result<()> {
        let mut conn = self.client.get_connection_with_timeout(Duration::from_secs(3)).map_err(|e| explain(e, &self.client))?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(FUNCTIONS).query::<String>(&mut conn).map_err(|e| explain(e, &self.client))?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Runs `f` on a live connection; on a transient error reconnects with
    /// backoff (reloading the function library) and runs it again, until
    /// `give_up` has passed. `f` must therefore be idempotent.
    pub fn with_retry<T>(&mut self, give_up: Duration, mut f: impl FnMut(&mut Connection, &Keys) -> redis::RedisResult<T>) -> anyhow::Result<T> {
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = match self.ensure_connected() {
                Ok(()) => f(self.conn.as_mut().expect("connected"), &self.keys),
                Err(e) => Err(e),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) || is_missing_function(&e) || e.code() == Some("NOGROUP") => {
                    if started.elapsed() > give_up {
                        return Err(e).context(format!("Redis unavailable for {:?}", give_up));
                    }
                    tracing::debug!("Redis error, reconnecting: {e}");
                    self.conn = None;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(explain(e, &self.client)),
            }
        }
    }

    fn ensure_connected(&mut self) -> redis::RedisResult<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut conn = self.client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(FUNCTIONS).query::<String>(&mut conn)?;
        ensure_group(&mut conn, &self.keys)?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Drops the connection (the next call reconnects).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }
}

/// Creates the consumer group (and the stream) if missing. Reading from id 0
/// means entries that survived a restore are delivered again.
pub fn ensure_group(conn: &mut Connection, keys: &Keys) -> redis::RedisResult<()> {
    let created: redis::RedisResult<String> =
        redis::cmd("XGROUP").arg("CREATE").arg(&keys.stream).arg(GROUP).arg("0").arg("MKSTREAM").query(conn);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Turns first-contact errors into advice.
fn explain(e: RedisError, client: &redis::Client) -> anyhow::Error {
    let info = client.get_connection_info();
    let at = format!("{}", info.addr);
    let msg = e.to_string();
    if e.kind() == redis::ErrorKind::AuthenticationFailed || msg.contains("WRONGPASS") || msg.contains("invalid username-password") {
        anyhow::anyhow!("Redis at {at} refused the credentials in the URL (wrong user or password): {msg}")
    } else if msg.contains("NOAUTH") {
        anyhow::anyhow!("Redis at {at} requires a password: give it in the URL, redis://:PASSWORD@host:port/")
    } else if msg.contains("NOPERM") {
        anyhow::anyhow!(
            "Redis at {at}: the ACL user lacks a permission wc-host needs (keys `wc:*` and the commands listed in the README, section Security): {msg}"
        )
    } else if !e.is_connection_refusal() && (e.is_timeout() || msg.contains("(os error 11)")) {
        anyhow::anyhow!("Redis at {at} did not answer in time (is it a Redis server?): {msg}")
    } else if e.is_connection_refusal() || e.is_io_error() {
        anyhow::anyhow!("cannot reach Redis at {at}: {msg}")
    } else {
        anyhow::anyhow!("Redis at {at}: {msg}")
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}{}:***{}", &url[..scheme], "://", user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// A stream entry as a worker sees it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub task: Task,
}

/// The fields of a task's stream entry: the seed's file-name field, the
/// task id and the full description.
pub fn entry_fields(task: &Task, keys: &Keys) -> Vec<(String, String)> {
    vec![
        (keys.fname_field.clone(), task.range.file.path.display().to_string()),
        ("task".into(), task.id.clone()),
        ("spec".into(), serde_json::to_string(task).expect("a task serialises")),
    ]
}

pub fn xadd_task(conn: &mut Connection, keys: &Keys, task: &Task) -> redis::RedisResult<String> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&keys.stream).arg("*");
    for (f, v) in entry_fields(task, keys) {
        cmd.arg(f).arg(v);
    }
    cmd.query(conn)
}

/// Parses stream entries `[[id, [field, value, ...]], ...]`. Entries whose
/// body was deleted (XAUTOCLAIM can return them as nil) or is not ours are
/// returned as ids in the second list.
pub fn parse_entries(value: &Value) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut unusable = Vec::new();
    let Value::Array(items) = value else { return (entries, unusable) };
    for item in items {
        let Value::Array(pair) = item else { continue };
        let Some(id) = pair.first().and_then(as_string) else { continue };
        let spec = match pair.get(1) {
            Some(Value::Array(fields)) => fields.chunks(2).find_map(|kv| match (as_string(&kv[0]), kv.get(1).and_then(as_string)) {
                (Some(f), Some(v)) if f == "spec" => Some(v),
                _ => None,
            }),
            _ => None,
        };
        match spec.and_then(|s| serde_json::from_str::<Task>(&s).ok()) {
            Some(task) => entries.push(Entry { id, task }),
            None => unusable.push(id),
        }
    }
    (entries, unusable)
}

pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// Reads a job's meta hash as strings.
pub fn read_meta(conn: &mut Connection, keys: &Keys) -> redis::RedisResult<std::collections::HashMap<String, String>> {
    redis::cmd("HGETALL").arg(&keys.meta).query(conn)
}

pub fn meta_u64(meta: &std::collections::HashMap<String, String>, field: &str) -> u64 {
    meta.get(field).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// What a job is, stored in its meta hash so that any worker (even one
/// started by hand elsewhere) can join it with just the job id.
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
}

impl JobMeta {
    pub fn keys(&self, job: &str) -> Keys {
        Keys::named(job, &self.stream_name, &self.count_name, &self.fname_field)
    }

    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("plugin_hash", self.plugin_hash.clone()),
            ("plugin_name", self.plugin_name.clone()),
            ("params", serde_json::to_string(&self.params).expect("params serialise")),
            ("claim_timeout", self.claim_timeout.to_string()),
            ("max_attempts", self.max_attempts.to_string()),
            ("stream_name", self.stream_name.clone()),
            ("count_name", self.count_name.clone()),
            ("fname_field", self.fname_field.clone()),
            ("total_tasks", self.total_tasks.to_string()),
            ("total_bytes", self.total_bytes.to_string()),
            ("commit_mode", self.commit_mode.as_str().to_string()),
        ]
    }

    pub fn from_hash(h: &std::collections::HashMap<String, String>) -> anyhow::Result<JobMeta> {
        let get = |f: &str| h.get(f).cloned().with_context(|| format!("job meta lacks `{f}`"));
        Ok(JobMeta {
            plugin_hash: get("plugin_hash")?,
            plugin_name: get("plugin_name")?,
            params: serde_json::from_str(&get("params")?).context("job meta: bad params")?,
            claim_timeout: get("claim_timeout")?.parse().context("job meta: bad claim_timeout")?,
            max_attempts: get("max_attempts")?.parse().context("job meta: bad max_attempts")?,
            stream_name: get("stream_name")?,
            count_name: get("count_name")?,
            fname_field: get("fname_field")?,
            total_tasks: meta_u64(h, "total_tasks"),
            total_bytes: meta_u64(h, "total_bytes"),
            commit_mode: match h.get("commit_mode").map(String::as_str) {
                Some("live") => CommitMode::Live,
                Some("reduce") | None => CommitMode::Reduce,
                Some(other) => anyhow::bail!("job meta: unknown commit mode `{other}`"),
            },
        })
    }
}
