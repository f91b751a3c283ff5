//! Hostile plugins written in Python (`tests/evil-plugins/python`, built
//! with the SDK's `plugins/python/build.sh`): the sandbox holds for a
//! component that carries a whole CPython interpreter. Each plugin counts
//! `text.split(" ")` like split-space until a row holds its trigger word,
//! then raises (`py-raise`), loops (`py-loop`), grows a list without bound
//! (`py-membomb`), exits the interpreter (`py-exit`) or probes files,
//! environment, sockets and the clock (`py-sandbox`).
//!
//! Each case checks the exact [`PluginError`] variant, that the message
//! names the plugin and what happened (the Python exception, the deadline),
//! and that the same instance, a fresh one and the same runtime still count
//! correctly afterwards.
//!
//! Run with `cargo nextest run -p wc-host --release -E 'test(/python/)'`.
//! A plugin is built the first time a test needs it (about 10 s of CPU,
//! an 18 MB component; the toolchain venv is created under
//! `~/.cache/wc-host` if missing, which needs PyPI once) into
//! `$CARGO_TARGET_DIR/python-evil/NAME-HASH.wasm`, keyed by a hash of its
//! sources, the SDK, build.sh and the WIT file, so later runs reuse it. Test
//! processes run in parallel, so the build happens under a `flock`. The
//! first load of each component compiles it (~10 s of CPU), cached in the
//! tests' plugin cache.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wc_host::count::{count_texts, CountMap};
use wc_host::plugin::{Plugin, PluginError, PluginInstance, PluginRuntime, SandboxPolicy};

use super::plugin_helpers::{counts, params, runtime, sorted};

// ---------------------------------------------------------------- building

/// Must match `MESSAGE` in tests/evil-plugins/python/py-raise/rule.py.
const RAISE_MESSAGE: &str = "py-raise blows up on purpose";

/// This checkout: the tests' own manifest dir, not wc-testkit's (a worktree
/// sharing another one's target directory can be linked to a wc-testkit
/// built from that other checkout).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Every file under `dir` whose name ends with `.py`, recursively, minus
/// tests and caches, sorted.
fn python_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "__pycache__" {
                python_sources(&path, out);
            }
        } else if name.ends_with(".py") && !name.starts_with("test_") {
            out.push(path);
        }
    }
}

