//! `wc-host plugin ...`: a plugin alone, without Redis, for its author.

use std::io::Write;

use anyhow::Context;

use crate::cases::{load_cases, run_case};
use crate::cli::{PluginCommand, PluginCountArgs};
use crate::count::{count_files, count_texts, sorted_desc, write_counts, CountMap};
use crate::input::{resolve_inputs, ReadStats};
use crate::plugin::{PluginRuntime, WIT_WORLD};

/// Runs a plugin subcommand; the exit code is the result.
pub fn run(command: PluginCommand) -> anyhow::Result<i32> {
    match command {
        PluginCommand::Info { plugin, sandbox, json } => {
            let runtime = PluginRuntime::new(sandbox.policy())?;
            let plugin = runtime.load(&plugin)?;
            let info = plugin.info();
            if json {
                let value = serde_json::json!({
                    "name": info.name, "version": info.version, "description": info.description,
                    "columns": info.columns, "world": WIT_WORLD, "sha256": plugin.hash(),
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("name:        {}", info.name);
                println!("version:     {}", info.version);
                println!("description: {}", info.description);
                println!("columns:     {}", info.columns.join(", "));
                println!("world:       {WIT_WORLD}");
                println!("sha256:      {}", plugin.hash());
            }
            Ok(0)
        }
        PluginCommand::Count(args) => count(args),
        PluginCommand::Test { plugin, cases, sandbox } => {
            let runtime = PluginRuntime::new(sandbox.policy())?;
            let plugin = runtime.load(&plugin)?;
            let cases = load_cases(&cases)?;
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
    }
}

fn count(args: PluginCountArgs) -> anyhow::Result<i32> {
    if args.files.is_empty() == args.text.is_empty() {
        anyhow::bail!("give CSV files or --text, not both and not neither");
    }
    let runtime = PluginRuntime::new(args.sandbox.policy())?;
    let plugin = runtime.load(&args.plugin)?;
    let mut instance = plugin.instantiate()?;
    let params = &args.params.plugin_args;
    let started = std::time::Instant::now();
    let (counts, stats): (CountMap, ReadStats) = if args.text.is_empty() {
        let files = resolve_inputs(&args.files)?;
        count_files(&mut instance, params, &files)?
    } else {
        let texts: Vec<&str> = args.text.iter().map(String::as_str).collect();
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

/// Keys may hold newlines or tabs (split-space keeps them): show them escaped.
pub fn printable(key: &str) -> String {
    if key.is_empty() {
        return "\"\"".into();
    }
    if key.chars().any(|c| c.is_control()) {
        return format!("{key:?}");
    }
    key.to_string()
}
