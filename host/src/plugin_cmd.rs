//! `wc-host plugin ...`: a plugin alone, without Redis, for its author.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cases::{load_cases, run_case};
use crate::input::InputFormat;
use crate::count::{count_files_with, count_texts, sorted_desc, write_counts, CountMap};
use crate::input::{resolve_inputs, Planned, ReadStats, SplitOptions};
use crate::authoring::{self, build::Built, Language};
use crate::plugin::{stamp, Plugin, PluginRuntime, SandboxPolicy};
use crate::report::printable;

/// Loads a plugin for a command that talks to its author: a stale
/// component is said first.
fn load_for_author(runtime: &PluginRuntime, path: &Path) -> anyhow::Result<Plugin> {
    let plugin = runtime.load(path)?;
    if let Some(warning) = stamp::staleness_of_file(path) {
        eprintln!("warning: {warning}");
    }
    Ok(plugin)
}

/// `plugin info`: what a plugin says about itself.
pub fn info(path: &Path, policy: SandboxPolicy, json: bool) -> anyhow::Result<i32> {
    let runtime = PluginRuntime::new(policy)?;
    let plugin = load_for_author(&runtime, path)?;
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

/// The golden cases of a component: `cases.json` in the project it was
/// built from (its stamp), or in the project folder beside it.
pub fn default_cases(path: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(path).ok()?;
    let from_stamp = stamp::read(&bytes).map(|s| s.dir.join("cases.json"));
    let beside = path.extension().is_some_and(|e| e == "wasm").then(|| path.with_extension("").join("cases.json"));
    from_stamp.into_iter().chain(beside).find(|p| p.is_file())
}

/// `plugin test`: the plugin against golden cases; exit 1 on a mismatch.
/// Without `cases`, the project's `cases.json` (see [`default_cases`]).
pub fn test(path: &Path, cases: Option<&Path>, policy: SandboxPolicy) -> anyhow::Result<i32> {
    let cases = match cases {
        Some(cases) => cases.to_path_buf(),
        None => default_cases(path).ok_or_else(|| {
            anyhow::anyhow!(
                "no golden cases for {}: neither the project it was built from nor a folder beside it has a cases.json; give --cases FILE",
                path.display()
            )
        })?,
    };
    let runtime = PluginRuntime::new(policy)?;
    let plugin = load_for_author(&runtime, path)?;
    println!("cases: {}", cases.display());
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
    let plugin = load_for_author(&runtime, &args.plugin)?;
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

/// `plugin new`: a project ready to build, from the language's template.
pub fn new(language: Language, dir: &Path) -> anyhow::Result<i32> {
    let written = authoring::new::new_project(language, dir)?;
    let out = authoring::default_output(dir);
    println!("made a {} plugin project in {} ({} files)", language.name(), dir.display(), written.len());
    let test = match language {
        Language::Rust => "cargo test",
        Language::Python => "python3 -m pytest test_rule.py (wc-host plugin build runs it too)",
        Language::Js => "node --test (wc-host plugin build runs it too)",
        Language::C => "wc-host plugin build runs test_rule.c natively",
    };
    println!("  the rule:   {}", dir.join(rule_file(language)).display());
    println!("  its tests:  {test}");
    println!("  build it:   wc-host plugin build {}   (makes {}, then runs cases.json)", dir.display(), out.display());
    println!("  run a job:  wc-host --plugin {} data.csv", out.display());
    Ok(0)
}

fn rule_file(language: Language) -> &'static str {
    match language {
        Language::Rust => "src/lib.rs",
        Language::Python => "rule.py",
        Language::Js => "rule.js",
        Language::C => "rule.c",
    }
}

/// `plugin build`: the project into a component, then its golden cases.
/// Exit 1 when a case fails (the component is kept, to inspect).
pub fn build(dir: &Path, out: Option<&Path>, policy: SandboxPolicy, run_cases: bool, force: bool) -> anyhow::Result<i32> {
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| authoring::default_output(dir));
    let started = std::time::Instant::now();
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    match authoring::build::build_project(dir, &out, force)? {
        Built::Fresh(language) => {
            eprintln!("built {} ({} plugin, {:.1} MB) in {:.1}s", out.display(), language.name(), size(), started.elapsed().as_secs_f64())
        }
        Built::UpToDate(language) => {
            eprintln!("{} is up to date ({} plugin; its sources and SDK are unchanged; --force rebuilds)", out.display(), language.name())
        }
    }
    let cases = dir.join("cases.json");
    if !run_cases {
        return Ok(0);
    }
    if !cases.is_file() {
        eprintln!("warning: {} has no cases.json: no golden cases checked", dir.display());
        return Ok(0);
    }
    test(&out, Some(&cases), policy)
}

/// `plugin componentize`: a core module into a component (the C build's
/// last step).
pub fn componentize(core: &Path, out: &Path) -> anyhow::Result<i32> {
    let bytes = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let component = authoring::componentize::componentize(&bytes).with_context(|| format!("making a component of {}", core.display()))?;
    let tmp = out.with_extension("wasm.tmp");
    std::fs::write(&tmp, component).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out)?;
    Ok(0)
}

/// `plugin cache`: where compiled plugins are kept and how much they take;
/// `--clear` empties it.
pub fn cache(clear: bool) -> anyhow::Result<i32> {
    let Some(dir) = crate::plugin::compile_cache_dir() else {
        println!("no cache folder (neither HOME nor XDG_CACHE_HOME nor WC_HOST_CACHE_DIR is set)");
        return Ok(0);
    };
    let entries = crate::plugin::cached_artifacts(&dir);
    let total: u64 = entries.iter().map(|e| e.1).sum();
    if clear {
        for (path, _, _) in &entries {
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
        println!("removed {} compiled plugins ({:.1} MB) from {}", entries.len(), total as f64 / 1e6, dir.display());
        return Ok(0);
    }
    println!("{}: {} compiled plugins, {:.1} MB (cap {:.0} MB, oldest removed first; WC_HOST_PLUGIN_CACHE_MB sets it)",
        dir.display(), entries.len(), total as f64 / 1e6, crate::plugin::cache_cap_bytes() as f64 / 1e6);
    for (path, size, _) in &entries {
        println!("  {:>8.1} MB  {}", *size as f64 / 1e6, path.file_name().unwrap_or_default().to_string_lossy());
    }
    Ok(0)
}
