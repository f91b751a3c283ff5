//! `wc-host plugin info|count|test|new|build|cache`: a plugin alone, without
//! Redis, for its author.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::shared::{FormatArgs, PluginParams, SandboxArgs};
use crate::authoring::{resolve::plugin_path, Language};
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
        /// The cases file (JSON; see `plugins/README.md`). Default: the
        /// `cases.json` of the project the component was built from.
        #[arg(long)]
        cases: Option<PathBuf>,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Make a plugin project: the rule in one small file, golden cases, a
    /// unit test and a README. Its rule starts as `text.split(" ")`.
    New {
        /// The project's language.
        #[arg(long, value_parser = ["rust", "python", "js", "c"])]
        lang: String,
        /// The folder to create; its name is the plugin's.
        dir: PathBuf,
    },
    /// Build a plugin project (any language) into a component, installing
    /// its toolchain under the cache when missing, then run its cases.json.
    Build {
        /// The project folder.
        dir: PathBuf,
        /// The component to write [default: DIR.wasm, beside the folder].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Do not run the project's golden cases after building.
        #[arg(long)]
        no_test: bool,
        /// Build even when the component is up to date with its sources.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Show the compiled-plugin cache (size, entries); --clear empties it.
    Cache {
        #[arg(long)]
        clear: bool,
    },
    /// A core WebAssembly module into a counting component (the C build's
    /// last step; adds the WASI reactor adapter and the WIT metadata).
    #[command(hide = true)]
    Componentize {
        core: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
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
        PluginCommand::Info { plugin, sandbox, json } => plugin_cmd::info(&plugin_path(&plugin)?, sandbox.policy(), json),
        PluginCommand::Test { plugin, cases, sandbox } => plugin_cmd::test(&plugin_path(&plugin)?, cases.as_deref(), sandbox.policy()),
        PluginCommand::New { lang, dir } => plugin_cmd::new(Language::from_name(&lang).expect("clap checked the value"), &dir),
        PluginCommand::Build { dir, output, no_test, force, sandbox } => plugin_cmd::build(&dir, output.as_deref(), sandbox.policy(), !no_test, force),
        PluginCommand::Cache { clear } => plugin_cmd::cache(clear),
        PluginCommand::Componentize { core, output } => plugin_cmd::componentize(&core, &output),
        PluginCommand::Count(args) => plugin_cmd::count(CountSpec {
            plugin: plugin_path(&args.plugin)?,
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
