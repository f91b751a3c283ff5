//! `make bench`: wc-host end to end against a plain native count of the
//! same column with the same rule, and against polars and DuckDB doing the
//! split-space count, all in the same run, on two 512 MB shapes (128 files;
//! one file; `make bench-2g`: 2 GB in 128 files), printed as tables and
//! written to `bench-data/bench-<MB>mb.json`.
//!
//!     cargo run --release -p wc-host --example bench -- [--mb 512] [--plugins split-space,split-space@indexed,words] [--shapes files,single] [--peers true]
//!
//! `PLUGIN@ENCODING` runs the job with `--set-encoding ENCODING`; without
//! it the job's default (compact, on the managed Redis).
//!
//! The peers (`bench_peers.py`) run in a virtual environment that the bench
//! creates once under `${WC_HOST_CACHE:-~/.cache/wc-host}/venv-bench`, with
//! pinned versions ([`POLARS`], [`DUCKDB`]), on as many threads as wc-host
//! has workers. Each must give exactly wc-host's split-space counts (every
//! key and count) before its time is printed. Their time is the count alone,
//! in the script (CSV parsing included, Python's start and imports not);
//! their process time (start to counts in memory) is in the JSON too.
//!
//! Compressed shapes (`make bench-compressed`): `files-gz`, `files-zst`,
//! `single-gz`, `single-zst` are the same data compressed with `gen-data
//! --compress` (pieces of 1 MiB of CSV); their counts must equal the plain
//! baseline's, and their MB/s are given on disk and decoded.
//!
//! The baseline is the plain count a user could write: all cores, the csv
//! crate, the plugin crate's rule compiled natively, no Redis, no WASM, no
//! fault tolerance. It splits large files with the same record-aligned
//! splitter so that it too uses every core on one file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use wc_host::gen_data::{compress_to, generate, Codec, GenOptions};
use wc_host::input::{resolve_inputs, split_file, InputRange};
use wc_plugin_sdk::Counts;

/// The peers' pinned versions (PyPI wheels that install here).
const POLARS: &str = "2.1.0";
const DUCKDB: &str = "2.0.1";
/// Threads for the peers: wc-host's workers (`N_NORMAL_WORKERS` below).
const PEER_THREADS: usize = 2;

#[derive(Serialize)]
struct Row {
    shape: String,
    plugin: String,
    /// Decoded (CSV) MB.
    mb: f64,
    /// MB on disk (compressed size for compressed shapes).
    mb_on_disk: f64,
    baseline_seconds: f64,
    /// wc-host's process, start to exit, writing `--output` included.
    wc_host_wall_seconds: f64,
    /// The same without writing `--output` (the bench's way of reading the
    /// counts back, which the others are not timed for): what the ratios
    /// and MB/s use.
    wc_host_seconds: f64,
    /// wc-host / baseline.
    ratio: f64,
    baseline_mb_per_s: f64,
    wc_host_mb_per_s: f64,
    /// polars and DuckDB (split-space on plain shapes only): the count's
    /// seconds, checked exact against wc-host's counts.
    polars: Option<PeerRow>,
    duckdb: Option<PeerRow>,
    /// wc-host / the faster peer.
    ratio_to_fastest_peer: Option<f64>,
    /// Where wc-host's time went (its summary's `phase_seconds`).
    phase_seconds: serde_json::Value,
    wc_host_mb_per_s_on_disk: f64,
    peak_rss_mb_coordinator: f64,
    peak_rss_mb_worker: f64,
    peak_rss_mb_redis: f64,
    redis_cpu_seconds: f64,
    redis_peak_memory_mb: f64,
    pairs_sent_to_redis: u64,
    tasks: u64,
    exact: bool,
}

#[derive(Serialize, Clone)]
struct PeerRow {
    /// `polars` (in-memory engine), `polars-streaming` or `duckdb`.
    engine: String,
    version: String,
    /// The count alone: query start to counts in memory, CSV parsing included.
    seconds: f64,
    /// The process: start to counts in memory (Python's start and imports too).
    process_seconds: f64,
    mb_per_s: f64,
    /// Every engine tried, with its seconds (polars: both engines).
    tried: Vec<(String, f64)>,
    exact: bool,
}

