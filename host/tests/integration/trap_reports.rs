//! How a failing plugin is reported (issue 11): the panic message first, on
//! one line, at the exact input row (found by re-running the batch on fresh
//! instances), the wasm backtrace only with `-v`; a failure that recurs with
//! the same rows is dead-lettered without retries, every other task counted
//! exactly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use wc_testkit::*;

/// Must match `PANIC_MESSAGE` in tests/evil-plugins/evil/src/lib.rs.
const PANIC_MESSAGE: &str = "evil plugin panics on purpose";
const NEEDLE: &str = "NEEDLE-ROW-5d2";

fn evil() -> String {
    evil_plugins().0.display().to_string()
}

/// A copy of `src` at `dst` whose data row `row` (1-based, as wc-host numbers
/// rows: records after the header) holds the needle in its text, with a row
/// too short to have a text column a few rows before it (skipped by the
/// reader, still numbered). Returns the number of data rows.
fn poison(src: &Path, dst: &Path, row: usize) -> usize {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_path(src).unwrap();
    let mut records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let text = records[0].iter().position(|h| h == "text").expect("a text column");
    records.insert(row - 5, csv::StringRecord::from(vec!["1", "2"]));
    let mut fields: Vec<String> = records[row].iter().map(str::to_string).collect();
    fields[text] = format!("{} {NEEDLE} here", fields[text]);
    records[row] = csv::StringRecord::from(fields);
    let mut writer = csv::WriterBuilder::new().flexible(true).from_path(dst).unwrap();
    for r in &records {
        writer.write_record(r).unwrap();
    }
    writer.flush().unwrap();
    records.len() - 1
}

/// A generated file of about 3 MB (3 batches of 1 MiB) poisoned at a row of
/// its last batch, so that the failing batch does not start at row 1.
fn poisoned_file() -> (tempfile::TempDir, PathBuf, usize) {
    let (dir, files) = gen_data(6.0, 2, 47);
    let rows = csv::Reader::from_path(&files[0]).unwrap().records().count();
    let row = rows * 5 / 6;
    let path = dir.path().join("poisoned.csv");
    poison(&files[0], &path, row);
    (dir, path, row)
}

