//! The coordinator: `wc-host --plugin P [DATA...]` runs a whole job.
//!
//! It plans tasks, keeps the job's manifest, starts and respawns workers,
//! takes checkpoints, notices Redis restarts and re-submits what a restore
//! lost, and decides that the job is finished only when every manifest task
//! is in the done-set (or dead-lettered), as Redis itself says.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::{Connection, Value};
use sha2::{Digest, Sha256};

use crate::cli::{PluginParams, SandboxArgs};
use crate::config::Config;
use crate::input::{resolve_inputs, split_identified, FileIdentity};
use crate::plugin::PluginRuntime;
use crate::redis_server::{Durability, ManagedRedis};
use crate::report::{self, DeadTask, Summary};
use crate::count::CountMap;
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

/// Whether the job has made progress since the last chaos kill and a
/// snapshot (or the append-only file) holds it.
#[derive(Default)]
struct ChaosProgress {
    /// Tasks done when first looked at after a restart.
    floor: Option<u64>,
    /// Once more tasks than `floor` are done: the count of completed saves
    /// that must be passed for a save to include them, and when.
    progressed: Option<(u64, Instant)>,
    /// With an append-only file, progress is on disk a second later.
    aof: bool,
}

impl ChaosProgress {
    fn saved(&mut self, store: &mut Store) -> anyhow::Result<bool> {
        let (done, info): (Option<u64>, String) = store.with_retry(REDIS_PATIENCE, |conn, keys| {
            let done: Option<u64> = redis::cmd("HGET").arg(&keys.meta).arg("tasks_done").query(conn)?;
            let info: String = redis::cmd("INFO").arg("persistence").query(conn)?;
            Ok((done, info))
        })?;
        let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        let saves = field("rdb_saves:");
        let done = done.unwrap_or(0);
        let floor = *self.floor.get_or_insert(done);
        if done > floor && self.progressed.is_none() {
            // A save running now may have forked before the progress.
            self.progressed = Some((saves + field("rdb_bgsave_in_progress:"), Instant::now()));
        }
        Ok(self.progressed.is_some_and(|(needed, at)| saves > needed || (self.aof && at.elapsed() > Duration::from_millis(1100))))
    }
}

/// The counts in the sorted set's own order (count, then key). Sorted on
/// inline integers first (the count and the key's first 16 bytes), the
/// keys themselves compared only on a tie: several times faster than
/// comparing through the strings, which matters with millions of keys.
fn sorted_by_count_then_key(counts: &CountMap) -> Vec<(&String, &u64)> {
    let pairs: Vec<(&String, &u64)> = counts.iter().collect();
    let mut order: Vec<(u64, u128, u32)> = pairs
        .iter()
        .enumerate()
        .map(|(i, (key, n))| {
            let mut prefix = [0u8; 16];
            let head = &key.as_bytes()[..key.len().min(16)];
            prefix[..head.len()].copy_from_slice(head);
            (**n, u128::from_be_bytes(prefix), i as u32)
        })
        .collect();
    order.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| pairs[a.2 as usize].0.cmp(pairs[b.2 as usize].0)));
    order.into_iter().map(|(_, _, i)| pairs[i as usize]).collect()
}

/// ZADDs `pairs` into the sorted set being built, in pipelined batches.
fn write_sorted_set(url: &str, keys: Keys, pairs: &[(&String, &u64)]) -> anyhow::Result<()> {
    let mut store = Store::new(url, keys)?;
    for batch in pairs.chunks(ZADD_MEMBERS * 8) {
        store.with_retry(REDIS_PATIENCE, |conn, keys| {
            let mut pipe = redis::pipe();
            for chunk in batch.chunks(ZADD_MEMBERS) {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(&keys.counts_building);
                for (key, n) in chunk {
                    cmd.arg(**n).arg(key.as_bytes());
                }
                pipe.add_command(cmd).ignore();
            }
            pipe.query::<()>(conn)
        })?;
    }
    Ok(())
}

