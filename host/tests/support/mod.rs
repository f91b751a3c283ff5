//! Shared parts of the end-to-end tests: real redis-server processes on free
//! ports with their own directories, generated data, the wc-host binary, and
//! independent counts to compare with.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `<root>/plugins/NAME.wasm`, built first if any shipped plugin is missing.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(ensure_plugins_built);
    let path = workspace_root().join("plugins").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} does not exist (not a shipped plugin?)", path.display());
    path
}

/// `<root>/plugins/NAME/cases.json`.
pub fn cases_path(name: &str) -> PathBuf {
    workspace_root().join("plugins").join(name).join("cases.json")
}

/// The plugins `make plugins` builds: package name, file stem in `plugins/`.
const PLUGINS: [(&str, &str); 3] = [("words", "words"), ("split-space", "split-space"), ("hashtags", "hashtags")];

fn missing_plugins() -> Vec<PathBuf> {
    let dir = workspace_root().join("plugins");
    PLUGINS.iter().map(|(_, file)| dir.join(format!("{file}.wasm"))).filter(|p| !p.is_file()).collect()
}

/// Builds the plugins like `make plugins` when one is missing. Test processes
/// run in parallel (nextest: one per test), so the check and the build happen
/// under an exclusive `flock` on a file in the target directory; the copies
/// are written to a temporary name and renamed, so a reader never sees half
/// a component.
fn ensure_plugins_built() {
    if missing_plugins().is_empty() {
        return;
    }
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    let lock_path = target.join("wc-host-test-plugins.lock");
    let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    // SAFETY: a plain flock(2) on a descriptor we own for the whole block.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}: {}", lock_path.display(), std::io::Error::last_os_error());

    // Another process may have built them while we waited for the lock.
    if missing_plugins().is_empty() {
        return; // dropping `lock` closes the descriptor and releases it
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--profile", "wasm", "--target", "wasm32-wasip2"]);
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    eprintln!("building the plugins: {cmd:?}");
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    assert!(status.success(), "building the plugins failed ({status}); try `make plugins`");

    let wasm_dir = target.join("wasm32-wasip2").join("wasm");
    let plugins_dir = workspace_root().join("plugins");
    for (package, file) in PLUGINS {
        let built = wasm_dir.join(format!("{}.wasm", package.replace('-', "_")));
        let dest = plugins_dir.join(format!("{file}.wasm"));
        let tmp = plugins_dir.join(format!(".{file}.wasm.{}", std::process::id()));
        std::fs::copy(&built, &tmp).unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", built.display(), tmp.display()));
        std::fs::rename(&tmp, &dest).unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), dest.display()));
    }
    drop(lock);
}

/// Generates `total_bytes` of twcs-shaped CSV in `files` files under `dir`.
pub fn generate(dir: &Path, total_bytes: u64, files: usize, seed: u64) -> Vec<PathBuf> {
    let opts = wc_host::gen_data::GenOptions { total_bytes, files, seed };
    let report = wc_host::gen_data::generate(dir, &opts).expect("generating test data");
    assert_eq!(report.files.len(), files);
    report.files
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
    assert_same_counts("counts", got, want);
}

/// Fails with the number of differing keys and the first few of them
/// (sorted), instead of printing two maps of thousands of keys.
pub fn assert_same_counts<'a>(
    what: &str,
    got: impl IntoIterator<Item = (&'a String, &'a u64)>,
    want: impl IntoIterator<Item = (&'a String, &'a u64)>,
) {
    let got: HashMap<&str, u64> = got.into_iter().map(|(k, &n)| (k.as_str(), n)).collect();
    let want: HashMap<&str, u64> = want.into_iter().map(|(k, &n)| (k.as_str(), n)).collect();
    let mut diffs: Vec<String> = Vec::new();
    for (key, &w) in &want {
        match got.get(key) {
            None => diffs.push(format!("{key:?}: expected {w}, missing")),
            Some(&g) if g != w => diffs.push(format!("{key:?}: expected {w}, got {g}")),
            Some(_) => {}
        }
    }
    for (key, &g) in &got {
        if !want.contains_key(key) {
            diffs.push(format!("{key:?}: unexpected, got {g}"));
        }
    }
    if !diffs.is_empty() {
        diffs.sort();
        let shown = diffs.iter().take(15).map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n");
        panic!(
            "{what}: {} of {} expected keys differ ({} keys returned); first differences:\n{shown}",
            diffs.len(),
            want.len(),
            got.len()
        );
    }
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

/// Worker processes started by the coordinator `pid` (its children that
/// run `wc-host worker`, not a managed redis-server).
pub fn workers_of(pid: u32) -> Vec<u32> {
    wc_host::chaos::children_of(pid)
        .into_iter()
        .filter(|child| std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("worker")))
        .collect()
}

