//! The inputs users have (issue 14): gzip, zstd and zip files, other column
//! names and delimiters. Every count is compared with an independent count
//! made here from the uncompressed files (the csv crate and the rule run
//! natively, see `wc_testkit::reference_words`).

use std::io::Write;
use std::path::{Path, PathBuf};

use wc_host::gen_data::{compress_to, Codec};
use wc_host::input::{plan_file, read_range, Encoding, FileIdentity, InputRange, Planned, SplitOptions};
use wc_testkit::*;

/// Seconds a small job may take before it counts as hung.
const JOB_SECS: u64 = 120;

fn arg(path: &Path) -> String {
    path.display().to_string()
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "wc-host panicked:\n{stderr}");
}

fn assert_clean(r: &JobResult) {
    assert_no_panic(&r.stderr);
    assert!(r.status.success(), "exit {:?}: {}\n{}", r.status.code(), r.summary, r.stderr);
    assert!(dead_letters(&r.summary).is_empty(), "{}", r.summary);
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn total_size(files: &[PathBuf]) -> u64 {
    files.iter().map(|f| size(f)).sum()
}

/// Compresses each of `files` into `dir` (named `NAME.csv.gz` / `.zst`), in
/// members (frames) of `member_bytes` of CSV cut anywhere.
fn compress_all(files: &[PathBuf], dir: &Path, codec: Codec, member_bytes: usize) -> Vec<PathBuf> {
    files
        .iter()
        .map(|f| {
            let dest = dir.join(format!("{}.{}", f.file_name().unwrap().to_string_lossy(), codec.extension()));
            compress_to(f, &dest, codec, member_bytes).unwrap();
            dest
        })
        .collect()
}

/// A gzip file of one member.
fn gzip_whole(src: &Path, dest: &Path) {
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(dest).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(src).unwrap()).unwrap();
    enc.finish().unwrap();
}

// ------------------------------------------------ the planner and reader ---

