//! The chaos harness behind `make chaos`: a real job on generated data while
//! workers are SIGKILLed and SIGSTOPped and Redis is SIGKILLed (once in the
//! middle of a BGSAVE) and restarted from its directory, at moments drawn
//! from a seed; then every count is compared with an independent count.
//!
//! It drives the `wc-host` binary like a user would (`--redis URL` to a
//! Redis it owns, so it can kill it), and measures the same job without
//! faults in the same run for the time it costs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use wc_host::gen_data::{generate, GenOptions};
use wc_host::redis_server::{Durability, ManagedRedis};

use crate::procs::children_of;
use crate::sentinel::SentinelSetup;
use crate::reference::reference_words;

#[derive(Clone, Debug)]
pub struct ChaosOptions {
    pub seed: u64,
    /// Size of the data set, MB: 60% in many files, 40% in one large file.
    pub mb: u64,
    pub files: usize,
    /// Where data sets are cached and runs' Redis directories live.
    pub work_dir: PathBuf,
    pub wc_host: PathBuf,
    pub plugin: PathBuf,
    pub min_worker_kills: u32,
    pub min_redis_restarts: u32,
    pub min_stalls: u32,
    /// Also run the job without faults, for the time the faults cost.
    pub baseline: bool,
    /// How long the job takes without faults, to pace the faults so that
    /// the minimums fit in (measured when `baseline` is set).
    pub expected_seconds: f64,
    /// Redis crashes are failovers: the job runs on a master with two
    /// replicas watched by three sentinels, and each crash SIGKILLs the
    /// current master (a replica is promoted; the old master comes back as
    /// a replica). Otherwise a single Redis restarts from its dump.
    pub failover: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    /// `single` (restarts from a dump) or `sentinel` (failovers).
    pub deployment: String,
    pub mb: u64,
    pub tasks: u64,
    pub worker_kills: u32,
    pub redis_restarts: u32,
    pub redis_restarts_during_bgsave: u32,
    pub stalls: u32,
    pub redis_restarts_seen_by_coordinator: u64,
    pub worker_respawns: u64,
    pub tasks_stolen: u64,
    pub tasks_resubmitted: u64,
    pub duplicates_suppressed: u64,
    pub retries: u64,
    pub dead_lettered: u64,
    pub keys: usize,
    pub tokens: u64,
    pub mismatches: usize,
    pub seconds_with_faults: f64,
    pub seconds_without_faults: Option<f64>,
    pub extra_seconds: Option<f64>,
}

/// Generates (or reuses) the data set: `many/` and `large/`.
fn data_set(opts: &ChaosOptions) -> anyhow::Result<PathBuf> {
    let dir = opts.work_dir.join(format!("chaos-data-{}mb-{}", opts.mb, opts.seed));
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let total = opts.mb << 20;
        generate(&dir.join("many"), &GenOptions { total_bytes: total * 6 / 10, files: opts.files, seed: opts.seed })?;
        generate(&dir.join("large"), &GenOptions { total_bytes: total * 4 / 10, files: 1, seed: opts.seed + 1_000_000 })?;
        std::fs::write(&done, b"")?;
    }
    Ok(dir)
}

struct JobRun {
    summary: serde_json::Value,
    counts: HashMap<String, u64>,
    seconds: f64,
}

fn start_job(opts: &ChaosOptions, url: &str, data: &Path, out: &Path) -> anyhow::Result<std::process::Child> {
    let config = out.with_extension("config.json");
    // Quick timings so that a stalled worker is robbed and progress is saved often.
    std::fs::write(&config, r#"{"N_NORMAL_WORKERS": 2, "CHECKPOINT_INTERVAL": 0.5, "CLAIM_TIMEOUT": 1, "SPLIT_MB": 4, "MAX_ATTEMPTS": 5}"#)?;
    Command::new(&opts.wc_host)
        .arg("--plugin").arg(&opts.plugin)
        .arg("--config").arg(&config)
        .arg("--redis").arg(url)
        .args(["--json", "--quiet", "--output"]).arg(out)
        .arg(data)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start wc-host")
}

fn finish(child: std::process::Child, out: &Path, started: Instant) -> anyhow::Result<JobRun> {
    let output = child.wait_with_output()?;
    let seconds = started.elapsed().as_secs_f64();
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).context("wc-host printed no JSON summary")?;
    if !output.status.success() {
        bail!("wc-host failed ({}): {summary}", output.status);
    }
    let counts = serde_json::from_str(&std::fs::read_to_string(out)?)?;
    Ok(JobRun { summary, counts, seconds })
}

/// What the chaos thread crashes: one Redis restarted from its dump, or the
/// master of a Sentinel setup (a failover).
enum Target {
    Single(ManagedRedis),
    /// With the node killed last whose failover is not over yet.
    Sentinel(SentinelSetup, Option<usize>),
}

