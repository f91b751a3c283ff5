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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::input::InputFormat;
use crate::plugin::{PluginRuntime, SandboxPolicy};
use crate::protocol::{field, is_out_of_memory, now_ms, redact, CommitMode, EventKind, SetEncoding, JobMeta, Keys, Patience, Store, Task, STATE_FINISHED};
use crate::redis_server::{Durability, ManagedRedis, DEFAULT_DATA_DIR};
use crate::report::{self, DeadTask, Faults, PhaseSeconds, ProgressState, SkippedInput, Summary};
use crate::report_cmd::summary_of;
use crate::tally::Tally;
use checkpoint::{start_checkpoints, ChaosProgress, PersistenceReport};
use plan::Planner;
use reduce::Published;
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
    pub report: ReportChoice,
    pub json: bool,
    pub quiet: bool,
    pub durability: Durability,
    /// Chaos: SIGKILL and restart the managed Redis every so many seconds.
    pub chaos_redis_restart: Option<f64>,
    pub fresh: bool,
    pub commit_mode: CommitMode,
    /// How the published sorted set is held; `None`: compact on the managed
    /// Redis, indexed on a given one (whose other clients may look members
    /// up by name).
    pub set_encoding: Option<SetEncoding>,
    /// `None`: 1 on one server, 4 per primary on a Cluster.
    pub partitions: Option<u32>,
    /// Replicas that must acknowledge each commit and the published result
    /// (WAIT); 0: none.
    pub replicas_ack: u32,
    pub params: Vec<(String, String)>,
    pub policy: SandboxPolicy,
    /// How the files are read: column mapping, delimiter, headers.
    pub format: InputFormat,
}

/// Partitions per primary when a Cluster's job does not say: enough that
/// the primaries stay evenly loaded as tasks are drawn by hash.
const PARTITIONS_PER_PRIMARY: u32 = 4;

/// The job's partitions: as asked, else 1 on one server and
/// [`PARTITIONS_PER_PRIMARY`] per primary on a Cluster. Live mode needs one
/// (its counts and its gate must share a slot).
fn partitions_for(spec: &JobSpec, store: &mut Store) -> anyhow::Result<u32> {
    if spec.commit_mode == CommitMode::Live {
        anyhow::ensure!(spec.partitions.unwrap_or(1) == 1, "--commit-mode live keeps the counts and the done-set in one slot: it takes no --partitions (or 1)");
        return Ok(1);
    }
    if let Some(p) = spec.partitions {
        return Ok(p);
    }
    Ok(if store.deployment().is_cluster() { PARTITIONS_PER_PRIMARY * store.primaries()? as u32 } else { 1 })
}

/// Whether and where a job writes its HTML report.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportChoice {
    /// `DATA_DIR/report.html` with the managed Redis; none with `--redis`.
    Default,
    To(PathBuf),
    None,
}

