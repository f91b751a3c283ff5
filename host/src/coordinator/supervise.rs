//! The coordinator's worker processes: started from a [`WorkerSpec`],
//! respawned when they die, stopped at the end.

use std::ffi::OsString;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::JobSpec;
use crate::config::Config;
use crate::plugin::SandboxPolicy;
use crate::worker::{WorkerMode, WorkerSpec, EXIT_REDIS_DENIED, EXIT_REDIS_FULL, EXIT_WRONG_PLUGIN};

/// The `wc-host` arguments that start the worker `spec` describes, except
/// its Redis URL: that goes in the environment (`REDIS_URL`), because any
/// local user can read a process's command line.
pub fn worker_args(spec: &WorkerSpec) -> Vec<OsString> {
    let SandboxPolicy { max_memory_bytes, call_deadline, max_keys, max_key_bytes } = &spec.policy;
    let mut args: Vec<OsString> = vec!["worker".into(), "--job".into(), spec.job.clone().into(), "--plugin".into(), spec.plugin.clone().into()];
    args.extend(["--mode".into(), spec.mode.as_str().into()]);
    if let Some(name) = &spec.name {
        args.extend(["--name".into(), name.into()]);
    }
    if spec.exit_with_parent {
        args.push("--exit-with-parent".into());
    }
    args.push(format!("--plugin-memory-mib={}", max_memory_bytes >> 20).into());
    args.push(format!("--plugin-deadline-ms={}", call_deadline.as_millis()).into());
    args.push(format!("--plugin-max-keys={max_keys}").into());
    args.push(format!("--plugin-max-key-bytes={max_key_bytes}").into());
    args
}

/// A worker process that exited, seen by [`Workers::reap`].
pub(super) struct WorkerExit {
    pub pid: u32,
    /// Its consumer name (the key of its record in the worker hash).
    pub name: String,
    pub mode: &'static str,
    pub status: String,
    /// The pid of the worker started in its place, if any.
    pub respawned_as: Option<u32>,
}

struct WorkerProcess {
    child: Child,
    mode: WorkerMode,
    name: String,
}

/// The worker processes of one coordinator.
pub(super) struct Workers {
    template: WorkerSpec,
    /// Workers keep to warnings when the user asked for quiet, or under a
    /// progress bar (their lines would break it; the summary reports steals
    /// and retries).
    quiet: bool,
    running: Vec<WorkerProcess>,
    respawns: u64,
    /// Under a progress bar, workers' stderr is relayed line by line above
    /// the bar instead of being written through it.
    relay_stderr: bool,
}

impl Workers {
    pub fn new(url: &str, job: &str, spec: &JobSpec, progress_bar: bool) -> Workers {
        let template = WorkerSpec {
            redis: url.to_string(),
            job: job.to_string(),
            plugin: spec.plugin.clone(),
            mode: WorkerMode::Normal,
            name: None,
            exit_with_parent: true,
            policy: spec.policy.clone(),
        };
        let quiet = spec.quiet || (progress_bar && !crate::logging::is_verbose());
        Workers { template, quiet, running: Vec::new(), respawns: 0, relay_stderr: progress_bar }
    }

    pub fn respawns(&self) -> u64 {
        self.respawns
    }

    /// Worker processes this coordinator runs.
    pub fn count(&self) -> usize {
        self.running.len()
    }

    /// Starts the workers the config asks for.
    pub fn start(&mut self, config: &Config) -> anyhow::Result<()> {
        for (mode, count) in [(WorkerMode::Normal, config.normal_workers), (WorkerMode::Crash, config.crashing_workers), (WorkerMode::Sleep, config.sleeping_workers)] {
            for i in 0..count {
                self.spawn(mode, i)?;
            }
        }
        Ok(())
    }

