//! `wc-host plugin info|count|test`: a plugin alone, without Redis.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::shared::{FormatArgs, PluginParams, SandboxArgs};
use crate::plugin_cmd::{self, CountSpec};

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
    /// CSV files (plain or compressed), zip archives, directories or globs.
    pub files: Vec<String>,
    /// Count this text instead of files (repeatable: one row each).
    #[arg(long)]
    pub text: Vec<String>,
    #[command(flatten)]
    pub params: PluginParams,
    #[command(flatten)]
    pub format: FormatArgs,
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

pub fn run(command: PluginCommand) -> anyhow::Result<i32> {
    match command {
        PluginCommand::Info { plugin, sandbox, json } => plugin_cmd::info(&plugin, sandbox.policy(), json),
        PluginCommand::Test { plugin, cases, sandbox } => plugin_cmd::test(&plugin, &cases, sandbox.policy()),
        PluginCommand::Count(args) => plugin_cmd::count(CountSpec {
            plugin: args.plugin,
            files: args.files,
            texts: args.text,
            params: args.params.plugin_args,
            top: args.top,
            output: args.output,
            json: args.json,
            policy: args.sandbox.policy(),
            format: args.format.format(),
        }),
    }
}
