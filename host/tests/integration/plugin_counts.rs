//! End-to-end counts: generated twcs-shaped CSV counted by the shipped WASM
//! plugins, through the library and through the `wc-host` binary, checked
//! against references computed independently in the test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wc_testkit::{assert_same_counts, cases_path, generate, plugin as plugin_path, reference_split_space, texts as text_column, workspace_root};
use wc_host::count::{count_files, count_range, merge, CountMap};
use wc_host::input::split_file;
use wc_host::plugin::{PluginInstance, PluginRuntime, SandboxPolicy};

/// About 6 MB in 3 files, as the brief of these tests asks.
const TOTAL_BYTES: u64 = 6 << 20;
const FILES: usize = 3;

fn instance(name: &str) -> PluginInstance {
    let runtime = PluginRuntime::new(SandboxPolicy::default()).expect("runtime");
    let plugin = runtime.load(&plugin_path(name)).unwrap_or_else(|e| panic!("loading {name}: {e}"));
    plugin.instantiate().unwrap_or_else(|e| panic!("instantiating {name}: {e}"))
}

fn count_with(name: &str, files: &[PathBuf]) -> CountMap {
    let mut instance = instance(name);
    let (counts, stats) = count_files(&mut instance, &[], files).unwrap_or_else(|e| panic!("counting with {name}: {e}"));
    assert_eq!((stats.short_rows, stats.invalid_utf8_rows), (0, 0), "generated data is well formed");
    counts
}

#[test]
fn split_space_wasm_matches_python_split_reference() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), TOTAL_BYTES, FILES, 7);
    let got = count_with("split-space", &files);
    let want = reference_split_space(&files);
    assert!(want.len() > 1000, "the reference is too small to prove anything: {} keys", want.len());
    assert!(want.contains_key(""), "double spaces must yield empty tokens");
    assert!(want.keys().any(|k| k.contains('\n')), "multi-line fields must reach the tokens");
    assert_same_counts("split-space.wasm vs text.split(' ')", &got, &want);
}

#[test]
fn words_wasm_matches_native_rule() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), TOTAL_BYTES, FILES, 11);
    let got = count_with("words", &files);
    let rules = words::Rules::default();
    // The SDK's `Counts`, named through inference (the host does not depend
    // on the SDK crate directly).
    let mut native = Default::default();
    for text in text_column(&files) {
        words::count_text(&text, &rules, &mut native);
    }
    let want: HashMap<String, u64> = native.into_map().into_iter().collect();
    assert!(want.len() > 1000, "the reference is too small to prove anything: {} keys", want.len());
    assert!(want.keys().any(|k| k.starts_with('#')) && want.keys().any(|k| k.starts_with('@')));
    assert_same_counts("words.wasm vs words::count_text", &got, &want);
}

#[test]
fn byte_ranges_count_like_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 2 << 20, 1, 3);
    let path = &files[0];
    assert!(
        text_column(&files).iter().any(|t| t.contains('\n')),
        "the test needs quoted multi-line fields in the data"
    );
    let size = std::fs::metadata(path).unwrap().len();
    let mut instance = instance("split-space");
    let (whole, whole_stats) = count_files(&mut instance, &[], &files).unwrap();

    for target in [4 << 10, 100 << 10] {
        let ranges = split_file(path, target).unwrap();
        assert!(ranges.len() as u64 >= size / target / 2, "target {target}: only {} ranges", ranges.len());
        assert_eq!(ranges[0].start, 0, "target {target}: the first range starts the file");
        assert_eq!(ranges.last().unwrap().end, size, "target {target}: the last range ends the file");
        let mut merged = CountMap::default();
        let mut rows = 0;
        for (i, range) in ranges.iter().enumerate() {
            assert!(range.start < range.end, "target {target}: range {i} is empty: {range:?}");
            if i > 0 {
                assert_eq!(range.start, ranges[i - 1].end, "target {target}: gap or overlap before range {i}");
            }
            assert_eq!(range.first_row, rows + 1, "target {target}: range {i} first_row");
            let part = count_range(&mut instance, &[], range).unwrap_or_else(|e| panic!("range {i} {range:?}: {e}"));
            assert_eq!(part.stats.short_rows, 0, "target {target}: range {i} starts inside a record");
            rows += part.stats.rows;
            merge(&mut merged, part.counts.iter());
        }
        assert_eq!(rows, whole_stats.rows, "target {target}: rows of all ranges");
        assert_same_counts(&format!("ranges of ~{target} bytes vs whole file"), &merged, &whole);
    }
}

