//! Counting without Redis: a plugin instance over ranges, files or texts.
//! Workers use [`count_range`] for each task; `wc-host plugin count` and the
//! library API use the rest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::input::{self, ColumnMap, Encoding, Header, InputError, InputRange, Planned, ReadOptions, ReadStats, SplitOptions};
use crate::batch::{Batch, Location};
use crate::plugin::{Plugin, PluginError, PluginInstance, TaskCounts};
use crate::tally::{prefetch, PREFETCH_AHEAD};

/// Counts keyed by what the plugin returned.
pub type CountMap = FxHashMap<String, u64>;

#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A plugin failure that recurred on a fresh instance fed the same rows
    /// alone (see [`locate`]): running the task again cannot help, so a
    /// worker dead-letters it at once.
    #[error(transparent)]
    Deterministic(PluginError),
}

impl CountError {
    /// Whether retrying the task is pointless: the failure was reproduced.
    pub fn is_deterministic(&self) -> bool {
        matches!(self, CountError::Deterministic(_))
    }

    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            CountError::Plugin(e) | CountError::Deterministic(e) => Some(e),
            CountError::Input(_) => None,
        }
    }
}

/// The counts of one range, as the plugin returned them.
#[derive(Debug, Default)]
pub struct RangeCounts {
    pub counts: TaskCounts,
    pub stats: ReadStats,
}

/// Runs the plugin over one range of a CSV file, its columns under their
/// own names, whatever the header.
pub fn count_range(instance: &mut PluginInstance, params: &[(String, String)], range: &InputRange) -> Result<RangeCounts, CountError> {
    count_range_with(instance, params, range, &ColumnMap::default(), None)
}

/// Runs the plugin over one range, its columns read from the headers `map`
/// names, the file's header checked against `expected` (the job's).
pub fn count_range_with(
    instance: &mut PluginInstance,
    params: &[(String, String)],
    range: &InputRange,
    map: &ColumnMap,
    expected: Option<&Header>,
) -> Result<RangeCounts, CountError> {
    let options = ReadOptions { columns: instance.plugin().info().columns.clone(), map: map.clone(), expected: expected.cloned() };
    let plugin = instance.plugin().clone();
    let mut task = instance.start_task(params)?;
    let stats = input::read_range_with(range, &options, |batch: &Batch, at: &Location| {
        task.feed(batch, at).map_err(|error| located(locate(&plugin, params, batch, error)))
    })?;
    let at = Location::new(range.describe());
    let counts = task.finish(&at)?;
    Ok(RangeCounts { counts, stats })
}

/// The error of a failed `feed` once [`locate`] has looked for its row; its
/// wasm backtrace (if any) logged here, at debug level (`-v`): once per
/// failed task, never in the message.
fn located(outcome: Located) -> CountError {
    let error = match &outcome {
        Located::Reproduced(e) | Located::Unreproduced(e) => e,
    };
    if let Some(backtrace) = error.backtrace() {
        tracing::debug!("wasm backtrace of the failure{}:\n{}", error.at().cloned().unwrap_or_default(), backtrace.trim_end());
    }
    match outcome {
        Located::Reproduced(e) => CountError::Deterministic(e),
        Located::Unreproduced(e) => CountError::Plugin(e),
    }
}

/// What [`locate`] made of a failed `feed`.
#[derive(Debug)]
pub enum Located {
    /// A fresh instance fed the batch's rows alone failed the same way: the
    /// error now names the row (or the narrowest rows found).
    Reproduced(PluginError),
    /// Not reproduced, or not looked into: the error as it was, with a note
    /// when the batch alone did not fail.
    Unreproduced(PluginError),
}

/// Time [`locate`] may spend re-running a batch. A re-run that traps or runs
/// out of memory is quick, and one that passes takes what the rows take;
/// only a deadline failure costs its whole deadline on each failing re-run,
/// so a new re-run starts only if a whole deadline still fits in the budget.
/// Past it, the rows narrowed so far are reported.
const LOCATE_BUDGET: Duration = Duration::from_secs(30);

