//! The bad-input corpus (issue 4): every kind of broken input a job or
//! `wc-host plugin count` may meet, each with its stated outcome —
//!
//! * counted (the same counts as an independent reference),
//! * row skipped and reported (`short_rows`, `invalid_utf8_rows`),
//! * task dead-lettered with an error naming the file (exit status 1), or
//! * refused up front with a clear message (exit status 2)
//!
//! — and never a panic or a hang: every run here has a deadline, past which
//! wc-host is killed and the test fails.
//!
//! Jobs that mix the generated twcs file with small files of another header
//! (`id,text`) pass `--mixed-headers`: by default every file of a job must
//! have the first file's header (issue 14; see `inputs.rs`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use wc_testkit::*;

/// Seconds a small job may take before it counts as hung.
const JOB_SECS: u64 = 60;
/// Seconds a refusal (exit status 2) may take.
const FAIL_SECS: u64 = 20;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// A small good file of generated twcs-shaped data, in `dir`.
fn good_file(dir: &Path, seed: u64) -> PathBuf {
    let (gen, files) = gen_data(0.25, 1, seed);
    let path = dir.join("good.csv");
    std::fs::copy(&files[0], &path).unwrap();
    drop(gen);
    path
}

fn map(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// `a` plus `b`, key by key.
fn sum(mut a: HashMap<String, u64>, b: &HashMap<String, u64>) -> HashMap<String, u64> {
    for (k, n) in b {
        *a.entry(k.clone()).or_insert(0) += n;
    }
    a
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "wc-host panicked:\n{stderr}");
}

/// Rows the reference reader sees in `files` (data rows, header excluded,
/// short ones included).
fn reference_rows(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| csv::ReaderBuilder::new().flexible(true).from_path(f).unwrap().byte_records().count() as u64)
        .sum()
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A successful job: exit 0, no dead letters, no panic.
fn assert_clean(r: &JobResult) {
    assert_no_panic(&r.stderr);
    assert!(r.status.success(), "exit {:?}: {}\n{}", r.status.code(), r.summary, r.stderr);
    assert!(dead_letters(&r.summary).is_empty(), "{}", r.summary);
}

// ---------------------------------------------------------------- files ---

/// Outcome: a 0-byte file has no header, hence no `text` column: its task
/// is dead-lettered (after MAX_ATTEMPTS tries) with "the file is empty (no
/// header row)" naming it; exit status 1; every other file is counted.
#[test]
fn empty_file_is_dead_lettered_naming_it_and_the_rest_counts() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 101);
    write(dir.path(), "empty.csv", b"");
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "dead letters make the exit status 1: {}", r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].0.ends_with("empty.csv"), "{dead:?}");
    assert!(dead[0].1.contains("empty.csv") && dead[0].1.contains("the file is empty (no header row)"), "{dead:?}");
    assert_counts_eq(&r.counts, &reference_words(&[good.clone()]));
    assert_eq!(summary_u64(&r.summary, "rows"), reference_rows(&[good]));
}

/// Outcome: a header-only file is counted: no rows, no tokens, no warning.
#[test]
fn header_only_file_counts_nothing_and_is_not_an_error() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 102);
    write(dir.path(), "header-only.csv", b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n");
    write(dir.path(), "header-only-no-newline.csv", b"id,text");
    let r = run_job_within("split-space", &["--redis", &redis.url(), "--mixed-headers", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "tasks"), 3, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_split_space(&[good.clone()]));
    assert_eq!(summary_u64(&r.summary, "rows"), reference_rows(&[good]));
    assert_eq!(summary_u64(&r.summary, "short_rows"), 0);
}

/// Outcome: dead-lettered; the error names the file, the missing column and
/// the columns the header does have; exit status 1.
#[test]
fn file_without_text_column_is_dead_lettered_naming_file_and_column() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 103);
    write(dir.path(), "tweets-no-text.csv", b"tweet_id,author_id,body\n1,a,hello world\n2,b,more words\n");
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].0.ends_with("tweets-no-text.csv"), "{dead:?}");
    let error = &dead[0].1;
    assert!(error.contains("tweets-no-text.csv"), "{error}");
    assert!(error.contains("no column named `text`"), "{error}");
    assert!(error.contains("tweet_id, author_id, body"), "the error lists the header: {error}");
    assert_counts_eq(&r.counts, &reference_words(&[good]));
}