fn wc_host(args: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_wc-host"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("cannot run wc-host");
    output
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn cli_count(files: &[PathBuf], out: &Path) {
    let plugin = plugin_path("split-space");
    let mut args: Vec<&std::ffi::OsStr> = vec!["plugin".as_ref(), "count".as_ref(), plugin.as_os_str()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend(["--output".as_ref(), out.as_os_str()]);
    let output = wc_host(&args);
    assert!(output.status.success(), "wc-host plugin count --output {}: {}", out.display(), describe(&output));
}

#[test]
fn cli_plugin_count_writes_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(&dir.path().join("data"), TOTAL_BYTES, FILES, 5);
    let want = reference_split_space(&files);
    assert!(want.len() > 1000);

    let json_path = dir.path().join("x.json");
    cli_count(&files, &json_path);
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).expect("the .json output is one JSON object");
    let from_json: HashMap<String, u64> = json
        .into_iter()
        .map(|(k, v)| {
            let n = v.as_u64().unwrap_or_else(|| panic!("count of {k:?} is not an integer: {v}"));
            (k, n)
        })
        .collect();
    assert_same_counts("CLI --output x.json vs text.split(' ')", &from_json, &want);

    let csv_path = dir.path().join("x.csv");
    cli_count(&files, &csv_path);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(&csv_path).unwrap();
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ["key", "count"]);
    let mut rows: Vec<(String, u64)> = Vec::new();
    for record in reader.records() {
        let record = record.expect("a key,count row");
        assert_eq!(record.len(), 2, "{record:?}");
        rows.push((record[0].to_string(), record[1].parse().unwrap_or_else(|e| panic!("{record:?}: {e}"))));
    }
    for pair in rows.windows(2) {
        let ((ka, na), (kb, nb)) = (&pair[0], &pair[1]);
        assert!(na > nb || (na == nb && ka < kb), "CSV not sorted by count desc, then key: {ka:?} {na} before {kb:?} {nb}");
    }
    let from_csv: HashMap<String, u64> = rows.iter().cloned().collect();
    assert_eq!(from_csv.len(), rows.len(), "a key appears twice in the CSV");
    assert_same_counts("CLI --output x.csv vs text.split(' ')", &from_csv, &want);
}

#[test]
fn cli_plugin_test_passes_shipped_cases() {
    for name in ["words", "split-space", "hashtags"] {
        let (plugin, cases) = (plugin_path(name), cases_path(name));
        let output = wc_host(&["plugin".as_ref(), "test".as_ref(), plugin.as_os_str(), "--cases".as_ref(), cases.as_os_str()]);
        assert!(output.status.success(), "{name}: shipped cases fail: {}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(" 0 failed"), "{name}: {}", describe(&output));
    }
}

#[test]
fn cli_plugin_test_fails_with_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("wrong-cases.json");
    std::fs::write(
        &cases,
        r#"[
  {"name": "right", "text": "a b a", "expect": {"a": 2, "b": 1}},
  {"name": "deliberately wrong", "text": "Hello hello world", "expect": {"hello": 2, "world": 1, "absent": 3}}
]"#,
    )
    .unwrap();
    let plugin = plugin_path("split-space");
    let output = wc_host(&["plugin".as_ref(), "test".as_ref(), plugin.as_os_str(), "--cases".as_ref(), cases.as_os_str()]);
    let report = describe(&output);
    assert!(!output.status.success(), "a wrong case must fail: {report}");
    assert_eq!(output.status.code(), Some(1), "a mismatch exits 1 (2 is an error of another kind): {report}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "ok    right",
        "FAIL  deliberately wrong",
        r#"~ "hello": expected 2, got 1"#,
        r#"- "absent": 3 (missing)"#,
        r#"+ "Hello": 1 (unexpected)"#,
        "2 cases: 1 passed, 1 failed",
    ] {
        assert!(stdout.contains(needle), "the diff lacks {needle:?}: {report}");
    }
    assert!(!stdout.contains(r#""world""#), "a matching key is not part of the diff: {report}");
}

/// A component built against the first contract, `wc:plugin@0.1.0` (kept in
/// `host/tests/fixtures`), still loads and counts exactly like today's.
#[test]
fn a_wit_0_1_0_component_still_loads_and_counts_the_same() {
    let runtime = PluginRuntime::new(SandboxPolicy::default()).expect("runtime");
    let old = runtime.load(&workspace_root().join("host/tests/fixtures/split-space-wit-0.1.0.wasm")).expect("a 0.1.0 component loads");
    assert_eq!(old.info().world, "wc:plugin/counting-plugin@0.1.0");
    assert!(old.info().params.is_empty() && !old.info().declares_params());
    let new = runtime.load(&plugin_path("split-space")).expect("today's split-space");
    assert_eq!(new.info().world, wc_host::plugin::WIT_WORLD);
    assert!(new.info().declares_params());

    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), 2 << 20, 2, 17);
    let (got_old, _) = count_files(&mut old.instantiate().unwrap(), &[], &files).expect("0.1.0 counts");
    let (got_new, _) = count_files(&mut new.instantiate().unwrap(), &[], &files).expect("0.2.0 counts");
    let want = reference_split_space(&files);
    assert!(want.len() > 1000);
    assert_same_counts("0.1.0 split-space vs text.split(' ')", &got_old, &want);
    assert_same_counts("0.2.0 split-space vs text.split(' ')", &got_new, &want);

    // A 0.1.0 component cannot declare its parameters: they reach `create`,
    // which refuses them itself; a 0.2.0 one is refused by the host first.
    let mut old_instance = old.instantiate().unwrap();
    let err = old_instance.start_task(&[("case".into(), "keep".into())]).err().expect("0.1.0 refuses");
    assert!(err.to_string().contains("unknown parameter `case`"), "{err}");
    let mut new_instance = new.instantiate().unwrap();
    let err = new_instance.start_task(&[("case".into(), "keep".into())]).err().expect("0.2.0 refuses");
    assert!(err.to_string().contains("unknown parameter `case` (split-space takes no parameters)"), "{err}");
}