/// What a Python plugin's component is made of: its own sources, the SDK,
/// the build script and the WIT file. Hashed, names the built component.
fn source_hash(plugin_dir: &Path) -> String {
    let root = root();
    let mut files = Vec::new();
    python_sources(plugin_dir, &mut files);
    python_sources(&root.join("plugins/python/sdk"), &mut files);
    files.push(root.join("plugins/python/build.sh"));
    files.push(root.join("wit/plugin.wit"));
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        hash.update(file.strip_prefix(&root).unwrap_or(file).to_string_lossy().as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    hex::encode(&hash.finalize()[..8])
}

/// `tests/evil-plugins/python/NAME` built into a component, once per test
/// process (and once per source state across processes: see the module doc).
fn python_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let plugin_dir = root().join("tests/evil-plugins/python").join(name);
    assert!(plugin_dir.join("app.py").is_file(), "{} has no app.py", plugin_dir.display());
    let out_dir = wc_testkit::target_dir().join("python-evil");
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
    let out = out_dir.join(format!("{name}-{}.wasm", source_hash(&plugin_dir)));

    if !out.is_file() {
        // One build at a time on this machine: they are CPU-heavy, and
        // another test process may be building this very plugin.
        let lock_path = out_dir.join("build.lock");
        let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
        // SAFETY: a plain flock(2) on a descriptor we own for the whole block.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}: {}", lock_path.display(), std::io::Error::last_os_error());
        if !out.is_file() {
            let build = root().join("plugins/python/build.sh");
            eprintln!("building {name}: {} {} {}", build.display(), plugin_dir.display(), out.display());
            let started = Instant::now();
            let output = Command::new(&build).arg(&plugin_dir).arg(&out).output().expect("cannot run plugins/python/build.sh");
            assert!(
                output.status.success(),
                "building the Python plugin {name} failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            eprintln!("built {name} in {:.1} s", started.elapsed().as_secs_f64());
        }
        drop(lock);
    }
    built.insert(name.to_string(), out.clone());
    out
}

// ---------------------------------------------------------------- helpers

/// A runtime, one evil Python plugin loaded on it, one instance of it.
struct Py {
    runtime: PluginRuntime,
    plugin: Plugin,
    instance: PluginInstance,
}

fn load(name: &str, policy: SandboxPolicy) -> Py {
    let path = python_plugin(name);
    let runtime = runtime(policy);
    let plugin = runtime.load(&path).unwrap_or_else(|e| panic!("loading {name}: {e}"));
    assert_eq!(plugin.info().name, name);
    assert_eq!(plugin.info().world, "wc:plugin/counting-plugin@0.2.0");
    let instance = plugin.instantiate().unwrap_or_else(|e| panic!("instantiating {name}: {e}"));
    Py { runtime, plugin, instance }
}

impl Py {
    fn label(&self) -> String {
        self.plugin.label().to_string()
    }

    fn run(&mut self, extra: &[(&str, &str)], texts: &[&str]) -> Result<CountMap, PluginError> {
        count_texts(&mut self.instance, &params(extra), texts)
    }

    /// Runs a task that must fail, and returns its error, which names the plugin.
    fn fail(&mut self, extra: &[(&str, &str)], texts: &[&str]) -> PluginError {
        let err = match self.run(extra, texts) {
            Ok(got) => panic!("{extra:?} {texts:?} should have failed, but counted {:?}", sorted(got)),
            Err(e) => e,
        };
        let message = err.to_string();
        assert!(message.contains(&self.label()), "the message does not name the plugin `{}`: {message}", self.label());
        err
    }

    /// After a failure: the SAME instance (rebuilt by the host if the failure
    /// poisoned it) counts correctly, twice; so does a fresh instance, and
    /// the same runtime loads and runs another Python plugin.
    fn assert_recovers(&mut self) {
        let want = counts(&[("a", 3), ("b", 1), ("c", 1), ("", 1)]);
        for round in 1..=2 {
            let got = count_texts(&mut self.instance, &[], &["a b a", "c  a"])
                .unwrap_or_else(|e| panic!("the same instance did not recover (round {round}): {e}"));
            assert_eq!(sorted(got), want, "round {round}");
        }
        let mut fresh = self.plugin.instantiate().unwrap_or_else(|e| panic!("a fresh instance: {e}"));
        let got = count_texts(&mut fresh, &[], &["a b a", "c  a"]).unwrap_or_else(|e| panic!("a fresh instance failed: {e}"));
        assert_eq!(sorted(got), want);

        let other = if self.plugin.info().name == "py-raise" { "py-exit" } else { "py-raise" };
        let other_plugin = self.runtime.load(&python_plugin(other)).unwrap_or_else(|e| panic!("the runtime cannot load {other} any more: {e}"));
        let mut other_instance = other_plugin.instantiate().unwrap_or_else(|e| panic!("instantiating {other}: {e}"));
        let got = count_texts(&mut other_instance, &[], &["a b a"]).unwrap_or_else(|e| panic!("{other} failed: {e}"));
        assert_eq!(sorted(got), counts(&[("a", 2), ("b", 1)]));
    }
}

// ---------------------------------------------------------------- exceptions

#[test]
fn python_exception_in_count_row_is_a_guest_error_naming_it() {
    let mut p = load("py-raise", SandboxPolicy::default());
    let ok = p.run(&[], &["one two", "two"]).expect("no trigger");
    assert_eq!(sorted(ok), counts(&[("one", 1), ("two", 2)]));

    let err = p.fail(&[], &["one two", "a boom row", "three"]);
    let PluginError::Guest { message, .. } = &err else { panic!("expected Guest, got {err:?}") };
    assert_eq!(message, &format!("count_row raised ValueError: {RAISE_MESSAGE}: a boom row"));
    assert!(!err.poisons_instance());

    let err = p.fail(&[], &["the key row"]);
    let PluginError::Guest { message, .. } = &err else { panic!("expected Guest, got {err:?}") };
    assert_eq!(message, "count_row raised KeyError: 'missing'");
    p.assert_recovers();
}

#[test]
fn python_sys_exit_is_a_guest_error_and_os_exit_a_trap() {
    let mut p = load("py-exit", SandboxPolicy::default());
    let declared: Vec<_> = p.plugin.info().params.iter().map(|d| (d.name.clone(), d.default.clone())).collect();
    assert_eq!(declared, [("how".to_string(), "sys".to_string())]);

    // sys.exit raises SystemExit, which the SDK turns into an err.
    let err = p.fail(&[], &["please exit now"]);
    let PluginError::Guest { message, .. } = &err else { panic!("expected Guest, got {err:?}") };
    assert_eq!(message, "count_row raised SystemExit: 3");
    p.assert_recovers();

    // os._exit skips Python: WASI's exit, which ends the instance, not the host.
    let err = p.fail(&[("how", "os")], &["please exit now"]);
    let PluginError::Trap { detail, .. } = &err else { panic!("expected Trap, got {err:?}") };
    assert!(detail.contains("exit status"), "the trap does not say the guest exited: {detail}");
    assert!(err.poisons_instance());
    p.assert_recovers();

    // The declared parameter is checked by the host (name) and the rule (value).
    for (pairs, expected) in [
        (params(&[("how", "abort")]), "parameter `how` must be sys or os, got `abort`"),
        (params(&[("mode", "os")]), "unknown parameter `mode`"),
    ] {
        let err = count_texts(&mut p.instance, &pairs, &["exit"]).expect_err("bad params must fail");
        let PluginError::BadParams { message, .. } = &err else { panic!("{pairs:?}: expected BadParams, got {err:?}") };
        assert!(message.contains(expected), "{pairs:?}: {message}");
    }
    p.assert_recovers();
}

// ---------------------------------------------------------------- CPU and memory

#[test]
fn python_infinite_loop_hits_the_deadline() {
    let mut p = load("py-loop", SandboxPolicy { call_deadline: Duration::from_millis(1000), ..SandboxPolicy::default() });
    let started = Instant::now();
    let err = p.fail(&[], &["a", "the loop row"]);
    let took = started.elapsed();
    assert!(matches!(err, PluginError::Deadline { deadline_ms: 1000, .. }), "expected Deadline, got {err:?}");
    assert!(took >= Duration::from_millis(1000), "stopped before its deadline: {took:?}");
    assert!(took < Duration::from_secs(20), "the deadline of 1 s took {took:?} to stop it");
    p.assert_recovers();
}

/// CPython handles a refused `memory.grow` (malloc returns NULL) and raises
/// `MemoryError`, which the SDK reports: a guest error, not a trap, and the
/// list is freed with the exception, so the same instance counts on.
#[test]
fn python_memory_bomb_is_stopped_by_the_memory_limit() {
    let limit_mib = 128;
    let mut p = load("py-membomb", SandboxPolicy { max_memory_bytes: limit_mib << 20, ..SandboxPolicy::default() });
    for chunk in ["65536", "1", "100000000"] {
        let started = Instant::now();
        let err = p.fail(&[("chunk", chunk)], &["a bomb"]);
        match &err {
            PluginError::Guest { message, .. } => assert_eq!(message, "count_row raised MemoryError", "chunk {chunk}"),
            PluginError::Memory { limit_mib: l, .. } => assert_eq!(*l, limit_mib, "chunk {chunk}"),
            other => panic!("chunk {chunk}: expected a MemoryError or the memory limit, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "chunk {chunk}: took {:?}", started.elapsed());
        p.assert_recovers();
    }
}

// ---------------------------------------------------------------- capabilities

/// Runs a probe: exactly one `denied:{what}`, no `LEAK:*`.
fn assert_denied(p: &mut Py, probe: &str, extra: &[(&str, &str)], what: &str) {
    let mut pairs = vec![("probe", probe)];
    pairs.extend_from_slice(extra);
    let got = sorted(p.run(&pairs, &["anything"]).unwrap_or_else(|e| panic!("probe {probe} failed: {e}")));
    // Shown on failure: how each attempt was refused.
    eprintln!("{probe}: {got:#?}");
    let leaks: Vec<_> = got.keys().filter(|k| k.starts_with("LEAK:")).collect();
    assert!(leaks.is_empty(), "the sandbox leaks to a Python plugin (probe {probe}): {got:#?}");
    assert_eq!(got.get(&format!("denied:{what}")), Some(&1), "probe {probe}: {got:#?}");
}

#[test]
fn python_files_environment_and_clock_are_denied() {
    // A variable the plugin must not see.
    std::env::set_var("WC_PY_SECRET", "hunter2");
    let mut p = load("py-sandbox", SandboxPolicy::default());
    assert_denied(&mut p, "file", &[], "file");
    assert_denied(&mut p, "env", &[], "env");
    assert_denied(&mut p, "clock", &[], "clock");
    assert!(!Path::new("/tmp/py-sandbox-was-here").exists(), "the plugin wrote a file on the host");
    p.assert_recovers();
}

#[test]
fn python_network_is_denied() {
    let listeners = wc_testkit::Listeners::bind();
    let mut p = load("py-sandbox", SandboxPolicy::default());
    assert_denied(&mut p, "socket", &[("port", &listeners.port().to_string())], "net");
    listeners.assert_untouched();
    p.assert_recovers();
}

// ---------------------------------------------------------------- the command line

/// `wc-host plugin count` on each misbehaviour: a clean error naming the
/// plugin and what happened, exit status 2, never a panic of the host.
#[test]
fn python_evil_plugins_fail_cleanly_on_the_command_line() {
    let cache = wc_testkit::target_dir().join("wc-host-tests/plugin-cache-cli");
    for (name, args, expected) in [
        ("py-raise", &["--text", "boom"][..], "count_row raised ValueError: py-raise blows up on purpose: boom"),
        ("py-exit", &["--text", "exit"][..], "count_row raised SystemExit: 3"),
        ("py-exit", &["--plugin-arg", "how=os", "--text", "exit"][..], "trapped"),
        ("py-loop", &["--plugin-deadline-ms", "500", "--text", "loop"][..], "CPU deadline of 500 ms"),
        ("py-membomb", &["--plugin-memory-mib", "128", "--text", "bomb"][..], "MemoryError"),
        ("py-exit", &["--plugin-arg", "mode=os", "--text", "exit"][..], "unknown parameter `mode`"),
    ] {
        let plugin = python_plugin(name);
        let output = wc_testkit::wc_host()
            .env("WC_HOST_CACHE_DIR", &cache)
            .args(["plugin", "count"])
            .arg(&plugin)
            .args(args)
            .output()
            .expect("run wc-host");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{name} {args:?}: the host panicked:\n{stderr}");
        assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {}\n{stderr}", output.status);
        assert!(stderr.contains(&format!("plugin {name} (")), "{name} {args:?}: the error does not name the plugin:\n{stderr}");
        assert!(stderr.contains(expected), "{name} {args:?}: expected `{expected}` in:\n{stderr}");
    }
}
