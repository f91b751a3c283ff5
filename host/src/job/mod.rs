//! The coordinator: `wc-host --plugin P [DATA...]` runs a whole job.
//!
//! It plans tasks, keeps the job's manifest, starts and respawns workers,
//! takes checkpoints, notices Redis restarts and re-submits what a restore
//! lost, and decides that the job is finished only when every manifest task
//! is in the done-set (or dead-lettered), as Redis itself says.

mod reduce;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::Connection;
use sha2::{Digest, Sha256};

use crate::cli::{PluginParams, SandboxArgs};
use crate::config::Config;
use crate::input::{resolve_inputs, split_identified, FileIdentity};
use crate::plugin::PluginRuntime;
use crate::redis_server::{Durability, ManagedRedis};
use crate::report::{self, DeadTask, Summary};
use crate::count::CountMap;
use crate::checkpoint::{start_checkpoints, ChaosProgress};
use crate::store::tasks::{done_mask, finished_mask, stream_task_ids};
use crate::store::{self, CommitMode, JobMeta, Keys, Store, Task, LATEST_JOB_KEY};
use crate::worker::{WorkerMode, EXIT_REDIS_DENIED, EXIT_WRONG_PLUGIN};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The counting plugin (a WebAssembly component).
    #[arg(long, default_value = "plugins/words.wasm")]
    pub plugin: PathBuf,
    /// CSV files, directories or globs [default: DATA_PATH from the config, else data/].
    pub data: Vec<String>,
    /// The configuration file (the seed's keys; see README).
    #[arg(long, default_value = "config.json")]
    pub config: PathBuf,
    /// Redis URL (redis://[user][:password]@host:port/db). Without it, a
    /// managed redis-server is started on loopback and stopped at the end.
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    /// Data directory of the managed Redis.
    #[arg(long, default_value = ".wc-data")]
    pub data_dir: PathBuf,
    /// Workers (N_NORMAL_WORKERS).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Workers that exit abruptly after claiming a task (N_CRASHING_WORKERS).
    #[arg(long)]
    pub crashing_workers: Option<usize>,
    /// Workers that stall past the claim timeout before committing (N_SLEEPING_WORKERS).
    #[arg(long)]
    pub sleeping_workers: Option<usize>,
    /// Seconds between BGSAVE checkpoints (CHECKPOINT_INTERVAL).
    #[arg(long)]
    pub checkpoint_interval: Option<f64>,
    /// Seconds a claimed task may idle before another worker steals it (CLAIM_TIMEOUT).
    #[arg(long)]
    pub claim_timeout: Option<f64>,
    /// Split files larger than this many MB into ranges (SPLIT_MB).
    #[arg(long)]
    pub split_mb: Option<f64>,
    /// Failures before a task is dead-lettered (MAX_ATTEMPTS).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Keys shown in the summary (TOP).
    #[arg(long)]
    pub top: Option<usize>,
    /// Write all counts to PATH (.json object or .csv rows).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Persistence of the managed Redis.
    #[arg(long, value_enum, default_value = "snapshot")]
    pub durability: Durability,
    /// Chaos: SIGKILL the managed Redis every SECS seconds and restart it
    /// from its data directory (REDIS_DOWNTIME sets how long it stays down).
    #[arg(long)]
    pub chaos_redis_restart: Option<f64>,
    /// Forget an earlier run of the same job and count again.
    #[arg(long)]
    pub fresh: bool,
    /// How counts reach Redis: `reduce` (one blob per task, sorted set built
    /// at the end; fastest) or `live` (ZINCRBY as tasks land).
    #[arg(long, value_enum, default_value = "reduce")]
    pub commit_mode: CommitMode,
    #[command(flatten)]
    pub params: PluginParams,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