/// Members per ZADD when the sorted set is built (reduce mode).
const ZADD_MEMBERS: usize = 2000;

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
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).collect();
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
        let mut chaos_progress = ChaosProgress { aof: args.durability == Durability::Aof, ..ChaosProgress::default() };
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
                    chaos_progress = ChaosProgress { aof: args.durability == Durability::Aof, ..ChaosProgress::default() };
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

    /// Reduce mode: merges the result blobs of tasks done since the last
    /// call into `merged`, so that most of the merging overlaps the counting.
    /// A blob is merged once per task id; since a task's blob is the same
    /// whichever attempt wrote it, a rollback that makes a merged task be
    /// redone changes nothing. [`reduce`](Self::reduce) checks at the end
    /// that exactly the done tasks were merged.
    fn merge_new_results(&mut self) -> anyhow::Result<usize> {
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).filter(|id| !self.merged_tasks.contains(id)).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let done = self.store.with_retry(REDIS_PATIENCE, |conn, keys| done_mask(conn, keys, &ids))?;
        let fresh: Vec<&String> = ids.iter().zip(&done).filter(|(_, d)| **d).map(|(id, _)| id).collect();
        for chunk in fresh.chunks(32) {
            let blobs: Vec<Option<Vec<u8>>> =
                self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("HMGET").arg(&keys.results).arg(chunk).query(conn))?;
            for (id, blob) in chunk.iter().zip(blobs) {
                // Missing: a restore rolled the task back after the done
                // check; it will be done again and merged then.
                let Some(blob) = blob else { continue };
                store::blob::decode_into(&blob, &mut self.merged).map_err(|e| anyhow::anyhow!("task {id}: {e}"))?;
                self.merged_tasks.insert(id.to_string());
            }
        }
        Ok(fresh.len())
    }

    /// Reduce mode, at the end: completes the merge and publishes it as the
    /// job's sorted set, atomically and only if complete
    /// (`wc_publish_counts`). Idempotent: safe to redo.
    fn reduce(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).collect();
        let done = self.store.with_retry(REDIS_PATIENCE, |conn, keys| done_mask(conn, keys, &ids))?;
        let done_ids: HashSet<&String> = ids.iter().zip(&done).filter(|(_, d)| **d).map(|(id, _)| id).collect();
        if self.merged_tasks.iter().any(|id| !done_ids.contains(id)) {
            // Something merged is no longer done (a rollback, then a dead
            // letter): start the merge over from what Redis holds.
            tracing::warn!("merged results no longer match the done tasks; merging again from scratch");
            self.merged.clear();
            self.merged_tasks.clear();
        }
        self.merge_new_results()?;
        anyhow::ensure!(self.merged_tasks.len() == done_ids.len(), "results of some done tasks are missing; waiting for them to be redone");
        let merged = started.elapsed();
        // Inserting in score order is about 3x cheaper for Redis than in
        // hash order (the skiplist path stays hot in cache).
        let pairs = sorted_by_count_then_key(&self.merged);
        self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("DEL").arg(&keys.counts_building).query::<i64>(conn))?;
        let sorted = started.elapsed();
        let payload = store::dump::zset_payload(&pairs);
        let encoded = started.elapsed();
        let restored = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            // Not retried by with_retry on a refusal (an old Redis, an ACL
            // without RESTORE): those fall back to ZADD below.
            redis::cmd("RESTORE").arg(&keys.counts_building).arg(0).arg(&payload).arg("REPLACE").query::<()>(conn)
        });
        if let Err(e) = restored {
            tracing::warn!("RESTORE of the sorted set refused ({e:#}); writing it with ZADD instead (slower)");
            self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("DEL").arg(&keys.counts_building).query::<i64>(conn))?;
            // Two connections: one formats and sends while Redis works on
            // the other's batch.
            let half = pairs.len().div_ceil(2);
            let (url, keys) = (self.url.clone(), self.store.keys.clone());
            std::thread::scope(|scope| -> anyhow::Result<()> {
                let writers: Vec<_> = pairs
                    .chunks(half.max(1))
                    .map(|part| {
                        let (url, keys) = (url.clone(), keys.clone());
                        scope.spawn(move || write_sorted_set(&url, keys, part))
                    })
                    .collect();
                for w in writers {
                    w.join().expect("a writer thread does not panic")?;
                }
                Ok(())
            })?;
        }
        let expected = self.merged.len();
        self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            redis::cmd("FCALL")
                .arg("wc_publish_counts").arg(4)
                .arg(&keys.counts_building).arg(&keys.counts).arg(&keys.meta).arg(&keys.results)
                .arg(expected)
                .query::<i64>(conn)
        })?;
        tracing::debug!(
            "reduce: last merge {merged:?}, sort {:?}, encode {:?}, sorted set of {expected} keys written in {:?}",
            sorted - merged,
            encoded - sorted,
            started.elapsed() - encoded
        );
        self.final_counts = Some(std::mem::take(&mut self.merged));
        Ok(())
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
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).collect();
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
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id.clone()).collect();
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

