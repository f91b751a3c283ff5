//! The chaos harness of `make chaos`, short: a smaller data set and fewer
//! faults, still every kind (worker SIGKILLs, Redis SIGKILLed and restarted
//! from its dump, once during a BGSAVE, a worker SIGSTOPped past the claim
//! timeout), and still zero mismatches against an independent count.

use wc_testkit::chaos::{run, ChaosOptions};

/// A 32 MB run with every kind of fault; `failover`: the Redis crashes are
/// Sentinel failovers.
fn short_run(seed: u64, min_redis_restarts: u32, failover: bool) {
    let work = tempfile::tempdir().unwrap();
    let opts = ChaosOptions {
        seed,
        mb: 32,
        files: 12,
        work_dir: work.path().to_path_buf(),
        wc_host: wc_testkit::wc_host_bin(),
        plugin: wc_testkit::plugin("words"),
        min_worker_kills: 8,
        min_redis_restarts,
        min_stalls: 1,
        baseline: true,
        expected_seconds: 0.0,
        failover,
    };
    let report = run(&opts).unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    report.check(&opts).unwrap();
    assert_eq!(report.mismatches, 0);
}

#[test]
fn chaos_short_run_counts_exactly() {
    short_run(42, 2, false);
}

/// The same with Sentinel failovers as the Redis crashes: the master
/// SIGKILLed mid-job, a replica promoted, the job following the sentinels.
#[test]
fn chaos_short_run_with_sentinel_failovers_counts_exactly() {
    short_run(43, 1, true);
}
