//! Reading one range: the plugin's columns of its records, in batches.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::encoding::{DecodeFailure, Encoding, MemberReader};
use super::fields::{FieldReader, Record};
use super::{csv_builder, io_err, next_record, record_error, Encoded, InputError, InputRange, RowLabel};
use crate::batch::{Batch, Location};

/// Counts of the rows a read skipped or repaired, reported with the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadStats {
    pub rows: u64,
    /// Bytes on disk: compressed bytes for a compressed range.
    pub bytes: u64,
    /// Bytes of CSV text parsed: decoded bytes for a compressed range.
    #[serde(default)]
    pub decoded_bytes: u64,
    /// Rows without the plugin's columns (ragged rows).
    pub short_rows: u64,
    /// Rows whose values were not valid UTF-8 (decoded with U+FFFD).
    pub invalid_utf8_rows: u64,
}

impl ReadStats {
    pub fn add(&mut self, other: &ReadStats) {
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.decoded_bytes += other.decoded_bytes;
        self.short_rows += other.short_rows;
        self.invalid_utf8_rows += other.invalid_utf8_rows;
    }
}

/// Bytes of text per plugin call: large enough that crossing into WASM is
/// cheap, small enough that one call stays far from the CPU deadline.
pub const BATCH_BYTES: usize = 1 << 20;

/// The most bytes one batch can hold (its end offsets are `u32`).
const MAX_BATCH_BYTES: usize = u32::MAX as usize;

/// The plugin's columns mapped to the file's headers (`--column text=body`):
/// plugin column name -> header name. Columns not named here are looked up
/// under their own name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMap(pub Vec<(String, String)>);