/// Task ids of the stream entries that some worker will still get: not yet
/// delivered to the group, or pending (delivered, not acked). Entries are
/// deleted when their task is committed or retried, but one can also be
/// stranded — delivered, then its pending record lost with a recreated
/// group — and those must be submitted again.
fn stream_task_ids(conn: &mut Connection, keys: &Keys) -> redis::RedisResult<HashSet<String>> {
    store::ensure_group(conn, keys)?;
    let groups: Value = redis::cmd("XINFO").arg("GROUPS").arg(&keys.stream).query(conn)?;
    let last_delivered = group_field(&groups, store::GROUP, "last-delivered-id").and_then(|id| parse_stream_id(&id)).unwrap_or((0, 0));
    let mut pending = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: Value = redis::cmd("XPENDING").arg(&keys.stream).arg(store::GROUP).arg(&start).arg("+").arg(1000).query(conn)?;
        let Value::Array(rows) = &page else { break };
        let mut last = None;
        for row in rows {
            if let Value::Array(fields) = row {
                last = fields.first().and_then(store::as_string);
                pending.extend(last.clone());
            }
        }
        match (rows.len(), last) {
            (1000, Some(id)) => start = format!("({id}"),
            _ => break,
        }
    }
    let mut ids = HashSet::new();
    let mut start = "-".to_string();
    loop {
        let page: Value = redis::cmd("XRANGE").arg(&keys.stream).arg(&start).arg("+").arg("COUNT").arg(1000).query(conn)?;
        let Value::Array(items) = &page else { break };
        let mut last = None;
        for item in items {
            let Value::Array(pair) = item else { continue };
            let Some(entry_id) = pair.first().and_then(store::as_string) else { continue };
            last = Some(entry_id.clone());
            let live = parse_stream_id(&entry_id).is_some_and(|id| id > last_delivered) || pending.contains(&entry_id);
            if !live {
                continue;
            }
            if let Some(Value::Array(fields)) = pair.get(1) {
                for kv in fields.chunks(2) {
                    if store::as_string(&kv[0]).as_deref() == Some("task") {
                        ids.extend(kv.get(1).and_then(store::as_string));
                    }
                }
            }
        }
        match (items.len(), last) {
            (1000, Some(id)) => start = format!("({id}"),
            _ => break,
        }
    }
    Ok(ids)
}

fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// A field of one group in an `XINFO GROUPS` reply (RESP2 flat pairs or RESP3 map).
fn group_field(groups: &Value, group: &str, field: &str) -> Option<String> {
    let Value::Array(groups) = groups else { return None };
    groups.iter().find_map(|g| {
        let pairs: Vec<(String, Option<String>)> = match g {
            Value::Array(flat) => flat.chunks(2).filter_map(|kv| Some((store::as_string(&kv[0])?, kv.get(1).and_then(store::as_string)))).collect(),
            Value::Map(map) => map.iter().filter_map(|(k, v)| Some((store::as_string(k)?, store::as_string(v)))).collect(),
            _ => return None,
        };
        let name = pairs.iter().find(|(k, _)| k == "name").and_then(|(_, v)| v.clone())?;
        if name != group {
            return None;
        }
        pairs.into_iter().find(|(k, _)| k == field).and_then(|(_, v)| v)
    })
}

fn done_mask(conn: &mut Connection, keys: &Keys, ids: &[String]) -> redis::RedisResult<Vec<bool>> {
    let mut mask = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let part: Vec<bool> = redis::cmd("SMISMEMBER").arg(&keys.done).arg(chunk).query(conn)?;
        mask.extend(part);
    }
    Ok(mask)
}

