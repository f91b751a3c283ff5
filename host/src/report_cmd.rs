//! `wc-host report` and a job's `--report FILE.html`: gathers what the
//! HTML report shows from Redis (summary, events, throughput samples,
//! rank-frequency from the sorted set) through protocol calls, and hands
//! it to [`html_report`](crate::html_report) as plain data.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::html_report::{self, ReportData, TimelineEvent};
use crate::protocol::{now_ms, Event, EventKind, JobCounters, JobMeta, Store};
use crate::query::{open_job, QuerySpec};
use crate::report::{DeadTask, Summary};

/// Keys in the report's bar chart.
pub const REPORT_TOP: usize = 20;

/// `wc-host report [--job ID] -o FILE.html`.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    pub query: QuerySpec,
    pub output: PathBuf,
}

/// Writes the report of a job (finished or not) from Redis alone.
pub fn run(spec: &ReportSpec) -> anyhow::Result<i32> {
    let (mut store, job, meta, managed) = open_job(&spec.query)?;
    let mut summary = summary_from_redis(&mut store, &job, &meta, &spec.query)?;
    summary.redis = match &spec.query.redis {
        Some(url) => crate::protocol::redact(url),
        None => format!("the managed Redis of {}", spec.query.data_dir.display()),
    };
    write_report(&mut store, &summary, &spec.output, None)?;
    if let Some(mut redis) = managed {
        redis.stop()?;
    }
    println!("report of job {job} written to {}", spec.output.display());
    Ok(0)
}

/// The job's summary as Redis holds it (what the job printed, when it is
/// finished: the finishing run recorded its timings and faults in meta).
fn summary_from_redis(store: &mut Store, job: &str, meta: &JobMeta, query: &QuerySpec) -> anyhow::Result<Summary> {
    let c: JobCounters = store.counters()?;
    let (top, distinct) = store.top_keys(query.top)?;
    let distinct = if c.finished() || meta.commit_mode == crate::protocol::CommitMode::Live { distinct } else { c.merged_keys };
    let events = store.events()?;
    let dead = store.dead_letters()?;
    let mut dead_lettered: Vec<DeadTask> = dead
        .into_iter()
        .map(|(task, error)| {
            let file = events.iter().rev().find(|e| e.kind == EventKind::DeadLetter && e.get("task") == Some(&task)).and_then(|e| e.get("file")).unwrap_or("");
            DeadTask { file: file.to_string(), bytes: String::new(), task, error }
        })
        .collect();
    dead_lettered.sort_by(|a, b| a.task.cmp(&b.task));
    let elapsed = match (c.started_at_ms, c.finished_at_ms) {
        (0, _) => 0.0,
        (start, 0) => now_ms().saturating_sub(start) as f64 / 1e3,
        (start, end) => end.saturating_sub(start) as f64 / 1e3,
    };
    let wall_seconds = c.first_wall_seconds.unwrap_or(elapsed);
    let data_dir = if query.redis.is_none() && query.data_dir != Path::new(crate::redis_server::DEFAULT_DATA_DIR) {
        format!(" --data-dir {}", query.data_dir.display())
    } else {
        String::new()
    };
    Ok(Summary {
        files: c.files as usize,
        tasks: c.tasks_known() as usize,
        dead_lettered,
        counts_hint: format!("wc-host top --job {job}{data_dir}"),
        ..summary_of(job, &meta.plugin_name, &store.keys.counts, meta.partitions, &c, wall_seconds, distinct, top)
    })
}