/// The ragged file: `text` is the last header column, so a row with fewer
/// fields than the header lacks it (skipped, `short_rows`), and a row with
/// more fields than the header still has it (counted normally). A blank
/// line is no row at all.
const RAGGED: &[u8] = b"id,author,text\n\
1,a,alpha beta\n\
2,b\n\
3\n\
\n\
4,c,gamma,extra,fields\n\
5,d,delta alpha,\n\
,,\n";

fn ragged_expected() -> HashMap<String, u64> {
    // split-space: ",," has an empty text, which is one "" token.
    map(&[("alpha", 2), ("beta", 1), ("gamma", 1), ("delta", 1), ("", 1)])
}

/// Outcome: short rows skipped and counted as `short_rows` (2 here); long
/// rows counted normally; exit 0.
#[test]
fn ragged_rows_short_ones_skipped_and_reported_long_ones_counted() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 104);
    let ragged = write(dir.path(), "ragged.csv", RAGGED);
    let r = run_job_within("split-space", &["--redis", &redis.url(), "--mixed-headers", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "short_rows"), 2, "{}", r.summary);
    assert_eq!(summary_u64(&r.summary, "rows"), reference_rows(&[good.clone()]) + 6, "{}", r.summary);
    let want = sum(reference_split_space(&[good]), &ragged_expected());
    assert_counts_eq(&r.counts, &want);
    // The independent reader agrees on the ragged file alone.
    assert_eq!(reference_split_space(&[ragged]), ragged_expected());
}

/// Outcome of a quote opened and never closed: the csv crate reads the rest
/// of the file as one field of that row (newlines, commas and later "rows"
/// included), and that is what is counted, consistently with a whole-file
/// parse, whether the file is read as one task or split into many ranges.
/// No error, no hang.
#[test]
fn unterminated_quote_reads_the_rest_of_the_file_as_one_field() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let small = write(dir.path(), "unterminated.csv", b"id,text\n1,first row\n2,\"never closed, spans\n3,the rest of the file\n");
    let small_expected = map(&[
        ("first", 1),
        ("row", 1),
        ("never", 1),
        ("closed,", 1),
        ("spans\n3,the", 1),
        ("rest", 1),
        ("of", 1),
        ("the", 1),
        ("file\n", 1),
    ]);
    assert_eq!(reference_split_space(&[small.clone()]), small_expected);
    // A larger one, split into many ranges before the open quote.
    let mut big = b"id,text\n".to_vec();
    for i in 0..3000 {
        writeln!(big, "{i},row {i} before the quote").unwrap();
    }
    big.extend_from_slice(b"3000,\"opened here");
    for i in 3001..6000 {
        write!(big, "\n{i},row {i} after the quote").unwrap();
    }
    big.push(b'\n');
    let big = write(dir.path(), "unterminated-big.csv", &big);
    let r = run_job_within("split-space", &["--redis", &redis.url(), "--split-mb", "0.01", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert!(summary_u64(&r.summary, "tasks") > 5, "the big file should be split: {}", r.summary);
    // 2 rows in the small file, 3001 in the big one (3000 + the swallowing one).
    assert_eq!(summary_u64(&r.summary, "rows"), 2 + 3001, "{}", r.summary);
    assert_counts_eq(&r.counts, &sum(small_expected, &reference_split_space(&[big])));
}

/// Outcome: rows with invalid UTF-8 in `text` are counted, decoded with
/// U+FFFD, and reported (`invalid_utf8_rows` = 3: a bad byte in another
/// column does not count, the plugin never sees it).
#[test]
fn invalid_utf8_is_counted_with_replacement_characters_and_reported() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 105);
    write(
        dir.path(),
        "latin1.csv",
        b"id,text,note\n1,caf\xe9 au lait,x\n2,plain text,x\n3,\xff\xfe bad start,x\n4,\"quoted \xc3 broken\",x\n5,fine,\xff\n",
    );
    let r = run_job_within("split-space", &["--redis", &redis.url(), "--mixed-headers", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "invalid_utf8_rows"), 3, "{}", r.summary);
    let bad = map(&[
        ("caf\u{FFFD}", 1),
        ("au", 1),
        ("lait", 1),
        ("plain", 1),
        ("text", 1),
        ("\u{FFFD}\u{FFFD}", 1),
        ("bad", 1),
        ("start", 1),
        ("quoted", 1),
        ("\u{FFFD}", 1),
        ("broken", 1),
        ("fine", 1),
    ]);
    assert_counts_eq(&r.counts, &sum(reference_split_space(&[good]), &bad));
}