impl RunArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let default_path = self.config == Path::new("config.json");
        let mut c = Config::load(&self.config, default_path)?;
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut c.normal_workers, self.workers);
        set(&mut c.crashing_workers, self.crashing_workers);
        set(&mut c.sleeping_workers, self.sleeping_workers);
        set(&mut c.top, self.top);
        if let Some(v) = self.checkpoint_interval {
            c.checkpoint_interval = v;
        }
        if let Some(v) = self.claim_timeout {
            anyhow::ensure!(v > 0.0, "--claim-timeout must be greater than 0");
            c.claim_timeout = v;
        }
        if let Some(v) = self.split_mb {
            anyhow::ensure!(v > 0.0, "--split-mb must be greater than 0");
            c.split_mb = v;
        }
        if let Some(v) = self.max_attempts {
            c.max_attempts = v.max(1);
        }
        anyhow::ensure!(c.normal_workers > 0, "at least one normal worker is needed (N_NORMAL_WORKERS / --workers)");
        Ok(c)
    }
}

/// The job's identity: the rule (plugin hash and parameters) and the input
/// (each file's canonical path, size and mtime, and the split size), which
/// determine the tasks.
fn job_id(plugin_hash: &str, params: &[(String, String)], config: &Config, commit_mode: CommitMode, split_bytes: u64, files: &[FileIdentity]) -> String {
    let mut h = Sha256::new();
    h.update(plugin_hash.as_bytes());
    h.update(serde_json::to_vec(params).expect("params serialise"));
    h.update(config.count_key.as_bytes());
    h.update(config.stream.as_bytes());
    h.update(format!("{commit_mode:?}").as_bytes());
    h.update(split_bytes.to_le_bytes());
    h.update(serde_json::to_vec(files).expect("identities serialise"));
    hex::encode(&h.finalize()[..8])
}

pub fn run(args: RunArgs, quiet: bool) -> anyhow::Result<i32> {
    let started = Instant::now();
    let config = args.config()?;
    let runtime = PluginRuntime::new(args.sandbox.policy())?;
    // Loading compiles the plugin into the on-disk cache the workers reuse.
    let plugin = runtime.load(&args.plugin)?;
    let params = args.params.plugin_args.clone();
    // Parameters are checked here, once, rather than by every task.
    drop(plugin.instantiate()?.start_task(&params)?);

    let inputs = if !args.data.is_empty() {
        args.data.clone()
    } else {
        vec![config.data_path.clone().unwrap_or_else(|| "data".into())]
    };
    let files = resolve_inputs(&inputs)?;
    let split_bytes = (config.split_mb * 1_048_576.0) as u64;
    let identities = files.iter().map(|f| FileIdentity::of(f)).collect::<Result<Vec<_>, _>>()?;
    let total_bytes: u64 = identities.iter().map(|f| f.size).sum();
    let job = job_id(plugin.hash(), &params, &config, args.commit_mode, split_bytes, &identities);
    let keys = Keys::new(&job, &config);
    tracing::info!("job {job}: {} files, {:.1} MB, plugin {}", files.len(), total_bytes as f64 / 1e6, plugin.label());
    // Tasks are planned in the background and submitted as they are found,
    // so that workers start on a large file while it is still being split.
    let (planned_tx, planned) = std::sync::mpsc::channel();
    let file_count = files.len();
    let planned_files = identities.clone();
    std::thread::Builder::new().name("planner".into()).spawn(move || {
        for file in planned_files {
            let sent = split_identified(file, split_bytes, |range| {
                let _ = planned_tx.send(Ok(Task::new(range)));
            });
            if let Err(e) = sent {
                let _ = planned_tx.send(Err(e));
                return;
            }
        }
    })?;

    let mut managed = match &args.redis {
        Some(_) => None,
        None => {
            let redis = ManagedRedis::start(&args.data_dir, args.durability)?;
            tracing::info!("managed Redis on 127.0.0.1 (pid {}), data in {}", redis.pid().unwrap_or(0), redis.dir().display());
            Some(redis)
        }
    };
    let url = args.redis.clone().unwrap_or_else(|| managed.as_ref().expect("managed").url());
    let mut store = Store::new(&url, keys.clone())?;
    store.connect_once()?;

    let meta = JobMeta {
        plugin_hash: plugin.hash().to_string(),
        plugin_name: plugin.info().name.clone(),
        params: params.clone(),
        claim_timeout: config.claim_timeout,
        max_attempts: config.max_attempts,
        stream_name: config.stream.clone(),
        count_name: config.count_key.clone(),
        fname_field: config.fname_field.clone(),
        total_tasks: 0,
        total_bytes,
        commit_mode: args.commit_mode,
    };
    if args.fresh {
        store.with_retry(Duration::from_secs(30), |conn, keys| delete_job(conn, keys))?;
    }
    let previous_state: Option<String> = store.with_retry(Duration::from_secs(30), |conn, keys| redis::cmd("HGET").arg(&keys.meta).arg("state").query(conn))?;
    let mut coordinator = Coordinator {
        config: config.clone(),
        store,
        meta,
        tasks: Vec::new(),
        planned: Some(planned),
        task_ids: HashSet::new(),
        url: url.clone(),
        plugin_path: args.plugin.clone(),
        sandbox: args.sandbox.clone(),
        quiet,
        progress_bar: !quiet && std::io::stderr().is_terminal(),
        workers: Vec::new(),
        respawns: 0,
        redis_restarts: 0,
        run_id: None,
        final_counts: None,
        merged: CountMap::default(),
        merged_tasks: HashSet::new(),
        submitted: HashSet::new(),
        resubmissions: 0,
    };
    let resumed = previous_state.is_some();
    if previous_state.as_deref() == Some("finished") {
        tracing::info!("job {job} already finished in this Redis; reporting it (use --fresh to count again)");
        while coordinator.planned.is_some() {
            coordinator.take_planned()?;
            std::thread::sleep(Duration::from_millis(10));
        }
    } else {
        if resumed {
            tracing::info!("job {job} found unfinished in Redis: resuming it");
        }
        coordinator.register()?;
        coordinator.run_to_completion(&mut managed, &args)?;
        coordinator.wait_for_stragglers();
    }

    let mut summary = coordinator.summary(&job, plugin.label(), file_count, config.top, started.elapsed())?;
    summary.resumed = resumed;
    summary.tasks_resubmitted = coordinator.resubmissions;
    summary.redis = store::redact(&url);
    if let Ok(info) = coordinator.store.with_retry(Duration::from_secs(5), |conn, _| redis::cmd("INFO").arg("all").query::<String>(conn)) {
        let field = |name: &str| -> f64 { info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0) };
        summary.redis_cpu_seconds = field("used_cpu_sys:") + field("used_cpu_user:");
        summary.redis_peak_memory_mb = field("used_memory_peak:") / 1e6;
    }
    if let Some(path) = &args.output {
        let counts = coordinator.all_counts()?;
        crate::count::write_counts(path, &counts)?;
        summary.output = Some(path.display().to_string());
    }
    coordinator.stop_workers();
    if let Some(redis) = managed.as_mut() {
        redis.stop()?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        report::print_summary(&summary);
    }
    Ok(if summary.dead_lettered.is_empty() { 0 } else { 1 })
}