fn plugin_count(verbose: bool, mode: &str, extra: &[&str], file: &Path) -> (Option<i32>, String) {
    let mut cmd = wc_host();
    cmd.env("WC_HOST_CACHE_DIR", target_dir().join("wc-host-tests/plugin-cache-cli")).env_remove("RUST_LOG");
    cmd.args(["plugin", "count", &evil(), "--plugin-arg", &format!("mode={mode}"), "--plugin-arg", &format!("needle={NEEDLE}")]);
    if verbose {
        cmd.arg("-v");
    }
    let out = output_within(cmd.args(extra).arg(file), 120).expect("plugin count finished within 120 s");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const BACKTRACE_MARKS: [&str; 3] = ["wasm backtrace", "evil.wasm!", "<wasm function"];

#[test]
fn plugin_count_reports_a_panic_first_at_its_exact_row_in_one_line() {
    let (_dir, file, row) = poisoned_file();
    let (code, stderr) = plugin_count(false, "trap-on", &[], &file);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!("trapped at {} row {row}: panicked at ", file.display());
    assert!(stderr.contains(&expected), "expected `{expected}` in:\n{stderr}");
    assert!(stderr.contains(&format!("{PANIC_MESSAGE}: the row contains `{NEEDLE}`")), "{stderr}");
    let (panic_at, kind_at) = (stderr.find("panicked at").unwrap(), stderr.find("wasm trap: unreachable").expect("the trap kind"));
    assert!(panic_at < kind_at, "the panic message comes before the trap kind: {stderr}");
    for mark in BACKTRACE_MARKS.iter().chain(&["RUST_BACKTRACE"]) {
        assert!(!stderr.contains(mark), "`{mark}` without -v:\n{stderr}");
    }
    assert!(stderr.lines().count() <= 2, "a short report, not {} lines:\n{stderr}", stderr.lines().count());

    // With -v, the backtrace is there once, for the author of the plugin.
    let (code, verbose) = plugin_count(true, "trap-on", &[], &file);
    assert_eq!(code, Some(2), "{verbose}");
    assert!(verbose.contains(&expected), "{verbose}");
    assert_eq!(verbose.matches("error while executing at wasm backtrace").count(), 1, "{verbose}");
    assert!(verbose.contains("evil.wasm!"), "the backtrace's frames: {verbose}");
}

#[test]
fn plugin_count_names_the_row_of_a_deadline_and_of_a_memory_failure() {
    let (_dir, file, row) = poisoned_file();
    let at_row = format!("at {} row {row} ", file.display());
    let (code, stderr) = plugin_count(false, "loop", &["--plugin-deadline-ms", "300"], &file);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ran past its CPU deadline of 300 ms") && stderr.contains(&at_row), "expected `{at_row}` in:\n{stderr}");
    assert!(stderr.lines().count() <= 2, "{stderr}");
    let (code, stderr) = plugin_count(false, "membomb", &["--plugin-memory-mib", "96"], &file);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ran out of its 96 MiB memory limit") && stderr.contains(&at_row), "expected `{at_row}` in:\n{stderr}");
}

/// What the evil plugin counts when it behaves: whitespace-separated words.
fn reference_whitespace(files: &[PathBuf]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for text in texts(files) {
        for word in text.split_whitespace() {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn a_job_dead_letters_a_reproducible_trap_after_one_attempt_naming_its_row() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(6.0, 4, 53);
    let poisoned = dir.path().join("poisoned.csv");
    let rows = csv::Reader::from_path(&files[0]).unwrap().records().count();
    let row = rows * 3 / 4;
    poison(&files[0], &poisoned, row);
    let mode = "mode=trap-on".to_string();
    let needle = format!("needle={NEEDLE}");
    let r = run_job(&evil(), &["--redis", &redis.url(), "--plugin-arg", &mode, "--plugin-arg", &needle, "--max-attempts", "3", &dir.path().display().to_string()]);
    assert_eq!(r.status.code(), Some(1), "dead letters make the exit status 1: {}", r.stderr);

    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    let (file, error) = &dead[0];
    assert!(file.ends_with("poisoned.csv"), "{file}");
    let expected = format!("trapped at {} row {row}: panicked at ", poisoned.display());
    assert!(error.contains(&expected), "expected `{expected}` in: {error}");
    assert!(error.contains(PANIC_MESSAGE) && !error.contains('\n'), "one line with the panic message: {error}");
    assert!(BACKTRACE_MARKS.iter().all(|m| !error.contains(m)), "{error}");

    // One attempt: no retry, in the summary and in Redis.
    assert_eq!(summary_u64(&r.summary, "retries"), 0, "{}", r.summary);
    let mut conn = redis.conn();
    let attempts_keys: Vec<String> = redis::cmd("KEYS").arg("wc:*:attempts").query(&mut conn).unwrap();
    assert_eq!(attempts_keys.len(), 1, "{attempts_keys:?}");
    let attempts: HashMap<String, u64> = redis::cmd("HGETALL").arg(&attempts_keys[0]).query(&mut conn).unwrap();
    assert_eq!(attempts.values().copied().collect::<Vec<_>>(), [1], "one failed attempt of one task: {attempts:?}");

    // The message is said once (the dead letter), not once per retry.
    assert_eq!(r.stderr.matches(PANIC_MESSAGE).count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("will retry"), "{}", r.stderr);
    assert_eq!(summary_u64(&r.summary, "worker_respawns"), 0);
    assert_counts_eq(&r.counts, &reference_whitespace(&files));
}

/// A failure that depends on the rows fed before the failing batch (the
/// evil plugin's `trap-after`, on the task's Nth row, in its third batch)
/// does not recur when the batch is fed alone to a fresh instance: the
/// batch's rows are named, said so, and the task keeps its retries.
#[test]
fn a_failure_the_batch_alone_does_not_reproduce_keeps_its_range_and_its_retries() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(6.0, 2, 59);
    std::fs::remove_file(&files[1]).unwrap();
    let rows = csv::Reader::from_path(&files[0]).unwrap().records().count();
    let nth = format!("rows={}", rows * 5 / 6);

    let mut cmd = wc_host();
    cmd.env("WC_HOST_CACHE_DIR", target_dir().join("wc-host-tests/plugin-cache-cli")).env_remove("RUST_LOG");
    cmd.args(["plugin", "count", &evil(), "--plugin-arg", "mode=trap-after", "--plugin-arg", &nth]).arg(&files[0]);
    let out = output_within(&mut cmd, 120).expect("plugin count finished");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let range = format!("trapped at {} rows ", files[0].display());
    assert!(stderr.contains(&range) && stderr.contains("these rows do not fail"), "expected `{range}` and the note in:\n{stderr}");
    assert!(stderr.contains(PANIC_MESSAGE), "{stderr}");

    let r = run_job(&evil(), &["--redis", &redis.url(), "--plugin-arg", "mode=trap-after", "--plugin-arg", &nth, "--max-attempts", "3", &dir.path().display().to_string()]);
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let dead = dead_letters(&r.summary);
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0].1.contains(&range) && dead[0].1.contains("these rows do not fail"), "{}", dead[0].1);
    assert_eq!(summary_u64(&r.summary, "retries"), 2, "not reproduced: the normal retries: {}", r.summary);
}
