//! WASM plugin throughput against the same rule compiled natively.
//!
//! ```text
//! cargo run --release -p wc-host --example bench_plugins [-- OPTIONS]
//!   --plugin NAME   only this plugin (repeatable; default: words, split-space)
//!   --mb N          only the first N MB of text (for profiling)
//!   --reps N        runs per side, alternating native and WASM; the best
//!                   run of each side is kept (default 3)
//!   --only native|wasm   run one side only (for profiling); no comparison
//!   --langs L,...   languages of the split-space rule to time (default
//!                   rust,python,js,c; `none` for none)
//! ```
//!
//! Generates ~64 MB of twcs-shaped CSV once (cached in
//! `bench-data/plugins-64mb/` under the workspace root), reads the `text`
//! column of every row into memory, then for each plugin times (a) the
//! plugin crate's rule called natively over all texts, on one thread, and (b)
//! the component `plugins/NAME.wasm` fed the same texts in ~1 MiB batches
//! through the host runtime (`Batch::push_row`, `TaskCounter::feed`,
//! `finish`), on one thread. Both must give identical counts. Results go to
//! stdout and `bench-data/bench-plugins.json`.
//!
//! Then the same rule (split-space) in each plugin language, each component
//! against the Rust rule compiled natively, same texts, same checks: Rust
//! (`plugins/split-space.wasm`), Python and JavaScript (the templates' twins
//! `plugins/split-space-py.wasm`, `plugins/split-space-js.wasm`, made by
//! `make plugins`), and C (the C template, made and built here into a
//! temporary directory with `wc-host plugin new --lang c` and `plugin
//! build`).
//!
//! Goal: WASM throughput >= 0.8 x native.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustc_hash::FxHashMap;
use wc_host::batch::{Batch, Location};
use wc_host::plugin::{PluginInstance, PluginRuntime, SandboxPolicy};

const DATA_DIR: &str = "bench-data/plugins-64mb";
const JSON_OUT: &str = "bench-data/bench-plugins.json";
const TOTAL_BYTES: u64 = 64 << 20;
const FILES: usize = 4;
const SEED: u64 = 1;
const BATCH_BYTES: usize = 1 << 20;
const GOAL: f64 = 0.8;
const PLUGINS: [&str; 2] = ["words", "split-space"];
/// The split-space rule per language: its component under the workspace
/// (the C one is built by the benchmark).
const LANGUAGES: [(&str, &str); 4] =
    [("rust", "plugins/split-space.wasm"), ("python", "plugins/split-space-py.wasm"), ("js", "plugins/split-space-js.wasm"), ("c", "")];

type Counts = FxHashMap<String, u64>;

/// WASM plugin throughput against the same rule compiled natively.
#[derive(clap::Parser)]
struct Options {
    /// Only this plugin (repeatable; default: words, split-space).
    #[arg(long = "plugin")]
    plugins: Vec<String>,
    /// Only the first N MB of text (for profiling).
    #[arg(long)]
    mb: Option<f64>,
    /// Runs per side, alternating native and WASM; the best of each is kept.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Run one side only (for profiling); no comparison.
    #[arg(long, value_parser = ["native", "wasm"])]
    only: Option<String>,
    /// Languages of the split-space rule to time (`none`: none).
    #[arg(long, value_delimiter = ',', default_value = "rust,python,js,c")]
    langs: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let mut opts = <Options as clap::Parser>::parse();
    if opts.plugins.is_empty() {
        opts.plugins = PLUGINS.iter().map(|p| p.to_string()).collect();
    }
    opts.langs.retain(|l| l != "none");
    for lang in &opts.langs {
        if !LANGUAGES.iter().any(|(l, _)| l == lang) {
            bail!("--langs: unknown language {lang} (one of rust, python, js, c)");
        }
    }
    Ok(opts)
}

/// The C template, made and built as a user would, into `dir`.
fn build_c_template(dir: &Path) -> Result<PathBuf> {
    let bin = wc_testkit::wc_host_bin();
    let project = dir.join("split-space-c");
    let out = dir.join("split-space-c.wasm");
    let status = std::process::Command::new(&bin).args(["plugin", "new", "--lang", "c"]).arg(&project).stdout(std::process::Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "wc-host plugin new --lang c failed");
    let status = std::process::Command::new(&bin).args(["plugin", "build"]).arg(&project).arg("-o").arg(&out).stdout(std::process::Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "wc-host plugin build (C template) failed");
    Ok(out)
}

/// One language's split-space component against the Rust rule natively.
struct LangRow {
    language: String,
    component: String,
    native: Duration,
    wasm: Duration,
}