/// Outcome: NUL bytes are ordinary characters: counted inside the keys
/// (Redis and the JSON output are binary-safe), no warning.
#[test]
fn nul_bytes_in_text_are_counted_as_characters() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 106);
    write(dir.path(), "nul.csv", b"id,text\n1,nul\0inside\n2,\"quoted\0 nul\"\n3,\0\n4,\0\0 \0\n");
    let r = run_job_within("split-space", &["--redis", &redis.url(), "--mixed-headers", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "invalid_utf8_rows"), 0);
    let bad = map(&[("nul\0inside", 1), ("quoted\0", 1), ("nul", 1), ("\0", 2), ("\0\0", 1)]);
    assert_counts_eq(&r.counts, &sum(reference_split_space(&[good]), &bad));
}

/// Outcome: CRLF line endings give the same counts and rows as the LF
/// version of the same data, also when the files are split into ranges.
/// (words: a CR inside a multi-line quoted text is whitespace; split-space
/// on data without line breaks inside fields, where CRLF and LF are the
/// same records.)
#[test]
fn crlf_line_endings_count_the_same_as_lf() {
    let redis = RedisServer::start();
    let (gen, files) = gen_data(1.0, 2, 107);
    let lf_dir = tempfile::tempdir().unwrap();
    let crlf_dir = tempfile::tempdir().unwrap();
    for f in &files {
        let text = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_str().unwrap();
        write(lf_dir.path(), name, &text);
        let mut crlf = Vec::with_capacity(text.len() * 11 / 10);
        for &b in &text {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        write(crlf_dir.path(), name, &crlf);
    }
    drop(gen);
    let want = reference_words(&[lf_dir.path().join(files[0].file_name().unwrap()), lf_dir.path().join(files[1].file_name().unwrap())]);
    let lf = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.1", &arg(lf_dir.path())], JOB_SECS);
    let crlf = run_job_within("words", &["--redis", &redis.url(), "--split-mb", "0.1", &arg(crlf_dir.path())], JOB_SECS);
    assert_clean(&lf);
    assert_clean(&crlf);
    assert!(summary_u64(&crlf.summary, "tasks") >= 8, "{}", crlf.summary);
    assert_counts_eq(&lf.counts, &want);
    assert_counts_eq(&crlf.counts, &want);
    assert_eq!(summary_u64(&crlf.summary, "rows"), summary_u64(&lf.summary, "rows"));

    // split-space: exact tokens, so a stray CR would show in a key.
    let rows: Vec<String> = (0..2000).map(|i| format!("{i},\"tweet {i} with  two spaces and, \"\"quotes\"\"\"")).collect();
    let lf_text = format!("id,text\n{}\n", rows.join("\n"));
    let crlf_text = lf_text.replace('\n', "\r\n");
    let plain_lf = tempfile::tempdir().unwrap();
    let plain_crlf = tempfile::tempdir().unwrap();
    let lf_file = write(plain_lf.path(), "plain.csv", lf_text.as_bytes());
    write(plain_crlf.path(), "plain.csv", crlf_text.as_bytes());
    let want = reference_split_space(&[lf_file]);
    assert!(want.keys().all(|k| !k.contains('\r')));
    for dir in [&plain_lf, &plain_crlf] {
        let r = run_job_within("split-space", &["--redis", &redis.url(), "--split-mb", "0.01", &arg(dir.path())], JOB_SECS);
        assert_clean(&r);
        assert_eq!(summary_u64(&r.summary, "rows"), 2000);
        assert_counts_eq(&r.counts, &want);
    }
}

/// Outcome: one 50 MiB field ("a " repeated) is counted exactly: split-space
/// gives N times "a" and one "" (after the last space).
#[test]
fn a_fifty_megabyte_single_field_is_counted_exactly() {
    const N: usize = 25 << 20; // "a " × N = 50 MiB
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::with_capacity(2 * N + 16);
    bytes.extend_from_slice(b"id,text\n1,");
    for _ in 0..N {
        bytes.extend_from_slice(b"a ");
    }
    bytes.push(b'\n');
    write(dir.path(), "huge-field.csv", &bytes);
    drop(bytes);
    let r = run_job_within("split-space", &["--redis", &redis.url(), &arg(dir.path())], 120);
    assert_clean(&r);
    assert_counts_eq(&r.counts, &map(&[("a", N as u64), ("", 1)]));
    assert_eq!(summary_u64(&r.summary, "rows"), 1);
    assert_eq!(summary_u64(&r.summary, "tokens"), N as u64 + 1);
}

/// Outcome: 1,000,000 distinct words in one task (one file below SPLIT_MB)
/// go through the commit path's size bounds and are counted exactly.
#[test]
fn a_million_distinct_words_are_counted_exactly() {
    const ROWS: usize = 10_000;
    const PER_ROW: usize = 100;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,text\n".to_vec();
    for r in 0..ROWS {
        write!(bytes, "{r},").unwrap();
        for i in 0..PER_ROW {
            if i > 0 {
                bytes.push(b' ');
            }
            write!(bytes, "w{:07}", r * PER_ROW + i).unwrap();
        }
        bytes.push(b'\n');
    }
    write(dir.path(), "distinct.csv", &bytes);
    let r = run_job_within("split-space", &["--redis", &redis.url(), &arg(dir.path())], 180);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "tasks"), 1, "one task, so one commit of 1M keys: {}", r.summary);
    assert_eq!(summary_u64(&r.summary, "distinct"), 1_000_000, "{}", r.summary);
    assert_eq!(summary_u64(&r.summary, "tokens"), 1_000_000);
    let want: HashMap<String, u64> = (0..ROWS * PER_ROW).map(|i| (format!("w{i:07}"), 1)).collect();
    assert_counts_eq(&r.counts, &want);
}

