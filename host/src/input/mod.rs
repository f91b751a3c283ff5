//! The input of a job: files, directories and globs resolved to CSV files
//! (plain, gzip, zstd, bzip2, or zip archives of them), planned into ranges
//! (`split.rs`) and read back (`read.rs`); `encoding.rs` decodes. Two
//! parsers follow csv-core's rules (the csv crate's, which `csv_builder`
//! configures, and which the tests compare them with): `scan.rs` finds where
//! records end, for the planner; `fields.rs` reads a record's fields, for
//! the workers.
//!
//! Large files are split into byte ranges that start on record boundaries,
//! found by the rules of the CSV parser the workers use (quoted fields may hold
//! newlines, so a newline is not a boundary by itself). Reading one range
//! then yields exactly the records a whole-file parse gives for it. A
//! compressed file can only be entered where a member (gzip member, zstd
//! frame, bzip2 stream) starts: its ranges start decoding there, skip to the
//! first record boundary after it, and read records up to the next range's
//! first record (see [`Encoded`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod encoding;
mod fields;
mod read;
mod scan;
mod split;

pub use encoding::{strip_compressed_suffix, Encoding};
pub use read::{column_indices, read_header, read_range, read_range_with, ColumnMap, Header, ReadOptions, ReadStats, BATCH_BYTES};
pub use split::{plan_file, split_file, split_file_with, split_identified, Planned, SplitOptions};

/// How the job reads its files, besides what each file says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputFormat {
    /// `--column PLUGIN=HEADER`.
    pub columns: ColumnMap,
    /// `--delimiter`; `None`: by name (`.tsv`: tab, else comma).
    pub delimiter: Option<u8>,
    /// `--mixed-headers`: read every file by its own header.
    pub mixed_headers: bool,
}

impl InputFormat {
    pub fn is_default(&self) -> bool {
        *self == InputFormat::default()
    }
}

/// Errors about the input, each naming the file (and row when known).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    // Not `source`: the message already quotes the I/O error, and a source
    // would be printed a second time by `{:#}`.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: CSV error{row}: {detail}")]
    Csv { path: PathBuf, row: RowLabel, detail: String },
    #[error("{path}: no column named `{column}` in the header (columns: {header}); {hint}")]
    MissingColumn { path: PathBuf, column: String, header: String, hint: String },
    #[error("{path}: its header ({header}) differs from the header of {first} ({first_header}), the first file of the job; count files with different headers in separate jobs, or read each by its own header with --mixed-headers")]
    HeaderMismatch { path: PathBuf, header: String, first: String, first_header: String },
    #[error("{0}")]
    Decode(String),
    #[error("{path}: not a readable zip archive: {detail}")]
    Zip { path: PathBuf, detail: String },
    #[error("{path}: no column named `{column}`: the first row is not a text header (binary data, or not UTF-8); is it a CSV file?")]
    BinaryHeader { path: PathBuf, column: String },
    #[error("{path}: not a regular file (a FIFO, socket or device cannot be split and re-read by workers)")]
    NotAFile { path: PathBuf },
    #[error("{path}: the file is empty (no header row)")]
    NoHeader { path: PathBuf },
    #[error("`{pattern}` matches no file")]
    NoMatch { pattern: String },
    #[error("{path}: directory holds no .csv file (nor .tsv, their .gz/.zst/.bz2, or .zip)")]
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

/// Resolves files, directories (their CSV files, recursively: see
/// [`is_input_name`]) and glob
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
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(is_input_name) {
            out.push(regular_file(&path)?);
        }
    }
    Ok(())
}

/// The names a directory contributes: `*.csv` and `*.tsv`, compressed or
/// not (`.gz`, `.zst`, `.bz2`), and `*.zip` archives. Files named directly
/// are taken whatever their name; their first bytes say how they are encoded.
pub fn is_input_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        return true;
    }
    let stem = strip_compressed_suffix(&lower);
    stem.ends_with(".csv") || stem.ends_with(".tsv")
}