/// The `text` field of every record of the ranges, in order, read with the
/// reader the workers use.
fn texts_of_ranges(ranges: &[InputRange]) -> Vec<String> {
    let mut out = Vec::new();
    for range in ranges {
        read_range::<wc_host::input::InputError>(range, &["text".to_string()], |batch, _| {
            let ends = batch.ends();
            let mut from = 0;
            for &end in ends {
                out.push(batch.values()[from..end as usize].to_string());
                from = end as usize;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{range:?}: {e}"));
    }
    out
}

fn plan(path: &Path, target: u64) -> (Vec<InputRange>, Vec<Planned>) {
    let identity = FileIdentity::of(path).unwrap();
    let encoding = Encoding::detect(path).unwrap();
    let (mut ranges, mut other) = (Vec::new(), Vec::new());
    plan_file(identity, encoding, target, &SplitOptions::default(), |p| match p {
        Planned::Range(r) => ranges.push(r),
        p => other.push(p),
    })
    .unwrap();
    (ranges, other)
}

/// For gzip and zstd, with members of many sizes (a few hundred bytes to
/// more than the target) and several targets: the ranges partition the
/// compressed file, and their records are exactly the records of a
/// whole-file parse of the uncompressed file, each once, in order. The data
/// has multi-line quoted fields, so records cross member boundaries.
#[test]
fn compressed_ranges_hold_exactly_the_records_of_the_whole_file() {
    let (plain_dir, files) = gen_data(0.6, 1, 31);
    let want = texts(&files);
    let dir = tempfile::tempdir().unwrap();
    for codec in [Codec::Gzip, Codec::Zstd] {
        for member in [700usize, 5_000, 64 << 10, 1 << 20] {
            let compressed = compress_all(&files, dir.path(), codec, member);
            let path = &compressed[0];
            let encoding = Encoding::detect(path).unwrap();
            assert_eq!(encoding, if codec == Codec::Gzip { Encoding::Gzip } else { Encoding::Zstd });
            for target in [1_000u64, 20_000, 150_000, 10 << 20] {
                let (ranges, _) = plan(path, target);
                let what = format!("{codec:?}, members of {member} B, target {target} B: {} ranges", ranges.len());
                // The ranges partition the compressed bytes.
                assert_eq!(ranges[0].start, 0, "{what}");
                assert_eq!(ranges.last().unwrap().end, size(path), "{what}");
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{what}");
                }
                // Split where the members allow it.
                let decoded = size(&files[0]);
                if (member as u64) < target && target < decoded / 2 && size(path) * 4 > target {
                    assert!(ranges.len() >= 2, "{what}");
                }
                assert_eq!(texts_of_ranges(&ranges), want, "{what}");
            }
        }
    }
    drop(plain_dir);
}

/// Tiny members and a tiny target, over two CSV files concatenated (the
/// second one's header, with its UTF-8 byte order mark, is a record in the
/// middle) and quoted fields with newlines: every record
/// boundary after a member boundary starts a range, the one starting with
/// the BOM included, and the ranges still hold exactly the whole file's
/// records (the BOM kept, as a whole-file parse keeps it).
#[test]
fn compressed_ranges_starting_anywhere_keep_every_record_and_byte() {
    // `text` first: a parser that took the BOM of a record in the middle
    // for the start of its input would drop it from the text column.
    // LF endings: after a CR, a range would start on the LF, not the BOM.
    let one = "\u{feff}text,id\n\"multi\r\nline, quoted\",1\nplain words here,2\n\"\"\"quoted\"\" start\",3\n";
    let text = format!("{one}{one}{one}{one}last row without newline,4");
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("cat.csv");
    std::fs::write(&plain, &text).unwrap();
    let want = texts(std::slice::from_ref(&plain));
    assert!(want.iter().any(|t| t == "\u{feff}text"), "the second header is a record, its BOM kept: {want:?}");
    let mut bom_starts = 0;
    for (codec, member) in [(Codec::Gzip, 7usize), (Codec::Zstd, 5), (Codec::Gzip, 40), (Codec::Zstd, 64), (Codec::Gzip, 100)] {
        let path = dir.path().join(format!("cat-{member}.csv.{}", codec.extension()));
        compress_to(&plain, &path, codec, member).unwrap();
        let (ranges, _) = plan(&path, 1);
        assert!(ranges.len() >= 3, "{codec:?} {member}: {ranges:?}");
        // The records with a BOM are rows 4, 8 and 12 (the header is row 0).
        bom_starts += ranges.iter().filter(|r| r.first_row % 4 == 0).count();
        assert_eq!(texts_of_ranges(&ranges), want, "{codec:?}, members of {member} B");
    }
    assert!(bom_starts >= 5, "ranges start on records with a BOM: {bom_starts}");
}

/// bzip2 in several streams (as pbzip2 writes it) splits like gzip members,
/// and one stream is one range; the records are those of the whole file.
#[test]
fn bzip2_streams_are_split_and_read_exactly() {
    let (_plain, files) = gen_data(0.5, 1, 41);
    let want = texts(&files);
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(&files[0]).unwrap();
    for (piece, name) in [(50_000usize, "multi.csv.bz2"), (usize::MAX, "single.csv.bz2")] {
        let path = dir.path().join(name);
        let mut out = Vec::new();
        for chunk in text.chunks(piece.min(text.len())) {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            enc.write_all(chunk).unwrap();
            out.extend(enc.finish().unwrap());
        }
        std::fs::write(&path, out).unwrap();
        assert_eq!(Encoding::detect(&path).unwrap(), Encoding::Bzip2);
        let (ranges, notes) = plan(&path, 60_000);
        if piece == usize::MAX {
            assert_eq!(ranges.len(), 1, "{ranges:?}");
            assert!(matches!(&notes[..], [Planned::Note(n)] if n.contains("one bzip2 stream")), "{notes:?}");
        } else {
            assert!(ranges.len() >= 4, "{ranges:?}");
        }
        assert_eq!(texts_of_ranges(&ranges), want, "{name}");
    }
}

/// The serialized form of a plain comma-separated range (what task ids
/// hash) is what it was before compressed inputs: existing jobs keep their
/// task ids.
#[test]
fn a_plain_range_serializes_as_before() {
    let file = FileIdentity { path: "/d/a.csv".into(), size: 10, mtime_ns: 5 };
    let json = serde_json::to_string(&InputRange::plain(file, 0, 10, 1)).unwrap();
    assert_eq!(json, r#"{"file":{"path":"/d/a.csv","size":10,"mtime_ns":5},"start":0,"end":10,"first_row":1}"#);
    let back: InputRange = serde_json::from_str(&json).unwrap();
    assert_eq!(back.delimiter, b',');
    assert!(back.encoded.is_none());
}

// ------------------------------------------------------------ jobs ---

/// A gzip file of one member cannot be entered anywhere but at its start:
/// one task, and the plan says why; counted exactly.
#[test]
fn a_single_member_gzip_file_is_one_task_and_the_plan_says_why() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(2.0, 1, 32);
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("tweets.csv.gz");
    gzip_whole(&files[0], &gz);
    let r = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.25", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "tasks"), 1, "{}", r.summary);
    assert!(r.stderr.contains("read as one task") && r.stderr.contains("one gzip member"), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    assert_eq!(summary_u64(&r.summary, "bytes"), size(&gz), "on-disk bytes: {}", r.summary);
    assert_eq!(summary_u64(&r.summary, "decoded_bytes"), size(&files[0]), "decoded bytes: {}", r.summary);
}

/// Multi-member gzip (pieces of 64 KiB of CSV) and zstd with several frames,
/// each split over several tasks; a `.gz` named `.csv` (detected by its
/// magic bytes) counts too. Exact; bytes on disk and decoded both reported.
#[test]
fn multi_member_gzip_and_zstd_frames_are_split_over_several_tasks() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(6.0, 2, 33);
    for codec in [Codec::Gzip, Codec::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let compressed = compress_all(&files, dir.path(), codec, 64 << 10);
        let r = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.5", "--workers", "3", &arg(dir.path())], JOB_SECS);
        assert_clean(&r);
        assert!(summary_u64(&r.summary, "tasks") >= 8, "{codec:?}: {}", r.summary);
        assert_counts_eq(&r.counts, &reference_words(&files));
        assert_eq!(summary_u64(&r.summary, "bytes"), total_size(&compressed), "{}", r.summary);
        assert_eq!(summary_u64(&r.summary, "decoded_bytes"), total_size(&files), "{}", r.summary);
        assert!(r.summary["decoded_mb_per_second"].as_f64().unwrap() > r.summary["mb_per_second"].as_f64().unwrap());
    }
    // Magic bytes, not names: a gzip file called .csv is read as gzip.
    let dir = tempfile::tempdir().unwrap();
    let disguised = dir.path().join("looks-plain.csv");
    compress_to(&files[0], &disguised, Codec::Gzip, 64 << 10).unwrap();
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(&disguised)], JOB_SECS);
    assert_clean(&r);
    assert_counts_eq(&r.counts, &reference_words(&files[..1]));
}