/// Outcome of random bytes named `.csv`: its first "row" is no header with
/// a `text` column, so the task is dead-lettered with an error naming the
/// file that says its first row is not a text header (and does not quote
/// the garbage); exit status 1; the good file is counted.
#[test]
fn random_bytes_named_csv_are_dead_lettered_as_not_a_csv_file() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 108);
    write(dir.path(), "noise.csv", &noise(256 << 10, 108));
    let r = run_job_within("split-space", &["--redis", &redis.url(), &arg(dir.path())], JOB_SECS);
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].0.ends_with("noise.csv"));
    let error = &dead[0].1;
    assert!(error.contains("noise.csv") && error.contains("no column named `text`"), "{error}");
    assert!(error.contains("the first row is not a text header") && error.contains("is it a CSV file?"), "{error}");
    assert!(error.len() < 400 && !error.chars().any(|c| c.is_control()), "a short, printable error: {error:?}");
    assert_counts_eq(&r.counts, &reference_split_space(&[good]));
}

/// Outcome of a good header followed by random bytes: counted, like the
/// independent reader reads it (fields decoded with U+FFFD, short records
/// skipped), with the warnings reported; `plugin count` agrees.
#[test]
fn a_header_then_random_bytes_is_counted_consistently() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,text\n".to_vec();
    bytes.extend(noise(256 << 10, 109));
    let file = write(dir.path(), "garbage-rows.csv", &bytes);
    let r = run_job_within("split-space", &["--redis", &redis.url(), "--split-mb", "0.05", &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    let want = reference_split_space(&[file.clone()]);
    assert_counts_eq(&r.counts, &want);
    assert_eq!(summary_u64(&r.summary, "rows"), reference_rows(&[file.clone()]));
    assert!(summary_u64(&r.summary, "invalid_utf8_rows") > 0, "{}", r.summary);
    assert!(summary_u64(&r.summary, "short_rows") > 0, "{}", r.summary);
    let pc = plugin_count("split-space", &[&arg(&file)]);
    assert!(pc.status.success(), "{}", pc.stderr);
    assert_counts_eq(&pc.counts, &want);
    assert_eq!(pc.json["invalid_utf8_rows"], r.summary["invalid_utf8_rows"]);
    assert_eq!(pc.json["short_rows"], r.summary["short_rows"]);
}

/// Extra case: a FIFO named `.csv` (in a directory or given by name) would
/// block a worker's `open` forever; it is refused when the job is planned,
/// naming it: exit status 2.
#[test]
fn a_fifo_named_csv_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    good_file(dir.path(), 110);
    let fifo = dir.path().join("pipe.csv");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let url = format!("redis://127.0.0.1:{}/", free_port());
    for input in [arg(dir.path()), arg(&fifo)] {
        let done = run_within(wc_host().args(["--plugin", &arg(&plugin("words")), "--redis", &url, &input]), FAIL_SECS);
        assert_no_panic(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
        assert!(done.stderr.contains("pipe.csv") && done.stderr.contains("not a regular file"), "{}", done.stderr);
    }
    let pc = plugin_count("words", &[&arg(dir.path())]);
    assert_eq!(pc.status.code(), Some(2));
    assert!(pc.stderr.contains("pipe.csv: not a regular file"), "{}", pc.stderr);
}

/// Extra case: the same file named twice (`a.csv`, `sub/../a.csv`, a symlink)
/// is one file: counted once, and the job finishes. (Its tasks have the
/// same ids, so a manifest holding both used to wait forever for the second.)
#[test]
fn the_same_file_named_twice_is_counted_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 111);
    std::os::unix::fs::symlink(&good, dir.path().join("link.csv")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let dotted = dir.path().join("sub").join("..").join("good.csv");
    let r = run_job_within("words", &["--redis", &redis.url(), &arg(&good), &arg(&dotted), &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert_eq!(summary_u64(&r.summary, "files"), 1, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&[good.clone()]));
    let pc = plugin_count("words", &[&arg(&good), &arg(&dotted), &arg(dir.path())]);
    assert!(pc.status.success(), "{}", pc.stderr);
    assert_counts_eq(&pc.counts, &reference_words(&[good]));
}

// -------------------------------------------- files changed after planning ---

/// Runs a job whose files are changed by `change` after the coordinator
/// planned them (took their size and mtime) and before any worker reads
/// them. Deterministic: Redis is paused for writes (`CLIENT PAUSE WRITE`)
/// before the job starts; the coordinator connects only once its plan is
/// made, and its first write (`FUNCTION LOAD`, before any task exists)
/// waits for the pause to end, which happens after `change`.
fn job_with_files_changed_after_planning(redis: &RedisServer, plugin_name: &str, args: &[&str], change: impl FnOnce()) -> JobResult {
    let mut conn = redis.conn();
    let me: i64 = redis::cmd("CLIENT").arg("ID").query(&mut conn).unwrap();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(20_000).arg("WRITE").query(&mut conn).unwrap();
    let mut job = spawn_job(plugin_name, args);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
        let newer = clients
            .lines()
            .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse::<i64>().ok())
            .any(|id| id > me);
        if newer {
            break;
        }
        if let Some(status) = job.child.try_wait().unwrap() {
            let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut conn).unwrap();
            let out = job.child.wait_with_output().unwrap();
            panic!("the job ended ({status}) before connecting: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(Instant::now() < deadline, "the coordinator never connected to Redis");
        std::thread::sleep(Duration::from_millis(10));
    }
    change();
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut conn).unwrap();
    finish_job_within(job, JOB_SECS)
}