/// Finds the row of a batch on which `feed` failed with `error`.
///
/// Only a failure that poisons the instance (trap, CPU deadline, memory) is
/// looked into. On a fresh instance and a fresh task, under the same
/// sandbox limits, the whole batch is fed again: if that does not fail the
/// same way (the same [`PluginError`] variant), the failure depends on
/// earlier batches of the task, or on the moment; the batch's row range is
/// kept, and said so. If it does, the failure is deterministic and the
/// shortest failing prefix of the batch is bisected, in about log2(rows)
/// re-runs: its last row is the one. (A prefix failing in another way counts
/// as passing: the row found is the first whose addition fails the original
/// way.) A deadline failure with a deadline over a third of
/// [`LOCATE_BUDGET`] is not re-run at all.
pub fn locate(plugin: &Plugin, params: &[(String, String)], batch: &Batch, error: PluginError) -> Located {
    let deadline = match &error {
        PluginError::Deadline { deadline_ms, .. } => Some(Duration::from_millis(*deadline_ms as u64)),
        PluginError::Trap { .. } | PluginError::Memory { .. } => None,
        _ => return Located::Unreproduced(error),
    };
    let Some(at) = error.at().filter(|at| at.has_rows()).cloned() else { return Located::Unreproduced(error) };
    let rows = batch.rows();
    if rows == 0 || deadline.is_some_and(|d| d > LOCATE_BUDGET / 3) {
        return Located::Unreproduced(error);
    }
    let started = Instant::now();
    // Whether the first `n` rows, alone on a fresh instance, fail like `error`;
    // `None` when a re-run cannot even start (then nothing is concluded).
    let fails = |n: usize| -> Option<bool> {
        let mut instance = plugin.instantiate().ok()?;
        let mut task = instance.start_task(params).ok()?;
        Some(task.feed(&batch.prefix(n), &Location::default()).err().is_some_and(|e| e.same_kind(&error)))
    };
    match fails(rows) {
        Some(true) => {}
        Some(false) => {
            let note = "fed alone to a fresh instance these rows do not fail: the failure depends on earlier rows of the task, or on the moment";
            tracing::debug!("locating the failing row{at}: not reproduced");
            return Located::Unreproduced(error.located(at.with_note(note)));
        }
        None => return Located::Unreproduced(error),
    }
    // Invariant: the first `pass` rows do not fail like `error` (0: nothing
    // fed), the first `fail` rows do.
    let (mut pass, mut fail) = (0, rows);
    let mut reruns = 1;
    while fail - pass > 1 {
        if started.elapsed() + deadline.unwrap_or_default() > LOCATE_BUDGET {
            break;
        }
        let mid = pass + (fail - pass) / 2;
        reruns += 1;
        match fails(mid) {
            Some(true) => fail = mid,
            Some(false) => pass = mid,
            None => break,
        }
    }
    tracing::debug!("located the failure{at} in {reruns} re-runs, {:?}: batch rows {}..{}", started.elapsed(), pass + 1, fail);
    let found = if fail - pass == 1 {
        at.at_row(fail - 1)
    } else {
        at.at_rows(pass, fail - 1).with_note(&format!("narrowed down in {reruns} re-runs, then stopped after {} s", LOCATE_BUDGET.as_secs()))
    };
    Located::Reproduced(error.located(found))
}

/// Runs the plugin over whole files (splitting none) and merges the counts.
pub fn count_files(instance: &mut PluginInstance, params: &[(String, String)], files: &[PathBuf]) -> Result<(CountMap, ReadStats), CountError> {
    let (counts, stats, _) = count_files_with(instance, params, files, &ColumnMap::default(), &SplitOptions::default())?;
    Ok((counts, stats))
}

/// [`count_files`] with a column mapping and a delimiter; also returns what
/// planning had to say (zip members skipped, notes).
pub fn count_files_with(
    instance: &mut PluginInstance,
    params: &[(String, String)],
    files: &[PathBuf],
    map: &ColumnMap,
    options: &SplitOptions,
) -> Result<(CountMap, ReadStats, Vec<Planned>), CountError> {
    let mut total = CountMap::default();
    let mut stats = ReadStats::default();
    let mut notes = Vec::new();
    for path in files {
        let identity = input::FileIdentity::of(path)?;
        let encoding = Encoding::detect(path)?;
        let mut ranges = Vec::new();
        input::plan_file(identity, encoding, u64::MAX, options, |planned| match planned {
            Planned::Range(range) => ranges.push(range),
            other => notes.push(other),
        })?;
        for range in ranges {
            let part = count_range_with(instance, params, &range, map, None)?;
            merge(&mut total, part.counts.iter());
            stats.add(&part.stats);
        }
    }
    Ok((total, stats, notes))
}

