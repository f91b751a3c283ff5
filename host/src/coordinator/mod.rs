//! The coordinator: `wc-host --plugin P [DATA...]` runs a whole job.
//!
//! It plans tasks ([`plan`]), keeps the job's manifest, starts and respawns
//! workers ([`supervise`]), takes checkpoints ([`checkpoint`]), notices
//! Redis restarts and re-submits what a restore lost ([`recover`]), and
//! decides that the job is finished only when every manifest task is in the
//! done-set (or dead-lettered), as Redis itself says; in reduce mode it then
//! builds and publishes the sorted set ([`reduce`]). Every Redis call goes
//! through `protocol`.

mod checkpoint;
mod plan;
mod recover;
mod reduce;
mod supervise;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::count::CountMap;
use crate::input::InputFormat;
use crate::plugin::{PluginRuntime, SandboxPolicy};
use crate::protocol::{redact, CommitMode, JobMeta, Keys, Patience, Store, Task, STATE_FINISHED};
use crate::redis_server::{Durability, ManagedRedis};
use crate::report::{self, DeadTask, SkippedInput, Summary};
use checkpoint::{start_checkpoints, ChaosProgress};
use plan::Planner;
pub use supervise::worker_args;
use supervise::Workers;

/// Everything a job needs, merged from flags, config file and defaults.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub plugin: PathBuf,
    /// CSV files, directories or globs.
    pub inputs: Vec<String>,
    pub config: Config,
    /// `None`: a managed redis-server in `data_dir`.
    pub redis: Option<String>,
    pub data_dir: PathBuf,
    pub output: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    pub durability: Durability,
    /// Chaos: SIGKILL and restart the managed Redis every so many seconds.
    pub chaos_redis_restart: Option<f64>,
    pub fresh: bool,
    pub commit_mode: CommitMode,
    pub params: Vec<(String, String)>,
    pub policy: SandboxPolicy,
    /// How the files are read: column mapping, delimiter, headers.
    pub format: InputFormat,
}

