//! The house rules of `host/src`, checked on the source itself so that a
//! change that breaks them fails here: imports run one way, only `cli`
//! knows clap, and every Redis Function call and every raw Redis command is
//! under `protocol/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `host/src`, with its top-level module
/// (`protocol` for `protocol/tasks.rs`, `worker` for `worker.rs`).
fn sources() -> Vec<(String, PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap();
            let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            (module, path, text)
        })
        .collect()
}

/// Top-level modules each module imports (`crate::X` anywhere in its code).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, text) in sources() {
        let deps = graph.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn only_main_and_cli_know_the_command_line() {
    for (module, path, text) in sources() {
        if module == "cli" || module == "main" {
            continue;
        }
        let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        assert!(!code.iter().any(|l| l.contains("crate::cli")), "{} imports cli", path.display());
        assert!(!code.iter().any(|l| l.contains("clap::") || l.contains("use clap")), "{} uses clap outside cli/", path.display());
    }
}

#[test]
fn no_import_cycle_between_modules() {
    let graph = import_graph();
    // Depth-first search for a back edge.
    fn visit(node: &str, graph: &BTreeMap<String, BTreeSet<String>>, stack: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", stack[at..].join(" -> "));
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn lower_layers_do_not_reach_up() {
    let graph = import_graph();
    let commands = ["cli", "coordinator", "worker", "query", "report_cmd", "plugin_cmd", "main"];
    let lower = ["protocol", "plugin", "authoring", "input", "count", "report", "html_report", "config", "redis_server", "batch", "tally", "cases", "gen_data", "logging"];
    for module in lower {
        let deps = graph.get(module).cloned().unwrap_or_default();
        for command in commands {
            assert!(!deps.contains(command), "{module} imports the command module {command}");
        }
    }
    let deps = |m: &str| graph.get(m).cloned().unwrap_or_default();
    assert!(!deps("input").contains("plugin"), "input must not know the plugin runtime");
    assert!(!deps("plugin").contains("input"), "the plugin runtime must not know how files are read");
    for m in ["report", "html_report", "plugin", "authoring", "input", "batch", "tally", "config"] {
        assert!(!deps(m).contains("protocol"), "{m} must not know Redis");
    }
    for leaf in ["batch", "tally"] {
        assert!(deps(leaf).is_empty(), "{leaf} is a leaf (what others share) and imports nothing of the crate: {:?}", deps(leaf));
    }
}

#[test]
fn every_redis_function_call_and_raw_command_is_in_the_protocol() {
    for (module, path, text) in sources() {
        if module == "protocol" {
            continue;
        }
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            assert!(!line.contains("\"FCALL\""), "{}: an FCALL outside protocol/: {line}", path.display());
            // The managed server's own start-up and shutdown are not job writes.
            if module != "redis_server" {
                assert!(!line.contains("redis::cmd"), "{}: a raw Redis command outside protocol/: {line}", path.display());
            }
        }
    }
}
