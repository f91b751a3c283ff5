//! Reading one range: the plugin's columns of its records, in batches.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{csv_builder, io_err, next_record, InputError, InputRange, RowLabel};
use crate::batch::{Batch, Location};

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
