//! Planning: a file cut into ranges that start on record boundaries, found
//! by the rules of the CSV parser the workers use (quoted fields may hold
//! newlines, so a newline is not a boundary by itself): `scan.rs` for plain
//! files, the parser itself for decoded streams.
//!
//! - Plain CSV: byte ranges of about the target size.
//! - gzip, zstd, bzip2: decoded once here; a range starts at a member (frame,
//!   stream) boundary at least the target size of decoded text after the
//!   previous range's start, and its records begin at the first record
//!   boundary after it. A file of one member is one range (the plan says
//!   why). A compressed file smaller than a quarter of the target is one
//!   range without being decoded here.
//! - zip: one range per CSV (or TSV) member; other members are skipped and
//!   reported.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::encoding::{Boundary, Encoding, MemberReader};
use super::scan::RecordScanner;
use super::{csv_builder, delimiter_for, io_err, next_record, Encoded, FileIdentity, InputError, InputRange};

/// How files are planned, besides the target size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitOptions {
    /// The field delimiter of every file; `None`: by name (`.tsv`: tab, else comma).
    pub delimiter: Option<u8>,
}

/// What planning a file yields, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// A range to count: one task.
    Range(InputRange),
    /// A member of a zip archive that is not CSV: not counted.
    Skipped { file: PathBuf, member: String, reason: String },
    /// Something the user should know about the plan (why a large file is
    /// one task; where a compressed file is damaged).
    Note(String),
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

/// [`plan_file`] with the default options, keeping only the ranges.
pub fn split_identified(file: FileIdentity, target_bytes: u64, mut emit: impl FnMut(InputRange)) -> Result<(), InputError> {
    let encoding = Encoding::detect(&file.path)?;
    plan_file(file, encoding, target_bytes, &SplitOptions::default(), |planned| {
        if let Planned::Range(range) = planned {
            emit(range)
        }
    })
}

/// Plans the file as it was when `file` was taken, read as `encoding`
/// (detected from its first bytes by the caller). A small plain file is one
/// range without being opened again, so a job's plan is what its identity
/// says even if the file changes while the plan is made (workers then find
/// the change and fail those tasks, naming the file).
pub fn plan_file(file: FileIdentity, encoding: Encoding, target_bytes: u64, options: &SplitOptions, mut emit: impl FnMut(Planned)) -> Result<(), InputError> {
    let target = target_bytes.max(1);
    let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let delimiter = delimiter_for(&name, options.delimiter);
    match encoding {
        Encoding::Plain => split_plain(file, target, delimiter, |r| emit(Planned::Range(r))),
        Encoding::Zip => plan_zip(file, target, options, emit),
        _ => split_stream(file, encoding, target, delimiter, emit),
    }
}

fn split_plain(file: FileIdentity, target: u64, delimiter: u8, mut emit: impl FnMut(InputRange)) -> Result<(), InputError> {
    let path = file.path.clone();
    let path = path.as_path();
    let range = |start, end, first_row| InputRange { delimiter, ..InputRange::plain(file.clone(), start, end, first_row) };
    if file.size <= target {
        emit(range(0, file.size, 1));
        return Ok(());
    }
    let mut reader = File::open(path).map_err(io_err(path))?;
    let peek = File::open(path).map_err(io_err(path))?;
    let mut scanner = RecordScanner::new(delimiter);
    let mut buffer = vec![0u8; 1 << 20];
    let (mut start, mut first_row) = (0u64, 1u64);
    // The first read fills the buffer unless the file is shorter (the BOM
    // check needs its first 3 bytes together).
    let mut failed = None;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        // Row 0 is the header: a boundary after record N starts data row N.
        scanner.scan(&buffer[..n], |pos, records| {
            if failed.is_some() || pos - start < target || pos >= file.size {
                return;
            }
            match starts_with_bom(&peek, pos) {
                Ok(true) => {}
                Ok(false) => {
                    emit(range(start, pos, first_row));
                    (start, first_row) = (pos, records);
                }
                Err(e) => failed = Some(e),
            }
        });
        if let Some(e) = failed {
            return Err(io_err(path)(e));
        }
    }
    emit(range(start, file.size, first_row));
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

/// A range of a member stream being built: decoding starts at `at`.
struct Open {
    at: Boundary,
    /// Decoded offset of the first record.
    records: u64,
    first_row: u64,
}

