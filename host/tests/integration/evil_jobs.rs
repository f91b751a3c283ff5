//! Hostile plugins inside real jobs: the poisoned task is dead-lettered
//! with the plugin's error, every other task counts exactly, and the worker
//! processes survive (the instance is rebuilt, not the process).

use std::collections::HashMap;
use std::path::PathBuf;

use wc_testkit::*;

const NEEDLE: &str = "POISON-ROW-7c1";

/// Good generated files plus `poisoned.csv`, whose last row holds the needle.
fn data_with_a_poisoned_file() -> (tempfile::TempDir, Vec<PathBuf>) {
    let (dir, files) = gen_data(3.0, 3, 31);
    let mut poisoned = std::fs::read_to_string(&files[0]).unwrap();
    poisoned.push_str(&format!("999999999,x,True,Tue Oct 31 22:10:47 +0000 2017,hello {NEEDLE} world,,\n"));
    std::fs::write(dir.path().join("poisoned.csv"), poisoned).unwrap();
    (dir, files)
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

fn poisoned_job(mode: &str, expect_in_error: &str) {
    let redis = RedisServer::start();
    let (dir, files) = data_with_a_poisoned_file();
    let evil = evil_plugins().0.display().to_string();
    let mode_arg = format!("mode={mode}");
    let needle_arg = format!("needle={NEEDLE}");
    let r = run_job(
        &evil,
        &[
            "--redis", &redis.url(), "--plugin-arg", &mode_arg, "--plugin-arg", &needle_arg,
            "--plugin-deadline-ms", "500", "--plugin-memory-mib", "96", "--max-attempts", "2",
            &dir.path().display().to_string(),
        ],
    );
    assert_eq!(r.status.code(), Some(1), "dead letters make the exit status 1: {}", r.stderr);
    let dead = r.summary["dead_lettered"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0]["file"].as_str().unwrap().ends_with("poisoned.csv"), "{}", dead[0]);
    let error = dead[0]["error"].as_str().unwrap();
    assert!(error.contains("plugin evil") && error.contains(expect_in_error), "{error}");
    // The poisoned row is the last: one after the rows of the file copied.
    let row = csv::Reader::from_path(&files[0]).unwrap().records().count() + 1;
    assert!(error.contains(&format!("poisoned.csv row {row}")), "the error names the input row {row}: {error}");
    assert!(!error.contains('\n'), "one line: {error}");
    assert_eq!(summary_u64(&r.summary, "retries"), 0, "a failure that recurs with the same rows is not retried: {}", r.summary);
    assert_eq!(summary_u64(&r.summary, "worker_respawns"), 0, "workers survive a plugin's misbehaviour");
    assert_counts_eq(&r.counts, &reference_whitespace(&files));
}

#[test]
fn a_plugin_that_traps_on_one_row_dead_letters_only_that_task() {
    poisoned_job("trap-on", "trapped");
}

#[test]
fn a_plugin_that_loops_on_one_row_is_stopped_by_its_deadline() {
    poisoned_job("loop", "CPU deadline");
}

#[test]
fn a_plugin_that_exhausts_memory_on_one_row_is_stopped_by_its_cap() {
    poisoned_job("membomb", "memory limit");
}
