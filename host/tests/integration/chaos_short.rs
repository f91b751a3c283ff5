//! The chaos harness of `make chaos`, short: a smaller data set and fewer
//! faults, still every kind (worker SIGKILLs, Redis SIGKILLed and restarted
//! from its dump, once during a BGSAVE, a worker SIGSTOPped past the claim
//! timeout), and still zero mismatches against an independent count.

use wc_testkit::chaos::{run, ChaosOptions};

#[test]
fn chaos_short_run_counts_exactly() {
    let work = tempfile::tempdir().unwrap();
    let opts = ChaosOptions {
        seed: 42,
        mb: 32,
        files: 12,
        work_dir: work.path().to_path_buf(),
        wc_host: wc_testkit::wc_host_bin(),
        plugin: wc_testkit::plugin("words"),
        min_worker_kills: 8,
        min_redis_restarts: 2,
        min_stalls: 1,
        baseline: true,
        expected_seconds: 0.0,
        failover: false,
    };
    let report = run(&opts).unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    report.check(&opts).unwrap();
    assert_eq!(report.mismatches, 0);
}

/// The same with Sentinel failovers as the Redis crashes: the master
/// SIGKILLed mid-job, a replica promoted, the old master back as a replica.
#[test]
fn chaos_short_run_with_sentinel_failovers_counts_exactly() {
    let work = tempfile::tempdir().unwrap();
    let opts = ChaosOptions {
        seed: 43,
        mb: 32,
        files: 12,
        work_dir: work.path().to_path_buf(),
        wc_host: wc_testkit::wc_host_bin(),
        plugin: wc_testkit::plugin("words"),
        min_worker_kills: 8,
        min_redis_restarts: 1,
        min_stalls: 1,
        baseline: true,
        expected_seconds: 0.0,
        failover: true,
    };
    let report = run(&opts).unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    report.check(&opts).unwrap();
    assert_eq!(report.mismatches, 0);
}
