//! Independent counts to compare jobs with: the text column read with the
//! csv crate on its own, counted by the rule written again (split-space) or
//! by the plugin crate compiled natively (words); and generated data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Generates `total_bytes` of twcs-shaped CSV in `files` files under `dir`.
pub fn generate(dir: &Path, total_bytes: u64, files: usize, seed: u64) -> Vec<PathBuf> {
    let opts = wc_host::gen_data::GenOptions { total_bytes, files, seed };
    let report = wc_host::gen_data::generate(dir, &opts).expect("generating test data");
    assert_eq!(report.files.len(), files);
    report.files
}

/// Generated twcs-shaped files in a fresh directory.
pub fn gen_data(mb: f64, files: usize, seed: u64) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = wc_host::gen_data::GenOptions { total_bytes: (mb * 1_048_576.0) as u64, files, seed };
    let report = wc_host::gen_data::generate(dir.path(), &opts).unwrap();
    (dir, report.files)
}

/// The `text` column of every row, read with the csv crate on its own.
pub fn texts(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for file in files {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(file).unwrap();
        let idx = reader.headers().unwrap().iter().position(|h| h == "text").unwrap();
        for record in reader.byte_records() {
            let record = record.unwrap();
            if let Some(field) = record.get(idx) {
                out.push(String::from_utf8_lossy(field).into_owned());
            }
        }
    }
    out
}

/// Python's `text.split(" ")`, counted: the split-space reference.
pub fn reference_split_space(files: &[PathBuf]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for text in texts(files) {
        for token in text.split(' ') {
            *counts.entry(token.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// The words rule run natively, outside Redis, workers and WASM.
pub fn reference_words(files: &[PathBuf]) -> HashMap<String, u64> {
    let rules = words::Rules::default();
    let mut counts = wc_plugin_sdk::Counts::default();
    for text in texts(files) {
        words::count_text(&text, &rules, &mut counts);
    }
    counts.into_map().into_iter().collect()
}

/// Asserts equal count maps, showing a few differences when not.
pub fn assert_counts_eq(got: &HashMap<String, u64>, want: &HashMap<String, u64>) {
    assert_same_counts("counts", got, want);
}

/// Fails with the number of differing keys and the first few of them
/// (sorted), instead of printing two maps of thousands of keys.
pub fn assert_same_counts<'a>(
    what: &str,
    got: impl IntoIterator<Item = (&'a String, &'a u64)>,
    want: impl IntoIterator<Item = (&'a String, &'a u64)>,
) {
    let got: HashMap<&str, u64> = got.into_iter().map(|(k, &n)| (k.as_str(), n)).collect();
    let want: HashMap<&str, u64> = want.into_iter().map(|(k, &n)| (k.as_str(), n)).collect();
    let mut diffs: Vec<String> = Vec::new();
    for (key, &w) in &want {
        match got.get(key) {
            None => diffs.push(format!("{key:?}: expected {w}, missing")),
            Some(&g) if g != w => diffs.push(format!("{key:?}: expected {w}, got {g}")),
            Some(_) => {}
        }
    }
    for (key, &g) in &got {
        if !want.contains_key(key) {
            diffs.push(format!("{key:?}: unexpected, got {g}"));
        }
    }
    if !diffs.is_empty() {
        diffs.sort();
        let shown = diffs.iter().take(15).map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n");
        panic!(
            "{what}: {} of {} expected keys differ ({} keys returned); first differences:\n{shown}",
            diffs.len(),
            want.len(),
            got.len()
        );
    }
}

/// The sha256 of a file, hex (as wc-host names plugins).
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}