/// wc-host end to end against a plain native count.
#[derive(clap::Parser)]
struct Options {
    /// Size of each data set, MB.
    #[arg(long, default_value_t = 512)]
    mb: u64,
    /// Plugins to run, comma-separated; `NAME@indexed` or `NAME@compact`
    /// publishes the sorted set so (`--set-encoding`).
    #[arg(long, value_delimiter = ',', default_value = "split-space,split-space@indexed,words")]
    plugins: Vec<String>,
    /// Shapes: `files` (128 files) and/or `single` (one file); add `-gz` or
    /// `-zst` for the same data compressed.
    #[arg(long, value_delimiter = ',', default_value = "files,single")]
    shapes: Vec<String>,
    /// Also measure what `--replicas-ack 1` costs (a master and a replica
    /// found through Sentinel, split-space on the 128-file shape).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    replication: bool,
    /// Also run polars and DuckDB (split-space, plain shapes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    peers: bool,
    /// polars engines to try (the faster is kept): `in-memory`, `streaming`.
    #[arg(long, value_delimiter = ',', default_value = "in-memory,streaming")]
    polars_engines: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let Options { mb, plugins, shapes, replication, peers, polars_engines } = clap::Parser::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let work = root.join("bench-data");
    let wc_host = wc_testkit::wc_host_bin();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("machine: {}", machine());
    let python = if peers { Some(peers_venv()?) } else { None };

    let mut rows = Vec::new();
    for shape in &shapes {
        let (base_shape, codec) = match shape.split_once('-') {
            Some((base, codec)) => (base, Some(codec.parse::<Codec>()?)),
            None => (shape.as_str(), None),
        };
        let files = if base_shape == "single" { 1 } else { 128 };
        let dir = work.join(format!("bench-{mb}mb-{files}f"));
        if !dir.join(".complete").exists() {
            eprintln!("generating {mb} MB in {files} files into {} ...", dir.display());
            let _ = std::fs::remove_dir_all(&dir);
            generate(&dir, &GenOptions { total_bytes: mb << 20, files, seed: 2026 })?;
            std::fs::write(dir.join(".complete"), b"")?;
        }
        let plain_files = resolve_inputs(&[dir.display().to_string()])?;
        let bytes: u64 = plain_files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
        let data = match codec {
            None => dir.clone(),
            Some(codec) => {
                let cdir = work.join(format!("bench-{mb}mb-{files}f-{}", codec.extension()));
                if !cdir.join(".complete").exists() {
                    eprintln!("compressing {} into {} ...", dir.display(), cdir.display());
                    let _ = std::fs::remove_dir_all(&cdir);
                    std::fs::create_dir_all(&cdir)?;
                    for f in &plain_files {
                        let name = format!("{}.{}", f.file_name().unwrap().to_string_lossy(), codec.extension());
                        compress_to(f, &cdir.join(name), codec, 1 << 20)?;
                    }
                    std::fs::write(cdir.join(".complete"), b"")?;
                }
                cdir
            }
        };
        let on_disk: u64 = resolve_inputs(&[data.display().to_string()])?.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
        let mut shape_rows = Vec::new();
        let mut split_counts = None;
        let mut baselines: HashMap<&str, (f64, HashMap<String, u64>)> = HashMap::new();
        for plugin in &plugins {
            let (name, encoding) = plugin.split_once('@').map_or((plugin.as_str(), None), |(n, e)| (n, Some(e)));
            if !baselines.contains_key(name) {
                baselines.insert(name, baseline(&dir, name, threads)?);
            }
            let (base_secs, base_counts) = &baselines[name];
            let base_secs = *base_secs;
            let args: Vec<&str> = encoding.map(|e| vec!["--set-encoding", e]).unwrap_or_default();
            let run = run_wc_host(&wc_host, &root.join(format!("plugins/{name}.wasm")), &data, &work, &args)?;
            let exact = run.counts == *base_counts;
            let counted = run.seconds - run.phases["output"].as_f64().unwrap_or(0.0);
            if !exact {
                print_differences("the baseline", base_counts, &run.counts);
            }
            let row = Row {
                shape: shape.clone(),
                plugin: plugin.clone(),
                mb: bytes as f64 / 1e6,
                mb_on_disk: on_disk as f64 / 1e6,
                baseline_seconds: base_secs,
                wc_host_wall_seconds: run.seconds,
                wc_host_seconds: counted,
                ratio: counted / base_secs,
                baseline_mb_per_s: bytes as f64 / 1e6 / base_secs,
                wc_host_mb_per_s: bytes as f64 / 1e6 / counted,
                polars: None,
                duckdb: None,
                ratio_to_fastest_peer: None,
                phase_seconds: run.phases.clone(),
                wc_host_mb_per_s_on_disk: on_disk as f64 / 1e6 / counted,
                peak_rss_mb_coordinator: run.rss_coordinator,
                peak_rss_mb_worker: run.rss_worker,
                peak_rss_mb_redis: run.rss_redis,
                redis_cpu_seconds: run.redis_cpu,
                redis_peak_memory_mb: run.redis_peak_mem,
                pairs_sent_to_redis: run.pairs,
                tasks: run.tasks,
                exact,
            };
            eprintln!("{}", serde_json::to_string(&row)?);
            if plugin == "split-space" {
                split_counts = Some(run.counts);
            }
            shape_rows.push(row);
        }
        // The peers count split-space over the plain files.
        if let (Some(python), None) = (&python, codec) {
            let expected = match split_counts {
                Some(counts) => counts,
                None => baseline(&dir, "split-space", threads)?.1,
            };
            let polars = best_peer(python, &root, &work, &polars_engines.iter().map(|e| if e == "streaming" { "polars-streaming".to_string() } else { "polars".to_string() }).collect::<Vec<_>>(), &plain_files, bytes, &expected)?;
            let duckdb = best_peer(python, &root, &work, &["duckdb".to_string()], &plain_files, bytes, &expected)?;
            let fastest = polars.seconds.min(duckdb.seconds);
            for row in shape_rows.iter_mut().filter(|r| r.plugin.split('@').next() == Some("split-space")) {
                row.ratio_to_fastest_peer = Some(row.wc_host_seconds / fastest);
                row.polars = Some(polars.clone());
                row.duckdb = Some(duckdb.clone());
            }
        }
        rows.extend(shape_rows);
    }
    print_tables(&rows);
    let compressed = if shapes.iter().any(|s| s.contains('-')) { "-compressed" } else { "" };
    std::fs::write(work.join(format!("bench-{mb}mb{compressed}.json")), serde_json::to_string_pretty(&rows)?)?;
    anyhow::ensure!(rows.iter().all(|r| r.exact), "wc-host and the baseline disagree");
    println!("(written to {})", work.join(format!("bench-{mb}mb{compressed}.json")).display());
    if replication {
        replication_cost(&wc_host, &root, &work, mb)?;
    }
    Ok(())
}

