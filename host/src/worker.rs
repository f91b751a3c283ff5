//! A worker process: claims tasks from the job's stream, counts them with
//! the plugin, commits through the protocol. Stateless: everything it needs
//! is in Redis and the shared files, so it can be killed at any time and
//! started by hand on another machine.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::count::{count_range_with, RangeCounts};
use crate::plugin::{PluginInstance, PluginRuntime, SandboxPolicy};
use crate::protocol::{is_denied, is_out_of_memory, now_ms, CommitMode, Entry, EventKind, FailOutcome, JobMeta, Keys, Patience, Store, WorkerRecord};

/// How a worker behaves; the last two exist to show the fault tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    /// Count and commit tasks until the job is finished.
    Normal,
    /// Exit abruptly (SIGKILL to itself) right after claiming a task.
    Crash,
    /// Stall past the claim timeout before committing the first task.
    Sleep,
}

impl WorkerMode {
    pub const NAMES: [&'static str; 3] = ["normal", "crash", "sleep"];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerMode::Normal => "normal",
            WorkerMode::Crash => "crash",
            WorkerMode::Sleep => "sleep",
        }
    }
}

impl std::str::FromStr for WorkerMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<WorkerMode> {
        match s {
            "normal" => Ok(WorkerMode::Normal),
            "crash" => Ok(WorkerMode::Crash),
            "sleep" => Ok(WorkerMode::Sleep),
            other => bail!("unknown worker mode `{other}` (known: normal, crash, sleep)"),
        }
    }
}

/// Everything a worker process needs to join a job.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    /// Redis URL (credentials included).
    pub redis: String,
    pub job: String,
    /// Must be the job's plugin (checked by hash).
    pub plugin: PathBuf,
    pub mode: WorkerMode,
    /// Consumer name in the group; `None`: host-pid.
    pub name: Option<String>,
    /// Die with the parent process (a coordinator's workers).
    pub exit_with_parent: bool,
    pub policy: SandboxPolicy,
}

/// Exit code when the plugin does not match the job's.
pub const EXIT_WRONG_PLUGIN: i32 = 3;
/// Exit code when Redis refuses the worker (credentials, ACL permissions):
/// respawning it would not help.
pub const EXIT_REDIS_DENIED: i32 = 4;

/// Exit code when Redis is out of memory: the coordinator stops the job,
/// resumable, instead of respawning workers into the same wall.
pub const EXIT_REDIS_FULL: i32 = 5;

/// Runs a worker until the job is finished; the result is the exit code.
pub fn run(spec: WorkerSpec) -> anyhow::Result<i32> {
    match run_worker(spec) {
        Err(e) if is_denied(&e) => {
            eprintln!("error: {e:#}");
            Ok(EXIT_REDIS_DENIED)
        }
        Err(e) if is_out_of_memory(&e) => {
            eprintln!("error: {e:#}");
            Ok(EXIT_REDIS_FULL)
        }
        other => other,
    }
}

