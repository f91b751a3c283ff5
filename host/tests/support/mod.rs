//! Shared parts of the end-to-end tests: real redis-server processes on free
//! ports with their own directories, generated data, the wc-host binary, and
//! independent counts to compare with.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The shipped plugin `name`, built if missing (serialised across the test
/// processes by a lock file).
pub fn plugin(name: &str) -> PathBuf {
    let root = workspace_root();
    let path = root.join("plugins").join(format!("{name}.wasm"));
    if path.exists() {
        return path;
    }
    let lock = std::fs::File::create(std::env::temp_dir().join("wc-host-plugins.lock")).unwrap();
    // SAFETY: flock on a file we own; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if !path.exists() {
        let status = Command::new("make").arg("plugins").current_dir(&root).status().unwrap();
        assert!(status.success(), "make plugins failed");
    }
    path
}

/// `$CARGO_TARGET_DIR`, else the repository's usual `~/.cache/wc-host/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/wc-host/target"),
    }
}

/// The test-only plugins of `tests/evil-plugins`, built once per test
/// process: (`evil.wasm`, `other_world.wasm`).
pub fn evil_plugins() -> &'static (PathBuf, PathBuf) {
    static BUILT: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = workspace_root().join("tests/evil-plugins/Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", target_dir())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&manifest)
            .output()
            .expect("cannot run cargo");
        assert!(output.status.success(), "building the evil plugins failed:\n{}", String::from_utf8_lossy(&output.stderr));
        let dir = target_dir().join("wasm32-wasip2/release");
        (dir.join("evil.wasm"), dir.join("other_world.wasm"))
    })
}

pub fn wc_host() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wc-host"));
    cmd.env_remove("REDIS_URL").env("RUST_LOG", "warn");
    cmd
}

/// A redis-server of the test's own, killable and restartable.
pub struct RedisServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// `extra`: more `redis-server` arguments (e.g. `--requirepass x`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { dir, port, child: None, extra: extra.iter().map(|s| s.to_string()).collect() };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--dbfilename", "dump.rdb", "--logfile", "redis.log", "--maxmemory-policy", "noeviction"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make deps)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let mut c = self.raw_client();
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
                match pong {
                    Ok(_) => return,
                    Err(e) if e.to_string().contains("NOAUTH") => return,
                    Err(_) => {}
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn raw_client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        self.raw_client()
    }

    /// SIGKILL: nothing saved since the last BGSAVE.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts again from the same directory (its dump) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// BGSAVE and wait until it is on disk.
    pub fn save(&self) {
        let mut c = self.conn();
        let before: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
        let _: redis::RedisResult<String> = redis::cmd("SAVE").query(&mut c);
        let after: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
        assert!(after >= before);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Generated twcs-shaped files in a fresh directory.
pub fn gen_data(mb: f64, files: usize, seed: u64) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = wc_host::gen_data::GenOptions { total_bytes: (mb * 1_048_576.0) as u64, files, seed };
    let report = wc_host::gen_data::generate(dir.path(), &opts).unwrap();
    (dir, report.files)
}

/// The `text` column of every row, read with the csv crate on its own.
pub fn texts(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for file in files {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(file).unwrap();
        let idx = reader.headers().unwrap().iter().position(|h| h == "text").unwrap();
        for record in reader.byte_records() {
            let record = record.unwrap();
            if let Some(field) = record.get(idx) {
                out.push(String::from_utf8_lossy(field).into_owned());
            }
        }
    }
    out
}

/// Python's `text.split(" ")`, counted: the split-space reference.
pub fn reference_split_space(files: &[PathBuf]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for text in texts(files) {
        for token in text.split(' ') {
            *counts.entry(token.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// The words rule run natively, outside Redis, workers and WASM.
pub fn reference_words(files: &[PathBuf]) -> HashMap<String, u64> {
    let rules = words::Rules::default();
    let mut counts = wc_plugin_sdk::Counts::default();
    for text in texts(files) {
        words::count_text(&text, &rules, &mut counts);
    }
    counts.into_map().into_iter().collect()
}

/// A finished job: its summary and all its counts.
pub struct JobResult {
    pub status: std::process::ExitStatus,
    pub summary: Value,
    pub counts: HashMap<String, u64>,
    pub stderr: String,
}

/// Runs a job to the end: `wc-host --plugin P --json --output ... ARGS`.
pub fn run_job(plugin_name: &str, args: &[&str]) -> JobResult {
    let child = spawn_job(plugin_name, args);
    finish_job(child)
}

pub struct RunningJob {
    pub child: Child,
    pub out_dir: tempfile::TempDir,
}

pub fn spawn_job(plugin_name: &str, args: &[&str]) -> RunningJob {
    let out_dir = tempfile::tempdir().unwrap();
    let mut cmd = wc_host();
    if !args.contains(&"--config") {
        cmd.arg("--config").arg(write_config(out_dir.path()));
    }
    let plugin_path = if Path::new(plugin_name).is_absolute() { PathBuf::from(plugin_name) } else { plugin(plugin_name) };
    let child = cmd
        .arg("--plugin")
        .arg(plugin_path)
        .arg("--json")
        .arg("--quiet")
        .arg("--output")
        .arg(out_dir.path().join("counts.json"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    RunningJob { child, out_dir }
}

/// A config for tests: the seed's keys with quick timings.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("config.json");
    let config = serde_json::json!({
        "N_NORMAL_WORKERS": 2, "N_CRASHING_WORKERS": 0, "N_SLEEPING_WORKERS": 0,
        "CHECKPOINT_INTERVAL": 0.5, "REDIS_DOWNTIME": 0, "IN": "files", "FNAME": "fname", "COUNT": "count",
        "CLAIM_TIMEOUT": 1, "MAX_ATTEMPTS": 3, "LOGFILE": "ignored.log"
    });
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

pub fn finish_job(job: RunningJob) -> JobResult {
    let output = job.child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON summary ({e}); stdout: {stdout}\nstderr: {stderr}"));
    let counts_path = job.out_dir.path().join("counts.json");
    let counts: HashMap<String, u64> = serde_json::from_str(&std::fs::read_to_string(&counts_path).unwrap()).unwrap();
    JobResult { status: output.status, summary, counts, stderr }
}

/// Asserts equal count maps, showing a few differences when not.
pub fn assert_counts_eq(got: &HashMap<String, u64>, want: &HashMap<String, u64>) {
    if got == want {
        return;
    }
    let mut diffs: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k:?}: want {v}, got {:?}", got.get(k)))
        .chain(got.iter().filter(|(k, _)| !want.contains_key(*k)).map(|(k, v)| format!("{k:?}: unexpected {v}")))
        .collect();
    diffs.sort();
    diffs.truncate(20);
    panic!("counts differ ({} keys vs {} expected):\n{}", got.len(), want.len(), diffs.join("\n"));
}

/// Processes whose command line mentions `needle` (for "nothing left running").
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Worker processes started by the coordinator `pid`.
pub fn workers_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let ppid: u32 = after.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if ppid == pid {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("worker") {
                out.push(child);
            }
        }
    }
    out
}

pub fn summary_u64(summary: &Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or_else(|| panic!("summary has no `{field}`: {summary}"))
}