/// The same job on a master with one replica (through Sentinel), without
/// and with `--replicas-ack 1`: what waiting for the replica costs.
fn replication_cost(wc_host: &Path, root: &Path, work: &Path, mb: u64) -> anyhow::Result<()> {
    let dir = work.join(format!("bench-{mb}mb-128f"));
    anyhow::ensure!(dir.join(".complete").exists(), "the 128-file shape is generated first (--shapes files)");
    let plugin = root.join("plugins/split-space.wasm");
    let mut times = Vec::new();
    for ack in ["0", "1"] {
        let setup = wc_testkit::SentinelSetup::start(1, &[]);
        let url = setup.url();
        let args: Vec<&std::ffi::OsStr> = vec!["--redis".as_ref(), url.as_ref(), "--replicas-ack".as_ref(), ack.as_ref()];
        let run = run_wc_host_with(wc_host, &plugin, &dir, work, &args)?;
        times.push((ack, run.seconds, run.tasks));
    }
    println!();
    println!("| replication (split-space, 128 files, master + 1 replica via Sentinel) | wc-host s | tasks | ratio |");
    println!("| --- | --- | --- | --- |");
    for (ack, secs, tasks) in &times {
        println!("| --replicas-ack {ack} | {secs:.2} | {tasks} | {:.2} |", secs / times[0].1);
    }
    let json: Vec<serde_json::Value> = times.iter().map(|(a, s, t)| serde_json::json!({"replicas_ack": a, "seconds": s, "tasks": t})).collect();
    std::fs::write(work.join(format!("bench-replication-{mb}mb.json")), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// The machine line: cores, CPU model, memory, Redis version.
fn machine() -> String {
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())))
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let redis = Command::new(std::env::var_os("WC_REDIS_SERVER").unwrap_or_else(|| "redis-server".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().find_map(|w| w.strip_prefix("v=").map(str::to_string)))
        .unwrap_or_else(|| "?".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string();
    format!("{threads} cores ({cpu}), {mem_gib:.0} GiB, Redis {redis}, load average {load} at the start")
}

fn print_tables(rows: &[Row]) {
    let secs = |s: f64, mb: f64| format!("{s:.2} s ({:.0} MB/s)", mb / s);
    let peer = |p: &Option<PeerRow>, mb: f64| p.as_ref().map_or("—".to_string(), |p| secs(p.seconds, mb));
    println!();
    println!("Seconds to the counts (wc-host: process start to exit, less writing --output; native: in memory; polars, DuckDB: the query, in memory):");
    println!();
    println!("| shape | plugin | MB | wc-host | native baseline | polars | DuckDB | wc-host / fastest peer | wc-host / native | exact |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.2} | {} |",
            r.shape,
            r.plugin,
            r.mb,
            secs(r.wc_host_seconds, r.mb),
            secs(r.baseline_seconds, r.mb),
            peer(&r.polars, r.mb),
            peer(&r.duckdb, r.mb),
            r.ratio_to_fastest_peer.map_or("—".to_string(), |x| format!("{x:.2}")),
            r.ratio,
            r.exact
        );
    }
    println!();
    println!("Where wc-host's time goes (seconds; wall = process start to exit; rest = start of Redis and workers, plan, stragglers, exit):");
    println!();
    println!("| shape | plugin | wc-host wall | workers | last merge | sort | encode | load (RESTORE) | output | report | final save | rest | peak RSS MB coord / worker / Redis |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let p = |k: &str| r.phase_seconds[k].as_f64().unwrap_or(0.0);
        let names = ["workers", "last_merge", "sort", "encode", "load", "output", "report", "final_save"];
        let rest = r.wc_host_wall_seconds - names.iter().map(|k| p(k)).sum::<f64>();
        let cells: Vec<String> = names.iter().map(|k| format!("{:.2}", p(k))).collect();
        println!(
            "| {} | {} | {:.2} | {} | {rest:.2} | {:.0} / {:.0} / {:.0} |",
            r.shape,
            r.plugin,
            r.wc_host_wall_seconds,
            cells.join(" | "),
            r.peak_rss_mb_coordinator,
            r.peak_rss_mb_worker,
            r.peak_rss_mb_redis
        );
    }
    println!();
    println!("| shape | plugin | MB on disk | wc-host MB/s decoded (on disk) | Redis CPU s | Redis peak MB | pairs to Redis | tasks | peers' process s (polars / DuckDB) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let process = match (&r.polars, &r.duckdb) {
            (Some(p), Some(d)) => format!("{:.2} ({}) / {:.2}", p.process_seconds, p.engine, d.process_seconds),
            _ => "—".into(),
        };
        println!(
            "| {} | {} | {:.0} | {:.1} ({:.1}) | {:.2} | {:.0} | {} | {} | {process} |",
            r.shape, r.plugin, r.mb_on_disk, r.wc_host_mb_per_s, r.wc_host_mb_per_s_on_disk, r.redis_cpu_seconds, r.redis_peak_memory_mb, r.pairs_sent_to_redis, r.tasks
        );
    }
}

