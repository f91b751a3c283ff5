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

#[derive(Debug, Serialize)]
pub struct Summary {
    pub job: String,
    pub plugin: String,
    pub redis: String,
    /// The sorted set holding the counts: `ZREVRANGE KEY 0 9 WITHSCORES`.
    pub count_key: String,
    pub files: usize,
    pub tasks: usize,
    /// Partitions of the tasks (each its own stream and done-set).
    pub partitions: u32,
    pub bytes: u64,
    pub rows: u64,
    pub tokens: u64,
    pub distinct: u64,
    pub wall_seconds: f64,
    pub mb_per_second: f64,
    pub tasks_stolen: u64,
    /// Commits that `--replicas-ack` replicas did not acknowledge in time.
    pub unreplicated_commits: u64,
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
    /// Snapshots that failed while the job ran.
    pub checkpoint_failures: u64,
    /// Persistence problems met (failing snapshots or append-only files,
    /// writes refused), each with what it means and what to do.
    pub persistence_warnings: Vec<String>,
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
    for warning in &s.persistence_warnings {
        println!("PERSISTENCE: {warning}");
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
