//! What a job tells its user: the progress bar while it runs and the
//! summary at the end. Presentation only: no Redis, no plugin.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct DeadTask {
    pub task: String,
    pub file: String,
    pub bytes: String,
    pub error: String,
}

/// An input the plan left out (a zip member that is not CSV), and why.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SkippedInput {
    pub file: String,
    pub member: String,
    pub reason: String,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Summary {
    pub job: String,
    pub plugin: String,
    pub redis: String,
    /// The sorted set holding the counts: `ZREVRANGE KEY 0 9 WITHSCORES`.
    pub count_key: String,
    pub files: usize,
    pub tasks: usize,
    /// Partitions of the tasks (each its own stream and done-set).
    #[serde(default)]
    pub partitions: u32,
    /// Bytes read from disk (compressed bytes of compressed inputs).
    pub bytes: u64,
    /// Bytes of CSV text parsed (equal to `bytes` for plain inputs).
    #[serde(default)]
    pub decoded_bytes: u64,
    pub rows: u64,
    pub tokens: u64,
    pub distinct: u64,
    pub wall_seconds: f64,
    /// On-disk MB/s.
    pub mb_per_second: f64,
    /// Decoded (CSV text) MB/s.
    #[serde(default)]
    pub decoded_mb_per_second: f64,
    /// Zip members left out (not CSV), reported.
    #[serde(default)]
    pub skipped_inputs: Vec<SkippedInput>,
    pub tasks_stolen: u64,
    /// Commits that `--replicas-ack` replicas did not acknowledge in time.
    #[serde(default)]
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
    pub checkpoints_failed: u64,
    pub resumed: bool,
    /// The job was already finished: this is its report again, and
    /// `wall_seconds`, `mb_per_second` and the faults are the first run's.
    pub reported_again: bool,
    /// How to read the counts back, as a command that works as printed.
    pub counts_hint: String,
    pub output: Option<String>,
    /// Persistence problems met (failing snapshots or append-only files,
    /// writes refused), each with what it means and what to do.
    #[serde(default)]
    pub persistence_warnings: Vec<String>,
    /// The HTML report written, if any.
    pub report: Option<String>,
    /// Where this run's time went (zeros in a re-report).
    #[serde(default)]
    pub phase_seconds: PhaseSeconds,
    /// How this run published the sorted set (`indexed` or `compact`, see
    /// `--set-encoding`); none in live mode or a re-report.
    #[serde(default)]
    pub set_encoding: Option<String>,
    pub top: Vec<(String, u64)>,
}

/// Where a job's wall time went, in seconds, as the coordinator saw it; a
/// phase that did not happen is 0. Up to `load` they are inside
/// `wall_seconds` (the rest of it: starting Redis and the workers, the
/// plan, waiting for stragglers); `output`, `report` and `final_save` come
/// after it, before the process exits.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct PhaseSeconds {
    /// From the first task planned to the coordinator seeing the last one
    /// done (it looks every 10 ms once the last tasks are out).
    pub workers: f64,
    /// Reduce mode: merging the task results not merged while counting.
    pub last_merge: f64,
    /// Reduce mode: sorting the merged counts into the sorted set's order.
    pub sort: f64,
    /// Reduce mode: building the sorted set's DUMP payload.
    pub encode: f64,
    /// Reduce mode: RESTORE of the sorted set and its publish (or the ZADDs).
    pub load: f64,
    /// Writing `--output`.
    pub output: f64,
    /// Writing the HTML report.
    pub report: f64,
    /// The managed Redis's save at its shutdown (SHUTDOWN SAVE).
    pub final_save: f64,
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
    let how = if s.reported_again {
        ", reported again (already finished in this Redis; timings and faults are those of the run that counted it)"
    } else if s.resumed {
        ", resumed"
    } else {
        ""
    };
    println!("job {} ({}){how}", s.job, s.plugin);
    println!(
        "{} tokens, {} distinct keys, {} rows, {} tasks from {} files, {} in {} ({})",
        s.tokens,
        s.distinct,
        s.rows,
        s.tasks,
        s.files,
        bytes_label(s.bytes, s.decoded_bytes),
        human_seconds(s.wall_seconds),
        rate_label(s.mb_per_second, s.decoded_mb_per_second, s.bytes != s.decoded_bytes)
    );
    for skipped in &s.skipped_inputs {
        println!("skipped {}: member `{}`: {}", skipped.file, skipped.member, skipped.reason);
    }
    println!(
        "faults: {} tasks stolen, {} resubmitted, {} duplicates suppressed, {} retries, {} dead-lettered, {} Redis restarts survived, {} workers respawned, {} failed checkpoints",
        s.tasks_stolen,
        s.tasks_resubmitted,
        s.duplicates_suppressed,
        s.retries,
        s.dead_lettered.len(),
        s.redis_restarts,
        s.worker_respawns,
        s.checkpoints_failed
    );
    if s.short_rows + s.invalid_utf8_rows > 0 {
        println!("input: {} rows lacked the plugin's columns (skipped), {} rows had invalid UTF-8 (decoded with U+FFFD)", s.short_rows, s.invalid_utf8_rows);
    }
    println!("counts: {}", s.counts_hint);
    // Only where a scan is worth a thought: at 100 000 keys a lookup by key
    // in a compact set scans for about half a millisecond.
    if s.set_encoding.as_deref() == Some("compact") && s.distinct >= 100_000 {
        println!("sorted set: compact (one listpack: a lookup by key scans it; --set-encoding indexed for O(log n) lookups)");
    }
    if let Some(path) = &s.output {
        println!("all counts written to {path}");
    }
    for warning in &s.persistence_warnings {
        println!("PERSISTENCE: {warning}");
    }
    for dead in &s.dead_lettered {
        println!("DEAD-LETTERED task {} ({} bytes {}): {}", dead.task, dead.file, dead.bytes, dead.error);
    }
    if let Some(path) = &s.report {
        println!("report: {path}");
    }
}