/// gzip, zstd, bzip2: decoded once, cut at member boundaries, aligned to
/// records. (Reading a range back does not need the BOM care of plain
/// ranges: see `read.rs`, which never lets the parser see a range's start
/// as the start of its input.)
fn split_stream(file: FileIdentity, encoding: Encoding, target: u64, delimiter: u8, mut emit: impl FnMut(Planned)) -> Result<(), InputError> {
    let path = file.path.clone();
    let path = path.as_path();
    let range = |open: &Open, end: u64, len: Option<u64>| InputRange {
        file: file.clone(),
        start: open.at.compressed,
        end,
        first_row: open.first_row,
        encoded: Some(Encoded { encoding, member: None, skip: open.records - open.at.decoded, len }),
        delimiter,
    };
    let start = Boundary { compressed: 0, decoded: 0 };
    let mut open = Open { at: start, records: 0, first_row: 1 };
    if file.size.saturating_mul(4) <= target {
        emit(Planned::Range(range(&open, file.size, None)));
        return Ok(());
    }
    let reader = MemberReader::open(path, encoding, 0)?;
    let boundaries = reader.boundaries();
    let mut csv = csv_builder(delimiter).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut row = 0u64;
    // The index of the next member boundary to look at.
    let mut next_boundary = 1; // boundary 0 is the start of the file
    // A new range whose first record is at `pending.records`, emitted only
    // once a record follows (no empty last range).
    let mut pending: Option<Open> = None;
    let mut ranges = 0u64;
    loop {
        match next_record(&mut csv, &mut record, path, row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(InputError::Decode(detail)) => {
                // The workers will meet the same damage: the range holding
                // it is planned up to the end of the file and fails there,
                // naming the offset; the ranges before it count.
                let open = match pending.take() {
                    Some(p) => {
                        emit(Planned::Range(range(&open, p.at.compressed, Some(p.records - open.records))));
                        p
                    }
                    None => open,
                };
                emit(Planned::Note(format!("{detail}; the ranges before byte {} are counted", open.at.compressed)));
                emit(Planned::Range(range(&open, file.size, None)));
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        if let Some(p) = pending.take() {
            // A record follows the cut: the open range ends there.
            emit(Planned::Range(range(&open, p.at.compressed, Some(p.records - open.records))));
            ranges += 1;
            open = p;
        }
        row += 1;
        let pos = csv.position().byte();
        // The last member boundary passed that is at least the target after
        // the open range's first record: the next range starts decoding
        // there, and its records at this record boundary (the first after it).
        let mut cut: Option<Boundary> = None;
        let found = boundaries.borrow();
        while let Some(b) = found.get(next_boundary) {
            if b.decoded > pos {
                break;
            }
            next_boundary += 1;
            if b.decoded >= open.records + target {
                cut = Some(*b);
            }
        }
        drop(found);
        if let Some(b) = cut {
            pending = Some(Open { at: b, records: pos, first_row: row });
        }
    }
    let members = boundaries.borrow().len();
    let decoded = csv.position().byte();
    emit(Planned::Range(range(&open, file.size, None)));
    if ranges == 0 && decoded > target {
        let why = if members <= 1 {
            format!(
                "it is one {} ({:.1} MB decoded), which cannot be entered anywhere but at its start \
                 (for parallel reads compress in independent pieces: bgzip, pigz --independent, zstd frames, `wc-host gen-data --compress`)",
                encoding.member_word(),
                decoded as f64 / 1e6
            )
        } else {
            format!(
                "none of its {members} {}s starts at least the split size ({:.1} MB) into its decoded text",
                encoding.member_word(),
                target as f64 / 1e6
            )
        };
        emit(Planned::Note(format!("{}: read as one task: {why}", path.display())));
    }
    Ok(())
}

/// zip: one range per CSV or TSV member, in archive order.
fn plan_zip(file: FileIdentity, target: u64, options: &SplitOptions, mut emit: impl FnMut(Planned)) -> Result<(), InputError> {
    let path = file.path.clone();
    let path = path.as_path();
    let zip_err = |e: zip::result::ZipError| InputError::Zip { path: path.to_path_buf(), detail: e.to_string() };
    let reader = File::open(path).map_err(io_err(path))?;
    let mut archive = match zip::ZipArchive::new(std::io::BufReader::new(reader)) {
        Ok(archive) => archive,
        Err(e) => {
            // A damaged archive is one task that fails, naming it, like a
            // damaged gzip file: the rest of the job counts.
            emit(Planned::Note(format!("{}: not a readable zip archive ({e}); it will be dead-lettered", path.display())));
            emit(Planned::Range(InputRange {
                encoded: Some(Encoded { encoding: Encoding::Zip, member: None, skip: 0, len: None }),
                ..InputRange::plain(file.clone(), 0, file.size, 1)
            }));
            return Ok(());
        }
    };
    struct Member {
        name: String,
        start: u64,
        size: u64,
    }
    let mut members = Vec::new();
    let mut starts = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(zip_err)?;
        starts.push(entry.header_start());
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("#{i}"));
        if entry.is_dir() {
            continue;
        }
        let skip = |reason: &str| Planned::Skipped { file: path.to_path_buf(), member: name.clone(), reason: reason.to_string() };
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("__macosx/") {
            emit(skip("macOS metadata (__MACOSX)"));
        } else if !(lower.ends_with(".csv") || lower.ends_with(".tsv")) {
            emit(skip("not a CSV file (.csv or .tsv)"));
        } else if entry.encrypted() {
            emit(skip("encrypted"));
        } else {
            members.push(Member { name, start: entry.header_start(), size: entry.size() });
        }
    }
    starts.sort_unstable();
    for m in members {
        // The member's bytes: its local header up to the next one (or the
        // end of the archive, central directory included).
        let end = starts.iter().copied().find(|&s| s > m.start).unwrap_or(file.size).max(m.start);
        let delimiter = delimiter_for(&m.name, options.delimiter);
        if m.size > target {
            emit(Planned::Note(format!(
                "{}:{}: read as one task ({:.1} MB): a zip member is one compressed stream",
                path.display(),
                m.name,
                m.size as f64 / 1e6
            )));
        }
        emit(Planned::Range(InputRange {
            file: file.clone(),
            start: m.start,
            end,
            first_row: 1,
            encoded: Some(Encoded { encoding: Encoding::Zip, member: Some(m.name), skip: 0, len: None }),
            delimiter,
        }));
    }
    Ok(())
}