fn run_worker(spec: WorkerSpec) -> anyhow::Result<i32> {
    if spec.exit_with_parent {
        // SAFETY: plain prctl call; a worker must not outlive its coordinator.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
    let name = spec.name.clone().unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let mut store = Store::new(&spec.redis, Keys::for_meta(&spec.job), Patience::Worker)?;
    store.connect_once()?;
    let meta = wait_for_meta(&mut store)?;
    store.keys = meta.keys(&spec.job);
    let runtime = PluginRuntime::new(spec.policy.clone())?;
    let plugin = runtime.load(&spec.plugin)?;
    if plugin.hash() != meta.plugin_hash {
        eprintln!(
            "error: refusing to run {}: its sha256 {} differs from the job's plugin {}",
            spec.plugin.display(),
            plugin.hash(),
            meta.plugin_hash
        );
        return Ok(EXIT_WRONG_PLUGIN);
    }
    let instance = plugin.instantiate()?;
    let mut worker = Worker { name, store, meta, instance, mode: spec.mode, seen: Arc::default(), last_steal_scan: None };
    let result = worker.run();
    let name = worker.name.clone();
    // No heartbeat starts after this; one already under way may write a last
    // record, which readers ignore once it is older than WORKER_TTL.
    worker.seen.lock().unwrap().stopped = true;
    worker.store.forget_worker(&name);
    result?;
    Ok(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "worker".into())
}

/// The job's meta, waiting a while for a coordinator that has not written it yet.
fn wait_for_meta(store: &mut Store) -> anyhow::Result<JobMeta> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let meta = store.read_meta()?;
        if !meta.is_empty() {
            return JobMeta::from_hash(&meta);
        }
        if Instant::now() > deadline {
            bail!("job {} not found in Redis", store.keys.job);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Worker {
    name: String,
    store: Store,
    meta: JobMeta,
    instance: PluginInstance,
    mode: WorkerMode,
    /// What the heartbeat publishes about this worker.
    seen: Arc<Mutex<Seen>>,
    /// When this worker last looked for tasks to steal.
    last_steal_scan: Option<Instant>,
}

/// The worker as its heartbeat publishes it (see `WorkerRecord`).
#[derive(Default)]
struct Seen {
    /// Stream entry id, partition and a label (file and byte range) of the current task.
    current: Option<(String, u32, String)>,
    /// Bytes of the tasks committed so far.
    bytes: u64,
    /// The worker is exiting: its record is removed, not refreshed.
    stopped: bool,
}

/// How long one read for new tasks blocks in Redis.
const READ_BLOCK_MS: usize = 1000;

impl Worker {
    fn run(&mut self) -> anyhow::Result<()> {
        let claim_timeout = Duration::from_secs_f64(self.meta.claim_timeout);
        self.start_heartbeat(claim_timeout)?;
        let mut first = true;
        loop {
            let Some(entry) = self.next_entry(claim_timeout)? else {
                if self.store.counters()?.finished() {
                    tracing::info!("worker {}: job finished", self.name);
                    return Ok(());
                }
                continue;
            };
            tracing::debug!("worker {}: task {} ({})", self.name, entry.task.id, entry.task.range.file.path.display());
            if self.mode == WorkerMode::Crash {
                tracing::warn!("worker {} (crashing mode): exiting abruptly holding task {}", self.name, entry.task.id);
                // SAFETY: sending a signal to ourselves.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            let label = format!("{} bytes {}-{}", entry.task.range.file.path.display(), entry.task.range.start, entry.task.range.end);
            self.seen.lock().unwrap().current = Some((entry.id.clone(), entry.partition, label));
            let result = count_range_with(&mut self.instance, &self.meta.params, &entry.task.range, &self.meta.columns, self.meta.header.as_ref());
            if self.mode == WorkerMode::Sleep && first {
                let nap = claim_timeout * 2 + Duration::from_secs(1);
                tracing::warn!("worker {} (sleeping mode): stalling {nap:?} before committing task {}", self.name, entry.task.id);
                std::thread::sleep(nap);
            }
            match result {
                Ok(counts) => {
                    let bytes = counts.stats.bytes;
                    self.commit(&entry, counts)?;
                    self.seen.lock().unwrap().bytes += bytes;
                }
                Err(err) => self.fail(&entry, &err.to_string(), err.is_deterministic())?,
            }
            self.seen.lock().unwrap().current = None;
            first = false;
        }
    }

    /// A stolen task first (idle past the claim timeout), else a new one.
    ///
    /// Looking for a task to steal costs one XAUTOCLAIM per partition. With
    /// one partition that is done before every task; with several (a
    /// Cluster job) at most every quarter of the claim timeout, so that a
    /// task's claim costs O(1) commands rather than O(P) (measured by `make
    /// bench-commit`: 12 XAUTOCLAIMs per commit at P = 12 made a Cluster
    /// primary spend 3x the CPU of one server per commit). A stalled task is
    /// then stolen at most a quarter of the claim timeout later.
    fn next_entry(&mut self, claim_timeout: Duration) -> anyhow::Result<Option<Entry>> {
        let scan_due = self.meta.partitions <= 1 || self.last_steal_scan.is_none_or(|at| at.elapsed() >= claim_timeout / 4);
        if scan_due {
            self.last_steal_scan = Some(Instant::now());
            if let Some(entry) = self.store.steal(&self.name, claim_timeout.as_millis() as u64)? {
                tracing::info!("worker {}: stole task {} idle past the claim timeout", self.name, entry.task.id);
                let fields = [("task", entry.task.id.clone()), ("worker", self.name.clone()), ("file", entry.task.range.file.path.display().to_string())];
                self.store.record_event(EventKind::TaskStolen, &fields);
                return Ok(Some(entry));
            }
        }
        self.store.read_new(&self.name, READ_BLOCK_MS)
    }

    fn commit(&mut self, entry: &Entry, counts: RangeCounts) -> anyhow::Result<()> {
        // A plugin returns each key once (the contract); were it not to, both
        // commit paths add the repeats up, so no merge is needed here. There
        // are no zero counts (live mode's function refuses them): `finish`
        // refuses them from a 0.2.0 plugin and leaves them out of a 0.1.0 one.
        let pairs = counts.counts.pairs();
        let applied = match self.meta.commit_mode {
            CommitMode::Reduce => self.store.commit_task_result(entry, &pairs, &counts.stats)?,
            CommitMode::Live => self.store.commit_live(entry, pairs, &counts.stats)?,
        };
        if applied {
            tracing::debug!("worker {}: committed task {}", self.name, entry.task.id);
            self.await_replicas(entry)?;
        } else {
            tracing::info!("worker {}: task {} was already counted; duplicate suppressed", self.name, entry.task.id);
        }
        Ok(())
    }

    /// `--replicas-ack N`: the commit counts as durable once N replicas
    /// hold it. A worker waits a few seconds for them (back pressure), then
    /// reports the shortfall and goes on: the coordinator publishes only
    /// what N replicas hold, and a lost commit is redone.
    fn await_replicas(&mut self, entry: &Entry) -> anyhow::Result<()> {
        let n = self.meta.replicas_ack;
        if n == 0 {
            return Ok(());
        }
        for _ in 0..3 {
            if self.store.wait_replicas(n, Duration::from_secs(1))? {
                return Ok(());
            }
        }
        tracing::warn!("worker {}: the commit of task {} is not on {n} replica(s) after 3 s; not yet durable", self.name, entry.task.id);
        self.store.count_unreplicated(entry.partition)
    }

    /// Records a failed attempt. A `deterministic` failure (reproduced on a
    /// fresh instance fed the same rows, see `count::locate`) would fail
    /// every retry the same way: it is dead-lettered at once, by asking
    /// `wc_fail_task` for at most one attempt. Any other is retried up to
    /// the job's `max_attempts`.
    fn fail(&mut self, entry: &Entry, error: &str, deterministic: bool) -> anyhow::Result<()> {
        let max = if deterministic { 1 } else { self.meta.max_attempts };
        match self.store.fail_task(entry, max, error)? {
            FailOutcome::Dead => {
                if deterministic {
                    tracing::error!("task {} dead-lettered without retries (the failure recurs with the same rows): {error}", entry.task.id);
                } else {
                    tracing::error!("task {} dead-lettered after {max} attempts: {error}", entry.task.id);
                }
                let fields = [("task", entry.task.id.clone()), ("file", entry.task.range.file.path.display().to_string()), ("error", error.to_string())];
                self.store.record_event(EventKind::DeadLetter, &fields);
            }
            FailOutcome::Retry => tracing::warn!("task {} failed, will retry: {error}", entry.task.id),
            FailOutcome::AlreadyDone => {}
        }
        Ok(())
    }

    /// The heartbeat: publishes this worker in the job's worker hash (for
    /// `status`) and, for a normal worker, keeps the task being counted
    /// claimed, so a slow but live worker is not robbed of a large task.
    fn start_heartbeat(&self, claim_timeout: Duration) -> anyhow::Result<()> {
        let period = (claim_timeout / 3).min(Duration::from_secs(1));
        let mut store = self.store.another(Patience::Worker).giving_up_after(period);
        let name = self.name.clone();
        let keep_claims = self.mode == WorkerMode::Normal;
        let seen = self.seen.clone();
        let started = Instant::now();
        let host = hostname();
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || loop {
                // Copied out of the lock: the Redis calls below may wait
                // out a lost link, and the worker must not wait on them.
                let (record, current) = {
                    let seen = seen.lock().unwrap();
                    if seen.stopped {
                        return;
                    }
                    let record = WorkerRecord {
                        name: name.clone(),
                        host: host.clone(),
                        pid: std::process::id(),
                        task: seen.current.as_ref().map(|(_, _, label)| label.clone()),
                        bytes_per_second: seen.bytes as f64 / started.elapsed().as_secs_f64().max(1e-3),
                        heartbeat_ms: now_ms(),
                    };
                    (record, seen.current.clone())
                };
                store.heartbeat_worker(&record);
                if let (true, Some((id, partition, _))) = (keep_claims, current) {
                    if let Err(e) = store.keep_claimed(&name, &id, partition) {
                        tracing::debug!("heartbeat for {id} failed: {e:#}");
                    }
                }
                std::thread::sleep(period);
            })
            .context("cannot start the heartbeat thread")?;
        Ok(())
    }
}