/// Writes a zip archive of `members` (name, bytes), deflated.
fn write_zip(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        if name.ends_with('/') {
            zip.add_directory(*name, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
    }
    zip.finish().unwrap();
}

/// A zip of several CSV files (one in a folder, one stored): each member is
/// a file of the job (one task each); exact. A directory given as DATA
/// includes the archive, next to a plain and a gzip file.
#[test]
fn a_zip_of_several_csv_files_counts_each_member() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(3.0, 5, 34);
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("twcs.zip");
    // part-2 is a TSV member: read with tabs, like a .tsv file.
    let tsv = dir.path().join("part-2.tsv.tmp");
    with_delimiter(&files[2], &tsv, b'\t');
    let members: Vec<(String, Vec<u8>)> = vec![
        ("part-0.csv".into(), std::fs::read(&files[0]).unwrap()),
        ("sub/part-1.csv".into(), std::fs::read(&files[1]).unwrap()),
        ("part-2.tsv".into(), std::fs::read(&tsv).unwrap()),
    ];
    std::fs::remove_file(&tsv).unwrap();
    let members: Vec<(&str, Vec<u8>)> = members.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    write_zip(&zip_path, &members);
    std::fs::copy(&files[3], dir.path().join("plain.csv")).unwrap();
    compress_to(&files[4], &dir.path().join("more.csv.gz"), Codec::Gzip, 1 << 20).unwrap();
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "tasks"), 5, "{}", r.summary);
    assert_eq!(summary_u64(&r.summary, "files"), 3, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let csv_bytes = members.iter().map(|(_, b)| b.len() as u64).sum::<u64>() + total_size(&files[3..]);
    assert_eq!(summary_u64(&r.summary, "decoded_bytes"), csv_bytes, "{}", r.summary);
    // `plugin count` reads the archive the same way.
    let out = run_within(wc_host().args(["plugin", "count"]).arg(plugin("words")).arg(&zip_path).args(["--json", "--top", "1"]), JOB_SECS);
    assert!(out.status.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["tokens"].as_u64().unwrap(), reference_words(&files[..3]).values().sum::<u64>());
}