impl Target {
    fn url(&self) -> String {
        match self {
            Target::Single(redis) => redis.url(),
            Target::Sentinel(setup, _) => setup.url(),
        }
    }

    /// Can it be crashed now? A failover must be over and the replicas
    /// left in sync with the new master; a replica must remain to promote.
    /// (Killed masters stay down: bringing one back waits on the sentinels
    /// for longer than a job lasts.)
    fn ready(&mut self) -> bool {
        match self {
            Target::Single(_) => true,
            Target::Sentinel(setup, killed) => {
                if let Some(old) = *killed {
                    let master = setup.master();
                    if master == old || !setup.nodes[master].is_running() {
                        return false;
                    }
                    *killed = None;
                }
                setup.nodes.iter().filter(|n| n.is_running()).count() > 2 && setup.settled()
            }
        }
    }

    /// Crashes the server holding the job; true once it (or a replica) serves again.
    /// Returns (recovered, the crash hit a BGSAVE).
    fn crash(&mut self, rng: &mut ChaCha8Rng, try_during_bgsave: bool) -> (bool, bool) {
        match self {
            Target::Single(redis) => {
                let mut during_bgsave = false;
                if try_during_bgsave {
                    // Start a save and kill Redis while its child is writing.
                    if let Ok(mut conn) = redis::Client::open(redis.url()).and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1))) {
                        let _: redis::RedisResult<String> = redis::cmd("BGSAVE").query(&mut conn);
                        let info: String = redis::cmd("INFO").arg("persistence").query(&mut conn).unwrap_or_default();
                        during_bgsave = info.contains("rdb_bgsave_in_progress:1");
                    }
                }
                redis.kill();
                std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
                (redis.restart().is_ok(), during_bgsave)
            }
            Target::Sentinel(setup, killed) => {
                // The failover then happens while the job goes on
                // ([`Target::ready`]).
                let old = setup.master();
                setup.nodes[old].kill();
                *killed = Some(old);
                (true, false)
            }
        }
    }

    fn stop(self) -> anyhow::Result<()> {
        match self {
            Target::Single(mut redis) => redis.stop(),
            Target::Sentinel(..) => Ok(()),
        }
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signalling a process of our own job.
    unsafe { libc::kill(pid as i32, sig) };
}

pub fn run(opts: &ChaosOptions) -> anyhow::Result<ChaosReport> {
    std::fs::create_dir_all(&opts.work_dir)?;
    let data = data_set(opts)?;
    let files = wc_host::input::resolve_inputs(&[data.display().to_string()])?;
    let reference = reference_words(&files);
    let deployment = if opts.failover { "sentinel" } else { "single" };
    let mut report = ChaosReport { seed: opts.seed, mb: opts.mb, deployment: deployment.into(), ..ChaosReport::default() };

    if opts.baseline {
        let redis_dir = opts.work_dir.join(format!("chaos-redis-baseline-{}", opts.seed));
        let _ = std::fs::remove_dir_all(&redis_dir);
        let mut redis = ManagedRedis::start(&redis_dir, Durability::Snapshot)?;
        let out = opts.work_dir.join(format!("chaos-baseline-{}.json", opts.seed));
        let started = Instant::now();
        let child = start_job(opts, &redis.url(), &data, &out)?;
        let run = finish(child, &out, started)?;
        redis.stop()?;
        report.seconds_without_faults = Some(run.seconds);
    }

    let target = if opts.failover {
        // Three replicas: room for three failovers.
        Target::Sentinel(SentinelSetup::start(3, &[]), None)
    } else {
        let redis_dir = opts.work_dir.join(format!("chaos-redis-{}", opts.seed));
        let _ = std::fs::remove_dir_all(&redis_dir);
        Target::Single(ManagedRedis::start(&redis_dir, Durability::Snapshot)?)
    };
    let redis = Arc::new(Mutex::new(target));
    let url = redis.lock().unwrap().url();
    let out = opts.work_dir.join(format!("chaos-counts-{}.json", opts.seed));
    let started = Instant::now();
    let child = start_job(opts, &url, &data, &out)?;
    let pid = child.id();
    let running = Arc::new(AtomicBool::new(true));
    let pace = Duration::from_secs_f64(report.seconds_without_faults.unwrap_or(opts.expected_seconds).max(0.5));
    let chaos = {
        let (redis, running, opts) = (redis.clone(), running.clone(), opts.clone());
        std::thread::spawn(move || inflict(pid, &redis, &running, &opts, pace))
    };
    let run = finish(child, &out, started);
    running.store(false, Ordering::SeqCst);
    let faults = chaos.join().expect("the chaos thread does not panic");
    let target = Arc::try_unwrap(redis).ok().expect("the chaos thread is done").into_inner().unwrap();
    target.stop()?;
    let run = run?;

    (report.worker_kills, report.redis_restarts, report.redis_restarts_during_bgsave, report.stalls) = faults;
    let s = &run.summary;
    let field = |name: &str| s[name].as_u64().unwrap_or(0);
    report.tasks = field("tasks");
    report.redis_restarts_seen_by_coordinator = field("redis_restarts");
    report.worker_respawns = field("worker_respawns");
    report.tasks_stolen = field("tasks_stolen");
    report.tasks_resubmitted = field("tasks_resubmitted");
    report.duplicates_suppressed = field("duplicates_suppressed");
    report.retries = field("retries");
    report.dead_lettered = s["dead_lettered"].as_array().map_or(0, |a| a.len() as u64);
    report.tokens = field("tokens");
    report.keys = run.counts.len();
    report.mismatches = reference.iter().filter(|(k, v)| run.counts.get(*k) != Some(v)).count()
        + run.counts.keys().filter(|k| !reference.contains_key(*k)).count();
    report.seconds_with_faults = run.seconds;
    report.extra_seconds = report.seconds_without_faults.map(|b| run.seconds - b);
    Ok(report)
}