/// Runs a job to its end; the exit code is 1 when tasks were dead-lettered.
pub fn run(spec: JobSpec) -> anyhow::Result<i32> {
    let started = Instant::now();
    let config = spec.config.clone();
    let runtime = PluginRuntime::new(spec.policy.clone())?;
    // Loading compiles the plugin into the on-disk cache the workers reuse.
    let plugin = runtime.load(&spec.plugin)?;
    // Parameters are checked here, once, rather than by every task.
    drop(plugin.instantiate()?.start_task(&spec.params)?);

    let planner = Planner::start(&spec.inputs, &config, &spec.format, &plugin.info().columns)?;
    let job = plan::job_id(plugin.hash(), &spec.params, &config, spec.commit_mode, planner.split_bytes, &planner.identities, &spec.format);
    let keys = Keys::named(&job, &config.stream, &config.count_key, &config.fname_field);
    tracing::info!("job {job}: {} files, {:.1} MB, plugin {}", planner.files(), planner.total_bytes as f64 / 1e6, plugin.label());

    let mut managed = match &spec.redis {
        Some(_) => None,
        None => {
            let redis = ManagedRedis::start(&spec.data_dir, spec.durability)?;
            tracing::info!("managed Redis on 127.0.0.1 (pid {}), data in {}", redis.pid().unwrap_or(0), redis.dir().display());
            Some(redis)
        }
    };
    let url = spec.redis.clone().unwrap_or_else(|| managed.as_ref().expect("managed").url());
    let mut store = Store::new(&url, keys, Patience::Coordinator)?;
    store.connect_once()?;
    if spec.fresh {
        store.delete_job()?;
    }
    let previous_state = store.job_state()?;
    let meta = JobMeta {
        plugin_hash: plugin.hash().to_string(),
        plugin_name: plugin.info().name.clone(),
        params: spec.params.clone(),
        claim_timeout: config.claim_timeout,
        max_attempts: config.max_attempts,
        stream_name: config.stream.clone(),
        count_name: config.count_key.clone(),
        fname_field: config.fname_field.clone(),
        total_tasks: 0,
        total_bytes: planner.total_bytes,
        commit_mode: spec.commit_mode,
        columns: spec.format.columns.clone(),
        delimiter: spec.format.delimiter,
        header: planner.header.clone(),
    };
    let progress_bar = !spec.quiet && std::io::stderr().is_terminal();
    let file_count = planner.files();
    let mut coordinator = Coordinator {
        workers: Workers::new(&url, &store.keys.job, &spec, progress_bar),
        config: config.clone(),
        store,
        meta,
        tasks: Vec::new(),
        planner: Some(planner),
        task_ids: HashSet::new(),
        progress_bar,
        redis_restarts: 0,
        run_id: None,
        final_counts: None,
        merged: CountMap::default(),
        merged_tasks: HashSet::new(),
        submitted: HashSet::new(),
        resubmissions: 0,
        skipped: Vec::new(),
    };
    let resumed = previous_state.is_some();
    if previous_state.as_deref() == Some(STATE_FINISHED) {
        tracing::info!("job {job} already finished in this Redis; reporting it (use --fresh to count again)");
        coordinator.take_whole_plan()?;
    } else {
        if resumed {
            tracing::info!("job {job} found unfinished in Redis: resuming it");
        }
        coordinator.register()?;
        coordinator.run_to_completion(&mut managed, &spec)?;
        coordinator.workers.wait_for_stragglers(config.claim_timeout);
    }

    let mut summary = coordinator.summary(&job, plugin.label(), file_count, config.top, started.elapsed())?;
    summary.resumed = resumed;
    summary.redis = redact(&url);
    if let Ok((cpu, peak)) = coordinator.store.server_usage() {
        summary.redis_cpu_seconds = cpu;
        summary.redis_peak_memory_mb = peak;
    }
    if let Some(path) = &spec.output {
        let counts = coordinator.all_counts()?;
        crate::count::write_counts(path, &counts)?;
        summary.output = Some(path.display().to_string());
    }
    coordinator.workers.stop_all();
    if let Some(redis) = managed.as_mut() {
        redis.stop()?;
    }
    if spec.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        report::print_summary(&summary);
    }
    Ok(if summary.dead_lettered.is_empty() { 0 } else { 1 })
}

struct Coordinator {
    config: Config,
    store: Store,
    meta: JobMeta,
    /// The manifest: what the job is, whatever Redis forgets.
    tasks: Vec<Task>,
    task_ids: HashSet<String>,
    /// Tasks still arriving from the planner (`None` once it is done).
    planner: Option<Planner>,
    progress_bar: bool,
    workers: Workers,
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
    /// Zip members the plan left out, and why.
    skipped: Vec<SkippedInput>,
}

