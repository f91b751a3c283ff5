//! Input planning and CSV reading.
//!
//! A job's inputs are files, directories and globs, resolved to CSV files.
//! Large files are split into byte ranges that start on record boundaries,
//! found with the same CSV parser the workers use (quoted fields may hold
//! newlines, so a newline is not a boundary by itself). Reading one range
//! then yields exactly the records a whole-file parse gives for it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plugin::{Batch, Location};

/// Errors about the input, each naming the file (and row when known).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: CSV error{row}: {detail}")]
    Csv { path: PathBuf, row: RowLabel, detail: String },
    #[error("{path}: no column named `{column}` in the header (columns: {header})")]
    MissingColumn { path: PathBuf, column: String, header: String },
    #[error("{path}: the file is empty (no header row)")]
    NoHeader { path: PathBuf },
    #[error("`{pattern}` matches no file")]
    NoMatch { pattern: String },
    #[error("{path}: directory holds no .csv file")]
    NoCsvInDirectory { path: PathBuf },
    #[error("{path}: changed since the job was planned (size or modification time differ); re-plan the job")]
    Changed { path: PathBuf },
}

/// " row N" or nothing.
#[derive(Debug, Clone, Copy)]
pub struct RowLabel(pub Option<u64>);

impl std::fmt::Display for RowLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(row) => write!(f, " at row {row}"),
            None => Ok(()),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InputError + '_ {
    move |source| InputError::Io { path: path.to_path_buf(), source }
}

/// Resolves files, directories (their `*.csv` files, recursively) and glob
/// patterns into a sorted, de-duplicated list of files.
pub fn resolve_inputs(specs: &[String]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for spec in specs {
        let path = Path::new(spec);
        if path.is_dir() {
            let before = files.len();
            collect_csv(path, &mut files)?;
            if files.len() == before {
                return Err(InputError::NoCsvInDirectory { path: path.to_path_buf() });
            }
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else if spec.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(spec)
                .map_err(|e| InputError::Csv { path: spec.into(), row: RowLabel(None), detail: format!("bad glob: {e}") })?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matches.is_empty() {
                return Err(InputError::NoMatch { pattern: spec.clone() });
            }
            files.extend(matches);
        } else {
            return Err(InputError::Io { path: path.to_path_buf(), source: std::io::ErrorKind::NotFound.into() });
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_dir() {
            collect_csv(&path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            out.push(path);
        }
    }
    Ok(())
}

/// What a file was when the job was planned: a task is only valid for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
}

impl FileIdentity {
    pub fn of(path: &Path) -> Result<FileIdentity, InputError> {
        let canonical = std::fs::canonicalize(path).map_err(io_err(path))?;
        let meta = std::fs::metadata(&canonical).map_err(io_err(path))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Ok(FileIdentity { path: canonical, size: meta.len(), mtime_ns })
    }

    /// Fails when the file on disk is no longer the planned one.
    pub fn check_unchanged(&self) -> Result<(), InputError> {
        let now = FileIdentity::of(&self.path)?;
        if now != *self {
            return Err(InputError::Changed { path: self.path.clone() });
        }
        Ok(())
    }
}

/// A byte range of a file that starts and ends on record boundaries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputRange {
    pub file: FileIdentity,
    pub start: u64,
    pub end: u64,
    /// 1-based number of the range's first data row (the header is row 0).
    pub first_row: u64,
}

impl InputRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

fn csv_builder() -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.has_headers(false).flexible(true).buffer_capacity(1 << 20);
    builder
}

/// Splits a file into ranges of about `target_bytes`, each starting on a
/// record boundary. Files no larger than `target_bytes` are one range.
pub fn split_file(path: &Path, target_bytes: u64) -> Result<Vec<InputRange>, InputError> {
    let file = FileIdentity::of(path)?;
    let target = target_bytes.max(1);
    if file.size <= target {
        return Ok(vec![InputRange { file: file.clone(), start: 0, end: file.size, first_row: 1 }]);
    }
    let reader = File::open(path).map_err(io_err(path))?;
    let mut csv = csv_builder().from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut ranges = Vec::new();
    let (mut start, mut first_row, mut row) = (0u64, 1u64, 0u64);
    // Row 0 is the header; a boundary after record N starts data row N + 1.
    loop {
        let more = csv
            .read_byte_record(&mut record)
            .map_err(|e| InputError::Csv { path: path.to_path_buf(), row: RowLabel(Some(row)), detail: e.to_string() })?;
        if !more {
            break;
        }
        row += 1;
        let pos = csv.position().byte();
        if pos - start >= target && pos < file.size {
            ranges.push(InputRange { file: file.clone(), start, end: pos, first_row });
            (start, first_row) = (pos, row);
        }
    }
    ranges.push(InputRange { file: file.clone(), start, end: file.size, first_row });
    Ok(ranges)
}