/// Seconds with two decimals below a minute, else as [`human_duration`].
pub fn human_seconds(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.2}s")
    } else {
        human_duration(seconds)
    }
}

/// What the progress line shows, as the coordinator knows it.
#[derive(Clone, Debug, Default)]
pub struct ProgressState {
    /// Read from disk (compressed bytes of compressed inputs).
    pub bytes: u64,
    /// CSV text parsed (equal to `bytes` for plain CSV).
    pub decoded_bytes: u64,
    pub total_bytes: u64,
    pub tasks_done: u64,
    /// Planned so far (the total once `planning` is false).
    pub tasks_known: u64,
    pub planning: bool,
    pub faults: Faults,
}

/// The faults of a job so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    pub stolen: u64,
    pub resubmitted: u64,
    pub workers_respawned: u64,
    pub redis_restarts: u64,
    pub checkpoints_failed: u64,
    pub dead_lettered: u64,
}

impl Faults {
    /// "2 stolen, 1 Redis restart", or "none".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.stolen, "stolen"),
            (self.resubmitted, "resubmitted"),
            (self.workers_respawned, "respawned"),
            (self.redis_restarts, "Redis restarts"),
            (self.checkpoints_failed, "checkpoints failed"),
            (self.dead_lettered, "dead-lettered"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// MB (10^6 bytes), one decimal.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A duration as `42s`, `3m05s` or `1h02m`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The progress line's text (also `status`'s): MB, %, MB/s, tasks, ETA, faults.
pub fn progress_text(p: &ProgressState, rate_mb_s: f64) -> String {
    let percent = if p.total_bytes > 0 { 100.0 * p.bytes as f64 / p.total_bytes as f64 } else { 0.0 };
    let tasks = if p.planning { format!("tasks {}/{} planning…", p.tasks_done, p.tasks_known) } else { format!("tasks {}/{}", p.tasks_done, p.tasks_known) };
    let faults = match p.faults.describe().as_str() {
        "none" => "no faults".to_string(),
        some => format!("faults: {some}"),
    };
    let eta = if rate_mb_s > 0.0 {
        human_duration(p.total_bytes.saturating_sub(p.bytes) as f64 / 1e6 / rate_mb_s)
    } else {
        "?".into()
    };
    let decoded = if p.decoded_bytes != p.bytes { format!(" ({:.1} MB decoded)", p.decoded_bytes as f64 / 1e6) } else { String::new() };
    format!("{:.1}/{}{decoded} {percent:.0}% · {rate_mb_s:.1} MB/s · {tasks} · ETA {eta} · {faults}", p.bytes as f64 / 1e6, mb(p.total_bytes))
}

/// One live progress line on a terminal (log lines go above it, see
/// `logging`); a plain line every few seconds otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: std::cell::Cell<Instant>,
    /// Recent (time, bytes) samples, for the current rate.
    samples: std::cell::RefCell<std::collections::VecDeque<(Instant, u64)>>,
}

impl Progress {
    pub fn new(total_bytes: u64, plain: bool) -> Progress {
        let bar = (!plain).then(|| {
            let bar = ProgressBar::new(total_bytes.max(1));
            bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {bar:12} {wide_msg}").expect("valid template").progress_chars("█▌ "));
            bar.enable_steady_tick(Duration::from_millis(200));
            crate::logging::attach_bar(&bar);
            bar
        });
        let now = Instant::now();
        Progress { bar, started: now, last_log: std::cell::Cell::new(now), samples: Default::default() }
    }

    /// MB/s over the last few seconds (since the start for the first ones).
    fn rate(&self, bytes: u64) -> f64 {
        let now = Instant::now();
        let mut samples = self.samples.borrow_mut();
        samples.push_back((now, bytes));
        while samples.len() > 2 && now.duration_since(samples[0].0) > Duration::from_secs(5) {
            samples.pop_front();
        }
        let (t0, b0) = if now.duration_since(self.started) < Duration::from_secs(5) { (self.started, 0) } else { samples[0] };
        let dt = now.duration_since(t0).as_secs_f64();
        if dt <= 0.0 {
            0.0
        } else {
            bytes.saturating_sub(b0) as f64 / 1e6 / dt
        }
    }

    pub fn update(&self, p: &ProgressState) {
        let rate = self.rate(p.bytes);
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.total_bytes.max(1));
                bar.set_position(p.bytes.min(p.total_bytes));
                bar.set_message(progress_text(p, rate));
            }
            None if self.last_log.get().elapsed() > Duration::from_secs(5) => {
                self.last_log.set(Instant::now());
                tracing::info!("progress: {}", progress_text(p, rate));
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            crate::logging::detach_bar();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_text_says_planning_and_names_the_faults() {
        let mut p = ProgressState { bytes: 50_000_000, decoded_bytes: 50_000_000, total_bytes: 100_000_000, tasks_done: 3, tasks_known: 7, planning: true, faults: Faults::default() };
        let text = progress_text(&p, 10.0);
        assert_eq!(text, "50.0/100.0 MB 50% · 10.0 MB/s · tasks 3/7 planning… · ETA 5s · no faults");
        p.planning = false;
        p.faults.stolen = 2;
        p.faults.redis_restarts = 1;
        assert_eq!(progress_text(&p, 0.0), "50.0/100.0 MB 50% · 0.0 MB/s · tasks 3/7 · ETA ? · faults: 2 stolen, 1 Redis restarts");
        assert_eq!(human_duration(125.0), "2m05s");
        assert_eq!(human_duration(3700.0), "1h01m");
    }
}