    fn spawn(&mut self, mode: WorkerMode, index: usize) -> anyhow::Result<u32> {
        let exe = std::env::current_exe().context("cannot find the wc-host executable")?;
        let spec = WorkerSpec { mode, name: Some(format!("{}-{index}-{}", mode.as_str(), std::process::id())), ..self.template.clone() };
        let child = Command::new(exe)
            .args(worker_args(&spec))
            .args(self.quiet.then_some("--quiet"))
            .args((!self.quiet && crate::logging::is_verbose()).then_some("--verbose"))
            .env("REDIS_URL", &spec.redis)
            .stdin(Stdio::null())
            .stderr(if self.relay_stderr { Stdio::piped() } else { Stdio::inherit() })
            .spawn()
            .context("cannot start a worker process")?;
        let mut child = child;
        if let Some(stderr) = child.stderr.take() {
            std::thread::Builder::new()
                .name("worker-stderr".into())
                .spawn(move || {
                    use std::io::BufRead;
                    for line in std::io::BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                        let mut line = line;
                        line.push(b'\n');
                        crate::logging::print_above_bar(&line);
                    }
                })
                .context("cannot start a thread for a worker's stderr")?;
        }
        let pid = child.id();
        self.running.push(WorkerProcess { child, mode, name: spec.name.clone().unwrap_or_default() });
        Ok(pid)
    }

    /// Respawns normal workers that died; crashing and sleeping workers are
    /// not replaced (the crash is their purpose). A worker that exited
    /// because it can never work (wrong plugin, refused by Redis) stops the job.
    pub fn reap(&mut self) -> anyhow::Result<Vec<WorkerExit>> {
        let mut exits = Vec::new();
        let mut respawn = Vec::new();
        for (i, w) in self.running.iter_mut().enumerate() {
            if let Some(status) = w.child.try_wait()? {
                if status.code() == Some(EXIT_WRONG_PLUGIN) {
                    bail!("a worker refused the plugin (hash mismatch); see its message above");
                }
                if status.code() == Some(EXIT_REDIS_DENIED) {
                    bail!("a worker was refused by Redis (NOPERM or credentials): the ACL user lacks a permission wc-host needs; see the README, section Security");
                }
                if status.code() == Some(EXIT_REDIS_FULL) {
                    bail!(
                        "Redis is out of memory (maxmemory reached, noeviction): a worker's commit was refused (see its message above). \
                         The job is stopped and resumable: raise Redis's maxmemory, then run the same command again"
                    );
                }
                exits.push(WorkerExit { pid: w.child.id(), name: w.name.clone(), mode: w.mode.as_str(), status: status.to_string(), respawned_as: None });
                if w.mode == WorkerMode::Normal {
                    tracing::warn!("worker pid {} exited ({status}); starting another", w.child.id());
                    respawn.push(i);
                }
            }
        }
        for i in respawn.into_iter().rev() {
            let dead = self.running.remove(i);
            self.respawns += 1;
            let pid = self.spawn(WorkerMode::Normal, 1000 + self.respawns as usize)?;
            if let Some(exit) = exits.iter_mut().find(|e| e.pid == dead.child.id()) {
                exit.respawned_as = Some(pid);
            }
        }
        // Exited crashing and sleeping workers are dropped (reported once).
        self.running.retain(|w| w.mode == WorkerMode::Normal || !exits.iter().any(|e| e.pid == w.child.id()));
        Ok(exits)
    }

    /// Gives sleeping workers the time to wake up and make their late
    /// commit (which the done-set turns into a counted duplicate), so that
    /// the summary shows it.
    pub fn wait_for_stragglers(&mut self, claim_timeout: f64) {
        let deadline = Instant::now() + Duration::from_secs_f64(claim_timeout * 2.0 + 3.0);
        while Instant::now() < deadline
            && self.running.iter_mut().any(|w| w.mode == WorkerMode::Sleep && matches!(w.child.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Once the job is finished, workers hold nothing of value: they are
    /// killed rather than left to notice.
    pub fn stop_all(&mut self) {
        for w in &mut self.running {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        self.running.clear();
    }
}
