//! What a job tells its user: the progress bar while it runs, the summary
//! at the end, and reading counts back from the sorted set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use redis::Connection;
use serde::Serialize;

use crate::count::CountMap;
use crate::plugin_cmd::printable;
use crate::store::meta_u64;

#[derive(Debug, Serialize)]
pub struct DeadTask {
    pub task: String,
    pub file: String,
    pub bytes: String,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub job: String,
    pub plugin: String,
    pub redis: String,
    /// The sorted set holding the counts: `ZREVRANGE KEY 0 9 WITHSCORES`.
    pub count_key: String,
    pub files: usize,
    pub tasks: usize,
    pub bytes: u64,
    pub rows: u64,
    pub tokens: u64,
    pub distinct: u64,
    pub wall_seconds: f64,
    pub mb_per_second: f64,
    pub tasks_stolen: u64,
    /// Tasks submitted again after a Redis restore lost them.
    pub tasks_resubmitted: u64,
    pub duplicates_suppressed: u64,
    pub retries: u64,
    pub dead_lettered: Vec<DeadTask>,
    pub redis_restarts: u64,
    pub worker_respawns: u64,
    /// (task, key) pairs sent to Redis.
    pub pairs_committed: u64,
    /// CPU time of the Redis server since it started (all jobs it served).
    pub redis_cpu_seconds: f64,
    pub redis_peak_memory_mb: f64,
    pub short_rows: u64,
    pub invalid_utf8_rows: u64,
    pub resumed: bool,
    pub output: Option<String>,
    pub top: Vec<(String, u64)>,
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    pub fn from_meta(
        job: &str,
        plugin: &str,
        count_key: &str,
        files: usize,
        tasks: usize,
        meta: &HashMap<String, String>,
        top: Vec<(String, u64)>,
        distinct: u64,
        wall: Duration,
        dead_lettered: Vec<DeadTask>,
        redis_restarts: u64,
        worker_respawns: u64,
    ) -> Summary {
        let bytes = meta_u64(meta, "bytes");
        let wall_seconds = wall.as_secs_f64();
        Summary {
            job: job.into(),
            plugin: plugin.into(),
            redis: String::new(),
            count_key: count_key.into(),
            files,
            tasks,
            bytes,
            rows: meta_u64(meta, "rows"),
            tokens: meta_u64(meta, "tokens"),
            distinct,
            wall_seconds,
            mb_per_second: bytes as f64 / 1e6 / wall_seconds.max(1e-9),
            tasks_stolen: meta_u64(meta, "stolen"),
            tasks_resubmitted: 0,
            duplicates_suppressed: meta_u64(meta, "duplicates") + meta_u64(meta, "duplicate_parts"),
            retries: meta_u64(meta, "retries"),
            dead_lettered,
            redis_restarts,
            worker_respawns,
            pairs_committed: meta_u64(meta, "pairs"),
            redis_cpu_seconds: 0.0,
            redis_peak_memory_mb: 0.0,
            short_rows: meta_u64(meta, "short_rows"),
            invalid_utf8_rows: meta_u64(meta, "invalid_utf8_rows"),
            resumed: false,
            output: None,
            top,
        }
    }
}

pub fn print_top(top: &[(String, u64)]) {
    let width = top.iter().map(|(k, _)| printable(k).chars().count()).max().unwrap_or(0).min(40);
    for (key, n) in top {
        println!("{:<width$}  {n}", printable(key));
    }
}

pub fn print_summary(s: &Summary) {
    print_top(&s.top);
    println!();
    println!("job {} ({}){}", s.job, s.plugin, if s.resumed { ", resumed" } else { "" });
    println!(
        "{} tokens, {} distinct keys, {} rows, {} tasks from {} files, {:.1} MB in {:.2}s ({:.1} MB/s)",
        s.tokens, s.distinct, s.rows, s.tasks, s.files, s.bytes as f64 / 1e6, s.wall_seconds, s.mb_per_second
    );
    println!(
        "faults: {} tasks stolen, {} resubmitted, {} duplicates suppressed, {} retries, {} dead-lettered, {} Redis restarts survived, {} workers respawned",
        s.tasks_stolen,
        s.tasks_resubmitted,
        s.duplicates_suppressed,
        s.retries,
        s.dead_lettered.len(),
        s.redis_restarts,
        s.worker_respawns
    );
    if s.short_rows + s.invalid_utf8_rows > 0 {
        println!("input: {} rows lacked the plugin's columns (skipped), {} rows had invalid UTF-8 (decoded with U+FFFD)", s.short_rows, s.invalid_utf8_rows);
    }
    println!("counts in Redis: ZREVRANGE {} 0 9 WITHSCORES", s.count_key);
    if let Some(path) = &s.output {
        println!("all counts written to {path}");
    }
    for dead in &s.dead_lettered {
        println!("DEAD-LETTERED task {} ({} bytes {}): {}", dead.task, dead.file, dead.bytes, dead.error);
    }
}

/// The top `n` keys by count desc, then key asc (ties at the cut included
/// before sorting so the order is exact), and the number of keys.
pub fn top_keys(conn: &mut Connection, key: &str, n: usize) -> redis::RedisResult<(Vec<(String, u64)>, u64)> {
    let distinct: u64 = redis::cmd("ZCARD").arg(key).query(conn)?;
    if n == 0 || distinct == 0 {
        return Ok((vec![], distinct));
    }
    let nth: Vec<(Vec<u8>, f64)> = redis::cmd("ZREVRANGE").arg(key).arg(n - 1).arg(n - 1).arg("WITHSCORES").query(conn)?;
    let min = nth.first().map_or(0.0, |(_, s)| *s);
    let candidates: Vec<(Vec<u8>, f64)> = redis::cmd("ZREVRANGEBYSCORE").arg(key).arg("+inf").arg(min).arg("WITHSCORES").query(conn)?;
    let mut top: Vec<(String, u64)> = candidates.into_iter().map(|(k, s)| (String::from_utf8_lossy(&k).into_owned(), s as u64)).collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(n);
    Ok((top, distinct))
}

/// Every count of the sorted set, read in pages.
pub fn all_counts(conn: &mut Connection, key: &str) -> redis::RedisResult<CountMap> {
    let mut counts = CountMap::default();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<(Vec<u8>, f64)>) = redis::cmd("ZSCAN").arg(key).arg(cursor).arg("COUNT").arg(10_000).query(conn)?;
        for (k, s) in page {
            counts.insert(String::from_utf8_lossy(&k).into_owned(), s as u64);
        }
        if next == 0 {
            return Ok(counts);
        }
        cursor = next;
    }
}

/// A progress bar on a terminal; periodic log lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    total_bytes: u64,
    started: Instant,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    pub fn new(total_bytes: u64, plain: bool) -> Progress {
        let bar = (!plain).then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, total_bytes, started: Instant::now(), last_log: std::cell::Cell::new(Instant::now()) }
    }

    /// `total_tasks`: planned so far (planning may still be going on).
    pub fn update(&self, bytes: u64, tasks: u64, total_tasks: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes.min(self.total_bytes));
                bar.set_message(format!("tasks {tasks}/{total_tasks}"));
            }
            None if self.last_log.get().elapsed() > Duration::from_secs(5) => {
                self.last_log.set(Instant::now());
                let rate = bytes as f64 / 1e6 / self.started.elapsed().as_secs_f64().max(1e-9);
                tracing::info!("progress: tasks {tasks}/{total_tasks}, {:.1}/{:.1} MB, {rate:.1} MB/s", bytes as f64 / 1e6, self.total_bytes as f64 / 1e6);
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
