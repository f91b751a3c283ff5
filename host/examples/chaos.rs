//! `make chaos`: the chaos harness over several seeds; prints and writes
//! `bench-data/chaos.json`. See `wc_testkit::chaos`.
//!
//!     cargo run --release -p wc-host --example chaos -- [--mb 200] [SEED...]

use std::path::PathBuf;

use wc_testkit::chaos::{run, ChaosOptions};

/// The chaos harness over several seeds.
#[derive(clap::Parser)]
struct Options {
    /// Size of the data set, MB.
    #[arg(long, default_value_t = 200)]
    mb: u64,
    /// Seeds to run [default: 1 2 3].
    seeds: Vec<u64>,
    /// Seeds of the runs whose Redis crashes are Sentinel failovers.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    failover_seeds: Vec<u64>,
}

fn main() -> anyhow::Result<()> {
    let Options { mb, mut seeds, failover_seeds } = clap::Parser::parse();
    if seeds.is_empty() {
        seeds = vec![1, 2, 3];
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let wc_host = wc_testkit::wc_host_bin();
    let mut reports = Vec::new();
    let mut failed = false;
    let runs = seeds.iter().map(|s| (*s, false)).chain(failover_seeds.iter().map(|s| (*s, true)));
    for (seed, failover) in runs {
        let opts = ChaosOptions {
            seed,
            // Failovers take seconds each (the sentinels wait 1 s, elect,
            // and the old master must rejoin before the next): a longer job.
            mb: if failover { mb * 2 } else { mb },
            files: 48,
            work_dir: root.join("bench-data"),
            wc_host: wc_host.clone(),
            plugin: root.join("plugins/words.wasm"),
            min_worker_kills: 30,
            // A failover takes seconds (the sentinels wait 1 s, then elect).
            min_redis_restarts: if failover { 2 } else { 5 },
            min_stalls: 2,
            baseline: true,
            expected_seconds: 0.0,
            failover,
        };
        eprintln!("chaos seed {seed}{}: {mb} MB ...", if failover { " (Sentinel failovers)" } else { "" });
        let report = run(&opts)?;
        println!("{}", serde_json::to_string(&report)?);
        if let Err(e) = report.check(&opts) {
            eprintln!("chaos seed {seed}: FAILED: {e:#}");
            failed = true;
        }
        reports.push(report);
    }
    println!();
    println!("| deployment | seed | MB | tasks | worker kills | Redis restarts or failovers (during BGSAVE) | stalls | stolen | resubmitted | duplicates suppressed | mismatches | time without / with faults |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &reports {
        println!(
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {:.1} s / {:.1} s |",
            r.deployment, r.seed, r.mb, r.tasks, r.worker_kills, r.redis_restarts, r.redis_restarts_during_bgsave, r.stalls, r.tasks_stolen,
            r.tasks_resubmitted, r.duplicates_suppressed, r.mismatches, r.seconds_without_faults.unwrap_or(f64::NAN), r.seconds_with_faults
        );
    }
    std::fs::write(root.join("bench-data/chaos.json"), serde_json::to_string_pretty(&reports)?)?;
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