/// Outcome: a file deleted after the job was submitted is dead-lettered
/// with an error naming it ("no longer exists"); exit status 1; the other
/// files are counted exactly.
#[test]
fn a_file_deleted_after_submission_is_dead_lettered_naming_it() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 112);
    let doomed = write(dir.path(), "zz-deleted.csv", b"id,text\n1,this row is never counted\n");
    let r = job_with_files_changed_after_planning(&redis, "split-space", &["--redis", &redis.url(), &arg(dir.path())], || {
        std::fs::remove_file(&doomed).unwrap();
    });
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}\n{}", r.summary, r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].0.ends_with("zz-deleted.csv"), "{dead:?}");
    assert!(dead[0].1.contains("zz-deleted.csv") && dead[0].1.contains("no longer exists"), "{dead:?}");
    assert_counts_eq(&r.counts, &reference_split_space(&[good]));
}

/// Outcome: a file modified after the job was submitted — grown by a row,
/// or rewritten with the same size and a new mtime — is dead-lettered with
/// "changed since the job was planned" naming it; exit status 1; the other
/// files are counted exactly.
#[test]
fn a_file_modified_after_submission_is_dead_lettered_naming_it() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 113);
    let grown = write(dir.path(), "zz-grown.csv", b"id,text\n1,before\n");
    let same_size = write(dir.path(), "zz-same-size.csv", b"id,text\n1,before\n");
    let r = job_with_files_changed_after_planning(&redis, "split-space", &["--redis", &redis.url(), &arg(dir.path())], || {
        let mut f = std::fs::OpenOptions::new().append(true).open(&grown).unwrap();
        f.write_all(b"2,after\n").unwrap();
        let planned = std::fs::metadata(&same_size).unwrap().modified().unwrap();
        std::fs::write(&same_size, b"id,text\n1,AFTER!\n").unwrap();
        let f = std::fs::File::options().write(true).open(&same_size).unwrap();
        f.set_modified(planned + Duration::from_secs(2)).unwrap();
    });
    assert_no_panic(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{}\n{}", r.summary, r.stderr);
    let mut dead = dead_letters(&r.summary);
    dead.sort();
    assert_eq!(dead.len(), 2, "{}", r.summary);
    for ((file, error), name) in dead.iter().zip(["zz-grown.csv", "zz-same-size.csv"]) {
        assert!(file.ends_with(name), "{dead:?}");
        assert!(error.contains(name) && error.contains("changed since the job was planned"), "{error}");
    }
    assert_counts_eq(&r.counts, &reference_split_space(&[good]));
}

