//! What a job tells its user: the progress bar while it runs and the
//! summary at the end. Presentation only: no Redis, no plugin.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct DeadTask {
    pub task: String,
    pub file: String,
    pub bytes: String,
    pub error: String,
}

/// An input the plan left out (a zip member that is not CSV), and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedInput {
    pub file: String,
    pub member: String,
    pub reason: String,
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
    /// Bytes read from disk (compressed bytes of compressed inputs).
    pub bytes: u64,
    /// Bytes of CSV text parsed (equal to `bytes` for plain inputs).
    pub decoded_bytes: u64,
    pub rows: u64,
    pub tokens: u64,
    pub distinct: u64,
    pub wall_seconds: f64,
    /// On-disk MB/s.
    pub mb_per_second: f64,
    /// Decoded (CSV text) MB/s.
    pub decoded_mb_per_second: f64,
    /// Zip members left out (not CSV), reported.
    pub skipped_inputs: Vec<SkippedInput>,
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
        "{} tokens, {} distinct keys, {} rows, {} tasks from {} files, {} in {:.2}s ({})",
        s.tokens,
        s.distinct,
        s.rows,
        s.tasks,
        s.files,
        bytes_label(s.bytes, s.decoded_bytes),
        s.wall_seconds,
        rate_label(s.mb_per_second, s.decoded_mb_per_second, s.bytes != s.decoded_bytes)
    );
    for skipped in &s.skipped_inputs {
        println!("skipped {}: member `{}`: {}", skipped.file, skipped.member, skipped.reason);
    }
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

    /// `bytes`: on disk (compressed for compressed inputs), the bar's
    /// measure; `decoded`: CSV text parsed. `total_tasks`: planned so far
    /// (planning may still be going on).
    pub fn update(&self, bytes: u64, decoded: u64, tasks: u64, total_tasks: u64) {
        let compressed = decoded != bytes;
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes.min(self.total_bytes));
                if compressed {
                    let rate = decoded as f64 / 1e6 / self.started.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!("tasks {tasks}/{total_tasks}, {:.1} MB decoded ({rate:.1} MB/s)", decoded as f64 / 1e6));
                } else {
                    bar.set_message(format!("tasks {tasks}/{total_tasks}"));
                }
            }
            None if self.last_log.get().elapsed() > Duration::from_secs(5) => {
                self.last_log.set(Instant::now());
                let secs = self.started.elapsed().as_secs_f64().max(1e-9);
                tracing::info!(
                    "progress: tasks {tasks}/{total_tasks}, {:.1}/{:.1} MB{}, {}",
                    bytes as f64 / 1e6,
                    self.total_bytes as f64 / 1e6,
                    if compressed { format!(" on disk ({:.1} MB decoded)", decoded as f64 / 1e6) } else { String::new() },
                    rate_label(bytes as f64 / 1e6 / secs, decoded as f64 / 1e6 / secs, compressed)
                );
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

/// Keys may hold newlines or tabs (split-space keeps them): show them escaped.
pub fn printable(key: &str) -> String {
    if key.is_empty() {
        return "\"\"".into();
    }
    if key.chars().any(|c| c.is_control()) {
        return format!("{key:?}");
    }
    key.to_string()
}

/// `12.0 MB`, or `12.0 MB on disk, 48.0 MB decoded` when they differ.
pub fn bytes_label(bytes: u64, decoded: u64) -> String {
    if bytes == decoded {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} MB on disk, {:.1} MB decoded", bytes as f64 / 1e6, decoded as f64 / 1e6)
    }
}

/// `40.0 MB/s`, or `10.0 MB/s on disk, 40.0 MB/s decoded`.
pub fn rate_label(on_disk: f64, decoded: f64, compressed: bool) -> String {
    if compressed {
        format!("{on_disk:.1} MB/s on disk, {decoded:.1} MB/s decoded")
    } else {
        format!("{on_disk:.1} MB/s")
    }
}
