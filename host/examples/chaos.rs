//! `make chaos`: the chaos harness over several seeds; prints and writes
//! `bench-data/chaos.json`. See `wc_host::chaos`.
//!
//!     cargo run --release -p wc-host --example chaos -- [--mb 200] [SEED...]

use std::path::PathBuf;

use wc_host::chaos::{run, ChaosOptions};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut mb = 200;
    if let Some(i) = args.iter().position(|a| a == "--mb") {
        mb = args.get(i + 1).and_then(|v| v.parse().ok()).expect("--mb N");
        args.drain(i..i + 2);
    }
    let seeds: Vec<u64> = if args.is_empty() { vec![1, 2, 3] } else { args.iter().map(|s| s.parse().expect("a seed")).collect() };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let exe = std::env::current_exe()?;
    let wc_host = exe.parent().and_then(|p| p.parent()).unwrap().join("wc-host");
    anyhow::ensure!(wc_host.exists(), "build wc-host first (make build): {} is missing", wc_host.display());
    let mut reports = Vec::new();
    let mut failed = false;
    for seed in seeds {
        let opts = ChaosOptions {
            seed,
            mb,
            files: 48,
            work_dir: root.join("bench-data"),
            wc_host: wc_host.clone(),
            plugin: root.join("plugins/words.wasm"),
            min_worker_kills: 30,
            min_redis_restarts: 5,
            min_stalls: 2,
            baseline: true,
            expected_seconds: 0.0,
        };
        eprintln!("chaos seed {seed}: {mb} MB ...");
        let report = run(&opts)?;
        println!("{}", serde_json::to_string(&report)?);
        if let Err(e) = report.check(&opts) {
            eprintln!("chaos seed {seed}: FAILED: {e:#}");
            failed = true;
        }
        reports.push(report);
    }
    println!();
    println!("| seed | MB | tasks | worker kills | Redis restarts (during BGSAVE) | stalls | stolen | resubmitted | duplicates suppressed | mismatches | time without / with faults |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &reports {
        println!(
            "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {:.1} s / {:.1} s |",
            r.seed, r.mb, r.tasks, r.worker_kills, r.redis_restarts, r.redis_restarts_during_bgsave, r.stalls, r.tasks_stolen,
            r.tasks_resubmitted, r.duplicates_suppressed, r.mismatches, r.seconds_without_faults.unwrap_or(f64::NAN), r.seconds_with_faults
        );
    }
    std::fs::write(root.join("bench-data/chaos.json"), serde_json::to_string_pretty(&reports)?)?;
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
