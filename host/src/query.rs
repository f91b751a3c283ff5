//! `wc-host top` and `wc-host status`: a job read back from Redis.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::redis_server::{Durability, ManagedRedis};
use crate::report;
use crate::store::{self, JobMeta, Keys, Store, LATEST_JOB_KEY};

/// `wc-host top` / `wc-host status`: a job's state, read from Redis.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Redis URL [default: the managed Redis of --data-dir, started for the query].
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    #[arg(long, default_value = ".wc-data")]
    pub data_dir: PathBuf,
    /// Job id [default: the last job started on this Redis].
    #[arg(long)]
    pub job: Option<String>,
    /// How many keys (top).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn query(args: QueryArgs, status_only: bool) -> anyhow::Result<i32> {
    let mut managed = None;
    let url = match &args.redis {
        Some(url) => url.clone(),
        None => {
            if !args.data_dir.join("redis.pass").exists() {
                bail!("no --redis URL and no managed Redis data in {}", args.data_dir.display());
            }
            let redis = ManagedRedis::start(&args.data_dir, Durability::Snapshot)?;
            let url = redis.url();
            managed = Some(redis);
            url
        }
    };
    let mut store = Store::new(&url, Keys::for_meta("-"))?;
    store.connect_once()?;
    let job = match &args.job {
        Some(job) => job.clone(),
        None => store
            .with_retry(Duration::from_secs(10), |conn, _| redis::cmd("GET").arg(LATEST_JOB_KEY).query::<Option<String>>(conn))?
            .context("no job recorded in this Redis; give --job")?,
    };
    store.keys = Keys::for_meta(&job);
    let raw = store.with_retry(Duration::from_secs(10), |conn, keys| store::read_meta(conn, keys))?;
    if raw.is_empty() {
        bail!("job {job} not found in Redis");
    }
    let meta = JobMeta::from_hash(&raw)?;
    store.keys = meta.keys(&job);
    let (top, distinct) = store.with_retry(Duration::from_secs(10), |conn, keys| report::top_keys(conn, &keys.counts, args.top))?;
    let state = raw.get("state").cloned().unwrap_or_default();
    let status = serde_json::json!({
        "job": job, "state": state, "plugin": meta.plugin_name, "count_key": store.keys.counts,
        "tasks": meta.total_tasks, "tasks_done": store::meta_u64(&raw, "tasks_done"), "dead": store::meta_u64(&raw, "dead"),
        "bytes": meta.total_bytes, "bytes_done": store::meta_u64(&raw, "bytes"), "tokens": store::meta_u64(&raw, "tokens"),
        "distinct": distinct, "top": top,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if status_only {
        println!("job {job}: {state}, plugin {}", meta.plugin_name);
        println!("tasks {}/{} done, {} dead-lettered", status["tasks_done"], meta.total_tasks, status["dead"]);
        println!("bytes {}/{}, {} tokens, {distinct} distinct keys", status["bytes_done"], meta.total_bytes, status["tokens"]);
        println!("counts in sorted set {}", store.keys.counts);
    } else {
        report::print_top(&top);
    }
    if let Some(mut redis) = managed {
        redis.stop()?;
    }
    Ok(0)
}