/// Fault injection until the job ends, paced on `pace` (the job's time
/// without faults) so that the minimums fit in. Returns (worker kills,
/// Redis restarts, of which during a BGSAVE, stalls).
fn inflict(pid: u32, redis: &Mutex<Target>, running: &AtomicBool, opts: &ChaosOptions, pace: Duration) -> (u32, u32, u32, u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (mut kills, mut restarts, mut during_bgsave, mut stalls) = (0, 0, 0, 0);
    let restart_gap = pace / (opts.min_redis_restarts + 1).max(1);
    let kill_gap = pace / (opts.min_worker_kills + 5).max(1);
    let stall_gap = pace / (opts.min_stalls + 2).max(1);
    let mut next_restart = Instant::now() + restart_gap.mul_f64(rng.random_range(0.5..1.0));
    let mut next_stall = Instant::now() + stall_gap.mul_f64(rng.random_range(0.5..1.0));
    // Let the job plan and start its workers.
    std::thread::sleep(Duration::from_millis(200));
    while running.load(Ordering::SeqCst) {
        std::thread::sleep(kill_gap.mul_f64(rng.random_range(0.5..1.0)));
        let workers = children_of(pid);
        // Capped, so that the job (which loses up to a checkpoint interval
        // of work at each restart) is sure to end.
        if Instant::now() >= next_restart && restarts < opts.min_redis_restarts + 2 && redis.lock().unwrap().ready() {
            let (recovered, hit_bgsave) = redis.lock().unwrap().crash(&mut rng, during_bgsave == 0);
            restarts += recovered as u32;
            during_bgsave += hit_bgsave as u32;
            next_restart = Instant::now() + restart_gap.mul_f64(rng.random_range(0.5..1.0));
            continue;
        }
        let Some(&victim) = workers.get(rng.random_range(0..workers.len().max(1))) else { continue };
        if stalls < opts.min_stalls && Instant::now() >= next_stall {
            signal(victim, libc::SIGSTOP);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500)); // past the 1 s claim timeout
                signal(victim, libc::SIGCONT);
            });
            stalls += 1;
            next_stall = Instant::now() + stall_gap.mul_f64(rng.random_range(0.5..1.0));
        } else if kills < opts.min_worker_kills * 2 {
            signal(victim, libc::SIGKILL);
            kills += 1;
        }
    }
    (kills, restarts, during_bgsave, stalls)
}

impl ChaosReport {
    /// Checks the run against the fault counts asked for and exactness.
    pub fn check(&self, opts: &ChaosOptions) -> anyhow::Result<()> {
        if self.mismatches != 0 || self.dead_lettered != 0 {
            bail!("{} keys differ from the independent count, {} tasks dead-lettered", self.mismatches, self.dead_lettered);
        }
        if self.worker_kills < opts.min_worker_kills || self.redis_restarts < opts.min_redis_restarts || self.stalls < opts.min_stalls {
            bail!(
                "too few faults: {} worker kills (want {}), {} Redis restarts (want {}), {} stalls (want {}); use more data",
                self.worker_kills, opts.min_worker_kills, self.redis_restarts, opts.min_redis_restarts, self.stalls, opts.min_stalls
            );
        }
        if !opts.failover && opts.min_redis_restarts > 0 && self.redis_restarts_during_bgsave == 0 {
            bail!("Redis was never killed during a BGSAVE");
        }
        Ok(())
    }
}
