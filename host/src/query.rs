//! `wc-host top` and `wc-host status`: a job read back from Redis.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::protocol::{JobMeta, Keys, Patience, Store};
use crate::redis_server::{Durability, ManagedRedis};
use crate::report;

/// Which job to read, and from where.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    /// Redis URL; `None`: the managed Redis of `data_dir`, started for the query.
    pub redis: Option<String>,
    pub data_dir: PathBuf,
    /// `None`: the last job started on that Redis.
    pub job: Option<String>,
    /// How many keys.
    pub top: usize,
    pub json: bool,
}

/// `wc-host top`: the job's top keys.
pub fn top(spec: &QuerySpec) -> anyhow::Result<i32> {
    query(spec, false)
}

/// `wc-host status`: the job's progress.
pub fn status(spec: &QuerySpec) -> anyhow::Result<i32> {
    query(spec, true)
}

fn query(spec: &QuerySpec, status_only: bool) -> anyhow::Result<i32> {
    let mut managed = None;
    let url = match &spec.redis {
        Some(url) => url.clone(),
        None => {
            if !spec.data_dir.join("redis.pass").exists() {
                bail!("no --redis URL and no managed Redis data in {}", spec.data_dir.display());
            }
            let redis = ManagedRedis::start(&spec.data_dir, Durability::Snapshot)?;
            let url = redis.url();
            managed = Some(redis);
            url
        }
    };
    let mut store = Store::new(&url, Keys::for_meta("-"), Patience::Query)?;
    store.connect_once()?;
    let job = match &spec.job {
        Some(job) => job.clone(),
        None => store.latest_job()?.context("no job recorded in this Redis; give --job")?,
    };
    store.keys = Keys::for_meta(&job);
    let raw = store.read_meta()?;
    if raw.is_empty() {
        bail!("job {job} not found in Redis");
    }
    let meta = JobMeta::from_hash(&raw)?;
    store.keys = meta.keys(&job);
    let counters = store.counters()?;
    let (top, distinct) = store.top_keys(spec.top)?;
    let status = serde_json::json!({
        "job": job, "state": counters.state, "plugin": meta.plugin_name, "count_key": store.keys.counts,
        "tasks": meta.total_tasks, "tasks_done": counters.tasks_done, "dead": counters.dead,
        "bytes": meta.total_bytes, "bytes_done": counters.bytes, "decoded_bytes_done": counters.decoded_bytes,
        "tokens": counters.tokens, "distinct": distinct, "top": top,
        "columns": meta.columns.0, "delimiter": meta.delimiter.map(|d| char::from(d).to_string()),
        "header": meta.header.as_ref().map(|h| &h.names),
    });
    if spec.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if status_only {
        println!("job {job}: {}, plugin {}", counters.state, meta.plugin_name);
        println!("tasks {}/{} done, {} dead-lettered", counters.tasks_done, meta.total_tasks, counters.dead);
        println!("bytes on disk {}/{} ({} decoded), {} tokens, {distinct} distinct keys", counters.bytes, meta.total_bytes, counters.decoded_bytes, counters.tokens);
        println!("counts in sorted set {}", store.keys.counts);
    } else {
        report::print_top(&top);
    }
    if let Some(mut redis) = managed {
        redis.stop()?;
    }
    Ok(0)
}