/// Runs a job to its end; the exit code is 1 when tasks were dead-lettered.
pub fn run(spec: JobSpec) -> anyhow::Result<i32> {
    let started = Instant::now();
    let config = spec.config.clone();
    let runtime = PluginRuntime::new(spec.policy.clone())?;
    // Loading compiles the plugin into the on-disk cache the workers reuse.
    let plugin = runtime.load(&spec.plugin)?;
    if let Some(warning) = crate::plugin::stamp::staleness_of_file(&spec.plugin) {
        tracing::warn!("{warning}");
    }
    // Parameters are checked here, once, rather than by every task.
    drop(plugin.instantiate()?.start_task(&spec.params)?);

    let planner = Planner::start(&spec.inputs, &config, &spec.format, &plugin.info().columns)?;
    if spec.commit_mode == CommitMode::Live && spec.set_encoding == Some(SetEncoding::Compact) {
        tracing::warn!("--set-encoding compact applies to reduce mode's publish; live mode's sorted set grows by ZINCRBY and stays indexed");
    }
    let mut managed = match &spec.redis {
        Some(_) => None,
        None => {
            let redis = ManagedRedis::start(&spec.data_dir, spec.durability)?;
            tracing::info!("managed Redis on 127.0.0.1 (pid {}), data in {}", redis.pid().unwrap_or(0), redis.dir().display());
            Some(redis)
        }
    };
    let url = spec.redis.clone().unwrap_or_else(|| managed.as_ref().expect("managed").url());
    let mut store = Store::new(&url, Keys::for_meta("-"), Patience::Coordinator)?;
    store.connect_once()?;
    let cluster = store.deployment().is_cluster();
    let partitions = partitions_for(&spec, &mut store)?;
    let job = plan::job_id(plugin.hash(), &spec.params, &config, spec.commit_mode, planner.split_bytes, &planner.identities, &spec.format, partitions);
    store.keys = Keys::named(&job, &config.stream, &config.count_key, &config.fname_field, partitions);
    // A job met again keeps the tags it was given; a new one on a Cluster
    // gets tags that spread its partitions evenly over the primaries.
    let partition_tags = match JobMeta::from_hash(&store.read_meta()?) {
        Ok(known) => known.partition_tags,
        Err(_) if cluster && partitions > 1 => store.balanced_tags(&job, partitions)?,
        Err(_) => Vec::new(),
    };
    if !partition_tags.is_empty() {
        store.keys = Keys::tagged(&job, &config.stream, &config.count_key, &config.fname_field, &partition_tags);
    }
    tracing::info!(
        "job {job}: {} files, {:.1} MB, plugin {}, {partitions} partition{}",
        planner.files(),
        planner.total_bytes as f64 / 1e6,
        plugin.label(),
        if partitions == 1 { "" } else { "s" }
    );
    if cluster {
        for node in store.primaries_without_persistence()? {
            tracing::warn!(
                "Cluster primary {node} keeps no append-only file: if it and its replica crash, it restarts from its last snapshot and the work since is redone (counts stay exact). wc-host takes no checkpoints on a Cluster; persistence is the operator's (appendonly yes)."
            );
        }
    }
    if spec.fresh {
        store.delete_job()?;
    }
    let previous_state = store.job_state()?;
    let inputs_id = plan::inputs_id(&planner.identities);
    if previous_state.is_none() {
        if let Some(note) = follows_another_job(&mut store, &job, &inputs_id, plugin.hash(), &plugin.info().name, &spec.params)? {
            tracing::warn!("{note}");
        }
    }
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
        partitions,
        replicas_ack: spec.replicas_ack,
        partition_tags,
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
        run_ids: None,
        checkpoints: !cluster,
        persistence: Arc::default(),
        last_master_check: Instant::now(),
        final_counts: None,
        merged: Tally::new(),
        set_encoding: spec.set_encoding.unwrap_or(if spec.redis.is_none() { SetEncoding::Compact } else { SetEncoding::Indexed }),
        published: None,
        merged_tasks: HashSet::new(),
        submitted: HashSet::new(),
        resubmissions: 0,
        last_sample: None,
        skipped: Vec::new(),
        first_planned: None,
        phases: PhaseSeconds::default(),
    };
    let resumed = previous_state.is_some();
    let reported_again = previous_state.as_deref() == Some(STATE_FINISHED);
    if reported_again {
        tracing::info!("job {job} already finished in this Redis; reporting it again (use --fresh to count again)");
        coordinator.take_whole_plan()?;
    } else {
        if resumed {
            tracing::info!("job {job} found unfinished in Redis: resuming it");
        }
        let ran = coordinator.register().and_then(|()| {
            coordinator.store.set_meta_fields(&[
                (field::STARTED_AT_MS, now_ms().to_string()),
                (field::FILES, file_count.to_string()),
                (field::INPUTS_ID, inputs_id.clone()),
            ])?;
            coordinator.store.record_event(EventKind::Started, &[("resumed", resumed.to_string())]);
            coordinator.run_to_completion(&mut managed, &spec)
        });
        if let Err(e) = ran {
            // Stopped, not finished: everything is in Redis, so running the
            // same command again resumes the job.
            coordinator.workers.stop_all();
            if let Some(redis) = managed.as_mut() {
                let _ = redis.stop();
            }
            return Err(e.context(format!("job {job} stopped; it is resumable: run the same command again")));
        }
        coordinator.workers.wait_for_stragglers(config.claim_timeout);
        coordinator.workers.stop_all();
        let wall = started.elapsed().as_secs_f64();
        let bytes = coordinator.store.counters()?.bytes;
        coordinator.publish_fault_counters()?;
        coordinator.store.record_first_run(wall, bytes as f64 / 1e6 / wall.max(1e-9), now_ms())?;
        coordinator.store.record_event(EventKind::Finished, &[("wall_seconds", format!("{wall:.3}"))]);
    }

    let mut summary = coordinator.summary(&job, plugin.label(), file_count, config.top, started.elapsed())?;
    summary.resumed = resumed;
    summary.reported_again = reported_again;
    summary.redis = redact(&url);
    summary.counts_hint = counts_hint(&job, &summary.count_key, &spec);
    if let Ok((cpu, peak)) = coordinator.store.server_usage() {
        summary.redis_cpu_seconds = cpu;
        summary.redis_peak_memory_mb = peak;
    }
    let report_path = match &spec.report {
        ReportChoice::To(path) => Some(path.clone()),
        ReportChoice::Default if spec.redis.is_none() => Some(spec.data_dir.join("report.html")),
        _ => None,
    };
    if let Some(path) = &spec.output {
        let at = Instant::now();
        // The counts this run merged and published, else Redis's.
        match (&coordinator.final_counts, &coordinator.published) {
            (Some(counts), Some(published)) => crate::count::write_sorted_counts(path, &reduce::by_count_descending(counts, &published.order))?,
            _ => crate::count::write_counts(path, &coordinator.store.all_counts()?)?,
        }
        summary.output = Some(path.display().to_string());
        coordinator.phases.output = at.elapsed().as_secs_f64();
    }
    if let Some(path) = report_path {
        let at = Instant::now();
        let local = coordinator.published.as_ref().map(|p| (p.view.top.as_slice(), p.view.rank_counts.as_slice()));
        let written = crate::report_cmd::write_report(&mut coordinator.store, &summary, &path, local);
        coordinator.phases.report = at.elapsed().as_secs_f64();
        match written {
            Ok(()) => summary.report = Some(path.display().to_string()),
            Err(e) => tracing::warn!("the HTML report could not be written to {}: {e:#}", path.display()),
        }
    }
    coordinator.workers.stop_all();
    if let Some(redis) = managed.as_mut() {
        let at = Instant::now();
        redis.stop()?;
        coordinator.phases.final_save = at.elapsed().as_secs_f64();
    }
    if !reported_again {
        summary.phase_seconds = coordinator.phases.clone();
        summary.set_encoding = coordinator.published.as_ref().map(|p| p.encoding.as_str().to_string());
    }
    if spec.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        report::print_summary(&summary);
    }
    Ok(if summary.dead_lettered.is_empty() { 0 } else { 1 })
}