/// The peers' Python: a virtual environment under the cache directory with
/// the pinned polars and DuckDB, created (or its pins installed) only when
/// they are not there.
fn peers_venv() -> anyhow::Result<PathBuf> {
    let cache = std::env::var_os("WC_HOST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/wc-host"));
    let venv = cache.join("venv-bench");
    let python = venv.join("bin/python");
    let check = format!("import polars, duckdb, sys; sys.exit(not (polars.__version__ == '{POLARS}' and duckdb.__version__ == '{DUCKDB}'))");
    let ok = |python: &Path| Command::new(python).args(["-c", &check]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok(&python) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("creating {} ...", venv.display());
        let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().context("python3 -m venv (python3 is needed for the polars and DuckDB peers; --peers false skips them)")?;
        anyhow::ensure!(status.success(), "python3 -m venv {} failed", venv.display());
    }
    eprintln!("installing polars=={POLARS} duckdb=={DUCKDB} into {} ...", venv.display());
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", &format!("polars=={POLARS}"), &format!("duckdb=={DUCKDB}")])
        .status()?;
    anyhow::ensure!(status.success() && ok(&python), "installing polars and DuckDB into {} failed", venv.display());
    Ok(python)
}

/// Runs each of `engines` once and keeps the fastest; each must give
/// exactly `expected`, or the bench fails, showing the first differences.
fn best_peer(python: &Path, root: &Path, work: &Path, engines: &[String], files: &[PathBuf], bytes: u64, expected: &HashMap<String, u64>) -> anyhow::Result<PeerRow> {
    let mut best: Option<PeerRow> = None;
    let mut tried = Vec::new();
    for engine in engines {
        let run = run_peer(python, root, work, engine, files, bytes, expected)?;
        eprintln!("{engine}: {:.2} s (process {:.2} s), exact", run.seconds, run.process_seconds);
        tried.push((engine.clone(), run.seconds));
        if best.as_ref().is_none_or(|b| run.seconds < b.seconds) {
            best = Some(run);
        }
    }
    let mut best = best.context("no engine to run")?;
    best.tried = tried;
    Ok(best)
}

