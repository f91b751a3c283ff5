//! Command-line arguments. Flags override config.json, which overrides the
//! built-in defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::plugin::SandboxPolicy;

#[derive(Debug, Parser)]
#[command(name = "wc-host", version, about = "Distributed, fault-tolerant word count with WebAssembly counting plugins")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: crate::job::RunArgs,
    /// Only warnings and errors on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, run and test a plugin alone, without Redis.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Generate twcs-shaped CSV files (deterministic by seed).
    GenData(GenDataArgs),
    /// Run a worker against a job's Redis (started by the coordinator, or by hand on another machine).
    Worker(crate::worker::WorkerArgs),
    /// Show the top keys of a job, from Redis.
    Top(crate::query::QueryArgs),
    /// Show a job's progress, from Redis.
    Status(crate::query::QueryArgs),
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print a plugin's name, version, description, columns and WIT world.
    Info {
        plugin: PathBuf,
        #[command(flatten)]
        sandbox: SandboxArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Count CSV files or texts with a plugin, in this process.
    Count(PluginCountArgs),
    /// Check a plugin against golden cases; non-zero exit on a mismatch.
    Test {
        plugin: PathBuf,
        /// The cases file (JSON); see `plugins/README.md`.
        #[arg(long)]
        cases: PathBuf,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
}

#[derive(Debug, Args)]
pub struct PluginCountArgs {
    pub plugin: PathBuf,
    /// CSV files, directories or globs.
    pub files: Vec<String>,
    /// Count this text instead of files (repeatable: one row each).
    #[arg(long)]
    pub text: Vec<String>,
    #[command(flatten)]
    pub params: PluginParams,
    /// How many top keys to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Write all counts to PATH (.json object or .csv rows).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PluginParams {
    /// A plugin parameter `key=value` (repeatable).
    #[arg(long = "plugin-arg", value_parser = parse_key_value)]
    pub plugin_args: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

/// The sandbox limits, as flags; defaults from [`SandboxPolicy::default`].
#[derive(Debug, Args, Clone, Default)]
pub struct SandboxArgs {
    /// Memory cap of one plugin instance, MiB [default: 512].
    #[arg(long)]
    pub plugin_memory_mib: Option<usize>,
    /// CPU deadline of one call into a plugin, ms [default: 10000].
    #[arg(long)]
    pub plugin_deadline_ms: Option<u64>,
    /// Most distinct keys one task may return [default: 5000000].
    #[arg(long)]
    pub plugin_max_keys: Option<usize>,
    /// Longest key a plugin may return, bytes [default: 4096].
    #[arg(long)]
    pub plugin_max_key_bytes: Option<usize>,
}

impl SandboxArgs {
    pub fn policy(&self) -> SandboxPolicy {
        let mut policy = SandboxPolicy::default();
        if let Some(mib) = self.plugin_memory_mib {
            policy.max_memory_bytes = mib << 20;
        }
        if let Some(ms) = self.plugin_deadline_ms {
            policy.call_deadline = Duration::from_millis(ms);
        }
        if let Some(n) = self.plugin_max_keys {
            policy.max_keys = n;
        }
        if let Some(n) = self.plugin_max_key_bytes {
            policy.max_key_bytes = n;
        }
        policy
    }

    /// The same limits as flags, to pass on to worker processes.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        let mut push = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                flags.push(format!("--{name}={v}"));
            }
        };
        push("plugin-memory-mib", self.plugin_memory_mib.map(|v| v.to_string()));
        push("plugin-deadline-ms", self.plugin_deadline_ms.map(|v| v.to_string()));
        push("plugin-max-keys", self.plugin_max_keys.map(|v| v.to_string()));
        push("plugin-max-key-bytes", self.plugin_max_key_bytes.map(|v| v.to_string()));
        flags
    }
}

#[derive(Debug, Args)]
pub struct GenDataArgs {
    /// Directory to write into.
    pub dir: PathBuf,
    /// Total size, MB.
    #[arg(long, default_value_t = 8)]
    pub mb: u64,
    /// Number of files.
    #[arg(long, default_value_t = 4)]
    pub files: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
