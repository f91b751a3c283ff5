//! `wc-host plugin ...`: a plugin alone, without Redis, for its author.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cases::{load_cases, run_case};
use crate::input::InputFormat;
use crate::count::{count_files_with, count_texts, sorted_desc, write_counts, CountMap};
use crate::input::{resolve_inputs, Planned, ReadStats, SplitOptions};
use crate::plugin::{PluginRuntime, SandboxPolicy};
use crate::report::printable;

/// `plugin info`: what a plugin says about itself.
pub fn info(path: &Path, policy: SandboxPolicy, json: bool) -> anyhow::Result<i32> {
    let runtime = PluginRuntime::new(policy)?;
    let plugin = runtime.load(path)?;
    let info = plugin.info();
    if json {
        let value = serde_json::json!({
            "name": info.name, "version": info.version, "description": info.description,
            "columns": info.columns, "params": info.params, "world": info.world, "sha256": plugin.hash(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("name:        {}", info.name);
        println!("version:     {}", info.version);
        println!("description: {}", info.description);
        println!("columns:     {}", info.columns.join(", "));
        if !info.declares_params() {
            println!("parameters:  not declared (a {} component cannot say; see its docs)", info.world);
        } else if info.params.is_empty() {
            println!("parameters:  none");
        } else {
            println!("parameters:  (--plugin-arg NAME=VALUE)");
            let width = info.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in &info.params {
                let default = if p.default.is_empty() { String::new() } else { format!(" [default: {}]", p.default) };
                println!("  {:<width$}  {}{default}", p.name, p.help);
            }
        }
        println!("world:       {}", info.world);
        println!("sha256:      {}", plugin.hash());
    }
    Ok(0)
}

/// `plugin test`: the plugin against golden cases; exit 1 on a mismatch.
pub fn test(path: &Path, cases: &Path, policy: SandboxPolicy) -> anyhow::Result<i32> {
    let runtime = PluginRuntime::new(policy)?;
    let plugin = runtime.load(path)?;
    let cases = load_cases(cases)?;
    let mut instance = plugin.instantiate()?;
    let mut failed = 0;
    for case in &cases {
        match run_case(&mut instance, case) {
            None => println!("ok    {}", case.name),
            Some(diff) => {
                failed += 1;
                println!("FAIL  {}\n{diff}", case.name);
            }
        }
    }
    println!("{} cases: {} passed, {failed} failed ({})", cases.len(), cases.len() - failed, plugin.label());
    Ok(if failed == 0 { 0 } else { 1 })
}

/// What `plugin count` counts and how it reports.
#[derive(Debug, Clone)]
pub struct CountSpec {
    pub plugin: PathBuf,
    /// CSV files, directories or globs...
    pub files: Vec<String>,
    /// ...or texts, one row each.
    pub texts: Vec<String>,
    pub params: Vec<(String, String)>,
    pub top: usize,
    pub output: Option<PathBuf>,
    pub json: bool,
    pub policy: SandboxPolicy,
    /// Column mapping and delimiter (`mixed_headers` is implied: each file
    /// is read by its own header).
    pub format: InputFormat,
}

/// `plugin count`: count files or texts in this process.
pub fn count(args: CountSpec) -> anyhow::Result<i32> {
    if args.files.is_empty() == args.texts.is_empty() {
        anyhow::bail!("give CSV files or --text, not both and not neither");
    }
    let runtime = PluginRuntime::new(args.policy.clone())?;
    let plugin = runtime.load(&args.plugin)?;
    let mut instance = plugin.instantiate()?;
    let params = &args.params;
    let started = std::time::Instant::now();
    let (counts, stats): (CountMap, ReadStats) = if args.texts.is_empty() {
        let files = resolve_inputs(&args.files)?;
        let options = SplitOptions { delimiter: args.format.delimiter };
        let (counts, stats, notes) = count_files_with(&mut instance, params, &files, &args.format.columns, &options)?;
        for note in notes {
            match note {
                Planned::Skipped { file, member, reason } => eprintln!("warning: {}: member `{member}` skipped: {reason}", file.display()),
                Planned::Note(note) => tracing::info!("{note}"),
                Planned::Range(_) => {}
            }
        }
        (counts, stats)
    } else {
        let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
        let bytes = texts.iter().map(|t| t.len() as u64).sum();
        (count_texts(&mut instance, params, &texts)?, ReadStats { rows: texts.len() as u64, bytes, ..ReadStats::default() })
    };
    let elapsed = started.elapsed();
    if let Some(path) = &args.output {
        write_counts(path, &counts)?;
    }
    let sorted = sorted_desc(&counts);
    let tokens: u64 = counts.values().sum();
    let top = &sorted[..args.top.min(sorted.len())];
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "plugin": plugin.info().name, "tokens": tokens, "distinct": counts.len(),
            "rows": stats.rows, "bytes": stats.bytes, "short_rows": stats.short_rows,
            "invalid_utf8_rows": stats.invalid_utf8_rows, "seconds": elapsed.as_secs_f64(),
            "top": top.iter().map(|(k, n)| serde_json::json!([k, n])).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        let width = top.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0).min(40);
        for (key, n) in top {
            writeln!(out, "{:<width$}  {n}", printable(key))?;
        }
        writeln!(
            out,
            "{tokens} tokens, {} distinct keys, {} rows in {:.2}s ({})",
            counts.len(),
            stats.rows,
            elapsed.as_secs_f64(),
            plugin.label()
        )?;
        if stats.short_rows + stats.invalid_utf8_rows > 0 {
            writeln!(out, "warning: {} rows lacked the plugin's columns; {} rows had invalid UTF-8 (decoded with U+FFFD)", stats.short_rows, stats.invalid_utf8_rows)?;
        }
        if let Some(path) = &args.output {
            writeln!(out, "all counts written to {}", path.display()).context("stdout")?;
        }
    }
    Ok(0)
}
