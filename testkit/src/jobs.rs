//! Running wc-host like a user: jobs with a test config and JSON output,
//! commands bounded in time (no bad input may make wc-host hang).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::paths::{plugin, wc_host};

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
    spawn_job_with(wc_host(), plugin_name, args)
}

/// [`spawn_job`] from a command of the caller's (e.g. `wc-host` run in a
/// network namespace, environment already set).
pub fn spawn_job_with(mut cmd: Command, plugin_name: &str, args: &[&str]) -> RunningJob {
    let out_dir = tempfile::tempdir().unwrap();
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

pub fn summary_u64(summary: &Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or_else(|| panic!("summary has no `{field}`: {summary}"))
}