// ------------------------------------------------- refused up front (2) ---

/// Runs `wc-host` with a job's flags, expecting a refusal: exit status 2,
/// within FAIL_SECS, no panic. Returns stderr.
fn refused(args: &[&str]) -> String {
    let done = run_within(wc_host().arg("--plugin").arg(plugin("words")).arg("--quiet").args(args), FAIL_SECS);
    assert_no_panic(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "expected exit status 2; stderr:\n{}", done.stderr);
    assert!(done.stdout.trim().is_empty(), "no summary on a refusal: {}", done.stdout);
    done.stderr
}

/// Outcome: a directory holding no CSV file (only other files and an empty
/// subdirectory) is refused, naming the directory: exit status 2.
#[test]
fn a_directory_without_csv_files_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"id,text\n1,not a csv by name\n");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let err = refused(&["--redis", &url, &arg(dir.path())]);
    assert!(err.contains(&format!("{}: directory holds no .csv file", dir.path().display())), "{err}");
}

/// Outcome: a glob that matches nothing is refused, quoting the pattern:
/// exit status 2.
#[test]
fn a_glob_matching_nothing_is_refused_naming_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"x");
    let pattern = format!("{}/*.csv", dir.path().display());
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let err = refused(&["--redis", &url, &pattern]);
    assert!(err.contains(&format!("`{pattern}` matches no file")), "{err}");
    // A plain path that does not exist names it too.
    let missing = format!("{}/missing.csv", dir.path().display());
    let err = refused(&["--redis", &url, &missing]);
    assert!(err.contains(&format!("{missing}: No such file or directory")), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "said once: {err}");
}

/// Outcome: a config.json key with a value of the wrong type is refused,
/// naming the key and the file: exit status 2. So are a config that is not
/// JSON and one that is not an object.
#[test]
fn a_config_with_a_wrong_type_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    good_file(dir.path(), 114);
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let config = dir.path().join("config.json");
    let cases = [
        ("N_NORMAL_WORKERS", serde_json::json!("two")),
        ("N_CRASHING_WORKERS", serde_json::json!(-1)),
        ("CHECKPOINT_INTERVAL", serde_json::json!("often")),
        ("CLAIM_TIMEOUT", serde_json::json!(false)),
        ("SPLIT_MB", serde_json::json!(-4)),
        ("MAX_ATTEMPTS", serde_json::json!(null)),
        ("TOP", serde_json::json!(2.5)),
        ("COUNT", serde_json::json!(5)),
        ("IN", serde_json::json!("")),
        ("DATA_PATH", serde_json::json!(["data"])),
    ];
    for (key, value) in cases {
        let body = serde_json::json!({ "N_NORMAL_WORKERS": 1, "CLAIM_TIMEOUT": 1 });
        let mut body = body.as_object().unwrap().clone();
        body.insert(key.to_string(), value.clone());
        std::fs::write(&config, serde_json::Value::Object(body).to_string()).unwrap();
        let err = refused(&["--config", &arg(&config), "--redis", &url, &arg(dir.path())]);
        assert!(err.contains(&format!("`{key}`")), "{key} = {value}: {err}");
        assert!(err.contains(&arg(&config)), "the error names the file: {err}");
    }
    std::fs::write(&config, r#"{"CLAIM_TIMEOUT": 0}"#).unwrap();
    let err = refused(&["--config", &arg(&config), "--redis", &url, &arg(dir.path())]);
    assert!(err.contains("`CLAIM_TIMEOUT` must be greater than 0"), "{err}");
    std::fs::write(&config, "{\"N_NORMAL_WORKERS\": 2,").unwrap();
    let err = refused(&["--config", &arg(&config), "--redis", &url, &arg(dir.path())]);
    assert!(err.contains(&arg(&config)) && err.contains("not valid JSON"), "{err}");
    std::fs::write(&config, "[1, 2]").unwrap();
    let err = refused(&["--config", &arg(&config), "--redis", &url, &arg(dir.path())]);
    assert!(err.contains("must be a JSON object"), "{err}");
}

