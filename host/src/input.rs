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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InputError + '_ {
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

fn csv_builder() -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.has_headers(false).flexible(true).buffer_capacity(1 << 20);
    builder
}

/// Splits a file into ranges of about `target_bytes`, each starting on a
/// record boundary (never on one that begins with a UTF-8 BOM, see
/// `starts_with_bom`). Files no larger than `target_bytes` are one range.
pub fn split_file(path: &Path, target_bytes: u64) -> Result<Vec<InputRange>, InputError> {
    let mut ranges = Vec::new();
    split_file_with(path, target_bytes, |range| ranges.push(range))?;
    Ok(ranges)
}

/// Like [`split_file`], handing each range to `emit` as soon as it is
/// found, so that work on a large file can start while it is still being
/// split.
pub fn split_file_with(path: &Path, target_bytes: u64, emit: impl FnMut(InputRange)) -> Result<(), InputError> {
    split_identified(FileIdentity::of(path)?, target_bytes, emit)
}

/// Splits the file as it was when `file` was taken: a small file is one
/// range without being opened again, so a job's plan is what its identity
/// says even if the file changes while the plan is made (workers then find
/// the change and fail those tasks, naming the file).
pub fn split_identified(file: FileIdentity, target_bytes: u64, mut emit: impl FnMut(InputRange)) -> Result<(), InputError> {
    let path = file.path.clone();
    let path = path.as_path();
    let target = target_bytes.max(1);
    if file.size <= target {
        emit(InputRange { file: file.clone(), start: 0, end: file.size, first_row: 1 });
        return Ok(());
    }
    let reader = File::open(path).map_err(io_err(path))?;
    let peek = File::open(path).map_err(io_err(path))?;
    let mut csv = csv_builder().from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let (mut start, mut first_row, mut row) = (0u64, 1u64, 0u64);
    // Row 0 is the header; a boundary after record N starts data row N + 1.
    loop {
        if !next_record(&mut csv, &mut record, path, row)? {
            break;
        }
        row += 1;
        let pos = csv.position().byte();
        if pos - start >= target && pos < file.size && !starts_with_bom(&peek, pos).map_err(io_err(path))? {
            emit(InputRange { file: file.clone(), start, end: pos, first_row });
            (start, first_row) = (pos, row);
        }
    }
    emit(InputRange { file: file.clone(), start, end: file.size, first_row });
    Ok(())
}

/// Does a UTF-8 byte order mark start at `pos`? The csv parser drops a BOM
/// at the start of its input, so a range must not start on one: a record
/// beginning with a BOM in the middle of a file (files concatenated with
/// `cat`, say) would lose it, or vanish when it is nothing else, when read
/// as its own range, but not in a whole-file parse.
fn starts_with_bom(file: &File, pos: u64) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 3];
    match file.read_exact_at(&mut head, pos) {
        Ok(()) => Ok(head == *b"\xef\xbb\xbf"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads the next record; an error names the file and the row.
fn next_record<R: Read>(csv: &mut csv::Reader<R>, record: &mut csv::ByteRecord, path: &Path, row: u64) -> Result<bool, InputError> {
    csv.read_byte_record(record)
        .map_err(|e| InputError::Csv { path: path.to_path_buf(), row: RowLabel(Some(row)), detail: e.to_string() })
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

/// The most bytes one batch can hold (its end offsets are `u32`).
const MAX_BATCH_BYTES: usize = u32::MAX as usize;

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
            names.iter().position(|n| n == col).ok_or_else(|| {
                // Random bytes named .csv: say so, rather than quote them.
                let raw = header.as_slice();
                let binary = std::str::from_utf8(raw).is_err() || raw.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'));
                if binary {
                    InputError::BinaryHeader { path: path.to_path_buf(), column: col.clone() }
                } else {
                    InputError::MissingColumn { path: path.to_path_buf(), column: col.clone(), header: header_preview(&names) }
                }
            })
        })
        .collect()
}

/// The header's column names for a message: control characters escaped,
/// at most about 300 characters.
fn header_preview(names: &[String]) -> String {
    const MAX_CHARS: usize = 300;
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for c in name.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        if out.chars().count() > MAX_CHARS {
            let cut: String = out.chars().take(MAX_CHARS).collect();
            return format!("{cut}... ({} columns)", names.len());
        }
    }
    out
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
        if !next_record(&mut csv, &mut record, path, row)? {
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
        // Offsets in a batch are 32-bit: a row that could pass 4 GiB (an
        // invalid byte grows to 3 when decoded) is refused, naming it, and
        // a batch that it would overflow is sent first.
        let row_bytes = indices.iter().map(|&i| record[i].len()).sum::<usize>() * 3;
        if row_bytes > MAX_BATCH_BYTES {
            return Err(InputError::Csv {
                path: path.to_path_buf(),
                row: RowLabel(Some(row)),
                detail: format!("the row's fields hold {} bytes, more than one plugin call can take", row_bytes / 3),
            }
            .into());
        }
        if batch.bytes() + row_bytes > MAX_BATCH_BYTES {
            on_batch(&batch, &location(batch_first_row, row - 1))?;
            batch.clear();
            batch_first_row = row;
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
