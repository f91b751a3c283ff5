//! The input of a job: files, directories and globs resolved to CSV files,
//! planned into ranges (`split.rs`) and read back (`read.rs`).
//!
//! Large files are split into byte ranges that start on record boundaries,
//! found with the same CSV parser the workers use (quoted fields may hold
//! newlines, so a newline is not a boundary by itself). Reading one range
//! then yields exactly the records a whole-file parse gives for it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod read;
mod split;

pub use read::{column_indices, read_range, ReadStats, BATCH_BYTES};
pub use split::{split_file, split_file_with, split_identified};

/// Errors about the input, each naming the file (and row when known).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    // Not `source`: the message already quotes the I/O error, and a source
    // would be printed a second time by `{:#}`.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: CSV error{row}: {detail}")]
    Csv { path: PathBuf, row: RowLabel, detail: String },
    #[error("{path}: no column named `{column}` in the header (columns: {header})")]
    MissingColumn { path: PathBuf, column: String, header: String },
    #[error("{path}: no column named `{column}`: the first row is not a text header (binary data, or not UTF-8); is it a CSV file?")]
    BinaryHeader { path: PathBuf, column: String },
    #[error("{path}: not a regular file (a FIFO, socket or device cannot be split and re-read by workers)")]
    NotAFile { path: PathBuf },
    #[error("{path}: the file is empty (no header row)")]
    NoHeader { path: PathBuf },
    #[error("`{pattern}` matches no file")]
    NoMatch { pattern: String },
    #[error("{path}: directory holds no .csv file")]
    NoCsvInDirectory { path: PathBuf },
    #[error("{path}: changed since the job was planned (size or modification time differ); re-plan the job")]
    Changed { path: PathBuf },
    #[error("{path}: no longer exists (deleted or moved since the job was planned)")]
    Gone { path: PathBuf },
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

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InputError + '_ {
    move |error| InputError::Io { path: path.to_path_buf(), error }
}

/// Resolves files, directories (their `*.csv` files, recursively) and glob
/// patterns into a sorted, de-duplicated list of regular files. A file named
/// twice (`a.csv` and `./a.csv`, or through a symlink) is listed once: its
/// tasks would be the same tasks (their ids come from the canonical path),
/// so it could not be counted twice anyway. Anything else than a regular
/// file (a FIFO, a device) is an error, since workers must be able to seek
/// in it and read it again.
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
            files.push(regular_file(path)?);
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
            // Not there (or not reachable): the OS says which.
            files.push(regular_file(path)?);
        }
    }
    files.sort();
    files.dedup();
    let mut seen: std::collections::HashMap<PathBuf, PathBuf> = std::collections::HashMap::new();
    let mut unique = Vec::with_capacity(files.len());
    for path in files {
        let canonical = std::fs::canonicalize(&path).map_err(io_err(&path))?;
        match seen.entry(canonical) {
            std::collections::hash_map::Entry::Occupied(first) => {
                tracing::warn!("{} is the same file as {}: counted once", path.display(), first.get().display());
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(path.clone());
                unique.push(path);
            }
        }
    }
    Ok(unique)
}

/// `path` if it is (or links to) a regular file.
fn regular_file(path: &Path) -> Result<PathBuf, InputError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(InputError::NotAFile { path: path.to_path_buf() });
    }
    Ok(path.to_path_buf())
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_dir() {
            collect_csv(&path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            out.push(regular_file(&path)?);
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
        let now = match FileIdentity::of(&self.path) {
            Err(InputError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(InputError::Gone { path: self.path.clone() });
            }
            other => other?,
        };
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

pub(super) fn csv_builder() -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.has_headers(false).flexible(true).buffer_capacity(1 << 20);
    builder
}

/// Reads the next record; an error names the file and the row.
pub(super) fn next_record<R: Read>(csv: &mut csv::Reader<R>, record: &mut csv::ByteRecord, path: &Path, row: u64) -> Result<bool, InputError> {
    csv.read_byte_record(record)
        .map_err(|e| InputError::Csv { path: path.to_path_buf(), row: RowLabel(Some(row)), detail: e.to_string() })
}
