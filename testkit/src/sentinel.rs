//! A replicated Redis watched by Sentinel, of the test's own: a master, its
//! replicas and three sentinels on free loopback ports, each in its own
//! directory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis::free_port;

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "wcmaster";

pub struct DataNode {
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl DataNode {
    fn start(extra: &[String]) -> DataNode {
        let mut node = DataNode { port: free_port(), dir: tempfile::tempdir().unwrap(), extra: extra.to_vec(), child: None };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(self.dir.path()).unwrap();
        let child = Command::new(crate::redis::redis_server_bin())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"])
            .args(["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make deps)");
        self.child = Some(child);
        wait_for_ping(self.port);
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection_with_timeout(Duration::from_secs(2)).unwrap()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `master` or `slave`.
    pub fn role(&self) -> String {
        let info: redis::InfoDict = redis::cmd("INFO").arg("replication").query(&mut self.conn()).unwrap();
        info.get("role").unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port; it comes back as a master of its
    /// own until the sentinels reconfigure it.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for DataNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_ping(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get_connection_with_timeout(Duration::from_secs(1)).and_then(|mut c| redis::cmd("PING").query::<String>(&mut c)).is_err() {
        assert!(Instant::now() < deadline, "redis on port {port} did not start");
        std::thread::sleep(Duration::from_millis(30));
    }
}

struct SentinelProcess {
    port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct SentinelSetup {
    /// Index 0 starts as the master.
    pub nodes: Vec<DataNode>,
    sentinels: Vec<SentinelProcess>,
}

impl SentinelSetup {
    /// A master with `replicas` replicas (each started with `extra`
    /// redis-server arguments) and 3 sentinels (quorum 2, a master is down
    /// after 1 s without an answer).
    pub fn start(replicas: usize, extra: &[&str]) -> SentinelSetup {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let master = DataNode::start(&extra);
        let mut nodes = vec![master];
        for _ in 0..replicas {
            let mut args = extra.clone();
            args.extend(["--replicaof".into(), "127.0.0.1".into(), nodes[0].port.to_string()]);
            nodes.push(DataNode::start(&args));
        }
        let sentinels = (0..3)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let port = free_port();
                let conf = dir.path().join("sentinel.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\nlogfile sentinel.log\nsentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\nsentinel down-after-milliseconds {MASTER_NAME} 1000\nsentinel failover-timeout {MASTER_NAME} 10000\nsentinel parallel-syncs {MASTER_NAME} 1\n",
                        dir.path().display(),
                        nodes[0].port
                    ),
                )
                .unwrap();
                let child = Command::new(crate::redis::redis_server_bin()).arg(&conf).arg("--sentinel").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
                wait_for_ping(port);
                SentinelProcess { port, _dir: dir, child }
            })
            .collect();
        let setup = SentinelSetup { nodes, sentinels };
        setup.wait_replicated();
        setup.wait_sentinels_agree(0);
        setup
    }

    /// `redis-sentinel://` with every sentinel.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis-sentinel://{}#{MASTER_NAME}", hosts.join(","))
    }

    /// The index of the node the sentinels name as master.
    pub fn master(&self) -> usize {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}/", self.sentinels[0].port)).unwrap().get_connection().unwrap();
        let (_, port): (String, u16) = redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME).query(&mut conn).unwrap();
        self.nodes.iter().position(|n| n.port == port).expect("a node of ours")
    }

    /// Until every sentinel names node `index` as the master.
    pub fn wait_sentinels_agree(&self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let agree = self.sentinels.iter().all(|s| {
                let answer = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap().get_connection().and_then(|mut c| {
                    redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME).query::<(String, u16)>(&mut c)
                });
                answer.is_ok_and(|(_, port)| port == self.nodes[index].port)
            });
            if agree {
                return;
            }
            assert!(Instant::now() < deadline, "the sentinels do not agree on {}", self.nodes[index].port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Until a node other than `old` is master and every sentinel says so.
    pub fn wait_failover_from(&self, old: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let master = self.master();
            if master != old && self.nodes[master].is_running() && self.nodes[master].role() == "master" {
                self.wait_sentinels_agree(master);
                return master;
            }
            assert!(Instant::now() < deadline, "no failover from node {old}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Settled: every sentinel names the same running master, and every
    /// other running node is its replica, in sync. (Crashing a master
    /// before that can leave the sentinels unable to elect anyone.)
    pub fn settled(&self) -> bool {
        let Some(master) = self.sentinels.iter().map(|s| {
            redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap().get_connection().and_then(|mut c| {
                redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME).query::<(String, u16)>(&mut c)
            }).ok().map(|(_, port)| port)
        }).collect::<Option<Vec<u16>>>() else { return false };
        if master.windows(2).any(|w| w[0] != w[1]) {
            return false;
        }
        let Some(index) = self.nodes.iter().position(|n| n.port == master[0] && n.is_running()) else { return false };
        let others = self.nodes.iter().enumerate().filter(|(i, n)| *i != index && n.is_running()).count();
        self.nodes[index].role() == "master" && self.online_replicas() == others
    }

    /// Replicas connected and in sync with the master now.
    pub fn online_replicas(&self) -> usize {
        let master = self.master();
        let info: String = redis::cmd("INFO").arg("replication").query(&mut self.nodes[master].conn()).unwrap_or_default();
        info.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count()
    }

    /// Until the running replicas are connected and in sync with the master.
    pub fn wait_replicated(&self) {
        let master = self.master();
        let replicas = self.nodes.iter().enumerate().filter(|(i, n)| *i != master && n.is_running()).count();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut self.nodes[master].conn()).unwrap_or_default();
            let online = info.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count();
            if online >= replicas {
                return;
            }
            assert!(Instant::now() < deadline, "replicas did not sync: {info}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks a sentinel for a failover now (`SENTINEL FAILOVER`).
    pub fn failover(&self) {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}/", self.sentinels[0].port)).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER_NAME).query(&mut conn).unwrap();
    }
}