fn run_peer(python: &Path, root: &Path, work: &Path, engine: &str, files: &[PathBuf], bytes: u64, expected: &HashMap<String, u64>) -> anyhow::Result<PeerRow> {
    use std::io::BufRead;
    let out = work.join(format!("bench-peer-{engine}.json"));
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(root.join("host/examples/bench_peers.py"))
        .arg(engine)
        .arg(PEER_THREADS.to_string())
        .arg(&out)
        .args(files)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().context("the peer printed nothing")??;
    let process_seconds = started.elapsed().as_secs_f64();
    let rest: Vec<String> = lines.collect::<Result<_, _>>()?;
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "{engine} failed ({status})");
    anyhow::ensure!(rest.iter().any(|l| l.contains("written")), "{engine} did not write its counts");
    let head: serde_json::Value = serde_json::from_str(&first)?;
    let counts: HashMap<String, u64> = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    let _ = std::fs::remove_file(&out);
    if &counts != expected {
        print_differences(&format!("{engine} ({} keys)", counts.len()), expected, &counts);
        anyhow::bail!("{engine} does not give wc-host's split-space counts");
    }
    let seconds = head["seconds"].as_f64().context("no seconds")?;
    Ok(PeerRow {
        engine: engine.to_string(),
        version: head["version"].as_str().unwrap_or("?").to_string(),
        seconds,
        process_seconds,
        mb_per_s: bytes as f64 / 1e6 / seconds,
        tried: Vec::new(),
        exact: true,
    })
}

/// The first (in key order) keys on which `other` differs from wc-host's `expected`.
fn print_differences(other: &str, expected: &HashMap<String, u64>, got: &HashMap<String, u64>) {
    let mut keys: Vec<&String> = expected.keys().chain(got.keys()).filter(|k| expected.get(*k) != got.get(*k)).collect();
    keys.sort();
    keys.dedup();
    eprintln!("{} keys differ between wc-host ({} keys) and {other}; the first:", keys.len(), expected.len());
    for k in keys.iter().take(10) {
        eprintln!("  {k:?}: wc-host {:?}, {other} {:?}", expected.get(*k), got.get(*k));
    }
}

/// The plain native count: ranges pulled by `threads` threads, one map each.
fn baseline(dir: &Path, plugin: &str, threads: usize) -> anyhow::Result<(f64, HashMap<String, u64>)> {
    let started = Instant::now();
    let files = resolve_inputs(&[dir.display().to_string()])?;
    let mut ranges: Vec<InputRange> = Vec::new();
    for f in &files {
        ranges.extend(split_file(f, 16 << 20)?);
    }
    let next = AtomicUsize::new(0);
    let words_rules = words::Rules::default();
    let partials: Vec<Counts> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut counts = Counts::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(range) = ranges.get(i) else { break };
                        count_range_natively(range, plugin, &words_rules, &mut counts).expect("baseline read");
                    }
                    counts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total: HashMap<String, u64> = HashMap::new();
    for part in partials {
        for (k, n) in part.into_map() {
            *total.entry(k).or_insert(0) += n;
        }
    }
    Ok((started.elapsed().as_secs_f64(), total))
}