/// The split-space rule per language, each run alternating with the native
/// Rust rule (best of `reps` each), counts checked identical.
fn bench_languages(root: &Path, runtime: &PluginRuntime, texts: &[String], reps: u64, langs: &[String]) -> Result<Vec<LangRow>> {
    let temp = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for (lang, component) in LANGUAGES.iter().filter(|(l, _)| langs.iter().any(|x| x == l)) {
        let path = if *lang == "c" { build_c_template(temp.path())? } else { root.join(component) };
        if !path.is_file() {
            bail!("{} is missing: run `make plugins` first", path.display());
        }
        let mut instance = runtime.load(&path)?.instantiate()?;
        let mut native: Option<(Counts, Duration)> = None;
        let mut wasm: Option<(Counts, Duration)> = None;
        for _ in 0..reps {
            let (counts, took) = count_native("split-space", texts);
            if native.as_ref().is_none_or(|(_, best)| took < *best) {
                native = Some((counts, took));
            }
            let (counts, times) = count_wasm(&mut instance, texts)?;
            if wasm.as_ref().is_none_or(|(_, best)| times.total < *best) {
                wasm = Some((counts, times.total));
            }
        }
        let ((n, native), (w, wasm)) = (native.expect("reps >= 1"), wasm.expect("reps >= 1"));
        compare(&format!("split-space ({lang})"), &n, &w)?;
        let text_mb = texts.iter().map(String::len).sum::<usize>() as f64 / 1e6;
        println!("  split-space {lang:<7} wasm {:>8.1} MB/s, native Rust {:>8.1} MB/s", mb_s(text_mb, wasm), mb_s(text_mb, native));
        let component = if *lang == "c" { "C template (wc-host plugin new --lang c, built here)".to_string() } else { component.to_string() };
        rows.push(LangRow { language: lang.to_string(), component, native, wasm });
    }
    Ok(rows)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// The cached data set, generated when missing or made with other settings.
fn bench_files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(DATA_DIR);
    let marker = dir.join(".complete");
    let stamp = format!("total_bytes={TOTAL_BYTES} files={FILES} seed={SEED}\n");
    let files: Vec<PathBuf> = (0..FILES).map(|i| dir.join(format!("twcs-{i:05}.csv"))).collect();
    let cached = std::fs::read_to_string(&marker).is_ok_and(|s| s == stamp) && files.iter().all(|f| f.is_file());
    if cached {
        println!("data: {} (cached)", dir.display());
        return Ok(files);
    }
    println!("data: generating ~{} MB in {FILES} files into {} ...", TOTAL_BYTES >> 20, dir.display());
    let _ = std::fs::remove_file(&marker);
    let started = Instant::now();
    let opts = wc_host::gen_data::GenOptions { total_bytes: TOTAL_BYTES, files: FILES, seed: SEED };
    let report = wc_host::gen_data::generate(&dir, &opts)?;
    println!("data: {} rows, {} bytes in {:.1}s", report.rows, report.bytes, started.elapsed().as_secs_f64());
    std::fs::write(&marker, stamp)?;
    Ok(report.files)
}

/// The `text` column of every row (invalid UTF-8 replaced, as the host
/// does), stopping before `limit` bytes of text.
fn read_texts(files: &[PathBuf], limit: usize) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    let mut bytes = 0;
    for path in files {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(path)?;
        let column = reader
            .byte_headers()?
            .iter()
            .position(|h| h == b"text")
            .with_context(|| format!("{}: no text column", path.display()))?;
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record)? {
            let text = String::from_utf8_lossy(record.get(column).unwrap_or_default()).into_owned();
            bytes += text.len();
            if bytes > limit {
                return Ok(texts);
            }
            texts.push(text);
        }
    }
    Ok(texts)
}

/// The plugin crate's rule, natively, over all texts, and how long the
/// counting took (not the conversion to a map after it). Not inlined, so
/// that a profiler can collect just this: `--toggle-collect='*count_native*'`.
#[inline(never)]
fn count_native(plugin: &str, texts: &[String]) -> (Counts, Duration) {
    let started = Instant::now();
    // `Counts` of the SDK, named through inference.
    let mut counts = Default::default();
    match plugin {
        "words" => {
            let rules = words::Rules::default();
            for text in texts {
                words::count_text(text, &rules, &mut counts);
            }
        }
        "split-space" => {
            for text in texts {
                split_space::count_text(text, &mut counts);
            }
        }
        other => unreachable!("no native twin for {other}"),
    }
    let took = started.elapsed();
    (counts.into_map(), took)
}

/// Where the time of one WASM run went.
#[derive(Clone, Copy, Default)]
struct WasmTimes {
    total: Duration,
    /// Building batches on the host side (`push_row`).
    batching: Duration,
    /// `feed` calls: copying the batch into the guest and counting.
    feed: Duration,
    /// `finish`: the guest's map out through the canonical ABI.
    finish: Duration,
}