/// Outcome: a Redis URL where nothing listens is refused at once ("cannot
/// reach Redis at HOST:PORT"), exit status 2; a port that accepts but never
/// answers is refused too, within seconds; a malformed URL is named.
#[test]
fn a_redis_url_that_points_nowhere_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    good_file(dir.path(), 115);
    let port = free_port();
    let started = Instant::now();
    let err = refused(&["--redis", &format!("redis://127.0.0.1:{port}/"), &arg(dir.path())]);
    assert!(err.contains(&format!("cannot reach Redis at 127.0.0.1:{port}")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    // Something that accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
        }
    });
    let err = refused(&["--redis", &format!("redis://127.0.0.1:{silent_port}/"), &arg(dir.path())]);
    assert!(err.contains(&format!("127.0.0.1:{silent_port}")), "{err}");

    let err = refused(&["--redis", "redis//no-scheme:6379", &arg(dir.path())]);
    assert!(err.contains("bad Redis URL") && err.contains("redis//no-scheme:6379"), "{err}");
}

/// Outcome: a wrong password is refused, saying so (and not echoing it):
/// exit status 2; no password at all says one is needed; the right one
/// runs the job (and the summary does not show it).
#[test]
fn a_wrong_redis_password_is_refused_and_the_right_one_works() {
    let redis = RedisServer::start_with(&["--requirepass", "secret"]);
    let dir = tempfile::tempdir().unwrap();
    let good = good_file(dir.path(), 116);
    let at = format!("127.0.0.1:{}", redis.port);
    let err = refused(&["--redis", &format!("redis://:not-the-password@{at}/"), &arg(dir.path())]);
    assert!(err.to_lowercase().contains("password") || err.contains("credentials"), "{err}");
    assert!(err.contains(&at), "{err}");
    assert!(!err.contains("not-the-password"), "the password leaked: {err}");
    let err = refused(&["--redis", &format!("redis://{at}/"), &arg(dir.path())]);
    assert!(err.contains("requires a password"), "{err}");
    let r = run_job_within("words", &["--redis", &format!("redis://:secret@{at}/"), &arg(dir.path())], JOB_SECS);
    assert_clean(&r);
    assert!(!r.summary["redis"].as_str().unwrap().contains("secret"), "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&[good]));
}

/// The README's wording for a wrong password ("refused the credentials in
/// the URL (wrong user or password)", `store::explain`) is never reached
/// with redis 0.32: the crate reports `AuthenticationFailed` without the
/// server's WRONGPASS text, so the user gets the generic
/// "Redis at HOST: Password authentication failed- AuthenticationFailed".
#[test]
fn a_wrong_redis_password_gets_the_credentials_message() {
    let redis = RedisServer::start_with(&["--requirepass", "secret"]);
    let dir = tempfile::tempdir().unwrap();
    good_file(dir.path(), 117);
    let err = refused(&["--redis", &format!("redis://:nope@127.0.0.1:{}/", redis.port), &arg(dir.path())]);
    assert!(err.contains("refused the credentials"), "{err}");
}

// ------------------------------------------------------- plugin count ---

struct PluginCount {
    status: std::process::ExitStatus,
    json: serde_json::Value,
    counts: HashMap<String, u64>,
    stderr: String,
}

/// `wc-host plugin count PLUGIN INPUTS --json --output counts.json`.
fn plugin_count(plugin_name: &str, inputs: &[&str]) -> PluginCount {
    let out = tempfile::tempdir().unwrap();
    let counts_path = out.path().join("counts.json");
    let done = run_within(
        wc_host()
            .args(["plugin", "count"])
            .arg(plugin(plugin_name))
            .args(inputs)
            .arg("--json")
            .arg("--output")
            .arg(&counts_path)
            .stdin(Stdio::null()),
        FAIL_SECS * 3,
    );
    assert_no_panic(&done.stderr);
    let json = serde_json::from_str(&done.stdout).unwrap_or(serde_json::Value::Null);
    let counts = std::fs::read_to_string(&counts_path).ok().map(|t| serde_json::from_str(&t).unwrap()).unwrap_or_default();
    PluginCount { status: done.status, json, counts, stderr: done.stderr }
}

/// `plugin count` over ragged rows, invalid UTF-8 and NUL bytes: counted
/// as a job counts them, with the same warnings in its JSON.
#[test]
fn plugin_count_reports_short_rows_and_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let ragged = write(dir.path(), "ragged.csv", RAGGED);
    let pc = plugin_count("split-space", &[&arg(&ragged)]);
    assert!(pc.status.success(), "{}", pc.stderr);
    assert_eq!(pc.json["short_rows"], 2, "{}", pc.json);
    assert_eq!(pc.json["rows"], 6, "{}", pc.json);
    assert_eq!(pc.counts, ragged_expected());

    let latin = write(dir.path(), "latin1.csv", b"id,text\n1,caf\xe9\n2,ok\n3,\0\n");
    let pc = plugin_count("split-space", &[&arg(&latin)]);
    assert!(pc.status.success(), "{}", pc.stderr);
    assert_eq!(pc.json["invalid_utf8_rows"], 1, "{}", pc.json);
    assert_eq!(pc.counts, map(&[("caf\u{FFFD}", 1), ("ok", 1), ("\0", 1)]));

    // Without --json, the warning is printed.
    let done = run_within(wc_host().args(["plugin", "count"]).arg(plugin("split-space")).arg(&ragged).arg(&latin), FAIL_SECS);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stdout.contains("warning: 2 rows lacked the plugin's columns; 1 rows had invalid UTF-8"), "{}", done.stdout);
}