/// A zip holding a README, a nested archive, macOS metadata and a folder
/// next to its CSV: the non-CSV members are skipped and reported (in the
/// summary and on stderr); the CSV member counts exactly.
#[test]
fn a_zip_with_non_csv_members_skips_and_reports_them() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(1.0, 1, 35);
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("download.zip");
    write_zip(
        &zip_path,
        &[
            ("README.txt", b"tweet data, see twcs.csv\n".to_vec()),
            ("data/", Vec::new()),
            ("data/twcs.csv", std::fs::read(&files[0]).unwrap()),
            ("data/old.csv.gz", vec![0x1f, 0x8b, 8, 0]),
            ("__MACOSX/data/._twcs.csv", vec![0, 5, 22, 7, 0, 2]),
        ],
    );
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(&zip_path)], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "tasks"), 1, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let skipped: Vec<(String, String)> = r.summary["skipped_inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["member"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    let names: Vec<&str> = skipped.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["README.txt", "data/old.csv.gz", "__MACOSX/data/._twcs.csv"], "{skipped:?}");
    assert!(skipped[0].1.contains("not a CSV file"), "{skipped:?}");
    assert!(r.stderr.contains("README.txt") && r.stderr.contains("skipped"), "{}", r.stderr);
}

/// A truncated `.gz` and one with damaged bytes: each dead-lettered with an
/// error naming the file and the byte offset; the rest counts exactly;
/// exit status 1; no panic.
#[test]
fn truncated_and_corrupt_gzip_files_are_dead_lettered_naming_file_and_offset() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(1.5, 3, 36);
    let dir = tempfile::tempdir().unwrap();
    compress_to(&files[0], &dir.path().join("good.csv.gz"), Codec::Gzip, 256 << 10).unwrap();
    let truncated = dir.path().join("truncated.csv.gz");
    let mut whole = Vec::new();
    {
        let mut enc = flate2::write::GzEncoder::new(&mut whole, flate2::Compression::default());
        enc.write_all(&std::fs::read(&files[1]).unwrap()).unwrap();
        enc.finish().unwrap();
    }
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let corrupt = dir.path().join("corrupt.csv.gz");
    let mut damaged = Vec::new();
    {
        let mut enc = flate2::write::GzEncoder::new(&mut damaged, flate2::Compression::default());
        enc.write_all(&std::fs::read(&files[2]).unwrap()).unwrap();
        enc.finish().unwrap();
    }
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(&corrupt, &damaged).unwrap();

    let r = run_job_within("words", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}\n{}", r.summary, r.stderr);
    let mut dead = dead_letters(&r.summary);
    dead.sort();
    assert_eq!(dead.len(), 2, "{}", r.summary);
    for ((file, error), name) in dead.iter().zip(["corrupt.csv.gz", "truncated.csv.gz"]) {
        assert!(file.ends_with(name), "{dead:?}");
        assert!(error.contains(name) && error.contains("corrupt gzip data near compressed byte"), "{error}");
        assert!(error.len() < 600 && !error.chars().any(|c| c.is_control()), "a short, printable error: {error:?}");
    }
    assert!(dead[1].1.contains("truncated"), "{}", dead[1].1);
    assert_counts_eq(&r.counts, &reference_words(&files[..1]));
}

/// Zero padding after the last gzip member (tar-style) is accepted, as
/// gzip(1) accepts it; a damaged zip archive (its central directory
/// unreadable) is dead-lettered naming it, and the rest counts.
#[test]
fn gzip_zero_padding_is_accepted_and_a_damaged_zip_is_dead_lettered() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(1.0, 2, 43);
    let dir = tempfile::tempdir().unwrap();
    let padded = dir.path().join("padded.csv.gz");
    compress_to(&files[0], &padded, Codec::Gzip, 128 << 10).unwrap();
    let mut bytes = std::fs::read(&padded).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 1000));
    std::fs::write(&padded, &bytes).unwrap();
    let zip_path = dir.path().join("damaged.zip");
    write_zip(&zip_path, &[("a.csv", std::fs::read(&files[1]).unwrap())]);
    let mut zip_bytes = std::fs::read(&zip_path).unwrap();
    zip_bytes.truncate(zip_bytes.len() - 30); // the end of the central directory is gone
    std::fs::write(&zip_path, &zip_bytes).unwrap();
    let r = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.1", &arg(dir.path())], JOB_SECS);
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}\n{}", r.summary, r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].0.ends_with("damaged.zip") && dead[0].1.contains("damaged.zip: not a readable zip archive"), "{dead:?}");
    assert_counts_eq(&r.counts, &reference_words(&files[..1]));
}

