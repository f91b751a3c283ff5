//! `wc-host top` and `wc-host status`: a job read back from Redis.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::protocol::{now_ms, CommitMode, JobCounters, JobMeta, Keys, Patience, Store, WorkerRecord};
use crate::redis_server::{Durability, ManagedRedis};
use crate::report::{self, human_duration, mb, Faults};

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
    /// `status`: refresh every second until the job is finished.
    pub watch: bool,
}

/// Connects to the job's Redis (starting the managed one of `data_dir` when
/// no URL is given: the caller stops it) and reads the job's meta.
pub fn open_job(spec: &QuerySpec) -> anyhow::Result<(Store, String, JobMeta, Option<ManagedRedis>)> {
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
    Ok((store, job, meta, managed))
}

/// `wc-host top`: the job's top keys.
pub fn top(spec: &QuerySpec) -> anyhow::Result<i32> {
    let (mut store, _, _, managed) = open_job(spec)?;
    let (top, _) = store.top_keys(spec.top)?;
    if spec.json {
        println!("{}", serde_json::to_string_pretty(&top)?);
    } else {
        report::print_top(&top);
    }
    if let Some(mut redis) = managed {
        redis.stop()?;
    }
    Ok(0)
}

/// `wc-host status [--watch]`: the job's progress, workers and faults.
pub fn status(spec: &QuerySpec) -> anyhow::Result<i32> {
    let (mut store, job, meta, managed) = open_job(spec)?;
    let in_place = spec.watch && std::io::stdout().is_terminal();
    loop {
        let view = StatusView::read(&mut store, &job, &meta, spec.top)?;
        if spec.json {
            println!("{}", serde_json::to_string_pretty(&view.json())?);
        } else {
            if in_place {
                // Home and clear: the view is redrawn in place.
                print!("\x1b[H\x1b[2J");
            }
            view.print();
        }
        if !spec.watch || view.counters.finished() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        if !in_place && !spec.json {
            println!();
        }
    }
    if let Some(mut redis) = managed {
        redis.stop()?;
    }
    Ok(0)
}

/// What `status` shows, read once.
struct StatusView {
    job: String,
    meta: JobMeta,
    count_key: String,
    counters: JobCounters,
    distinct: u64,
    top: Vec<(String, u64)>,
    workers: Vec<WorkerRecord>,
    dead: Vec<(String, String)>,
    elapsed: f64,
}

impl StatusView {
    fn read(store: &mut Store, job: &str, meta: &JobMeta, top: usize) -> anyhow::Result<StatusView> {
        let counters = store.counters()?;
        let (top, zcard) = store.top_keys(top)?;
        // Reduce mode builds the sorted set at the end: until then, the
        // coordinator's merge says how many keys there are so far.
        let distinct = if counters.finished() || meta.commit_mode == CommitMode::Live { zcard } else { counters.merged_keys };
        let workers = if counters.finished() { vec![] } else { store.live_workers()? };
        let mut dead: Vec<(String, String)> = store.dead_letters()?.into_iter().collect();
        dead.sort();
        let elapsed = match (counters.started_at_ms, counters.finished_at_ms) {
            (0, _) => 0.0,
            (start, 0) => now_ms().saturating_sub(start) as f64 / 1e3,
            (start, end) => end.saturating_sub(start) as f64 / 1e3,
        };
        let elapsed = if counters.finished() { counters.first_wall_seconds.unwrap_or(elapsed) } else { elapsed };
        Ok(StatusView { job: job.into(), meta: meta.clone(), count_key: store.keys.counts.clone(), counters, distinct, top, workers, dead, elapsed })
    }

    fn percent(&self) -> f64 {
        if self.counters.finished() {
            100.0
        } else if self.meta.total_bytes > 0 {
            (100.0 * self.counters.bytes as f64 / self.meta.total_bytes as f64).min(100.0)
        } else {
            0.0
        }
    }

    fn rate(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.counters.bytes as f64 / 1e6 / self.elapsed
        } else {
            0.0
        }
    }

    fn eta(&self) -> Option<f64> {
        let rate = self.rate();
        (!self.counters.finished() && rate > 0.0).then(|| self.meta.total_bytes.saturating_sub(self.counters.bytes) as f64 / 1e6 / rate)
    }

    fn faults(&self) -> Faults {
        let c = &self.counters;
        Faults {
            stolen: c.stolen,
            resubmitted: c.resubmitted,
            workers_respawned: c.worker_respawns,
            redis_restarts: c.redis_restarts,
            checkpoints_failed: c.checkpoints_failed,
            dead_lettered: c.dead,
        }
    }

    fn json(&self) -> serde_json::Value {
        let c = &self.counters;
        json!({
            "job": self.job, "state": c.state, "plugin": self.meta.plugin_name, "count_key": self.count_key,
            "tasks": c.tasks_known(), "tasks_done": c.tasks_done, "dead": c.dead, "planning": c.planning(),
            "bytes": self.meta.total_bytes, "bytes_done": c.bytes, "tokens": c.tokens,
            "distinct": self.distinct, "top": self.top,
            "percent": self.percent(), "elapsed_seconds": self.elapsed, "mb_per_second": self.rate(), "eta_seconds": self.eta(),
            "faults": self.faults(), "workers": self.workers,
            "dead_letters": self.dead.iter().map(|(task, error)| json!({"task": task, "error": error})).collect::<Vec<_>>(),
        })
    }

    fn print(&self) {
        let c = &self.counters;
        println!("job {}: {}, plugin {} ({} mode)", self.job, c.state, self.meta.plugin_name, self.meta.commit_mode.as_str());
        let eta = self.eta().map_or_else(|| "-".to_string(), human_duration);
        println!(
            "progress  {:.1}% · {} of {} · {:.1} MB/s · elapsed {} · ETA {eta}",
            self.percent(),
            mb(c.bytes),
            mb(self.meta.total_bytes),
            self.rate(),
            human_duration(self.elapsed)
        );
        let planning = if c.planning() { " (planning…)" } else { "" };
        println!("tasks     {}/{} done{planning}, {} dead-lettered", c.tasks_done, c.tasks_known(), c.dead);
        let merged = if c.finished() { "" } else if self.meta.commit_mode == CommitMode::Reduce { " merged so far" } else { " so far" };
        println!("keys      {} distinct{merged}, {} tokens", self.distinct, c.tokens);
        println!("faults    {}", self.faults().describe());
        if !c.finished() {
            println!("workers   {} alive", self.workers.len());
            if !self.workers.is_empty() {
                let now = now_ms();
                println!("  {:<16} {:>7} {:>10} {:>9}  task", "host", "pid", "rate", "heartbeat");
                for w in &self.workers {
                    println!(
                        "  {:<16} {:>7} {:>5.1} MB/s {:>8.1}s  {}",
                        w.host,
                        w.pid,
                        w.bytes_per_second / 1e6,
                        now.saturating_sub(w.heartbeat_ms) as f64 / 1e3,
                        w.task.as_deref().unwrap_or("(idle)")
                    );
                }
            }
        }
        for (task, error) in &self.dead {
            println!("DEAD-LETTERED task {task}: {error}");
        }
        println!("counts in sorted set {}", self.count_key);
    }
}