/// The delimiter of a file (or zip member) named `name`: `delimiter` when
/// the job sets one, else a tab for `.tsv` (compressed or not), else a comma.
pub fn delimiter_for(name: &str, delimiter: Option<u8>) -> u8 {
    delimiter.unwrap_or_else(|| {
        let lower = name.to_ascii_lowercase();
        if strip_compressed_suffix(&lower).ends_with(".tsv") {
            b'\t'
        } else {
            b','
        }
    })
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

/// A part of a file that starts and ends on record boundaries: a byte
/// range of a plain CSV file, or, for a compressed file, the compressed
/// bytes `start..end` (from a member boundary to the next range's) and which
/// of their decoded bytes are the range's records ([`Encoded`]).
///
/// What a task is: serialized into the task spec and hashed into its id. A
/// plain comma-separated range serializes exactly as it did before
/// compressed inputs and delimiters existed, so its task ids are unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputRange {
    pub file: FileIdentity,
    /// Plain: the first byte of the range. Compressed: where decoding
    /// starts (a member boundary; for a zip member, its local header).
    pub start: u64,
    /// Plain: one past the last byte. Compressed: the next range's `start`
    /// (or the end of the file): the bytes on disk this range accounts for.
    pub end: u64,
    /// 1-based number of the range's first data row (the header is row 0).
    pub first_row: u64,
    /// How the CSV text is obtained from a compressed file; `None`: plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded: Option<Encoded>,
    /// The field delimiter (`,` is left out of the serialized form).
    #[serde(default = "comma", skip_serializing_if = "is_comma")]
    pub delimiter: u8,
}

fn comma() -> u8 {
    b','
}

fn is_comma(d: &u8) -> bool {
    *d == b','
}

/// The decoded side of a compressed range.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Encoded {
    pub encoding: Encoding,
    /// A zip archive's member (its name; `start` is its local header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Decoded bytes between `start` and the range's first record.
    pub skip: u64,
    /// Decoded bytes of the range's records; `None`: to the end of the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

impl InputRange {
    /// A plain comma-separated range.
    pub fn plain(file: FileIdentity, start: u64, end: u64, first_row: u64) -> InputRange {
        InputRange { file, start, end, first_row, encoded: None, delimiter: b',' }
    }

    /// Bytes on disk this range accounts for.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Does the range begin with the header row (the start of a file or of
    /// a zip member)?
    pub fn starts_with_header(&self) -> bool {
        match &self.encoded {
            None => self.start == 0,
            Some(e) if e.encoding == Encoding::Zip => true,
            Some(e) => self.start == 0 && e.skip == 0,
        }
    }

    /// The file, and the zip member if any, for messages.
    pub fn label(&self) -> String {
        match self.encoded.as_ref().and_then(|e| e.member.as_deref()) {
            Some(member) => format!("{}:{member}", self.file.path.display()),
            None => self.file.path.display().to_string(),
        }
    }

    /// Where the range is, for messages: `a.csv bytes 0-100`, or
    /// `a.csv.gz compressed bytes 0-100 (gzip)`.
    pub fn describe(&self) -> String {
        match &self.encoded {
            None => format!("{} bytes {}-{}", self.label(), self.start, self.end),
            Some(e) => format!("{} compressed bytes {}-{} ({})", self.label(), self.start, self.end, e.encoding.name()),
        }
    }
}

pub(super) fn csv_builder(delimiter: u8) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.has_headers(false).flexible(true).buffer_capacity(1 << 20).delimiter(delimiter);
    builder
}

/// Reads the next record; an error names the file and the row (or, for a
/// decoding failure, the compressed and decoded byte offsets).
pub(super) fn next_record<R: Read>(csv: &mut csv::Reader<R>, record: &mut csv::ByteRecord, path: &Path, row: u64) -> Result<bool, InputError> {
    csv.read_byte_record(record).map_err(|e| {
        let io = match e.kind() {
            csv::ErrorKind::Io(io) => Some(io),
            _ => None,
        };
        record_error(io, e.to_string(), path, row)
    })
}

/// A failure to read the record at `row`: a decoding failure (`io`'s
/// cause) names the compressed and decoded offsets, anything else the file
/// and row, in `detail`'s words.
pub(super) fn record_error(io: Option<&std::io::Error>, detail: String, path: &Path, row: u64) -> InputError {
    match io.and_then(encoding::decode_failure) {
        Some(failure) => InputError::Decode(format!("{failure} (at row {row})")),
        None => InputError::Csv { path: path.to_path_buf(), row: RowLabel(Some(row)), detail },
    }
}