/// A multi-member gzip file truncated two thirds in, large enough to be
/// split: the planner finds the damage, says so, and plans the ranges
/// before it as usual; those count exactly, and the range that reaches the
/// damage is dead-lettered naming the file and the offset.
#[test]
fn a_truncated_gzip_split_in_ranges_counts_the_ranges_before_the_damage() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(2.0, 1, 42);
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.gz.tmp");
    compress_to(&files[0], &whole, Codec::Gzip, 64 << 10).unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::remove_file(&whole).unwrap();
    let cut = dir.path().join("cut.csv.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let split = 256u64 << 10;
    let (ranges, notes) = plan(&cut, split);
    assert!(ranges.len() >= 3, "{ranges:?}");
    assert!(matches!(&notes[..], [Planned::Note(n)] if n.contains("truncated")), "{notes:?}");
    // What the ranges before the damaged one hold, counted natively.
    let rules = words::Rules::default();
    let mut counts = wc_plugin_sdk::Counts::default();
    for text in texts_of_ranges(&ranges[..ranges.len() - 1]) {
        words::count_text(&text, &rules, &mut counts);
    }
    let want: std::collections::HashMap<String, u64> = counts.into_map().into_iter().collect();

    let r = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.25", &arg(dir.path())], JOB_SECS);
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}\n{}", r.summary, r.stderr);
    assert_eq!(summary_u64(&r.summary, "tasks"), ranges.len() as u64, "{}", r.summary);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].1.contains("cut.csv.gz") && dead[0].1.contains("near compressed byte") && dead[0].1.contains("truncated"), "{dead:?}");
    assert!(r.stderr.contains("the ranges before byte"), "the plan says where: {}", r.stderr);
    assert_counts_eq(&r.counts, &want);
}

/// Replaces the header's `text` with `name` (the rest of the file as is).
fn rename_text_column(src: &Path, dest: &Path, name: &str) {
    let bytes = std::fs::read(src).unwrap();
    let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = String::from_utf8(bytes[..newline].to_vec()).unwrap();
    assert!(header.contains(",text,"), "{header}");
    let mut out = header.replace(",text,", &format!(",{name},")).into_bytes();
    out.extend_from_slice(&bytes[newline..]);
    std::fs::write(dest, out).unwrap();
}