pub fn summary_u64(summary: &Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or_else(|| panic!("summary has no `{field}`: {summary}"))
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A command run to its end: status, output and how long it took.
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Reads a pipe to its end on a thread; the text arrives on the channel.
fn drain<R: std::io::Read + Send + 'static>(mut pipe: R) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Waits for `child` (stdout and stderr piped) at most `secs` seconds; past
/// that it is SIGKILLed (its workers die with it) and the test fails: no
/// bad input may make wc-host hang.
pub fn wait_within(mut child: Child, secs: u64, what: &str) -> Finished {
    let started = Instant::now();
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let deadline = started + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
            panic!("{what}: still running after {secs} s (hang?); killed. stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    // Workers hold the stderr pipe until they exit; they die with the coordinator.
    let grace = Duration::from_secs(10);
    let stdout = stdout.recv_timeout(grace).unwrap_or_default();
    let stderr = stderr.recv_timeout(grace).unwrap_or_default();
    Finished { status, stdout, stderr, elapsed }
}

/// Runs `cmd` (stdout and stderr captured) with the `wait_within` limit.
pub fn run_within(cmd: &mut Command, secs: u64) -> Finished {
    let what = format!("{cmd:?}");
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_within(child, secs, &what)
}

/// `finish_job`, but the job must end within `secs` seconds.
pub fn finish_job_within(job: RunningJob, secs: u64) -> JobResult {
    let RunningJob { child, out_dir } = job;
    let done = wait_within(child, secs, "job");
    let summary: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}); stdout: {}\nstderr: {}", done.stdout, done.stderr));
    let counts_path = out_dir.path().join("counts.json");
    let text = std::fs::read_to_string(&counts_path).unwrap_or_else(|e| panic!("no counts file ({e}); stderr: {}", done.stderr));
    let counts: HashMap<String, u64> = serde_json::from_str(&text).unwrap();
    JobResult { status: done.status, summary, counts, stderr: done.stderr }
}

/// `run_job`, but the job must end within `secs` seconds.
pub fn run_job_within(plugin_name: &str, args: &[&str], secs: u64) -> JobResult {
    finish_job_within(spawn_job(plugin_name, args), secs)
}

/// The dead-lettered tasks of a summary, as (file, error).
pub fn dead_letters(summary: &Value) -> Vec<(String, String)> {
    summary["dead_lettered"]
        .as_array()
        .unwrap_or_else(|| panic!("summary has no `dead_lettered`: {summary}"))
        .iter()
        .map(|d| (d["file"].as_str().unwrap_or_default().to_string(), d["error"].as_str().unwrap_or_default().to_string()))
        .collect()
}

// ---- Helpers of the security tests (host/tests/security.rs) ----

impl RedisServer {
    /// The URL with credentials: `userinfo` is `:password` or `user:password`.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("redis://{userinfo}@127.0.0.1:{}/", self.port)
    }
}

/// A connection to `url` (credentials included), failing the test if refused.
pub fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection_with_timeout(Duration::from_secs(5)).unwrap()
}

/// Polls `f` until true (or panics after `secs`).
pub fn poll_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to the end, killing it after `secs` (then `None`).
pub fn output_within(cmd: &mut Command, secs: u64) -> Option<std::process::Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// The sha256 of a file, hex (as wc-host names plugins).
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// `redis-server` processes working in `dir` (their cwd: Redis chdirs to
/// its `--dir`). Needed because Redis rewrites its command line into
/// "redis-server 127.0.0.1:PORT", so `processes_mentioning(dir)` cannot see it.
pub fn redis_servers_in(dir: &Path) -> Vec<u32> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("redis-server") {
            continue;
        }
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir) {
            pids.push(pid);
        }
    }
    pids
}

/// The addresses process `pid` listens on (TCP, IPv4 and IPv6), from its
/// socket inodes and /proc/net/tcp{,6}.
pub fn listening_addrs(pid: u32) -> Vec<std::net::SocketAddr> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    // An address field is the IP as 32-bit words in host (little-endian) order, then the port.
    fn parse(addr: &str) -> Option<std::net::SocketAddr> {
        let (ip, port) = addr.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let mut bytes = Vec::new();
        for word in ip.as_bytes().chunks(8) {
            let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
            bytes.extend(word.to_le_bytes());
        }
        let ip: std::net::IpAddr = match bytes.len() {
            4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
            16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
            _ => return None,
        };
        Some(std::net::SocketAddr::new(ip, port))
    }
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // cols: sl, local, remote, state (0A = LISTEN), ..., inode at 9.
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                out.extend(parse(cols[1]));
            }
        }
    }
    out
}

/// SIGSTOPs the workers of coordinator `pid` (so the test can change Redis
/// while nothing is committed); returns them for [`resume`].
pub fn pause_workers(pid: u32) -> Vec<u32> {
    let workers = workers_of(pid);
    for w in &workers {
        // SAFETY: signalling a worker process of our own job.
        unsafe { libc::kill(*w as i32, libc::SIGSTOP) };
    }
    workers
}

pub fn resume(workers: &[u32]) {
    for w in workers {
        // SAFETY: as above.
        unsafe { libc::kill(*w as i32, libc::SIGCONT) };
    }
}