#[inline(never)]
fn count_wasm(instance: &mut PluginInstance, texts: &[String]) -> Result<(Counts, WasmTimes)> {
    let columns = instance.plugin().info().columns.len();
    let at = Location::new("benchmark");
    let mut times = WasmTimes::default();
    let started = Instant::now();
    let mut task = instance.start_task(&[])?;
    let mut batch = Batch::new(columns);
    let mut batch_started = Instant::now();
    for (i, text) in texts.iter().enumerate() {
        batch.push_row(std::iter::repeat_n(text.as_str(), columns));
        if batch.bytes() >= BATCH_BYTES || i + 1 == texts.len() {
            let fed = Instant::now();
            times.batching += fed - batch_started;
            task.feed(&batch, &at)?;
            batch.clear();
            batch_started = Instant::now();
            times.feed += batch_started - fed;
        }
    }
    let finishing = Instant::now();
    let list = task.finish(&at)?;
    times.finish = finishing.elapsed();
    times.total = started.elapsed();
    let mut counts = Counts::default();
    counts.reserve(list.len());
    for (key, n) in list.iter() {
        *counts.entry(key.to_owned()).or_insert(0) += n; // each key once, per the WIT contract
    }
    Ok((counts, times))
}

fn compare(plugin: &str, native: &Counts, wasm: &Counts) -> Result<()> {
    if native == wasm {
        return Ok(());
    }
    let mut diffs: Vec<String> = native
        .iter()
        .filter(|(k, n)| wasm.get(*k) != Some(n))
        .map(|(k, n)| format!("{k:?}: native {n}, wasm {:?}", wasm.get(k)))
        .chain(wasm.iter().filter(|(k, _)| !native.contains_key(*k)).map(|(k, n)| format!("{k:?}: native none, wasm {n}")))
        .collect();
    diffs.sort();
    diffs.truncate(10);
    bail!("{plugin}: native and WASM counts differ ({} vs {} keys); e.g.\n  {}", native.len(), wasm.len(), diffs.join("\n  "))
}

struct Row {
    plugin: String,
    text_mb: f64,
    keys: usize,
    tokens: u64,
    native: Option<Duration>,
    wasm: Option<WasmTimes>,
}

fn mb_s(mb: f64, d: Duration) -> f64 {
    mb / d.as_secs_f64()
}