/// `--column text=body` reads the plugin's `text` from a column renamed
/// `body`; without the flag the file is dead-lettered with an error naming
/// the file, its header and the flag to use. The mapping is part of the
/// job's identity and is stored in the job (a worker started by hand reads
/// it there).
#[test]
fn column_mapping_reads_a_renamed_header() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(1.0, 2, 37);
    let dir = tempfile::tempdir().unwrap();
    for (i, f) in files.iter().enumerate() {
        rename_text_column(f, &dir.path().join(format!("renamed-{i}.csv")), "body");
    }
    let r = run_job_within("words", &["--redis", &redis.url(), "--column", "text=body", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let job = r.summary["job"].as_str().unwrap().to_string();
    let mut conn = redis.conn();
    let columns: String = redis::cmd("HGET").arg(format!("wc:{{{job}}}:meta")).arg("columns").query(&mut conn).unwrap();
    assert_eq!(columns, r#"[["text","body"]]"#);

    let r = run_job_within("words", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_ne!(r.summary["job"].as_str().unwrap(), job, "the mapping is part of the job id");
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 2, "{}", r.summary);
    let error = &dead[0].1;
    assert!(error.contains("renamed-0.csv") && error.contains("no column named `text`"), "{error}");
    assert!(error.contains("tweet_id, author_id, inbound, created_at, body"), "the header: {error}");
    assert!(error.contains("--column text=HEADER"), "the flag: {error}");

    // `plugin count` takes the same flag.
    let out = run_within(wc_host().args(["plugin", "count"]).arg(plugin("words")).arg(dir.path()).args(["--column", "text=body", "--json"]), JOB_SECS);
    assert!(out.status.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["tokens"].as_u64().unwrap(), reference_words(&files).values().sum::<u64>());

    // A mapping to a column that is not there names the mapping.
    let r = run_job_within("words", &["--redis", &redis.url(), "--column", "text=content", &arg(dir.path())], JOB_SECS);
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let error = &dead_letters(&r.summary)[0].1;
    assert!(error.contains("no column named `content`") && error.contains("--column text=content"), "{error}");
}

/// A worker started by hand joins a job with `--column text=body` knowing
/// only the job id: it reads the mapping from the job's meta hash. The
/// coordinator's own workers are frozen (SIGSTOP) as soon as they exist;
/// the hand-started worker steals what they hold and counts the rest;
/// exact, nothing dead-lettered.
#[test]
fn a_worker_started_by_hand_reads_the_column_mapping_from_the_job() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(4.0, 2, 44);
    let dir = tempfile::tempdir().unwrap();
    for (i, f) in files.iter().enumerate() {
        let renamed = dir.path().join(format!("renamed-{i}.csv"));
        rename_text_column(f, &renamed, "body");
        compress_to(&renamed, &dir.path().join(format!("renamed-{i}.csv.zst")), Codec::Zstd, 64 << 10).unwrap();
        std::fs::remove_file(&renamed).unwrap();
    }
    let job = spawn_job("words", &["--redis", &redis.url(), "--column", "text=body", "--split-mb", "0.1", &arg(dir.path())]);
    let pid = job.child.id();
    let mut paused = Vec::new();
    poll_until(60, "the coordinator's workers", || {
        paused = pause_workers(pid);
        paused.len() >= 2
    });
    let mut conn = redis.conn();
    let job_id: String = {
        let mut id = None;
        poll_until(30, "the job's id", || {
            id = redis::cmd("GET").arg("wc:latest-job").query::<Option<String>>(&mut conn).unwrap();
            id.is_some()
        });
        id.unwrap()
    };
    let done = |conn: &mut redis::Connection| -> u64 { redis::cmd("SCARD").arg(format!("wc:{{{job_id}}}:done")).query(conn).unwrap_or(0) };
    let before = done(&mut conn);
    let hand = wc_host()
        .args(["worker", "--redis", &redis.url(), "--job", &job_id, "--name", "by-hand"])
        .arg("--plugin")
        .arg(plugin("words"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hand = wait_within(hand, JOB_SECS, "the hand-started worker");
    resume(&paused);
    let r = finish_job_within(job, JOB_SECS);
    assert_eq!(hand.status.code(), Some(0), "{}", hand.stderr);
    assert_clean(&r);
    let after = summary_u64(&r.summary, "tasks");
    assert!(after >= 10 && before < after / 2, "the hand-started worker did most tasks: {before} done before it of {after}");
    assert_counts_eq(&r.counts, &reference_words(&files));
}

/// Rewrites a CSV file with another delimiter (quoting as the csv crate does).
fn with_delimiter(src: &Path, dest: &Path, delimiter: u8) {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_path(src).unwrap();
    let mut writer = csv::WriterBuilder::new().delimiter(delimiter).flexible(true).from_path(dest).unwrap();
    for record in reader.byte_records() {
        writer.write_byte_record(&record.unwrap()).unwrap();
    }
    writer.flush().unwrap();
}

/// A `.tsv` file is read with tabs (also gzip-compressed, split over tasks);
/// `--delimiter ';'` reads semicolons. Exact.
#[test]
fn tsv_files_and_other_delimiters() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(3.0, 2, 38);
    let dir = tempfile::tempdir().unwrap();
    with_delimiter(&files[0], &dir.path().join("a.tsv"), b'\t');
    let b_tsv = dir.path().join("b.tsv");
    with_delimiter(&files[1], &b_tsv, b'\t');
    compress_to(&b_tsv, &dir.path().join("b.tsv.gz"), Codec::Gzip, 64 << 10).unwrap();
    std::fs::remove_file(&b_tsv).unwrap();
    let r = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.5", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert!(summary_u64(&r.summary, "tasks") >= 4, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));

    let semi = tempfile::tempdir().unwrap();
    with_delimiter(&files[0], &semi.path().join("semi.csv"), b';');
    let r = run_job_within("words", &["--redis", &redis.url(), "--delimiter", ";", &arg(semi.path())], JOB_SECS);
    assert_clean(&r);
    assert_counts_eq(&r.counts, &reference_words(&files[..1]));

    // Tabs in a file named .csv: `--delimiter '\t'` (as a shell passes it).
    let tabs = tempfile::tempdir().unwrap();
    with_delimiter(&files[1], &tabs.path().join("tabs.csv"), b'\t');
    let r = run_job_within("words", &["--redis", &redis.url(), "--delimiter", "\\t", &arg(tabs.path())], JOB_SECS);
    assert_clean(&r);
    assert_counts_eq(&r.counts, &reference_words(&files[1..]));

    // Another delimiter is refused up front, naming the ones there are.
    let out = run_within(wc_host().arg("--plugin").arg(plugin("words")).args(["--delimiter", ":"]).arg(tabs.path()), 20);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("`:` is not a supported delimiter"), "{}", out.stderr);
}

/// A file whose header differs from the first file's is dead-lettered with
/// an error naming both; the rest counts. `--mixed-headers` reads each file
/// by its own header.
#[test]
fn a_file_with_another_header_is_an_error_naming_both() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(1.0, 1, 39);
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a-twcs.csv");
    std::fs::copy(&files[0], &first).unwrap();
    let other = dir.path().join("b-other.csv");
    std::fs::write(&other, "id,text\n1,hello world\n").unwrap();
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    let error = &dead[0].1;
    assert!(error.contains("b-other.csv") && error.contains("a-twcs.csv") && error.contains("differs from the header"), "{error}");
    assert!(error.contains("(id, text)") && error.contains("--mixed-headers"), "{error}");
    assert_counts_eq(&r.counts, &reference_words(&files));

    let r = run_job_within("words", &["--redis", &redis.url(), "--mixed-headers", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    let mut want = reference_words(&files);
    for w in ["hello", "world"] {
        *want.entry(w.to_string()).or_insert(0) += 1;
    }
    assert_counts_eq(&r.counts, &want);
}

/// Workers SIGKILLed while counting compressed ranges (gzip and zstd, split
/// in many tasks): their tasks are stolen, nothing is lost or counted twice.
#[test]
fn workers_killed_mid_task_on_compressed_ranges_lose_nothing() {
    let redis = RedisServer::start();
    let (_plain, files) = gen_data(16.0, 2, 40);
    let dir = tempfile::tempdir().unwrap();
    compress_to(&files[0], &dir.path().join("a.csv.gz"), Codec::Gzip, 128 << 10).unwrap();
    compress_to(&files[1], &dir.path().join("b.csv.zst"), Codec::Zstd, 128 << 10).unwrap();
    let job = spawn_job("words", &["--redis", &redis.url(), "--split-mb", "0.5", &arg(dir.path())]);
    let pid = job.child.id();
    let mut conn = redis.conn();
    let done = |conn: &mut redis::Connection| -> usize {
        let keys: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:done").query(conn).unwrap_or_default();
        keys.first().map_or(0, |k| redis::cmd("SCARD").arg(k).query(conn).unwrap_or(0))
    };
    let mut kills = 0;
    for round in 1..=2 {
        poll_until(90, "progress", || done(&mut conn) >= round * 4);
        let paused = pause_workers(pid);
        if let Some(victim) = paused.first() {
            // SAFETY: killing a worker process of our own job.
            unsafe { libc::kill(*victim as i32, libc::SIGKILL) };
            kills += 1;
        }
        resume(&paused[1..]);
    }
    let r = finish_job_within(job, JOB_SECS);
    assert_clean(&r);
    assert_eq!(kills, 2);
    assert!(summary_u64(&r.summary, "worker_respawns") >= 1, "{}", r.summary);
    assert!(summary_u64(&r.summary, "tasks") >= 20, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

// ------------------------------------------------------- the CLI ---

/// `--version` names the WIT world the host runs; completions for bash,
/// zsh and fish; the man page.
#[test]
fn version_completions_and_man_page() {
    let out = run_within(wc_host().arg("--version"), 20);
    assert!(out.status.success());
    assert!(out.stdout.contains(wc_host::plugin::WIT_WORLD), "{}", out.stdout);
    for shell in ["bash", "zsh", "fish"] {
        let out = run_within(wc_host().args(["completions", shell]), 20);
        assert!(out.status.success(), "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("wc-host") && out.stdout.contains("--column"), "{shell}: {}", &out.stdout[..out.stdout.len().min(300)]);
    }
    let out = run_within(wc_host().arg("man"), 20);
    assert!(out.status.success());
    assert!(out.stdout.contains(".TH wc-host 1") && out.stdout.contains("completions"), "{}", &out.stdout[..out.stdout.len().min(300)]);
}