/// Removes every key of a job (for `--fresh`).
fn delete_job(conn: &mut Connection, keys: &Keys) -> redis::RedisResult<()> {
    redis::cmd("DEL")
        .arg(&keys.stream).arg(&keys.counts).arg(&keys.done).arg(&keys.parts).arg(&keys.partcount)
        .arg(&keys.attempts).arg(&keys.dead).arg(&keys.meta).arg(&keys.results).arg(&keys.counts_building)
        .query(conn)
}

struct WorkerProcess {
    child: Child,
    mode: WorkerMode,
}

struct Coordinator {
    config: Config,
    store: Store,
    meta: JobMeta,
    /// The manifest: what the job is, whatever Redis forgets.
    tasks: Vec<Task>,
    task_ids: HashSet<String>,
    /// Tasks still arriving from the planner (`None` once it is done).
    planned: Option<std::sync::mpsc::Receiver<Result<Task, crate::input::InputError>>>,
    url: String,
    plugin_path: PathBuf,
    sandbox: SandboxArgs,
    quiet: bool,
    progress_bar: bool,
    workers: Vec<WorkerProcess>,
    respawns: u64,
    redis_restarts: u64,
    run_id: Option<String>,
    /// Reduce mode: the merged counts, kept for `--output`.
    final_counts: Option<CountMap>,
    /// Reduce mode: results merged so far, and of which tasks.
    merged: CountMap,
    merged_tasks: HashSet<String>,
    /// Tasks this coordinator submitted, and how many times it had to
    /// submit one again (lost in a restore, or stranded).
    submitted: HashSet<String>,
    resubmissions: u64,
}