impl Coordinator {
    /// The ids of the manifest's tasks, in manifest order.
    fn manifest_ids(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.id.clone()).collect()
    }

    fn run_to_completion(&mut self, managed: &mut Option<ManagedRedis>, spec: &JobSpec) -> anyhow::Result<()> {
        let config = self.config.clone();
        self.workers.start(&config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpoints = (config.checkpoint_interval > 0.0)
            .then(|| start_checkpoints(self.store.another(Patience::Coordinator), Duration::from_secs_f64(config.checkpoint_interval), stop.clone()))
            .transpose()?;
        let chaos_interval = spec.chaos_redis_restart.or((config.redis_downtime > 0.0).then_some(5.0));
        if chaos_interval.is_some() && managed.is_none() {
            tracing::warn!("chaos restarts need the managed Redis; ignored with --redis");
        }
        let mut next_chaos = chaos_interval.map(|s| Instant::now() + Duration::from_secs_f64(s));
        let mut chaos_progress = ChaosProgress::new(spec.durability == Durability::Aof);
        let progress = report::Progress::new(self.meta.total_bytes, !self.progress_bar);
        let mut last_check = Instant::now() - Duration::from_secs(1);
        let mut last_reconcile = Instant::now();
        self.run_id = self.store.run_id().ok();
        let result = loop {
            std::thread::sleep(Duration::from_millis(50));
            if let Err(e) = self.workers.reap() {
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
                    chaos_progress = ChaosProgress::new(spec.durability == Durability::Aof);
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
            if self.detect_restart()? {
                last_reconcile = Instant::now();
            } else if last_reconcile.elapsed() > Duration::from_secs(3) {
                self.reconcile()?;
                last_reconcile = Instant::now();
            }
            if self.meta.commit_mode == CommitMode::Reduce {
                self.merge_new_results()?;
            }
            let counters = self.store.counters()?;
            progress.update(counters.bytes, counters.decoded_bytes, counters.tasks_done, self.tasks.len() as u64);
            if self.planner.is_none() && counters.tasks_done + counters.dead >= self.tasks.len() as u64 && self.all_finished()? {
                match self.meta.commit_mode {
                    CommitMode::Live => {
                        self.store.mark_finished()?;
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

    /// Every manifest task done or dead-lettered, checked in Redis.
    fn all_finished(&mut self) -> anyhow::Result<bool> {
        let ids = self.manifest_ids();
        Ok(self.store.finished_mask(&ids)?.iter().all(|d| *d))
    }

    fn summary(&mut self, job: &str, plugin: &str, files: usize, top: usize, wall: Duration) -> anyhow::Result<Summary> {
        let counters = self.store.counters()?;
        let (top_keys, distinct) = self.store.top_keys(top)?;
        let ids = self.manifest_ids();
        let done = self.store.done_mask(&ids)?;
        let dead = self.store.dead_letters()?;
        let dead_lettered = self
            .tasks
            .iter()
            .zip(&done)
            .filter(|(t, d)| !**d && dead.contains_key(&t.id))
            .map(|(t, _)| DeadTask {
                task: t.id.clone(),
                file: t.range.label(),
                bytes: match &t.range.encoded {
                    None => format!("{}-{}", t.range.start, t.range.end),
                    Some(e) => format!("{}-{} ({}, compressed)", t.range.start, t.range.end, e.encoding.name()),
                },
                error: dead[&t.id].clone(),
            })
            .collect();
        let c = &counters;
        let wall_seconds = wall.as_secs_f64();
        Ok(Summary {
            job: job.into(),
            plugin: plugin.into(),
            redis: String::new(),
            count_key: self.store.keys.counts.clone(),
            files,
            tasks: self.tasks.len(),
            bytes: c.bytes,
            rows: c.rows,
            tokens: c.tokens,
            distinct,
            wall_seconds,
            mb_per_second: c.bytes as f64 / 1e6 / wall_seconds.max(1e-9),
            decoded_bytes: c.decoded_bytes,
            decoded_mb_per_second: c.decoded_bytes as f64 / 1e6 / wall_seconds.max(1e-9),
            skipped_inputs: self.skipped.clone(),
            tasks_stolen: c.stolen,
            tasks_resubmitted: self.resubmissions,
            duplicates_suppressed: c.duplicates + c.duplicate_parts,
            retries: c.retries,
            dead_lettered,
            redis_restarts: self.redis_restarts,
            worker_respawns: self.workers.respawns(),
            pairs_committed: c.pairs,
            redis_cpu_seconds: 0.0,
            redis_peak_memory_mb: 0.0,
            short_rows: c.short_rows,
            invalid_utf8_rows: c.invalid_utf8_rows,
            resumed: false,
            output: None,
            top: top_keys,
        })
    }

    fn all_counts(&mut self) -> anyhow::Result<CountMap> {
        if let Some(counts) = self.final_counts.take() {
            return Ok(counts);
        }
        self.store.all_counts()
    }
}