/// A summary from a job's counters as Redis holds them; the caller fills in
/// what only it knows (files, tasks, dead letters, hints, output).
#[allow(clippy::too_many_arguments)]
pub fn summary_of(
    job: &str,
    plugin: &str,
    count_key: &str,
    partitions: u32,
    c: &JobCounters,
    wall_seconds: f64,
    distinct: u64,
    top: Vec<(String, u64)>,
) -> Summary {
    Summary {
        job: job.to_string(),
        plugin: plugin.to_string(),
        redis: String::new(),
        count_key: count_key.to_string(),
        files: 0,
        tasks: 0,
        partitions,
        bytes: c.bytes,
        rows: c.rows,
        tokens: c.tokens,
        distinct,
        wall_seconds,
        mb_per_second: c.first_mb_per_second.unwrap_or(c.bytes as f64 / 1e6 / wall_seconds.max(1e-9)),
        decoded_bytes: c.decoded_bytes,
        decoded_mb_per_second: c.decoded_bytes as f64 / 1e6 / wall_seconds.max(1e-9),
        // Known to the run that planned the job (its summary and log).
        skipped_inputs: Vec::new(),
        tasks_stolen: c.stolen,
        unreplicated_commits: c.unreplicated_commits,
        tasks_resubmitted: c.resubmitted,
        duplicates_suppressed: c.duplicates + c.duplicate_parts,
        retries: c.retries,
        dead_lettered: Vec::new(),
        redis_restarts: c.redis_restarts,
        worker_respawns: c.worker_respawns,
        checkpoints_failed: c.checkpoints_failed,
        pairs_committed: c.pairs,
        redis_cpu_seconds: 0.0,
        redis_peak_memory_mb: 0.0,
        short_rows: c.short_rows,
        invalid_utf8_rows: c.invalid_utf8_rows,
        resumed: false,
        reported_again: false,
        counts_hint: String::new(),
        output: None,
        // Said as they happened; the job's events keep the failed checkpoints.
        persistence_warnings: Vec::new(),
        report: None,
        phase_seconds: Default::default(),
        set_encoding: None,
        top,
    }
}

/// Gathers the report's data for `summary`'s job and writes the HTML file.
/// `local`: the top keys (count descending, then key) and the counts at
/// [`sample_ranks`], when the caller holds them (the coordinator that just
/// published them); else they are read from the sorted set.
pub fn write_report(store: &mut Store, summary: &Summary, path: &Path, local: Option<(&[(String, u64)], &[(u64, u64)])>) -> anyhow::Result<()> {
    let events = store.events()?;
    let (top, rank_frequency) = match local {
        Some((top, ranks)) => (top.iter().take(REPORT_TOP).cloned().collect(), ranks.to_vec()),
        None => (store.top_keys(REPORT_TOP)?.0, store.counts_at_ranks(&sample_ranks(summary.distinct))?),
    };
    let data = ReportData {
        summary,
        events: timeline(&events),
        throughput: throughput(&events),
        rank_frequency,
        top,
        generated: utc_text(now_ms()),
    };
    let html = html_report::render(&data);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))
}

/// Ranks for a log-log plot of `distinct` keys: every rank up to 100, then
/// about 40 per decade, and the last.
pub(crate) fn sample_ranks(distinct: u64) -> Vec<u64> {
    let mut ranks: Vec<u64> = (1..=distinct.min(100)).collect();
    let mut r = 100.0f64;
    while (r as u64) < distinct {
        r *= 1.06;
        ranks.push((r as u64).min(distinct));
    }
    ranks.dedup();
    ranks
}

/// When the job's story starts: its first event.
fn origin(events: &[Event]) -> u64 {
    events.first().map_or(0, |e| e.at_ms)
}

fn timeline(events: &[Event]) -> Vec<TimelineEvent> {
    let t0 = origin(events);
    events
        .iter()
        .filter(|e| e.kind != EventKind::Progress)
        .map(|e| TimelineEvent {
            t: e.at_ms.saturating_sub(t0) as f64 / 1e3,
            kind: e.kind.as_str().to_string(),
            fault: e.kind.is_fault(),
            detail: e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
        })
        .collect()
}

/// MB/s between consecutive progress samples (a rollback shows as 0).
fn throughput(events: &[Event]) -> Vec<(f64, f64)> {
    let t0 = origin(events);
    let samples: Vec<(u64, u64)> = events.iter().filter(|e| e.kind == EventKind::Progress).map(|e| (e.at_ms, e.number("bytes"))).collect();
    let mut out = vec![];
    if let Some(first) = samples.first() {
        out.push((first.0.saturating_sub(t0) as f64 / 1e3, 0.0));
    }
    for pair in samples.windows(2) {
        let ((t1, b1), (t2, b2)) = (pair[0], pair[1]);
        let dt = t2.saturating_sub(t1) as f64 / 1e3;
        if dt > 0.0 {
            out.push((t2.saturating_sub(t0) as f64 / 1e3, b2.saturating_sub(b1) as f64 / 1e6 / dt));
        }
    }
    out
}

/// ms since the epoch as `2026-11-25 23:18:03 UTC` (civil from days, after
/// Howard Hinnant's algorithm).
pub fn utc_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text_is_a_calendar_date() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc_text(1_795_648_691_688), "2026-11-25 23:18:11 UTC");
        assert_eq!(super::sample_ranks(5), vec![1, 2, 3, 4, 5]);
        assert_eq!(*super::sample_ranks(10_000).last().unwrap(), 10_000);
    }
}