impl ColumnMap {
    /// The header name the plugin's `column` is read from.
    pub fn header_for<'a>(&'a self, column: &'a str) -> &'a str {
        self.0.iter().rev().find(|(c, _)| c == column).map_or(column, |(_, h)| h.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A file's header as names, and which file it is (for messages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub file: String,
    pub names: Vec<String>,
}

/// How a range's rows become plugin values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The plugin's columns, in its order.
    pub columns: Vec<String>,
    /// Where each column is in the file's header.
    pub map: ColumnMap,
    /// The job's header (the first file's): a file whose header differs is
    /// an error naming both. `None`: any header with the columns will do.
    pub expected: Option<Header>,
}

impl ReadOptions {
    /// The plugin's columns under their own names, any header.
    pub fn new(columns: &[String]) -> ReadOptions {
        ReadOptions { columns: columns.to_vec(), ..ReadOptions::default() }
    }
}

/// Reads the header of a plain comma-separated file and finds `columns` in it.
pub fn column_indices(path: &Path, columns: &[String]) -> Result<Vec<usize>, InputError> {
    let range = InputRange::plain(super::FileIdentity { path: path.to_path_buf(), size: 0, mtime_ns: 0 }, 0, 0, 1);
    let header = raw_header(&range)?;
    indices_in(&header, &range.label(), &ReadOptions::new(columns))
}

/// The header of the file (or zip member) `range` is part of, as names;
/// `None` when it has no header row, or when its first row is not text.
pub fn read_header(range: &InputRange) -> Result<Option<Header>, InputError> {
    match raw_header(range) {
        Ok(raw) if !is_binary(&raw) => Ok(Some(Header { file: range.label(), names: header_names(&raw) })),
        Ok(_) | Err(InputError::NoHeader { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first record of the range's file (or zip member).
fn raw_header(range: &InputRange) -> Result<csv::ByteRecord, InputError> {
    let path = range.file.path.as_path();
    let label = range.label();
    with_text(range, true, |reader| {
        let mut csv = csv_builder(range.delimiter).from_reader(reader);
        let mut header = csv::ByteRecord::new();
        if !next_record(&mut csv, &mut header, path, 0)? {
            return Err(InputError::NoHeader { path: label.clone().into() });
        }
        Ok(header)
    })
}

fn header_names(header: &csv::ByteRecord) -> Vec<String> {
    header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = String::from_utf8_lossy(f).trim().to_string();
            if i == 0 { name.trim_start_matches('\u{feff}').to_string() } else { name }
        })
        .collect()
}

/// Random bytes named .csv: say so, rather than quote them.
fn is_binary(header: &csv::ByteRecord) -> bool {
    let raw = header.as_slice();
    std::str::from_utf8(raw).is_err() || raw.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Where the plugin's columns are in `header`, checked against the job's header.
fn indices_in(header: &csv::ByteRecord, label: &str, options: &ReadOptions) -> Result<Vec<usize>, InputError> {
    let names = header_names(header);
    let indices = options
        .columns
        .iter()
        .map(|col| {
            let wanted = options.map.header_for(col);
            names.iter().position(|n| n == wanted).ok_or_else(|| {
                if is_binary(header) {
                    InputError::BinaryHeader { path: label.into(), column: wanted.to_string() }
                } else {
                    let hint = if wanted == col {
                        format!("name the column that holds the plugin's `{col}` with --column {col}=HEADER")
                    } else {
                        format!("`{wanted}` is where --column {col}={wanted} reads the plugin's `{col}` from; pick a column of this header")
                    };
                    InputError::MissingColumn { path: label.into(), column: wanted.to_string(), header: header_preview(&names), hint }
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(expected) = &options.expected {
        if expected.names != names && expected.file != label {
            return Err(InputError::HeaderMismatch {
                path: label.into(),
                header: header_preview(&names),
                first: expected.file.clone(),
                first_header: header_preview(&expected.names),
            });
        }
    }
    Ok(indices)
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
    on_batch: impl FnMut(&Batch, &Location) -> Result<(), E>,
) -> Result<ReadStats, E> {
    read_range_with(range, &ReadOptions::new(columns), on_batch)
}

/// [`read_range`] with the job's column mapping and header.
pub fn read_range_with<E: From<InputError>>(
    range: &InputRange,
    options: &ReadOptions,
    mut on_batch: impl FnMut(&Batch, &Location) -> Result<(), E>,
) -> Result<ReadStats, E> {
    range.file.check_unchanged()?;
    let header = raw_header(range)?;
    let indices = indices_in(&header, &range.label(), options)?;
    let mut result = Ok(ReadStats::default());
    with_text(range, false, |reader| {
        result = read_records(range, reader, &indices, options.columns.len(), &mut on_batch);
        Ok(())
    })?;
    result
}

fn read_records<E: From<InputError>>(
    range: &InputRange,
    reader: &mut dyn Read,
    indices: &[usize],
    columns: usize,
    on_batch: &mut impl FnMut(&Batch, &Location) -> Result<(), E>,
) -> Result<ReadStats, E> {
    let path = range.file.path.as_path();
    let label = range.label();
    let mut counted = CountingRead { inner: reader, bytes: 0 };
    let mut csv = FieldReader::new(&mut counted, range.delimiter, indices);
    let mut record = Record::default();
    let mut stats = ReadStats { bytes: range.len(), ..ReadStats::default() };
    let mut batch = Batch::new(columns);
    let mut row = if range.starts_with_header() { 0 } else { range.first_row };
    let mut batch_first_row = row;
    // Rows of the current batch skipped as too short: a batch's location
    // names each of its rows (see `Location::at_row`).
    let mut skipped: Vec<u64> = Vec::new();
    let location = |first: u64, last: u64, skipped: &mut Vec<u64>| Location::rows(&label, first, last, std::mem::take(skipped));
    loop {
        let more = csv.read_record(&mut record).map_err(|e| record_error(Some(&e), e.to_string(), path, row))?;
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
            skipped.push(row);
            row += 1;
            continue;
        }
        // Offsets in a batch are 32-bit: a row that could pass 4 GiB (an
        // invalid byte grows to 3 when decoded) is refused, naming it, and
        // a batch that it would overflow is sent first.
        let row_bytes = indices.iter().map(|&i| record.field(i).len()).sum::<usize>() * 3;
        if row_bytes > MAX_BATCH_BYTES {
            return Err(InputError::Csv {
                path: path.to_path_buf(),
                row: RowLabel(Some(row)),
                detail: format!("the row's fields hold {} bytes, more than one plugin call can take", row_bytes / 3),
            }
            .into());
        }
        if batch.bytes() + row_bytes > MAX_BATCH_BYTES {
            on_batch(&batch, &location(batch_first_row, row - 1, &mut skipped))?;
            batch.clear();
            batch_first_row = row;
        }
        let mut invalid = false;
        for &i in indices {
            // The common case checked first: from_utf8 is several times
            // faster on valid text than from_utf8_lossy's scan.
            match std::str::from_utf8(record.field(i)) {
                Ok(value) => batch.push_value(value),
                Err(_) => {
                    invalid = true;
                    batch.push_value(&String::from_utf8_lossy(record.field(i)));
                }
            }
        }
        stats.invalid_utf8_rows += invalid as u64;
        if batch.bytes() >= BATCH_BYTES {
            on_batch(&batch, &location(batch_first_row, row, &mut skipped))?;
            batch.clear();
            batch_first_row = row + 1;
        }
        row += 1;
    }
    if !batch.is_empty() {
        on_batch(&batch, &location(batch_first_row, row.saturating_sub(1), &mut skipped))?;
    }
    drop(csv);
    // The decoded text read (less the separator `with_text` may put first).
    stats.decoded_bytes = if range.encoded.is_some() { counted.bytes.saturating_sub(u64::from(!range.starts_with_header())) } else { range.len() };
    Ok(stats)
}

/// Counts the bytes read through it.
struct CountingRead<'a> {
    inner: &'a mut dyn Read,
    bytes: u64,
}

impl Read for CountingRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Runs `f` over the CSV text of `range` (`from_start`: of its whole file or
/// zip member, for the header).
///
/// A compressed range that does not begin with the header is handed over
/// with a newline first: the parser skips a blank line, and does not take a
/// UTF-8 byte order mark that starts the range's first record for one at
/// the start of its input (which it would drop); plain ranges never start
/// on one (the splitter avoids them).
fn with_text<T>(range: &InputRange, from_start: bool, f: impl FnOnce(&mut dyn Read) -> Result<T, InputError>) -> Result<T, InputError> {
    let path = range.file.path.as_path();
    match &range.encoded {
        None => {
            let mut file = File::open(path).map_err(io_err(path))?;
            if from_start {
                return f(&mut BufReader::with_capacity(1 << 16, file));
            }
            file.seek(SeekFrom::Start(range.start)).map_err(io_err(path))?;
            f(&mut BufReader::with_capacity(1 << 20, file).take(range.len()))
        }
        Some(Encoded { encoding: Encoding::Zip, member, .. }) => {
            let member = member.as_deref().unwrap_or_default();
            let label = range.label();
            let zip_err = |e: zip::result::ZipError| InputError::Zip { path: path.to_path_buf(), detail: e.to_string() };
            let file = File::open(path).map_err(io_err(path))?;
            let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
            let index = (0..archive.len())
                .find(|&i| archive.by_index_raw(i).is_ok_and(|e| e.header_start() == range.start && e.name().is_ok_and(|n| n == member)))
                .ok_or_else(|| InputError::Zip { path: path.to_path_buf(), detail: format!("no member `{member}` at byte {}", range.start) })?;
            let entry = archive.by_index(index).map_err(zip_err)?;
            let mut reader = ZipMember { inner: entry, label, read: 0 };
            f(&mut BufReader::with_capacity(1 << 20, &mut reader))
        }
        Some(Encoded { encoding, skip, len, .. }) => {
            if from_start {
                return f(&mut MemberReader::open(path, *encoding, 0)?);
            }
            let mut reader = MemberReader::open(path, *encoding, range.start)?;
            let skipped = std::io::copy(&mut (&mut reader).take(*skip), &mut std::io::sink()).map_err(|e| decode_error(&e, path))?;
            if skipped < *skip {
                return Err(InputError::Decode(format!(
                    "{}: the decoded text ends {skipped} bytes after compressed byte {}, before the range's first record ({skip} bytes in): changed since planned?",
                    path.display(),
                    range.start
                )));
            }
            let separator: &[u8] = if range.starts_with_header() { b"" } else { b"\n" };
            match len {
                Some(len) => f(&mut separator.chain(reader.take(*len))),
                None => f(&mut separator.chain(reader)),
            }
        }
    }
}

fn decode_error(e: &std::io::Error, path: &Path) -> InputError {
    match super::encoding::decode_failure(e) {
        Some(failure) => InputError::Decode(failure.to_string()),
        None => InputError::Io { path: path.to_path_buf(), error: std::io::Error::new(e.kind(), e.to_string()) },
    }
}

/// A zip member's reader whose errors name the member and the offset.
struct ZipMember<R> {
    inner: R,
    label: String,
    read: u64,
}

impl<R: Read> Read for ZipMember<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => Err(std::io::Error::other(DecodeFailure(format!(
                "{}: corrupt zip member data {} bytes into its decoded text: {e}; the archive is damaged: re-download or re-create it",
                self.label, self.read
            )))),
        }
    }
}