fn count_range_natively(range: &InputRange, plugin: &str, rules: &words::Rules, counts: &mut Counts) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(&range.file.path)?;
    let header_idx = {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(std::fs::File::open(&range.file.path)?);
        r.headers()?.iter().position(|h| h == "text").context("no text column")?
    };
    file.seek(SeekFrom::Start(range.start))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(std::io::BufReader::with_capacity(1 << 20, file).take(range.len()));
    let mut record = csv::ByteRecord::new();
    let mut first = range.start == 0;
    while reader.read_byte_record(&mut record)? {
        if std::mem::take(&mut first) {
            continue;
        }
        let Some(field) = record.get(header_idx) else { continue };
        let text = String::from_utf8_lossy(field);
        match plugin {
            "split-space" => split_space::count_text(&text, counts),
            "words" => words::count_text(&text, rules, counts),
            other => anyhow::bail!("no native twin for plugin {other}"),
        }
    }
    Ok(())
}

struct Run {
    seconds: f64,
    counts: HashMap<String, u64>,
    rss_coordinator: f64,
    rss_worker: f64,
    rss_redis: f64,
    redis_cpu: f64,
    redis_peak_mem: f64,
    pairs: u64,
    tasks: u64,
    phases: serde_json::Value,
}

fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

fn is_redis(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("redis-server"))
}

/// wc-host as a user runs it: 2 workers, BGSAVE every 2 s, its managed
/// Redis (a fresh data directory), timed from start to exit.
/// wc-host with its managed Redis.
fn run_wc_host(wc_host: &Path, plugin: &Path, data: &Path, work: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let redis_dir = work.join("bench-redis");
    let _ = std::fs::remove_dir_all(&redis_dir);
    let mut all: Vec<&std::ffi::OsStr> = vec!["--data-dir".as_ref(), redis_dir.as_os_str()];
    all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    run_wc_host_with(wc_host, plugin, data, work, &all)
}

/// wc-host with `redis_args` choosing its Redis (and any other flags).
fn run_wc_host_with(wc_host: &Path, plugin: &Path, data: &Path, work: &Path, redis_args: &[&std::ffi::OsStr]) -> anyhow::Result<Run> {
    let out = work.join("bench-counts.json");
    let config = work.join("bench-config.json");
    std::fs::write(&config, r#"{"N_NORMAL_WORKERS": 2, "CHECKPOINT_INTERVAL": 2}"#)?;
    let started = Instant::now();
    let child = Command::new(wc_host)
        .arg("--plugin").arg(plugin)
        .arg("--config").arg(&config)
        .args(redis_args)
        .args(["--json", "--quiet", "--output"]).arg(&out)
        .arg(data)
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let peaks = Arc::new(Mutex::new((0f64, 0f64, 0f64)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peaks, stop) = (peaks.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let mut p = peaks.lock().unwrap();
                p.0 = p.0.max(peak_rss_mb(pid).unwrap_or(0.0));
                for child in wc_testkit::children_of(pid) {
                    let rss = peak_rss_mb(child).unwrap_or(0.0);
                    if is_redis(child) {
                        p.2 = p.2.max(rss);
                    } else {
                        p.1 = p.1.max(rss);
                    }
                }
                drop(p);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let output = child.wait_with_output()?;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    anyhow::ensure!(output.status.success(), "wc-host failed: {}", String::from_utf8_lossy(&output.stdout));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let counts: HashMap<String, u64> = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    let (c, w, r) = *peaks.lock().unwrap();
    Ok(Run {
        seconds,
        counts,
        rss_coordinator: c,
        rss_worker: w,
        rss_redis: r,
        redis_cpu: summary["redis_cpu_seconds"].as_f64().unwrap_or(0.0),
        redis_peak_mem: summary["redis_peak_memory_mb"].as_f64().unwrap_or(0.0),
        pairs: summary["pairs_committed"].as_u64().unwrap_or(0),
        tasks: summary["tasks"].as_u64().unwrap_or(0),
        phases: summary["phase_seconds"].clone(),
    })
}
