//! `wc-host worker`: one worker process, started by the coordinator (whose
//! argv for it is built by `coordinator::supervise` from a `WorkerSpec` and
//! checked against this parser below) or by hand on another machine.

use std::path::PathBuf;

use clap::Args;

use super::shared::{one_of, SandboxArgs};
use crate::worker::{WorkerMode, WorkerSpec};

#[derive(Debug, Args)]
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
    #[arg(long, value_parser = one_of::<WorkerMode>(&WorkerMode::NAMES), default_value = "normal")]
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

impl WorkerArgs {
    pub fn spec(self) -> WorkerSpec {
        WorkerSpec {
            redis: self.redis,
            job: self.job,
            plugin: self.plugin,
            mode: self.mode,
            name: self.name,
            exit_with_parent: self.exit_with_parent,
            policy: self.sandbox.policy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::super::{Cli, Command};
    use crate::coordinator::worker_args;
    use crate::plugin::SandboxPolicy;
    use crate::worker::{WorkerMode, WorkerSpec};

    /// The argv the coordinator builds parses back into the same spec
    /// (the URL travels in the environment, not on the command line).
    #[test]
    fn coordinator_worker_argv_round_trips_through_the_parser() {
        let policy = SandboxPolicy { max_memory_bytes: 64 << 20, call_deadline: Duration::from_millis(1500), max_keys: 77, max_key_bytes: 99 };
        for mode in [WorkerMode::Normal, WorkerMode::Crash, WorkerMode::Sleep] {
            let spec = WorkerSpec {
                redis: "redis://:secret@127.0.0.1:1/".into(),
                job: "0123abcd".into(),
                plugin: "plugins/a b.wasm".into(),
                mode,
                name: Some(format!("{}-7-42", mode.as_str())),
                exit_with_parent: true,
                policy: policy.clone(),
            };
            let mut argv = vec!["wc-host".into()];
            argv.extend(worker_args(&spec));
            assert!(!argv.iter().any(|a| a.to_string_lossy().contains("secret")), "the password must not be on the command line");
            argv.extend(["--redis".into(), spec.redis.clone().into()]);
            let cli = Cli::try_parse_from(argv).unwrap();
            let Some(Command::Worker(args)) = cli.command else { panic!("not a worker command") };
            assert_eq!(args.spec(), spec);
        }
    }
}
