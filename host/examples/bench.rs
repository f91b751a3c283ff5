//! `make bench`: wc-host end to end against a plain native count of the
//! same column with the same rule, in the same run, on two 512 MB shapes
//! (128 files; one file), printed as a table and written to
//! `bench-data/bench.json`.
//!
//!     cargo run --release -p wc-host --example bench -- [--mb 512] [--plugins split-space,words] [--shapes files,single]
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

#[derive(Serialize)]
struct Row {
    shape: String,
    plugin: String,
    /// Decoded (CSV) MB.
    mb: f64,
    /// MB on disk (compressed size for compressed shapes).
    mb_on_disk: f64,
    baseline_seconds: f64,
    wc_host_seconds: f64,
    ratio: f64,
    baseline_mb_per_s: f64,
    wc_host_mb_per_s: f64,
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

/// wc-host end to end against a plain native count.
#[derive(clap::Parser)]
struct Options {
    /// Size of each data set, MB.
    #[arg(long, default_value_t = 512)]
    mb: u64,
    /// Plugins to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "split-space,words")]
    plugins: Vec<String>,
    /// Shapes: `files` (128 files) and/or `single` (one file); add `-gz` or
    /// `-zst` for the same data compressed.
    #[arg(long, value_delimiter = ',', default_value = "files,single")]
    shapes: Vec<String>,
    /// Also measure what `--replicas-ack 1` costs (a master and a replica
    /// found through Sentinel, split-space on the 128-file shape).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    replication: bool,
}

fn main() -> anyhow::Result<()> {
    let Options { mb, plugins, shapes, replication } = clap::Parser::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let work = root.join("bench-data");
    let wc_host = wc_testkit::wc_host_bin();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("machine: {threads} cores, {}", cpu_model());

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
        for plugin in &plugins {
            let (base_secs, base_counts) = baseline(&dir, plugin, threads)?;
            let run = run_wc_host(&wc_host, &root.join(format!("plugins/{plugin}.wasm")), &data, &work)?;
            let exact = run.counts == base_counts;
            let row = Row {
                shape: shape.clone(),
                plugin: plugin.clone(),
                mb: bytes as f64 / 1e6,
                mb_on_disk: on_disk as f64 / 1e6,
                baseline_seconds: base_secs,
                wc_host_seconds: run.seconds,
                ratio: run.seconds / base_secs,
                baseline_mb_per_s: bytes as f64 / 1e6 / base_secs,
                wc_host_mb_per_s: bytes as f64 / 1e6 / run.seconds,
                wc_host_mb_per_s_on_disk: on_disk as f64 / 1e6 / run.seconds,
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
            rows.push(row);
        }
    }
    println!();
    println!("| shape | plugin | MB (on disk) | baseline s | wc-host s | ratio | wc-host MB/s decoded (on disk) | peak RSS MB coord / worker / Redis | Redis CPU s | Redis peak MB | pairs to Redis | exact |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} ({:.0}) | {:.2} | {:.2} | {:.2} | {:.1} ({:.1}) | {:.0} / {:.0} / {:.0} | {:.2} | {:.0} | {} | {} |",
            r.shape, r.plugin, r.mb, r.mb_on_disk, r.baseline_seconds, r.wc_host_seconds, r.ratio, r.wc_host_mb_per_s, r.wc_host_mb_per_s_on_disk,
            r.peak_rss_mb_coordinator, r.peak_rss_mb_worker, r.peak_rss_mb_redis, r.redis_cpu_seconds, r.redis_peak_memory_mb,
            r.pairs_sent_to_redis, r.exact
        );
    }
    let compressed = if shapes.iter().any(|s| s.contains('-')) { "-compressed" } else { "" };
    std::fs::write(work.join(format!("bench-{mb}mb{compressed}.json")), serde_json::to_string_pretty(&rows)?)?;
    anyhow::ensure!(rows.iter().all(|r| r.exact), "wc-host and the baseline disagree");
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

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
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
fn run_wc_host(wc_host: &Path, plugin: &Path, data: &Path, work: &Path) -> anyhow::Result<Run> {
    let redis_dir = work.join("bench-redis");
    let _ = std::fs::remove_dir_all(&redis_dir);
    run_wc_host_with(wc_host, plugin, data, work, &["--data-dir".as_ref(), redis_dir.as_os_str()])
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
    })
}
