//! Workers on several hosts: `wc-host worker` processes started by hand in
//! the hosts of a [`NetLab`], and a job on a [`RedisCluster`] seen from the
//! outside (its id, the tasks each consumer holds, which tasks are done).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use redis::streams::{StreamPendingCountReply, StreamRangeReply};
use wc_host::protocol::connection::slot_of_tag;

use crate::cluster::{ClusterNode, RedisCluster};
use crate::netns::NetLab;
use crate::paths::wc_host_bin;

/// A worker started by hand in a host of a lab, as an operator would:
/// `wc-host worker --redis URL --job ID --plugin P --name NAME`. Its log
/// (`wc_host::worker` at debug: one line per task taken, committed, stolen
/// or suppressed) goes to a file.
pub struct HostWorker {
    pub host: String,
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl HostWorker {
    pub fn start(lab: &NetLab, host: &str, name: &str, url: &str, job: &str, plugin: &Path, log_dir: &Path) -> HostWorker {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = lab
            .command(host, wc_host_bin())
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn,wc_host::worker=debug")
            .args(["worker", "--redis", url, "--job", job, "--plugin"])
            .arg(plugin)
            .args(["--name", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("cannot start a worker in a namespace");
        HostWorker { host: host.into(), name: name.into(), child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn lines_with(&self, needle: &str) -> usize {
        self.log_text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Tasks whose counts this worker applied.
    pub fn commits(&self) -> usize {
        self.lines_with(": committed task ")
    }

    /// Its commits the done-set refused (the task was counted already).
    pub fn duplicates(&self) -> usize {
        self.lines_with("duplicate suppressed")
    }

    /// Tasks it stole from other consumers.
    pub fn steals(&self) -> usize {
        self.lines_with("idle past the claim timeout")
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling a child of ours.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for it to exit by itself (workers do once the job is finished);
    /// `None` if it is still running after `secs`.
    pub fn wait_within(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HostWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops `host`'s workers, and if one of them holds a task it has not
/// committed, cuts the host's link before they go on; else lets them run a
/// little and tries again. The held tasks are returned: the workers will try
/// to commit them with the link down.
pub fn cut_while_holding(lab: &NetLab, cluster: &RedisCluster, job: &str, workers: &[HostWorker], host: &str) -> Vec<HeldTask> {
    let mine: Vec<&HostWorker> = workers.iter().filter(|w| w.host == host).collect();
    for attempt in 0..300 {
        mine.iter().for_each(|w| w.signal(libc::SIGSTOP));
        // Whatever they had sent is applied by now.
        std::thread::sleep(Duration::from_millis(150));
        // Held by one of them and started: its log says so. A claim whose
        // reply is still on its way (or lost with a dropped connection) is
        // in the stream's pending list without the worker knowing it: that
        // task is stolen all the same, but no late commit would come.
        let started = |h: &HeldTask| mine.iter().any(|w| w.name == h.consumer && w.log_text().contains(&format!("task {} (", h.task)));
        let held: Vec<HeldTask> = cluster.held_tasks(job).into_iter().filter(|h| started(h) && !cluster.task_done(job, h)).collect();
        if !held.is_empty() {
            lab.cut(host);
            mine.iter().for_each(|w| w.signal(libc::SIGCONT));
            return held;
        }
        mine.iter().for_each(|w| w.signal(libc::SIGCONT));
        std::thread::sleep(Duration::from_millis(20 + 7 * (attempt % 5)));
    }
    panic!("{host}'s workers never held a task")
}

/// The Cluster slot of `key` (its hash tag's, if it has one).
pub fn key_slot(key: &str) -> u16 {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return slot_of_tag(&key[open + 1..open + 1 + len]);
            }
        }
    }
    slot_of_tag(key)
}

/// A task a consumer has claimed and not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldTask {
    pub partition: u32,
    /// The stream entry id.
    pub entry: String,
    pub consumer: String,
    /// The task id (the entry's `task` field).
    pub task: String,
}

impl RedisCluster {
    /// The primary serving `key`.
    pub fn node_for(&self, key: &str) -> &ClusterNode {
        &self.nodes[self.primary_of_slot(key_slot(key))]
    }

    /// `cmd` (whose keys are all in `key`'s slot) on the primary serving
    /// `key`; through a failover (the cluster down, the primary gone, a
    /// replica not promoted yet) it tries again for up to 30 s.
    pub fn query_key<T: redis::FromRedisValue>(&self, key: &str, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let node = &self.nodes[self.primary_of_slot(key_slot(key))];
            let result = if node.is_running() {
                node.try_conn(Duration::from_secs(2)).and_then(|mut c| cmd.query(&mut c))
            } else {
                Err(redis::RedisError::from((redis::ErrorKind::ClusterDown, "the slot's primary is not running")))
            };
            match result {
                Err(e) if Instant::now() < deadline && (e.is_cluster_error() || e.is_io_error() || e.is_connection_refusal() || e.is_timeout()) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The job started last on the cluster (`wc:latest-job`), once its meta
    /// hash says it is running; waits up to `secs`.
    pub fn wait_for_running_job(&self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let job: Option<String> = self.query_key("wc:latest-job", redis::cmd("GET").arg("wc:latest-job")).unwrap_or(None);
            if let Some(job) = job {
                let meta = format!("wc:{{{job}}}:meta");
                let state: Option<String> = self.query_key(&meta, redis::cmd("HGET").arg(&meta).arg("state")).unwrap_or(None);
                if state.as_deref() == Some("running") {
                    return job;
                }
            }
            assert!(Instant::now() < deadline, "no running job on the cluster after {secs} s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The hash tags of `job`'s partitions (from its meta hash: the tags
    /// chosen to spread them over the primaries, else the default `J.p`).
    pub fn partition_tags(&self, job: &str) -> Vec<String> {
        let meta = format!("wc:{{{job}}}:meta");
        let tags: Option<String> = self.query_key(&meta, redis::cmd("HGET").arg(&meta).arg("partition_tags")).unwrap_or_else(|e| panic!("{meta}: {e}"));
        if let Some(tags) = tags {
            return serde_json::from_str(&tags).unwrap_or_else(|e| panic!("{meta}: bad partition_tags: {e}"));
        }
        let p: Option<u32> = self.query_key(&meta, redis::cmd("HGET").arg(&meta).arg("partitions")).unwrap_or_else(|e| panic!("{meta}: {e}"));
        match p.unwrap_or(1) {
            1 => vec![job.to_string()],
            p => (0..p).map(|i| format!("{job}.{i}")).collect(),
        }
    }

    /// Every task of `job` claimed and not acknowledged, by consumer
    /// (stream `wc:{tag}:files`, the default `IN`).
    pub fn held_tasks(&self, job: &str) -> Vec<HeldTask> {
        let mut held = Vec::new();
        for (partition, tag) in self.partition_tags(job).iter().enumerate() {
            let stream = format!("wc:{{{tag}}}:files");
            let Ok(pending) = self.query_key::<StreamPendingCountReply>(&stream, redis::cmd("XPENDING").arg(&stream).arg("workers").arg("-").arg("+").arg(1000)) else {
                continue;
            };
            for p in pending.ids {
                let Ok(range) = self.query_key::<StreamRangeReply>(&stream, redis::cmd("XRANGE").arg(&stream).arg(&p.id).arg(&p.id)) else { continue };
                let Some(task) = range.ids.first().and_then(|e| e.get::<String>("task")) else { continue };
                held.push(HeldTask { partition: partition as u32, entry: p.id, consumer: p.consumer, task });
            }
        }
        held
    }

    /// Is `task` of `job` in its partition's done-set?
    pub fn task_done(&self, job: &str, held: &HeldTask) -> bool {
        let tag = &self.partition_tags(job)[held.partition as usize];
        let done = format!("wc:{{{tag}}}:done");
        self.query_key(&done, redis::cmd("SISMEMBER").arg(&done).arg(&held.task)).unwrap_or(false)
    }

    /// Tasks done so far by `job` (every partition's done-set).
    pub fn tasks_done(&self, job: &str) -> usize {
        self.partition_tags(job)
            .iter()
            .map(|tag| {
                let done = format!("wc:{{{tag}}}:done");
                self.query_key::<usize>(&done, redis::cmd("SCARD").arg(&done)).unwrap_or(0)
            })
            .sum()
    }

    /// The consumers of `job`'s partitions' groups (`XINFO CONSUMERS`).
    pub fn consumers(&self, job: &str) -> Vec<String> {
        let mut names = Vec::new();
        for tag in self.partition_tags(job) {
            let stream = format!("wc:{{{tag}}}:files");
            let infos: Vec<std::collections::HashMap<String, redis::Value>> =
                self.query_key(&stream, redis::cmd("XINFO").arg("CONSUMERS").arg(&stream).arg("workers")).unwrap_or_default();
            for info in infos {
                if let Some(redis::Value::BulkString(name)) = info.get("name") {
                    names.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}
