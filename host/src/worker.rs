//! A worker process: claims tasks from the job's stream, counts them with
//! the plugin, commits through the Redis Function. Stateless: everything it
//! needs is in Redis and the shared files, so it can be killed at any time
//! and started by hand on another machine.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::Value;

use crate::cli::SandboxArgs;
use crate::count::{count_range, RangeCounts};
use crate::input::ReadStats;
use crate::plugin::{PluginInstance, PluginRuntime};
use crate::store::{self, CommitMode, Entry, JobMeta, Keys, Store, GROUP, MAX_PAIRS_PER_CALL};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerMode {
    /// Count and commit tasks until the job is finished.
    Normal,
    /// Exit abruptly (SIGKILL to itself) right after claiming a task.
    Crash,
    /// Stall past the claim timeout before committing the first task.
    Sleep,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Redis URL (passwords and ACL users in the URL work).
    #[arg(long, env = "REDIS_URL")]
    pub redis: String,
    /// The job id (printed by the coordinator and by `wc-host status`).
    #[arg(long)]
    pub job: String,
    /// The plugin file; must be the job's plugin (checked by hash).
    #[arg(long)]
    pub plugin: PathBuf,
    #[arg(long, value_enum, default_value = "normal")]
    pub mode: WorkerMode,
    /// Consumer name in the group (default: host-pid).
    #[arg(long)]
    pub name: Option<String>,
    /// Die with the parent process (set by the coordinator).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Exit code when the plugin does not match the job's.
pub const EXIT_WRONG_PLUGIN: i32 = 3;
/// Exit code when Redis refuses the worker (credentials, ACL permissions):
/// respawning it would not help.
pub const EXIT_REDIS_DENIED: i32 = 4;

fn is_denied(e: &anyhow::Error) -> bool {
    let msg = format!("{e:#}");
    msg.contains("NOPERM") || msg.contains("credentials") || msg.contains("requires a password")
}

pub fn run_cli(args: WorkerArgs) -> anyhow::Result<i32> {
    match run_worker(args) {
        Err(e) if is_denied(&e) => {
            eprintln!("error: {e:#}");
            Ok(EXIT_REDIS_DENIED)
        }
        other => other,
    }
}

fn run_worker(args: WorkerArgs) -> anyhow::Result<i32> {
    if args.exit_with_parent {
        // SAFETY: plain prctl call; a worker must not outlive its coordinator.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
    let name = args.name.clone().unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let mut store = Store::new(&args.redis, Keys::for_meta(&args.job))?;
    store.connect_once()?;
    let meta = wait_for_meta(&mut store)?;
    store.keys = meta.keys(&args.job);
    let runtime = PluginRuntime::new(args.sandbox.policy())?;
    let plugin = runtime.load(&args.plugin)?;
    if plugin.hash() != meta.plugin_hash {
        eprintln!(
            "error: refusing to run {}: its sha256 {} differs from the job's plugin {}",
            args.plugin.display(),
            plugin.hash(),
            meta.plugin_hash
        );
        return Ok(EXIT_WRONG_PLUGIN);
    }
    let instance = plugin.instantiate()?;
    let mut worker = Worker { name, store, meta, instance, mode: args.mode, url: args.redis.clone() };
    worker.run()?;
    Ok(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "worker".into())
}

fn wait_for_meta(store: &mut Store) -> anyhow::Result<JobMeta> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let meta = store.with_retry(Duration::from_secs(60), |conn, keys| store::read_meta(conn, keys))?;
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
    url: String,
}

/// How long a worker keeps retrying Redis before giving up (and exiting for
/// the coordinator to respawn it).
const REDIS_PATIENCE: Duration = Duration::from_secs(120);

impl Worker {
    fn run(&mut self) -> anyhow::Result<()> {
        let claim_timeout = Duration::from_secs_f64(self.meta.claim_timeout);
        let current: Arc<Mutex<Option<String>>> = Arc::default();
        if self.mode == WorkerMode::Normal {
            self.start_heartbeat(current.clone(), claim_timeout)?;
        }
        let mut first = true;
        loop {
            let Some(entry) = self.next_entry(claim_timeout)? else {
                if self.job_finished()? {
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
            *current.lock().unwrap() = Some(entry.id.clone());
            let result = count_range(&mut self.instance, &self.meta.params, &entry.task.range);
            if self.mode == WorkerMode::Sleep && first {
                let nap = claim_timeout * 2 + Duration::from_secs(1);
                tracing::warn!("worker {} (sleeping mode): stalling {nap:?} before committing task {}", self.name, entry.task.id);
                std::thread::sleep(nap);
            }
            match result {
                Ok(counts) => self.commit(&entry, counts)?,
                Err(err) => self.fail(&entry, &err.to_string())?,
            }
            *current.lock().unwrap() = None;
            first = false;
        }
    }

    /// A stolen task first (idle past the claim timeout), else a new one.
    fn next_entry(&mut self, claim_timeout: Duration) -> anyhow::Result<Option<Entry>> {
        let name = self.name.clone();
        let min_idle = claim_timeout.as_millis() as u64;
        let claimed: Value = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            redis::cmd("XAUTOCLAIM").arg(&keys.stream).arg(GROUP).arg(&name).arg(min_idle).arg("0-0").arg("COUNT").arg(1).query(conn)
        })?;
        if let Value::Array(parts) = &claimed {
            if let Some(entries) = parts.get(1) {
                let (entries, unusable) = store::parse_entries(entries);
                self.drop_unusable(&unusable)?;
                if let Some(entry) = entries.into_iter().next() {
                    tracing::info!("worker {}: stole task {} idle past the claim timeout", self.name, entry.task.id);
                    self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("HINCRBY").arg(&keys.meta).arg("stolen").arg(1).query::<i64>(conn))?;
                    return Ok(Some(entry));
                }
            }
            // parts[2]: ids whose entries were deleted; XAUTOCLAIM already
            // dropped them from the PEL. Their tasks are re-submitted by the
            // coordinator's reconciliation (every task not done is).
        }
        let read: Value = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            redis::cmd("XREADGROUP")
                .arg("GROUP").arg(GROUP).arg(&name)
                .arg("COUNT").arg(1).arg("BLOCK").arg(1000)
                .arg("STREAMS").arg(&keys.stream).arg(">")
                .query(conn)
        })?;
        let Value::Array(streams) = &read else { return Ok(None) };
        for stream in streams {
            if let Value::Array(pair) = stream {
                if let Some(entries) = pair.get(1) {
                    let (entries, unusable) = store::parse_entries(entries);
                    self.drop_unusable(&unusable)?;
                    if let Some(entry) = entries.into_iter().next() {
                        return Ok(Some(entry));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Entries that are not tasks (written by someone else) are acked away.
    fn drop_unusable(&mut self, ids: &[String]) -> anyhow::Result<()> {
        for id in ids {
            tracing::warn!("worker {}: dropping stream entry {id}: not a wc-host task", self.name);
            self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("XACK").arg(&keys.stream).arg(GROUP).arg(id).query::<i64>(conn))?;
        }
        Ok(())
    }

    fn job_finished(&mut self) -> anyhow::Result<bool> {
        let state: Option<String> = self.store.with_retry(REDIS_PATIENCE, |conn, keys| redis::cmd("HGET").arg(&keys.meta).arg("state").query(conn))?;
        Ok(state.as_deref() == Some("finished"))
    }

    /// Commits a task's counts. Each commit call is applied at most once
    /// whatever happens (see `wc_functions.lua`), so a call is simply retried
    /// until Redis answers.
    fn commit(&mut self, entry: &Entry, counts: RangeCounts) -> anyhow::Result<()> {
        // A plugin returns each key once (the contract); were it not to, both
        // commit paths add the repeats up, so no merge is needed here. Zero
        // counts carry nothing (and live mode's function refuses them).
        let mut pairs = counts.counts;
        pairs.retain(|(_, n)| *n > 0);
        let applied = match self.meta.commit_mode {
            CommitMode::Reduce => self.commit_result(entry, &pairs, &counts.stats)?,
            CommitMode::Live => {
                pairs.sort_unstable(); // a total order: parts must be the same on every attempt
                self.commit_live(entry, &pairs, &counts.stats)?
            }
        };
        if applied {
            tracing::debug!("worker {}: committed task {}", self.name, entry.task.id);
        } else {
            tracing::info!("worker {}: task {} was already counted; duplicate suppressed", self.name, entry.task.id);
        }
        Ok(())
    }

    /// Reduce mode: the task's counts as one blob, in one call.
    fn commit_result(&mut self, entry: &Entry, pairs: &[(String, u64)], stats: &ReadStats) -> anyhow::Result<bool> {
        let blob = store::blob::encode(pairs);
        let tokens: u64 = pairs.iter().map(|(_, n)| n).sum();
        let result: i64 = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            redis::cmd("FCALL")
                .arg("wc_commit_task_result").arg(4)
                .arg(&keys.stream).arg(&keys.done).arg(&keys.results).arg(&keys.meta)
                .arg(GROUP).arg(&entry.id).arg(&entry.task.id)
                .arg(stats.rows).arg(stats.bytes).arg(stats.short_rows).arg(stats.invalid_utf8_rows)
                .arg(tokens).arg(pairs.len())
                .arg(&blob)
                .query(conn)
        })?;
        Ok(result == 1)
    }

    /// Live mode: ZINCRBYs in parts of at most `MAX_PAIRS_PER_CALL` pairs,
    /// a deterministic function of the task (keys sorted), each part gated.
    fn commit_live(&mut self, entry: &Entry, pairs: &[(String, u64)], stats: &ReadStats) -> anyhow::Result<bool> {
        let parts: Vec<&[(String, u64)]> = if pairs.is_empty() { vec![&[][..]] } else { pairs.chunks(MAX_PAIRS_PER_CALL).collect() };
        let mut applied = false;
        for (index, part) in parts.iter().enumerate() {
            let total = parts.len();
            let result: i64 = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
                let mut cmd = redis::cmd("FCALL");
                cmd.arg("atomic_increment_and_acknowledge").arg(6)
                    .arg(&keys.stream).arg(&keys.counts).arg(&keys.done).arg(&keys.parts).arg(&keys.partcount).arg(&keys.meta)
                    .arg(GROUP).arg(&entry.id).arg(&entry.task.id).arg(index).arg(total)
                    .arg(stats.rows).arg(stats.bytes).arg(stats.short_rows).arg(stats.invalid_utf8_rows);
                for (key, n) in part.iter() {
                    cmd.arg(key.as_bytes()).arg(*n);
                }
                cmd.query(conn)
            })?;
            applied |= result == 1;
        }
        Ok(applied)
    }

    fn fail(&mut self, entry: &Entry, error: &str) -> anyhow::Result<()> {
        let max = self.meta.max_attempts;
        let outcome: String = self.store.with_retry(REDIS_PATIENCE, |conn, keys| {
            let mut cmd = redis::cmd("FCALL");
            cmd.arg("wc_fail_task").arg(5)
                .arg(&keys.stream).arg(&keys.done).arg(&keys.attempts).arg(&keys.dead).arg(&keys.meta)
                .arg(GROUP).arg(&entry.id).arg(&entry.task.id).arg(max).arg(error);
            for (f, v) in store::entry_fields(&entry.task, keys) {
                cmd.arg(f).arg(v);
            }
            cmd.query(conn)
        })?;
        match outcome.as_str() {
            "dead" => tracing::error!("task {} dead-lettered after {max} attempts: {error}", entry.task.id),
            "retry" => tracing::warn!("task {} failed, will retry: {error}", entry.task.id),
            _ => {}
        }
        Ok(())
    }

    /// Keeps the task being counted claimed (XCLAIM to self resets its idle
    /// time), so a slow but live worker is not robbed of a large task.
    fn start_heartbeat(&self, current: Arc<Mutex<Option<String>>>, claim_timeout: Duration) -> anyhow::Result<()> {
        let mut store = Store::new(&self.url, self.store.keys.clone())?;
        let name = self.name.clone();
        let period = claim_timeout / 3;
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || loop {
                std::thread::sleep(period);
                let Some(id) = current.lock().unwrap().clone() else { continue };
                // Only while the entry is still ours: never take back a task
                // that another worker stole while we were stalled.
                let result = store.with_retry(period, |conn, keys| {
                    let pending: Value = redis::cmd("XPENDING").arg(&keys.stream).arg(GROUP).arg(&id).arg(&id).arg(1).query(conn)?;
                    let owner = match &pending {
                        Value::Array(rows) => rows.first().and_then(|r| match r {
                            Value::Array(fields) => fields.get(1).and_then(store::as_string),
                            _ => None,
                        }),
                        _ => None,
                    };
                    if owner.as_deref() == Some(name.as_str()) {
                        redis::cmd("XCLAIM").arg(&keys.stream).arg(GROUP).arg(&name).arg(0).arg(&id).arg("JUSTID").query::<Value>(conn)?;
                    }
                    Ok(())
                });
                if let Err(e) = result {
                    tracing::debug!("heartbeat for {id} failed: {e:#}");
                }
            })
            .context("cannot start the heartbeat thread")?;
        Ok(())
    }
}