/// `plugin count` refuses, naming the file: a missing column (and the
/// column), an empty file, random bytes; exit status 2.
#[test]
fn plugin_count_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let nocol = write(dir.path(), "no-text.csv", b"a,b\n1,2\n");
    let pc = plugin_count("words", &[&arg(&nocol)]);
    assert_eq!(pc.status.code(), Some(2), "{}", pc.stderr);
    assert!(pc.stderr.contains(&format!("{}: no column named `text` in the header (columns: a, b)", nocol.display())), "{}", pc.stderr);

    let empty = write(dir.path(), "empty.csv", b"");
    let pc = plugin_count("words", &[&arg(&empty)]);
    assert_eq!(pc.status.code(), Some(2), "{}", pc.stderr);
    assert!(pc.stderr.contains(&format!("{}: the file is empty", empty.display())), "{}", pc.stderr);

    let binary = write(dir.path(), "noise.csv", &noise(64 << 10, 118));
    let pc = plugin_count("words", &[&arg(&binary)]);
    assert_eq!(pc.status.code(), Some(2), "{}", pc.stderr);
    assert!(pc.stderr.contains(&format!("{}: no column named `text`: the first row is not a text header", binary.display())), "{}", pc.stderr);
    assert!(pc.stderr.len() < 400, "{:?}", pc.stderr);

    let header_only = write(dir.path(), "header.csv", b"id,text\n");
    let pc = plugin_count("words", &[&arg(&header_only)]);
    assert!(pc.status.success(), "{}", pc.stderr);
    assert_eq!((pc.json["rows"].as_u64(), pc.json["tokens"].as_u64()), (Some(0), Some(0)), "{}", pc.json);
}

/// `plugin count` over an unterminated quote: the same outcome as a job
/// (the rest of the file is one field), no hang.
#[test]
fn plugin_count_unterminated_quote() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "open.csv", b"id,text\n1,a b\n2,\"c d\n3,e f\n");
    let pc = plugin_count("split-space", &[&arg(&file)]);
    assert!(pc.status.success(), "{}", pc.stderr);
    assert_eq!(pc.json["rows"], 2);
    assert_eq!(pc.counts, map(&[("a", 1), ("b", 1), ("c", 1), ("d\n3,e", 1), ("f\n", 1)]));
}
