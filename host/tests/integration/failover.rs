//! Losing the Redis machine and failing persistence: a master with replicas
//! watched by three sentinels (real processes on loopback), a data directory
//! on a full tmpfs, a Redis out of memory. Every count is compared with an
//! independent count.

use std::process::Command;
use std::time::Duration;

use wc_testkit::*;

/// Tasks done so far on the server (every done-set of every job).
fn tasks_done(conn: &mut redis::Connection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:done").query(conn).unwrap_or_default();
    keys.iter().map(|k| redis::cmd("SCARD").arg(k).query::<usize>(conn).unwrap_or(0)).sum()
}

/// Starts a job on the Sentinel's master and waits for some progress; the
/// workers are then paused.
fn job_in_progress(setup: &SentinelSetup, data: &str, extra: &[&str]) -> (RunningJob, Vec<u32>) {
    let url = setup.url();
    let mut args = vec!["--redis", &url, "--split-mb", "0.25", data];
    args.extend(extra);
    let mut job = spawn_job("words", &args);
    let master = setup.master();
    let mut conn = setup.nodes[master].conn();
    poll_until(120, "progress on the master", || {
        if let Some(status) = job.child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(job.child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the job ended ({status}) before the fault: {err}");
        }
        tasks_done(&mut conn) >= 3
    });
    let paused = pause_workers(job.child.id());
    (job, paused)
}

#[test]
fn sentinel_master_killed_and_its_data_directory_deleted_mid_job() {
    let mut setup = SentinelSetup::start(2, &[]);
    let (dir, files) = gen_data(16.0, 6, 51);
    let (job, paused) = job_in_progress(&setup, &dir.path().display().to_string(), &[]);
    setup.wait_replicated();
    setup.nodes[0].kill();
    for entry in std::fs::read_dir(setup.nodes[0].dir.path()).unwrap().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    resume(&paused);
    let new_master = setup.wait_failover_from(0);
    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    assert!(summary_u64(&r.summary, "redis_restarts") >= 1, "the failover was noticed: {}", r.summary);
    let mut conn = setup.nodes[new_master].conn();
    let state: String = redis::cmd("HGET").arg(format!("wc:{{{}}}:meta", r.summary["job"].as_str().unwrap())).arg("state").query(&mut conn).unwrap();
    assert_eq!(state, "finished", "the result is published on the new master");
}

#[test]
fn sentinel_failover_mid_job_with_the_old_master_still_writable() {
    let setup = SentinelSetup::start(2, &[]);
    let (dir, files) = gen_data(16.0, 6, 52);
    let (job, paused) = job_in_progress(&setup, &dir.path().display().to_string(), &["--replicas-ack", "2"]);
    // The workers stay connected to the old master, which goes on taking
    // their commits until the sentinels turn it into a replica: those are
    // lost and redone. `--replicas-ack 2` (every replica) makes the
    // published result survive whichever replica is promoted.
    resume(&paused);
    setup.failover();
    let new_master = setup.wait_failover_from(0);
    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let mut conn = setup.nodes[new_master].conn();
    let job_id = r.summary["job"].as_str().unwrap().to_string();
    let state: String = redis::cmd("HGET").arg(format!("wc:{{{job_id}}}:meta")).arg("state").query(&mut conn).unwrap();
    assert_eq!(state, "finished", "the result is published on the master the sentinels name");
    let stored: Vec<(String, f64)> = redis::cmd("ZREVRANGE").arg(format!("wc:{{{job_id}}}:count")).arg(0).arg(-1).arg("WITHSCORES").query(&mut conn).unwrap();
    let stored: std::collections::HashMap<String, u64> = stored.into_iter().map(|(k, n)| (k, n as u64)).collect();
    assert_counts_eq(&stored, &reference_words(&files));
}

/// `min-replicas-to-write 1`: with its replica gone the master refuses
/// writes (NOREPLICAS) instead of taking commits that a failover would
/// lose; the job says so, waits, and finishes exact once a replica is back.
#[test]
fn min_replicas_to_write_makes_the_job_wait_instead_of_losing_writes() {
    let mut setup = SentinelSetup::start(1, &[]);
    let mut conn = setup.nodes[0].conn();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("min-replicas-to-write").arg(1).query(&mut conn).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("min-replicas-max-lag").arg(2).query(&mut conn).unwrap();
    let (dir, files) = gen_data(8.0, 4, 53);
    let (job, paused) = job_in_progress(&setup, &dir.path().display().to_string(), &[]);
    setup.nodes[1].kill();
    resume(&paused);
    // Writes are refused once the replica's lag passes 2 s.
    poll_until(30, "writes refused", || redis::cmd("SET").arg("probe").arg(1).query::<()>(&mut conn).is_err_and(|e| e.code() == Some("NOREPLICAS")));
    let done = tasks_done(&mut conn);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(tasks_done(&mut conn), done, "no commit lands without a replica");
    setup.nodes[1].restart();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(setup.nodes[0].port).query(&mut setup.nodes[1].conn()).unwrap();
    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    assert!(r.stderr.contains("min-replicas-to-write"), "the refusal is reported: {}", r.stderr);
}

/// A directory on a tmpfs, unmounted on drop (root only).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()).status().is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_failing_checkpoint_is_reported_in_the_summary_and_the_counts_stay_exact() {
    let Some(disk) = Tmpfs::mount("256k") else {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: mounting a tmpfs must work");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let redis = RedisServer::start_with(&["--dir", &disk.0.path().display().to_string()]);
    let (dir, files) = gen_data(32.0, 4, 54);
    let r = run_job_within("words", &["--redis", &redis.url(), "--checkpoint-interval", "0.05", "--split-mb", "0.5", &dir.path().display().to_string()], 180);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    assert!(summary_u64(&r.summary, "checkpoints_failed") >= 1, "{}", r.summary);
    let warnings = r.summary["persistence_warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("snapshot (BGSAVE) FAILED")), "{}", r.summary);
    assert!(r.stderr.contains("FAILED"), "said at once in the log too: {}", r.stderr);
}

#[test]
fn redis_out_of_memory_stops_the_job_resumably_and_a_rerun_finishes_exact() {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    let used: redis::InfoDict = redis::cmd("INFO").arg("memory").query(&mut conn).unwrap();
    let used: u64 = used.get("used_memory").unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used + 1_500_000).query(&mut conn).unwrap();
    let (dir, files) = gen_data(16.0, 4, 55);
    let data = dir.path().display().to_string();
    let args = ["--redis", &redis.url(), "--split-mb", "0.5", &data];
    let job = spawn_job("words", &args);
    let out = job.child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("out of memory") && stderr.contains("maxmemory"), "names the limit: {stderr}");
    assert!(stderr.contains("resumable"), "{stderr}");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut conn).unwrap();
    let r = run_job_within("words", &args, 180);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(r.summary["resumed"], true, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}