/// How long the coordinator waits for Redis before giving up on the job.
const REDIS_PATIENCE: Duration = Duration::from_secs(300);

impl Coordinator {
    /// Writes the job's meta (again, after a restore may have lost it) and
    /// submits every task that is neither done, dead nor in the stream.
    fn register(&mut self) -> anyhow::Result<()> {
        let fields = self.meta.to_fields();
        let job = self.store.keys.job.clone();
        self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&keys.meta);
            for (f, v) in &fields {
                cmd.arg(*f).arg(v);
            }
            cmd.query::<i64>(conn)?;
            redis::cmd("HSETNX").arg(&keys.meta).arg("state").arg("running").query::<i64>(conn)?;
            redis::cmd("SET").arg(LATEST_JOB_KEY).arg(&job).query::<()>(conn)
        })?;
        self.reconcile()
    }

    /// The ids of the manifest's tasks, in manifest order.
    fn manifest_ids(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.id.clone()).collect()
    }

    /// Adds the tasks the planner found since the last call to the manifest
    /// (and the job's total once it is done). True when tasks were added.
    fn take_planned(&mut self) -> anyhow::Result<bool> {
        let Some(rx) = &self.planned else { return Ok(false) };
        let mut added = false;
        loop {
            match rx.try_recv() {
                Ok(Ok(task)) => {
                    // A task id twice (one file reached by two names) would
                    // never let the job finish; the resolver already folds those.
                    if self.task_ids.insert(task.id.clone()) {
                        self.tasks.push(task);
                        added = true;
                    }
                }
                Ok(Err(e)) => return Err(e).context("planning the tasks"),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.planned = None;
                    self.meta.total_tasks = self.tasks.len() as u64;
                    let total = self.meta.total_tasks;
                    self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
                        redis::cmd("HSET").arg(&keys.meta).arg("total_tasks").arg(total).query::<i64>(conn)
                    })?;
                    tracing::info!("planned {total} tasks");
                    break;
                }
            }
        }
        Ok(added)
    }

    /// Re-submits lost tasks. Duplicates are harmless (the done-set gate),
    /// so this errs on the side of submitting.
    fn reconcile(&mut self) -> anyhow::Result<()> {
        let ids = self.manifest_ids();
        // The stream first: a task committed meanwhile then shows as done.
        let in_stream = self.store.with_retry(REDIS_PATIENCE, |conn, keys| stream_task_ids(conn, keys))?;
        let finished = self.store.with_retry(REDIS_PATIENCE, |conn, keys| finished_mask(conn, keys, &ids))?;
        let missing: Vec<&Task> = self
            .tasks
            .iter()
            .zip(&finished)
            .filter(|(t, done)| !**done && !in_stream.contains(&t.id))
            .map(|(t, _)| t)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        tracing::info!("submitting {} tasks", missing.len());
        for task in &missing {
            if !self.submitted.insert(task.id.clone()) {
                self.resubmissions += 1;
            }
        }
        self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            let mut pipe = redis::pipe();
            for task in &missing {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&keys.stream).arg("*");
                for (f, v) in store::entry_fields(task, keys) {
                    cmd.arg(f).arg(v);
                }
                pipe.add_command(cmd).ignore();
            }
            pipe.query::<()>(conn)
        })?;
        Ok(())
    }

    fn spawn_worker(&mut self, mode: WorkerMode, index: usize) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the wc-host executable")?;
        let mode_name = match mode {
            WorkerMode::Normal => "normal",
            WorkerMode::Crash => "crash",
            WorkerMode::Sleep => "sleep",
        };
        let child = Command::new(exe)
            .arg("worker")
            .arg("--job").arg(&self.store.keys.job)
            .arg("--plugin").arg(&self.plugin_path)
            .arg("--mode").arg(mode_name)
            .arg("--name").arg(format!("{mode_name}-{index}-{}", std::process::id()))
            .arg("--exit-with-parent")
            // Under a progress bar, workers keep to warnings: their lines
            // would break the bar (the summary reports steals and retries).
            .args((self.quiet || self.progress_bar).then_some("--quiet"))
            .args(self.sandbox.to_flags())
            .env("REDIS_URL", &self.url)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start a worker process")?;
        self.workers.push(WorkerProcess { child, mode });
        Ok(())
    }

    fn run_to_completion(&mut self, managed: &mut Option<ManagedRedis>, args: &RunArgs) -> anyhow::Result<()> {
        let config = self.config.clone();
        for i in 0..config.normal_workers {
            self.spawn_worker(WorkerMode::Normal, i)?;
        }
        for i in 0..config.crashing_workers {
            self.spawn_worker(WorkerMode::Crash, i)?;
        }
        for i in 0..config.sleeping_workers {
            self.spawn_worker(WorkerMode::Sleep, i)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let checkpoints = (config.checkpoint_interval > 0.0)
            .then(|| start_checkpoints(&self.url, self.store.keys.clone(), Duration::from_secs_f64(config.checkpoint_interval), stop.clone()))
            .transpose()?;
        let chaos_interval = args.chaos_redis_restart.or((config.redis_downtime > 0.0).then_some(5.0)).filter(|s| *s > 0.0);
        if chaos_interval.is_some() && managed.is_none() {
            tracing::warn!("chaos restarts need the managed Redis; ignored with --redis");
        }
        let mut next_chaos = chaos_interval.map(|s| Instant::now() + Duration::from_secs_f64(s));
        let mut chaos_progress = ChaosProgress::new(args.durability == Durability::Aof);
        let progress = report::Progress::new(self.meta.total_bytes, !self.progress_bar);
        let mut last_check = Instant::now() - Duration::from_secs(1);
        let mut last_reconcile = Instant::now();
        self.run_id = self.current_run_id().ok();
        let result = loop {
            std::thread::sleep(Duration::from_millis(50));
            if let Err(e) = self.reap_workers() {
                break Err(e);
            }
            if let (Some(at), Some(redis)) = (next_chaos, managed.as_mut()) {
                // Only once progress made since the last kill is in a
                // snapshot: kills faster than checkpoints would roll the job
                // back forever.
                if Instant::now() >= at && chaos_progress.saved(&mut self.store)? {
                    tracing::warn!("chaos: SIGKILL the managed Redis");
                    redis.kill();
                    std::thread::sleep(Duration::from_secs_f64(config.redis_downtime));
                    redis.restart()?;
                    chaos_progress = ChaosProgress::new(args.durability == Durability::Aof);
                    next_chaos = chaos_interval.map(|s| Instant::now() + Duration::from_secs_f64(s));
                }
            }
            if last_check.elapsed() < Duration::from_millis(100) {
                continue;
            }
            last_check = Instant::now();
            if self.take_planned()? {
                self.reconcile()?;
            }
            let run_id = self.current_run_id()?;
            if self.run_id.as_ref() != Some(&run_id) {
                self.redis_restarts += 1;
                tracing::warn!("Redis restarted (run id changed): restoring the library, group and lost tasks");
                self.run_id = Some(run_id);
                self.register()?;
                // What was merged may have been rolled back; merge again.
                self.merged.clear();
                self.merged_tasks.clear();
                last_reconcile = Instant::now();
            } else if last_reconcile.elapsed() > Duration::from_secs(3) {
                self.reconcile()?;
                last_reconcile = Instant::now();
            }
            if self.meta.commit_mode == CommitMode::Reduce {
                self.merge_new_results()?;
            }
            let meta = self.store.with_retry(REDIS_PATIENCE, |conn, keys| store::read_meta(conn, keys))?;
            progress.update(store::meta_u64(&meta, "bytes"), store::meta_u64(&meta, "tasks_done"), self.tasks.len() as u64);
            if self.planned.is_none()
                && store::meta_u64(&meta, "tasks_done") + store::meta_u64(&meta, "dead") >= self.tasks.len() as u64
                && self.all_finished()?
            {
                match self.meta.commit_mode {
                    CommitMode::Live => {
                        self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
                            redis::cmd("HSET").arg(&keys.meta).arg("state").arg("finished").query::<i64>(conn)
                        })?;
                        break Ok(());
                    }
                    CommitMode::Reduce => match self.reduce() {
                        Ok(()) => break Ok(()),
                        // A restart during the reduce: recover, check, redo.
                        Err(e) => tracing::warn!("building the sorted set failed, will retry: {e:#}"),
                    },
                }
            }
        };
        progress.finish();
        stop.store(true, Ordering::SeqCst);
        if let Some(handle) = checkpoints {
            let _ = handle.join();
        }
        result
    }

    fn current_run_id(&mut self) -> anyhow::Result<String> {
        let info: String = self.store.with_retry(REDIS_PATIENCE, |conn, _| redis::cmd("INFO").arg("server").query(conn))?;
        info.lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|s| s.trim().to_string())
            .context("INFO server has no run_id")
    }

    /// Every manifest task done or dead-lettered, checked in Redis.
    fn all_finished(&mut self) -> anyhow::Result<bool> {
        let ids = self.manifest_ids();
        let mask = self.store.with_retry(REDIS_PATIENCE, |conn, keys| finished_mask(conn, keys, &ids))?;
        Ok(mask.iter().all(|d| *d))
    }

    /// Respawns normal workers that died; crashing and sleeping workers are
    /// not replaced (the crash is their purpose).
    fn reap_workers(&mut self) -> anyhow::Result<()> {
        let mut respawn = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Some(status) = w.child.try_wait()? {
                if status.code() == Some(EXIT_WRONG_PLUGIN) {
                    bail!("a worker refused the plugin (hash mismatch); see its message above");
                }
                if status.code() == Some(EXIT_REDIS_DENIED) {
                    bail!("a worker was refused by Redis (NOPERM or credentials): the ACL user lacks a permission wc-host needs; see the README, section Security");
                }
                if w.mode == WorkerMode::Normal {
                    tracing::warn!("worker pid {} exited ({status}); starting another", w.child.id());
                    respawn.push(i);
                }
            }
        }
        for i in respawn.into_iter().rev() {
            self.workers.remove(i);
            self.respawns += 1;
            self.spawn_worker(WorkerMode::Normal, 1000 + self.respawns as usize)?;
        }
        self.workers.retain_mut(|w| w.mode == WorkerMode::Normal || w.child.try_wait().ok().flatten().is_none());
        Ok(())
    }

    /// Gives sleeping workers the time to wake up and make their late
    /// commit (which the done-set turns into a counted duplicate), so that
    /// the summary shows it.
    fn wait_for_stragglers(&mut self) {
        let limit = Duration::from_secs_f64(self.config.claim_timeout * 2.0 + 3.0);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline
            && self.workers.iter_mut().any(|w| w.mode == WorkerMode::Sleep && matches!(w.child.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Once the job is finished, workers hold nothing of value: they are
    /// killed rather than left to notice.
    fn stop_workers(&mut self) {
        for w in &mut self.workers {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        self.workers.clear();
    }

    fn summary(&mut self, job: &str, plugin: &str, files: usize, top: usize, wall: Duration) -> anyhow::Result<Summary> {
        let meta = self.store.with_retry(REDIS_PATIENCE, |conn, keys| store::read_meta(conn, keys))?;
        let (top_keys, distinct) = self.store.with_retry(REDIS_PATIENCE, |conn, keys| report::top_keys(conn, &keys.counts, top))?;
        let ids = self.manifest_ids();
        let done = self.store.with_retry(REDIS_PATIENCE, |conn, keys| done_mask(conn, keys, &ids))?;
        let dead: HashMap<String, String> = self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("HGETALL").arg(&keys.dead).query(conn))?;
        let dead_lettered = self
            .tasks
            .iter()
            .zip(&done)
            .filter(|(t, d)| !**d && dead.contains_key(&t.id))
            .map(|(t, _)| DeadTask {
                task: t.id.clone(),
                file: t.range.file.path.display().to_string(),
                bytes: format!("{}-{}", t.range.start, t.range.end),
                error: dead[&t.id].clone(),
            })
            .collect();
        Ok(Summary::from_meta(job, plugin, &self.store.keys.counts, files, self.tasks.len(), &meta, top_keys, distinct, wall, dead_lettered, self.redis_restarts, self.respawns))
    }

    fn all_counts(&mut self) -> anyhow::Result<crate::count::CountMap> {
        if let Some(counts) = self.final_counts.take() {
            return Ok(counts);
        }
        self.store.with_retry(REDIS_PATIENCE, |conn, keys| report::all_counts(conn, &keys.counts))
    }
}