/// For each id: done, or dead-lettered.
fn finished_mask(conn: &mut Connection, keys: &Keys, ids: &[String]) -> redis::RedisResult<Vec<bool>> {
    let mut mask = done_mask(conn, keys, ids)?;
    let dead: HashSet<String> = redis::cmd("HKEYS").arg(&keys.dead).query(conn)?;
    for (m, id) in mask.iter_mut().zip(ids) {
        *m |= dead.contains(id);
    }
    Ok(mask)
}

/// BGSAVE every `interval` until `stop`; a save already running is fine.
fn start_checkpoints(url: &str, keys: Keys, interval: Duration, stop: Arc<AtomicBool>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let mut store = Store::new(url, keys)?;
    Ok(std::thread::Builder::new().name("checkpoints".into()).spawn(move || {
        let mut next = Instant::now() + interval;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + interval;
            let result = store.with_retry(interval, |conn, _| redis::cmd("BGSAVE").query::<String>(conn));
            match result {
                Ok(_) => tracing::debug!("checkpoint: BGSAVE started"),
                Err(e) if format!("{e:#}").contains("in progress") => {}
                Err(e) if format!("{e:#}").contains("NOPERM") => {
                    tracing::warn!("checkpoints are off: Redis refuses BGSAVE to this user ({e:#}); a Redis crash loses everything since its own last save. Grant +bgsave.");
                    return;
                }
                Err(e) => tracing::debug!("checkpoint skipped: {e:#}"),
            }
        }
    })?)
}

/// `wc-host top` / `wc-host status`: a job's state, read from Redis.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Redis URL [default: the managed Redis of --data-dir, started for the query].
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    #[arg(long, default_value = ".wc-data")]
    pub data_dir: PathBuf,
    /// Job id [default: the last job started on this Redis].
    #[arg(long)]
    pub job: Option<String>,
    /// How many keys (top).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn query(args: QueryArgs, status_only: bool) -> anyhow::Result<i32> {
    let mut managed = None;
    let url = match &args.redis {
        Some(url) => url.clone(),
        None => {
            if !args.data_dir.join("redis.pass").exists() {
                bail!("no --redis URL and no managed Redis data in {}", args.data_dir.display());
            }
            let redis = ManagedRedis::start(&args.data_dir, Durability::Snapshot)?;
            let url = redis.url();
            managed = Some(redis);
            url
        }
    };
    let mut store = Store::new(&url, Keys::for_meta("-"))?;
    store.connect_once()?;
    let job = match &args.job {
        Some(job) => job.clone(),
        None => store
            .with_retry(Duration::from_secs(10), |conn, _| redis::cmd("GET").arg(LATEST_JOB_KEY).query::<Option<String>>(conn))?
            .context("no job recorded in this Redis; give --job")?,
    };
    store.keys = Keys::for_meta(&job);
    let raw = store.with_retry(Duration::from_secs(10), |conn, keys| store::read_meta(conn, keys))?;
    if raw.is_empty() {
        bail!("job {job} not found in Redis");
    }
    let meta = JobMeta::from_hash(&raw)?;
    store.keys = meta.keys(&job);
    let (top, distinct) = store.with_retry(Duration::from_secs(10), |conn, keys| report::top_keys(conn, &keys.counts, args.top))?;
    let state = raw.get("state").cloned().unwrap_or_default();
    let status = serde_json::json!({
        "job": job, "state": state, "plugin": meta.plugin_name, "count_key": store.keys.counts,
        "tasks": meta.total_tasks, "tasks_done": store::meta_u64(&raw, "tasks_done"), "dead": store::meta_u64(&raw, "dead"),
        "bytes": meta.total_bytes, "bytes_done": store::meta_u64(&raw, "bytes"), "tokens": store::meta_u64(&raw, "tokens"),
        "distinct": distinct, "top": top,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if status_only {
        println!("job {job}: {state}, plugin {}", meta.plugin_name);
        println!("tasks {}/{} done, {} dead-lettered", status["tasks_done"], meta.total_tasks, status["dead"]);
        println!("bytes {}/{}, {} tokens, {distinct} distinct keys", status["bytes_done"], meta.total_bytes, status["tokens"]);
        println!("counts in sorted set {}", store.keys.counts);
    } else {
        report::print_top(&top);
    }
    if let Some(mut redis) = managed {
        redis.stop()?;
    }
    Ok(0)
}