/// Counts of the rows a read skipped or repaired, reported with the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadStats {
    pub rows: u64,
    pub bytes: u64,
    /// Rows without the plugin's columns (ragged rows).
    pub short_rows: u64,
    /// Rows whose values were not valid UTF-8 (decoded with U+FFFD).
    pub invalid_utf8_rows: u64,
}

impl ReadStats {
    pub fn add(&mut self, other: &ReadStats) {
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.short_rows += other.short_rows;
        self.invalid_utf8_rows += other.invalid_utf8_rows;
    }
}

/// Bytes of text per plugin call: large enough that crossing into WASM is
/// cheap, small enough that one call stays far from the CPU deadline.
pub const BATCH_BYTES: usize = 1 << 20;

/// Reads the header of `path` and finds the plugin's columns in it.
pub fn column_indices(path: &Path, columns: &[String]) -> Result<Vec<usize>, InputError> {
    let reader = File::open(path).map_err(io_err(path))?;
    let mut csv = csv_builder().from_reader(reader);
    let mut header = csv::ByteRecord::new();
    let has = csv
        .read_byte_record(&mut header)
        .map_err(|e| InputError::Csv { path: path.to_path_buf(), row: RowLabel(Some(0)), detail: e.to_string() })?;
    if !has {
        return Err(InputError::NoHeader { path: path.to_path_buf() });
    }
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = String::from_utf8_lossy(f).trim().to_string();
            if i == 0 { name.trim_start_matches('\u{feff}').to_string() } else { name }
        })
        .collect();
    columns
        .iter()
        .map(|col| {
            names.iter().position(|n| n == col).ok_or_else(|| InputError::MissingColumn {
                path: path.to_path_buf(),
                column: col.clone(),
                header: names.join(", "),
            })
        })
        .collect()
}

/// Reads one range and hands the plugin's columns to `on_batch`, batch by
/// batch, with the location of the batch's rows.
pub fn read_range<E: From<InputError>>(
    range: &InputRange,
    columns: &[String],
    mut on_batch: impl FnMut(&Batch, &Location) -> Result<(), E>,
) -> Result<ReadStats, E> {
    let path = range.file.path.as_path();
    range.file.check_unchanged()?;
    let indices = column_indices(path, columns)?;
    let mut file = File::open(path).map_err(io_err(path))?;
    file.seek(SeekFrom::Start(range.start)).map_err(io_err(path))?;
    let reader = BufReader::with_capacity(1 << 20, file).take(range.len());
    let mut csv = csv_builder().from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut stats = ReadStats { bytes: range.len(), ..ReadStats::default() };
    let mut batch = Batch::new(columns.len());
    let mut row = if range.start == 0 { 0 } else { range.first_row };
    let mut batch_first_row = row;
    let location = |first: u64, last: u64| Location(format!("{} rows {first}-{last}", path.display()));
    loop {
        let more = csv
            .read_byte_record(&mut record)
            .map_err(|e| InputError::Csv { path: path.to_path_buf(), row: RowLabel(Some(row)), detail: e.to_string() })?;
        if !more {
            break;
        }
        if row == 0 {
            row = 1; // the header
            batch_first_row = 1;
            continue;
        }
        stats.rows += 1;
        if indices.iter().any(|&i| i >= record.len()) {
            stats.short_rows += 1;
            row += 1;
            continue;
        }
        let mut invalid = false;
        for &i in &indices {
            let value = String::from_utf8_lossy(&record[i]);
            invalid |= matches!(value, std::borrow::Cow::Owned(_));
            batch.push_value(&value);
        }
        stats.invalid_utf8_rows += invalid as u64;
        if batch.bytes() >= BATCH_BYTES {
            on_batch(&batch, &location(batch_first_row, row))?;
            batch.clear();
            batch_first_row = row + 1;
        }
        row += 1;
    }
    if !batch.is_empty() {
        on_batch(&batch, &location(batch_first_row, row.saturating_sub(1)))?;
    }
    Ok(stats)
}
