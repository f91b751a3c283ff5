//! The command line: the only module that knows clap. Each command's
//! arguments are turned into a plain spec (`JobSpec`, `WorkerSpec`,
//! `QuerySpec`, `SandboxPolicy`, ...) and handed to the module that runs it;
//! flags override config.json, which overrides the built-in defaults, in one
//! merge ([`job`]).

mod job;
mod plugin;
mod query;
mod shared;
mod worker;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "wc-host", version, about = "Distributed, fault-tolerant word count with WebAssembly counting plugins")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: job::RunArgs,
    /// Only warnings and errors on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, run and test a plugin alone, without Redis.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Generate twcs-shaped CSV files (deterministic by seed).
    GenData(GenDataArgs),
    /// Run a worker against a job's Redis (started by the coordinator, or by hand on another machine).
    Worker(worker::WorkerArgs),
    /// Show the top keys of a job, from Redis.
    Top(query::QueryArgs),
    /// Show a job's progress, workers and faults, from Redis.
    Status(query::StatusArgs),
    /// Write a job's HTML report (charts, fault timeline), from Redis.
    Report(query::ReportArgs),
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

impl Cli {
    /// Runs the command; the result is the process's exit code.
    pub fn run(self) -> anyhow::Result<i32> {
        match self.command {
            Some(Command::Plugin(command)) => plugin::run(command),
            Some(Command::GenData(args)) => gen_data(&args),
            Some(Command::Worker(args)) => crate::worker::run(args.spec()),
            Some(Command::Top(args)) => crate::query::top(&args.spec()),
            Some(Command::Status(args)) => crate::query::status(&args.spec()),
            Some(Command::Report(args)) => crate::report_cmd::run(&args.spec()),
            None => crate::coordinator::run(self.run.spec(self.quiet)?),
        }
    }
}

fn gen_data(args: &GenDataArgs) -> anyhow::Result<i32> {
    let opts = crate::gen_data::GenOptions { total_bytes: args.mb << 20, files: args.files, seed: args.seed };
    let report = crate::gen_data::generate(&args.dir, &opts)?;
    println!("wrote {} files, {} rows, {} bytes to {}", report.files.len(), report.rows, report.bytes, args.dir.display());
    Ok(0)
}
