//! Planning: a file cut into byte ranges that start on record boundaries,
//! found with the same CSV parser the workers use (quoted fields may hold
//! newlines, so a newline is not a boundary by itself).

use std::fs::File;
use std::path::Path;

use super::{csv_builder, io_err, next_record, FileIdentity, InputError, InputRange};

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