/// Runs the plugin over texts given directly, as if each were one row whose
/// every column holds the text.
pub fn count_texts(instance: &mut PluginInstance, params: &[(String, String)], texts: &[&str]) -> Result<CountMap, PluginError> {
    let columns = instance.plugin().info().columns.len();
    let mut batch = Batch::new(columns);
    for text in texts {
        batch.push_row(std::iter::repeat_n(*text, columns));
    }
    let plugin = instance.plugin().clone();
    let mut task = instance.start_task(params)?;
    let at = Location::rows("--text", 1, texts.len() as u64, Vec::new());
    if let Err(error) = task.feed(&batch, &at) {
        return Err(match located(locate(&plugin, params, &batch, error)) {
            CountError::Plugin(e) | CountError::Deterministic(e) => e,
            CountError::Input(e) => unreachable!("no input is read here: {e}"),
        });
    }
    let mut total = CountMap::default();
    merge(&mut total, task.finish(&Location::new("--text"))?.iter());
    Ok(total)
}

pub fn merge<K: AsRef<str>>(total: &mut CountMap, counts: impl IntoIterator<Item = (K, u64)>) {
    for (key, n) in counts {
        match total.get_mut(key.as_ref()) {
            Some(count) => *count += n,
            None => {
                total.insert(key.as_ref().to_owned(), n);
            }
        }
    }
}

/// Keys by count descending, then key ascending: the order of every listing.
pub fn sorted_desc(counts: &CountMap) -> Vec<(&str, u64)> {
    sort_desc(counts.iter().map(|(k, &n)| (k.as_str(), n)).collect())
}

/// [`sorted_desc`] of any pairs, sorted on every core (millions of keys).
pub fn sort_desc(mut pairs: Vec<(&str, u64)>) -> Vec<(&str, u64)> {
    use rayon::slice::ParallelSliceMut;
    pairs.par_sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    pairs
}

/// Writes all counts, by count descending then key: `.json` as one object
/// `{key: count}`, `.csv` as `key,count` rows (with a header).
pub fn write_counts(path: &Path, counts: &CountMap) -> anyhow::Result<()> {
    write_sorted_counts(path, &sorted_desc(counts))
}

/// [`write_counts`] of pairs already in order, streamed out (no copy of
/// the keys: a job's output can hold millions).
pub fn write_sorted_counts(path: &Path, sorted: &[(&str, u64)]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if !matches!(ext.as_str(), "json" | "csv") {
        anyhow::bail!("{}: output must end in .json or .csv", path.display());
    }
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    match ext.as_str() {
        "json" => {
            out.write_all(b"{")?;
            let mut digits = itoa::Buffer::new();
            for (i, (key, n)) in sorted.iter().enumerate() {
                if let Some((ahead, _)) = sorted.get(i + PREFETCH_AHEAD) {
                    prefetch(ahead.as_bytes());
                }
                if i > 0 {
                    out.write_all(b",")?;
                }
                // Most keys need no escaping: written as they are, which
                // is several times faster than serde_json's per-key path
                // over millions of keys.
                if key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                    serde_json::to_writer(&mut out, key)?;
                } else {
                    out.write_all(b"\"")?;
                    out.write_all(key.as_bytes())?;
                    out.write_all(b"\"")?;
                }
                out.write_all(b":")?;
                out.write_all(digits.format(*n).as_bytes())?;
            }
            out.write_all(b"}")?;
        }
        "csv" => {
            let mut csv = csv::Writer::from_writer(&mut out);
            csv.write_record(["key", "count"])?;
            let mut digits = itoa::Buffer::new();
            for (i, (k, n)) in sorted.iter().enumerate() {
                if let Some((ahead, _)) = sorted.get(i + PREFETCH_AHEAD) {
                    prefetch(ahead.as_bytes());
                }
                csv.write_record([k.as_bytes(), digits.format(*n).as_bytes()])?;
            }
            csv.flush()?;
        }
        _ => unreachable!("checked above"),
    }
    std::io::Write::flush(&mut out).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON written is exactly serde_json's for the same pairs in the
    /// same order, escaping included.
    #[test]
    fn json_output_is_serde_jsons_byte_for_byte() {
        let keys = ["plain", "", "quote\"d", "back\\slash", "tab\there", "nl\n", "\u{1}", "é ✈️", "\u{7f}", "\u{2028}", "{}:,"];
        let sorted: Vec<(&str, u64)> = keys.iter().enumerate().map(|(i, k)| (*k, u64::MAX - i as u64)).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_sorted_counts(&path, &sorted).unwrap();
        let mut want = serde_json::Map::new();
        for (k, n) in &sorted {
            want.insert(k.to_string(), (*n).into());
        }
        // serde_json's map keeps insertion order only with preserve_order;
        // compare the text against a hand-joined serialization instead.
        let joined: Vec<String> = sorted.iter().map(|(k, n)| format!("{}:{n}", serde_json::to_string(k).unwrap())).collect();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{{{}}}", joined.join(",")));
        let back: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, want);
    }
}