/// A new job over the same files as the last job started in this Redis,
/// with another build of the plugin or other parameters, starts from zero:
/// the note says so, rather than a silently new job id.
fn follows_another_job(store: &mut Store, job: &str, inputs_id: &str, plugin_hash: &str, plugin_name: &str, params: &[(String, String)]) -> anyhow::Result<Option<String>> {
    let Some(last) = store.latest_job()?.filter(|last| last != job) else { return Ok(None) };
    let mut other = store.another(Patience::Coordinator);
    other.keys = Keys::for_meta(&last);
    let meta = other.read_meta()?;
    if meta.get(field::INPUTS_ID).map(String::as_str) != Some(inputs_id) {
        return Ok(None);
    }
    let short = |h: &str| h.chars().take(12).collect::<String>();
    let what = match (meta.get(field::PLUGIN_NAME), meta.get(field::PLUGIN_HASH)) {
        (Some(name), Some(hash)) if name == plugin_name && hash != plugin_hash => {
            format!("another build of plugin {plugin_name} (sha256 {} then, {} now)", short(hash), short(plugin_hash))
        }
        (Some(name), _) if name != plugin_name => format!("plugin {name}"),
        _ if meta.get(field::PARAMS) != Some(&serde_json::to_string(params).unwrap_or_default()) => "other plugin parameters".to_string(),
        _ => "other settings (split size, partitions, commit mode or format)".to_string(),
    };
    Ok(Some(format!(
        "job {job} is a new job and counts from zero: the last job over the same files, {last}, used {what}; its counts stay under job {last}"
    )))
}

