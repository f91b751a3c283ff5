//! Counting without Redis: a plugin instance over ranges, files or texts.
//! Workers use [`count_range`] for each task; `wc-host plugin count` and the
//! library API use the rest.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::input::{self, ColumnMap, Encoding, Header, InputError, InputRange, Planned, ReadOptions, ReadStats, SplitOptions};
use crate::batch::{Batch, Location};
use crate::plugin::{PluginError, PluginInstance};

/// Counts keyed by what the plugin returned.
pub type CountMap = FxHashMap<String, u64>;

#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// The counts of one range, as the plugin returned them.
#[derive(Debug, Default)]
pub struct RangeCounts {
    pub counts: Vec<(String, u64)>,
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
    let mut task = instance.start_task(params)?;
    let stats = input::read_range_with(range, &options, |batch: &Batch, at: &Location| task.feed(batch, at).map_err(CountError::from))?;
    let at = Location(range.describe());
    let counts = task.finish(&at)?;
    Ok(RangeCounts { counts, stats })
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
            merge(&mut total, part.counts);
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
    let mut task = instance.start_task(params)?;
    let at = Location("--text".into());
    task.feed(&batch, &at)?;
    let mut total = CountMap::default();
    merge(&mut total, task.finish(&at)?);
    Ok(total)
}

pub fn merge(total: &mut CountMap, counts: impl IntoIterator<Item = (String, u64)>) {
    for (key, n) in counts {
        *total.entry(key).or_insert(0) += n;
    }
}

/// Keys by count descending, then key ascending: the order of every listing.
pub fn sorted_desc(counts: &CountMap) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = counts.iter().map(|(k, &n)| (k.as_str(), n)).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

/// Writes all counts: `.json` as one object `{key: count}`, `.csv` as
/// `key,count` rows (with a header) sorted by count desc, then key.
pub fn write_counts(path: &Path, counts: &CountMap) -> anyhow::Result<()> {
    use anyhow::Context;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let sorted = sorted_desc(counts);
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    match ext.as_str() {
        "json" => {
            let map: serde_json::Map<String, serde_json::Value> =
                sorted.iter().map(|(k, n)| (k.to_string(), serde_json::Value::from(*n))).collect();
            serde_json::to_writer(&mut out, &map)?;
        }
        "csv" => {
            let mut csv = csv::Writer::from_writer(&mut out);
            csv.write_record(["key", "count"])?;
            for (k, n) in &sorted {
                csv.write_record([*k, n.to_string().as_str()])?;
            }
            csv.flush()?;
        }
        _ => anyhow::bail!("{}: output must end in .json or .csv", path.display()),
    }
    std::io::Write::flush(&mut out).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