fn main() -> Result<()> {
    let opts = parse_args()?;
    let root = workspace_root();
    let files = bench_files(&root)?;
    let started = Instant::now();
    let texts = read_texts(&files, opts.mb.map_or(usize::MAX, |mb| (mb * 1e6) as usize))?;
    let text_bytes: usize = texts.iter().map(String::len).sum();
    let text_mb = text_bytes as f64 / 1e6;
    println!("texts: {} rows, {text_mb:.1} MB of text, read in {:.1}s", texts.len(), started.elapsed().as_secs_f64());
    println!("runs: best of {}, one thread; WASM batches of ~{} KiB", opts.reps, BATCH_BYTES >> 10);

    let runtime = PluginRuntime::new(SandboxPolicy::default())?;
    let mut rows = Vec::new();
    for plugin in &opts.plugins {
        let (run_native, run_wasm) = (opts.only.as_deref() != Some("wasm"), opts.only.as_deref() != Some("native"));
        let mut instance = None;
        if run_wasm {
            let path = root.join("plugins").join(format!("{plugin}.wasm"));
            if !path.is_file() {
                bail!("{} is missing: run `make plugins` first", path.display());
            }
            instance = Some(runtime.load(&path)?.instantiate()?);
        }
        // Native and WASM runs alternate, so that a burst of load from other
        // processes does not favour one side; the best run of each is kept.
        let mut native: Option<(Counts, Duration)> = None;
        let mut wasm: Option<(Counts, WasmTimes)> = None;
        for _ in 0..opts.reps {
            if run_native {
                let (counts, took) = count_native(plugin, &texts);
                if native.as_ref().is_none_or(|(_, best)| took < *best) {
                    native = Some((counts, took));
                }
            }
            if let Some(instance) = &mut instance {
                let (counts, times) = count_wasm(instance, &texts)?;
                if wasm.as_ref().is_none_or(|(_, best)| times.total < best.total) {
                    wasm = Some((counts, times));
                }
            }
        }
        if let Some((_, took)) = &native {
            println!("  {plugin:<12} native {:>8.1} MB/s", mb_s(text_mb, *took));
        }
        if let Some((_, times)) = &wasm {
            println!(
                "  {plugin:<12} wasm   {:>8.1} MB/s  (batching {:.0} ms, feed {:.0} ms, finish {:.0} ms)",
                mb_s(text_mb, times.total),
                times.batching.as_secs_f64() * 1e3,
                times.feed.as_secs_f64() * 1e3,
                times.finish.as_secs_f64() * 1e3
            );
        }
        if let (Some((n, _)), Some((w, _))) = (&native, &wasm) {
            compare(plugin, n, w)?;
        }
        let counts = native.as_ref().map(|(c, _)| c).or(wasm.as_ref().map(|(c, _)| c)).expect("one side ran");
        rows.push(Row {
            plugin: plugin.clone(),
            text_mb,
            keys: counts.len(),
            tokens: counts.values().sum(),
            native: native.as_ref().map(|(_, d)| *d),
            wasm: wasm.as_ref().map(|(_, t)| *t),
        });
    }

    println!();
    println!("{:<12} {:>8} {:>12} {:>12} {:>12} {:>10}  goal", "plugin", "text MB", "native MB/s", "wasm MB/s", "wasm/native", "keys");
    for r in &rows {
        let cell = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1}", mb_s(r.text_mb, d)));
        let ratio = match (r.native, r.wasm) {
            (Some(n), Some(w)) => Some(n.as_secs_f64() / w.total.as_secs_f64()),
            _ => None,
        };
        let verdict = match ratio {
            Some(x) if x >= GOAL => "ok",
            Some(_) => "BELOW",
            None => "-",
        };
        println!(
            "{:<12} {:>8.1} {:>12} {:>12} {:>12} {:>10}  {verdict}",
            r.plugin,
            r.text_mb,
            cell(r.native),
            cell(r.wasm.map(|w| w.total)),
            ratio.map_or("-".into(), |x| format!("{x:.2}")),
            r.keys
        );
    }
    println!("goal: wasm/native >= {GOAL} (throughput ratio; both single-threaded, same texts, identical counts checked)");

    let langs = if opts.only.is_none() && !opts.langs.is_empty() {
        println!();
        println!("split-space per language (one thread, best of {}):", opts.reps);
        bench_languages(&root, &runtime, &texts, opts.reps, &opts.langs)?
    } else {
        Vec::new()
    };
    if !langs.is_empty() {
        println!();
        println!("| language | component | WASM MB/s | native Rust MB/s | WASM / native |");
        println!("| --- | --- | --- | --- | --- |");
        for l in &langs {
            println!(
                "| {} | {} | {:.1} | {:.1} | {:.2} |",
                l.language,
                l.component,
                mb_s(text_mb, l.wasm),
                mb_s(text_mb, l.native),
                l.native.as_secs_f64() / l.wasm.as_secs_f64()
            );
        }
    }

    let full_run = opts.mb.is_none() && opts.only.is_none() && opts.plugins.len() == PLUGINS.len();
    if !full_run {
        println!("(partial run: {JSON_OUT} not written)");
        return Ok(());
    }
    let json = serde_json::json!({
        "goal_wasm_over_native": GOAL,
        "data": {
            "dir": DATA_DIR, "files": files.len(), "generated_bytes": TOTAL_BYTES, "seed": SEED,
            "rows": texts.len(), "text_bytes": text_bytes,
        },
        "reps": opts.reps,
        "batch_bytes": BATCH_BYTES,
        "plugins": rows.iter().map(|r| {
            let native = r.native.expect("full run");
            let wasm = r.wasm.expect("full run");
            let ratio = native.as_secs_f64() / wasm.total.as_secs_f64();
            serde_json::json!({
                "plugin": r.plugin,
                "text_mb": r.text_mb,
                "keys": r.keys,
                "tokens": r.tokens,
                "native_seconds": native.as_secs_f64(),
                "native_mb_s": mb_s(r.text_mb, native),
                "wasm_seconds": wasm.total.as_secs_f64(),
                "wasm_mb_s": mb_s(r.text_mb, wasm.total),
                "wasm_batching_seconds": wasm.batching.as_secs_f64(),
                "wasm_feed_seconds": wasm.feed.as_secs_f64(),
                "wasm_finish_seconds": wasm.finish.as_secs_f64(),
                "ratio_wasm_over_native": ratio,
                "meets_goal": ratio >= GOAL,
            })
        }).collect::<Vec<_>>(),
        "split_space_by_language": langs.iter().map(|l| serde_json::json!({
            "language": l.language,
            "component": l.component,
            "wasm_seconds": l.wasm.as_secs_f64(),
            "wasm_mb_s": mb_s(text_mb, l.wasm),
            "native_rust_seconds": l.native.as_secs_f64(),
            "native_rust_mb_s": mb_s(text_mb, l.native),
            "ratio_wasm_over_native": l.native.as_secs_f64() / l.wasm.as_secs_f64(),
        })).collect::<Vec<_>>(),
    });
    let out = root.join(JSON_OUT);
    std::fs::write(&out, serde_json::to_string_pretty(&json)? + "\n").with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
