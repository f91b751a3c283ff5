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

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// `wc-host --version`: the host's version and the plugin contracts (WIT
/// worlds) it runs.
fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| format!("{} (plugin contracts accepted: WIT worlds {})", env!("CARGO_PKG_VERSION"), crate::plugin::WIT_WORLDS_ACCEPTED.join(", ")))
}

#[derive(Debug, Parser)]
#[command(name = "wc-host", version = version(), about = "Distributed, fault-tolerant word count with WebAssembly counting plugins")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: job::RunArgs,
    /// Only warnings and errors on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Debug logging from wc-host (e.g. a plugin trap's wasm backtrace);
    /// `RUST_LOG`, when set, decides instead.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
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
    /// Print a shell completion script: `wc-host completions bash > /etc/bash_completion.d/wc-host`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) on stdout: `wc-host man > wc-host.1`.
    #[command(hide = true)]
    Man,
}

/// Shells `wc-host completions` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
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
    /// Compress each file (`gz`: multi-member gzip, `zst`: zstd frames),
    /// in independent pieces of --member-kb of CSV so wc-host can split them.
    #[arg(long, value_parser = ["gz", "zst"])]
    pub compress: Option<String>,
    /// CSV bytes per gzip member / zstd frame, KiB.
    #[arg(long, default_value_t = 1024, requires = "compress")]
    pub member_kb: usize,
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
            Some(Command::Completions { shell }) => {
                let shell = match shell {
                    Shell::Bash => clap_complete::Shell::Bash,
                    Shell::Zsh => clap_complete::Shell::Zsh,
                    Shell::Fish => clap_complete::Shell::Fish,
                };
                clap_complete::generate(shell, &mut Cli::command(), "wc-host", &mut std::io::stdout());
                Ok(0)
            }
            Some(Command::Man) => {
                clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
                Ok(0)
            }
            None => crate::coordinator::run(self.run.spec(self.quiet)?),
        }
    }
}

fn gen_data(args: &GenDataArgs) -> anyhow::Result<i32> {
    let opts = crate::gen_data::GenOptions { total_bytes: args.mb << 20, files: args.files, seed: args.seed };
    let report = crate::gen_data::generate(&args.dir, &opts)?;
    match args.compress.as_deref() {
        None => println!("wrote {} files, {} rows, {} bytes to {}", report.files.len(), report.rows, report.bytes, args.dir.display()),
        Some(codec) => {
            let codec: crate::gen_data::Codec = codec.parse()?;
            let mut compressed = 0;
            for file in &report.files {
                let (_, size) = crate::gen_data::compress_file(file, codec, args.member_kb.max(1) << 10)?;
                std::fs::remove_file(file)?;
                compressed += size;
            }
            println!(
                "wrote {} {} files, {} rows, {} bytes of CSV in {} compressed bytes to {}",
                report.files.len(),
                codec.extension(),
                report.rows,
                report.bytes,
                compressed,
                args.dir.display()
            );
        }
    }
    Ok(0)
}