/// A command that reads the counts back and works as printed: the managed
/// Redis stops at the end of the job and has a generated password, so for
/// it `wc-host top` (which starts it again), else a redis-cli line.
fn counts_hint(job: &str, count_key: &str, spec: &JobSpec) -> String {
    match &spec.redis {
        None => {
            let data_dir = if spec.data_dir == std::path::Path::new(DEFAULT_DATA_DIR) {
                String::new()
            } else {
                format!(" --data-dir {}", spec.data_dir.display())
            };
            format!("wc-host top --job {job}{data_dir}")
        }
        Some(_) => format!("ZREVRANGE {count_key} 0 9 WITHSCORES (or wc-host top --job {job} --redis URL)"),
    }
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
    /// The run ids of the servers holding each partition and the job's keys.
    run_ids: Option<Vec<String>>,
    /// BGSAVE checkpoints: on one server; on a Cluster persistence is the operator's.
    checkpoints: bool,
    /// Failing snapshots and append-only files, found by the watch.
    persistence: Arc<Mutex<PersistenceReport>>,
    /// When the sentinels were last asked who the master is.
    last_master_check: Instant,
    /// Reduce mode: the merged counts once published, kept for `--output`.
    final_counts: Option<Tally>,
    /// Reduce mode: results merged so far, and of which tasks.
    merged: Tally,
    /// How the sorted set is to be published.
    set_encoding: SetEncoding,
    /// Reduce mode: what the last reduce published (of `merged`, then of
    /// `final_counts`).
    published: Option<reduce::Published>,
    merged_tasks: HashSet<String>,
    /// Tasks this coordinator submitted, and how many times it had to
    /// submit one again (lost in a restore, or stranded).
    submitted: HashSet<String>,
    resubmissions: u64,
    /// When the last progress sample was recorded.
    last_sample: Option<Instant>,
    /// Zip members the plan left out, and why.
    skipped: Vec<SkippedInput>,
    /// When the first task was planned (the workers' phase starts).
    first_planned: Option<Instant>,
    /// Where this run's time went, for the summary.
    phases: PhaseSeconds,
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
        // The watch runs on every deployment (every 2 s without checkpoints).
        let interval = if config.checkpoint_interval > 0.0 { config.checkpoint_interval } else { 2.0 };
        let bgsave = self.checkpoints && config.checkpoint_interval > 0.0;
        let checkpoints = start_checkpoints(
            self.store.another(Patience::Coordinator),
            Duration::from_secs_f64(interval),
            bgsave,
            self.persistence.clone(),
            stop.clone(),
        )?;
        let chaos_interval = spec.chaos_redis_restart.or((config.redis_downtime > 0.0).then_some(5.0));
        if chaos_interval.is_some() && managed.is_none() {
            tracing::warn!("chaos restarts need the managed Redis; ignored with --redis");
        }
        let mut next_chaos = chaos_interval.map(|s| Instant::now() + Duration::from_secs_f64(s));
        let mut chaos_progress = ChaosProgress::new(spec.durability == Durability::Aof);
        let progress = report::Progress::new(self.meta.total_bytes, !self.progress_bar);
        let mut last_check = Instant::now() - Duration::from_secs(1);
        let mut last_reconcile = Instant::now();
        self.run_ids = self.store.serving_run_ids().ok();
        // Every 100 ms; every 10 ms once the last tasks are out, so that the
        // end of the job is seen within a few ms of the last commit.
        let mut check_every = Duration::from_millis(100);
        let mut first = true;
        let result = loop {
            // The first round at once: it submits the first tasks.
            if !std::mem::take(&mut first) {
                std::thread::sleep(check_every.min(Duration::from_millis(50)));
            }
            match self.workers.reap() {
                Ok(exits) => {
                    for exit in exits {
                        self.store.forget_worker(&exit.name);
                        let mut fields = vec![("pid", exit.pid.to_string()), ("status", exit.status.clone()), ("mode", exit.mode.to_string())];
                        self.store.record_event(EventKind::WorkerDied, &fields);
                        if let Some(new_pid) = exit.respawned_as {
                            fields = vec![("pid", new_pid.to_string()), ("replaces", exit.pid.to_string())];
                            self.store.record_event(EventKind::WorkerRespawned, &fields);
                        }
                    }
                }
                Err(e) => break Err(e),
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
            if last_check.elapsed() < check_every {
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
            progress.update(&ProgressState {
                bytes: counters.bytes,
                decoded_bytes: counters.decoded_bytes,
                total_bytes: self.meta.total_bytes,
                tasks_done: counters.tasks_done,
                tasks_known: self.tasks.len() as u64,
                planning: self.planner.is_some(),
                faults: self.faults(counters.stolen, counters.dead),
            });
            if self.last_sample.is_none_or(|at| at.elapsed() >= Duration::from_millis(500)) {
                self.last_sample = Some(Instant::now());
                self.publish_fault_counters()?;
                let sample = [("bytes", counters.bytes.to_string()), ("tasks", counters.tasks_done.to_string())];
                self.store.record_event(EventKind::Progress, &sample);
            }
            let left = (self.tasks.len() as u64).saturating_sub(counters.tasks_done + counters.dead);
            if self.planner.is_none() && left <= self.workers.count().max(1) as u64 {
                check_every = Duration::from_millis(10);
            }
            if self.planner.is_none() && left == 0 && self.all_finished()? {
                if self.phases.workers == 0.0 {
                    self.phases.workers = self.first_planned.map_or(0.0, |at| at.elapsed().as_secs_f64());
                }
                match self.meta.commit_mode {
                    CommitMode::Live => {
                        self.store.mark_finished()?;
                        if self.published_safely()? {
                            break Ok(());
                        }
                    }
                    CommitMode::Reduce => match self.reduce().and_then(|()| self.published_safely()) {
                        Ok(true) => {
                            self.final_counts = Some(std::mem::take(&mut self.merged));
                            break self.store.drop_results();
                        }
                        Ok(false) => {}
                        Err(e) if is_out_of_memory(&e) => break Err(e),
                        // A restart during the reduce: recover, check, redo.
                        Err(e) => tracing::warn!("building the sorted set failed, will retry: {e:#}"),
                    },
                }
            }
        };
        progress.finish();
        stop.store(true, Ordering::SeqCst);
        let _ = checkpoints.join();
        result
    }

    /// After the counts are published: did that land on a server that will
    /// keep it? With Sentinel, the server must still be the master the
    /// sentinels name (an old master accepts writes for a while after a
    /// failover, and loses them); with `--replicas-ack N`, N replicas must
    /// hold it (and so everything it rests on). When not, the job carries
    /// on: the loop notices the failover and publishes again.
    fn published_safely(&mut self) -> anyhow::Result<bool> {
        if !self.store.still_the_master()? {
            tracing::warn!("the counts were published on a server that is no longer the master; publishing again on the new one");
            self.store.reconnect();
            return Ok(false);
        }
        let n = self.meta.replicas_ack;
        if n > 0 && !self.store.wait_replicas(n, Duration::from_secs(5))? {
            tracing::warn!("the published counts are not yet on {n} replica(s) (--replicas-ack); waiting for them");
            return Ok(false);
        }
        Ok(true)
    }

    /// Every manifest task done or dead-lettered, checked in Redis.
    fn all_finished(&mut self) -> anyhow::Result<bool> {
        let ids = self.manifest_ids();
        Ok(self.store.finished_mask(&ids)?.iter().all(|d| *d))
    }

    fn summary(&mut self, job: &str, plugin: &str, files: usize, top: usize, wall: Duration) -> anyhow::Result<Summary> {
        let counters = self.store.counters()?;
        let (top_keys, distinct) = match &self.published {
            Some(Published { view, .. }) => (view.top.iter().take(top).cloned().collect(), view.distinct),
            None => self.store.top_keys(top)?,
        };
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
        // The run that finished the job recorded its timings (a re-report shows them).
        let wall_seconds = c.first_wall_seconds.unwrap_or(wall.as_secs_f64());
        let mut persistence = self.persistence.lock().unwrap().clone();
        persistence.warnings.extend(self.store.write_refusals());
        Ok(Summary {
            files,
            tasks: self.tasks.len(),
            skipped_inputs: self.skipped.clone(),
            dead_lettered,
            checkpoints_failed: c.checkpoints_failed.max(persistence.checkpoints_failed),
            persistence_warnings: persistence.warnings,
            ..summary_of(job, plugin, &self.store.keys.counts, self.meta.partitions, c, wall_seconds, distinct, top_keys)
        })
    }

    /// The faults so far, as the coordinator knows them.
    fn faults(&self, stolen: u64, dead: u64) -> Faults {
        Faults {
            stolen,
            resubmitted: self.resubmissions,
            workers_respawned: self.workers.respawns(),
            redis_restarts: self.redis_restarts,
            checkpoints_failed: self.persistence.lock().unwrap().checkpoints_failed,
            dead_lettered: dead,
        }
    }

    /// Writes the coordinator's own counters into the meta hash (for
    /// `status` and `report`); done twice a second, since a restore may
    /// roll them back.
    fn publish_fault_counters(&mut self) -> anyhow::Result<()> {
        let fields = vec![
            (field::PLANNED_TASKS, self.tasks.len().to_string()),
            (field::MERGED_KEYS, self.final_counts.as_ref().map_or(self.merged.len(), Tally::len).to_string()),
            (field::REDIS_RESTARTS, self.redis_restarts.to_string()),
            (field::WORKER_RESPAWNS, self.workers.respawns().to_string()),
            (field::RESUBMITTED, self.resubmissions.to_string()),
            (field::CHECKPOINTS_FAILED, self.persistence.lock().unwrap().checkpoints_failed.to_string()),
        ];
        self.store.set_meta_fields(&fields)
    }

}
