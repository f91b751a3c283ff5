//! Helpers shared by the integration tests: where the workspace is, the
//! plugin components (built on demand), reference counts made without any
//! wc-host or plugin code, and a map comparison that prints a short diff.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The plugins `make plugins` builds: package name, file stem in `plugins/`.
const PLUGINS: [(&str, &str); 3] = [("words", "words"), ("split-space", "split-space"), ("hashtags", "hashtags")];

/// The cargo workspace root (the parent of `host/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// `<root>/plugins/NAME.wasm`, built first if any shipped plugin is missing.
pub fn plugin_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(ensure_plugins_built);
    let path = workspace_root().join("plugins").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} does not exist (not a shipped plugin?)", path.display());
    path
}

/// `<root>/plugins/NAME/cases.json`.
pub fn cases_path(name: &str) -> PathBuf {
    workspace_root().join("plugins").join(name).join("cases.json")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target"),
    }
}

fn missing_plugins() -> Vec<PathBuf> {
    let dir = workspace_root().join("plugins");
    PLUGINS.iter().map(|(_, file)| dir.join(format!("{file}.wasm"))).filter(|p| !p.is_file()).collect()
}

/// Builds the plugins like `make plugins` when one is missing. Test processes
/// run in parallel (nextest: one per test), so the check and the build happen
/// under an exclusive `flock` on a file in the target directory; the copies
/// are written to a temporary name and renamed, so a reader never sees half
/// a component.
fn ensure_plugins_built() {
    if missing_plugins().is_empty() {
        return;
    }
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    let lock_path = target.join("wc-host-test-plugins.lock");
    let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    // SAFETY: a plain flock(2) on a descriptor we own for the whole block.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}: {}", lock_path.display(), std::io::Error::last_os_error());

    // Another process may have built them while we waited for the lock.
    if missing_plugins().is_empty() {
        return; // dropping `lock` closes the descriptor and releases it
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--profile", "wasm", "--target", "wasm32-wasip2"]);
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    eprintln!("building the plugins: {cmd:?}");
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    assert!(status.success(), "building the plugins failed ({status}); try `make plugins`");

    let wasm_dir = target.join("wasm32-wasip2").join("wasm");
    let plugins_dir = workspace_root().join("plugins");
    for (package, file) in PLUGINS {
        let built = wasm_dir.join(format!("{}.wasm", package.replace('-', "_")));
        let dest = plugins_dir.join(format!("{file}.wasm"));
        let tmp = plugins_dir.join(format!(".{file}.wasm.{}", std::process::id()));
        std::fs::copy(&built, &tmp).unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", built.display(), tmp.display()));
        std::fs::rename(&tmp, &dest).unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), dest.display()));
    }
    drop(lock);
}

/// Generates `total_bytes` of twcs-shaped CSV in `files` files under `dir`.
pub fn generate(dir: &Path, total_bytes: u64, files: usize, seed: u64) -> Vec<PathBuf> {
    let opts = wc_host::gen_data::GenOptions { total_bytes, files, seed };
    let report = wc_host::gen_data::generate(dir, &opts).expect("generating test data");
    assert_eq!(report.files.len(), files);
    report.files
}

/// The `text` column of every data row, read with the csv crate alone
/// (header row on, column found by its name).
pub fn text_column(files: &[PathBuf]) -> Vec<String> {
    let mut texts = Vec::new();
    for path in files {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let column = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "text")
            .unwrap_or_else(|| panic!("{}: no `text` column", path.display()));
        for record in reader.records() {
            let record = record.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            texts.push(record.get(column).expect("a text field").to_string());
        }
    }
    texts
}

/// Python's `text.split(" ")` over the text column, counted: the reference
/// for `split-space`, independent of wc-host and of the plugin crates.
pub fn reference_split_space(files: &[PathBuf]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for text in text_column(files) {
        for token in text.split(' ') {
            *counts.entry(token.to_string()).or_insert(0) += 1;
        }
    }
    counts
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
