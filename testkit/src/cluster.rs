//! A Redis Cluster of the test's own: primaries with a replica each, on free
//! loopback ports (or in a network namespace of a [`NetLab`]), each node in
//! its own directory; nodes can be SIGKILLed, restarted, failed over, and
//! slots migrated between primaries.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{in_netns, netns_command, NetLab};
use crate::redis::free_port;

pub struct ClusterNode {
    /// The address it binds and announces.
    pub ip: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The network namespace it runs in (`None`: the test's own, on loopback).
    pub netns: Option<String>,
    child: Option<Child>,
}

impl ClusterNode {
    fn start() -> ClusterNode {
        let mut node = ClusterNode { ip: "127.0.0.1".into(), port: free_port(), dir: tempfile::tempdir().unwrap(), netns: None, child: None };
        node.spawn();
        node
    }

    fn start_in(netns: &str, ip: &str, port: u16) -> ClusterNode {
        let mut node = ClusterNode { ip: ip.into(), port, dir: tempfile::tempdir().unwrap(), netns: Some(netns.into()), child: None };
        node.spawn();
        node
    }

    /// `program`, in this node's namespace if it has one.
    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => netns_command(ns, program),
            None => Command::new(program),
        }
    }

    fn spawn(&mut self) {
        let mut cmd = self.command(&crate::redis::redis_server_bin());
        if self.netns.is_some() {
            // Reached from the lab's other namespaces, which protected mode
            // refuses (no password): the namespace is the protection.
            cmd.args(["--cluster-announce-ip", &self.ip, "--protected-mode", "no"]);
        }
        let child = cmd
            .args(["--bind", &self.ip, "--port", &self.port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"])
            .args(["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"])
            .args(["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make deps)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = self.try_conn(Duration::from_secs(1)).and_then(|mut c| redis::cmd("PING").query::<String>(&mut c)) {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(Instant::now() < deadline && exited.is_none(), "cluster node {} did not start ({e}; exit status {exited:?})", self.addr());
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    pub(crate) fn try_conn(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}/", self.addr())).unwrap();
        match &self.netns {
            Some(ns) => in_netns(ns, || client.get_connection_with_timeout(timeout)),
            None => client.get_connection_with_timeout(timeout),
        }
    }

    /// A plain connection to this node (not cluster-aware), made in its
    /// namespace if it has one.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn(Duration::from_secs(2)).unwrap_or_else(|e| panic!("cannot connect to cluster node {}: {e}", self.addr()))
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again from its directory (its nodes.conf: it rejoins).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// This node's cluster id.
    pub fn id(&self) -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut self.conn()).unwrap()
    }

    /// `master` or `slave`, as this node sees itself.
    pub fn role(&self) -> String {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut self.conn()).unwrap();
        match role.first() {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("ROLE answered {other:?}"),
        }
    }

    /// Keys of this node matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS").arg(pattern).query(&mut self.conn()).unwrap()
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
}

impl RedisCluster {
    /// `primaries` primaries with one replica each, slots spread evenly.
    pub fn start(primaries: usize) -> RedisCluster {
        let nodes: Vec<ClusterNode> = (0..primaries * 2).map(|_| ClusterNode::start()).collect();
        RedisCluster::create(nodes, primaries)
    }

    /// The same in host `label` of `lab`: the nodes bind and announce the
    /// host's address (ports 7001, 7002, …), so that processes in the lab's
    /// other hosts reach them over the bridge.
    pub fn start_in(lab: &NetLab, label: &str, primaries: usize) -> RedisCluster {
        let host = lab.host(label);
        let nodes: Vec<ClusterNode> = (0..primaries * 2).map(|i| ClusterNode::start_in(&host.netns, &host.ip, 7001 + i as u16)).collect();
        RedisCluster::create(nodes, primaries)
    }

    fn create(nodes: Vec<ClusterNode>, primaries: usize) -> RedisCluster {
        let status = nodes[0]
            .command("redis-cli")
            .args(["--cluster", "create"])
            .args(nodes.iter().map(ClusterNode::addr))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed (redis-tools)");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes };
        cluster.wait_healthy(primaries);
        cluster
    }

    /// `redis-cluster://` with every node that runs as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes.iter().filter(|n| n.is_running()).map(ClusterNode::addr).collect();
        format!("redis-cluster://{}", seeds.join(","))
    }

    /// Until every running node says the cluster is ok, sees `primaries`
    /// primaries serving all slots, and every primary has a replica in sync.
    pub fn wait_healthy(&self, primaries: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let healthy = self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut n.conn()).unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384") && info.contains(&format!("cluster_size:{primaries}"))
            });
            let synced = self.primaries().iter().all(|&i| {
                let info: String = redis::cmd("INFO").arg("replication").query(&mut self.nodes[i].conn()).unwrap_or_default();
                info.contains("connected_slaves:1") && info.contains("state=online")
            });
            if healthy && synced {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Indices of the running nodes that are primaries.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running() && self.nodes[i].role() == "master").collect()
    }

    /// The index of the primary serving `slot`, as node 0's view says.
    pub fn primary_of_slot(&self, slot: u16) -> usize {
        let asker = self.nodes.iter().find(|n| n.is_running()).expect("a running node");
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut asker.conn()).unwrap();
        for range in slots {
            let redis::Value::Array(parts) = range else { continue };
            let (Some(redis::Value::Int(lo)), Some(redis::Value::Int(hi)), Some(redis::Value::Array(master))) = (parts.first(), parts.get(1), parts.get(2)) else { continue };
            if (*lo..=*hi).contains(&(slot as i64)) {
                let Some(redis::Value::Int(port)) = master.get(1) else { continue };
                return self.nodes.iter().position(|n| n.port as i64 == *port).expect("a node of ours");
            }
        }
        panic!("no primary serves slot {slot}")
    }

    /// The replica of primary `primary`.
    pub fn replica_of(&self, primary: usize) -> usize {
        let id = self.nodes[primary].id();
        (0..self.nodes.len())
            .find(|&i| {
                i != primary && self.nodes[i].is_running() && {
                    let info: String = redis::cmd("INFO").arg("replication").query(&mut self.nodes[i].conn()).unwrap_or_default();
                    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut self.nodes[i].conn()).unwrap_or_default();
                    info.contains("role:slave") && nodes.lines().any(|l| l.contains("myself") && l.contains(&id))
                }
            })
            .unwrap_or_else(|| panic!("primary {} has no replica", self.nodes[primary].addr()))
    }

    /// Starts moving `slot` from its primary to primary `to`: the slot is
    /// MIGRATING there and IMPORTING here, and clients get ASK for moved
    /// keys and TRYAGAIN for commands whose keys are split, until
    /// [`SlotMigration::finish`].
    pub fn begin_migration(&self, slot: u16, to: usize) -> SlotMigration {
        let from = self.primary_of_slot(slot);
        assert_ne!(from, to, "slot {slot} is already on that node");
        let (src, dst) = (&self.nodes[from], &self.nodes[to]);
        let _: () = redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(src.id()).query(&mut dst.conn()).unwrap();
        let _: () = redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(dst.id()).query(&mut src.conn()).unwrap();
        SlotMigration { slot, from, to }
    }

    /// Moves `slot` to primary `to` in one go.
    pub fn migrate_slot(&self, slot: u16, to: usize) {
        let migration = self.begin_migration(slot, to);
        while migration.move_keys(self, 100) > 0 {}
        migration.finish(self);
    }

    /// Every key matching `pattern` on the running primaries, by node index.
    pub fn keys_by_primary(&self, pattern: &str) -> Vec<(usize, Vec<String>)> {
        self.primaries().into_iter().map(|i| (i, self.nodes[i].keys(pattern))).collect()
    }
}

/// A slot on its way from one primary to another.
pub struct SlotMigration {
    pub slot: u16,
    pub from: usize,
    pub to: usize,
}

impl SlotMigration {
    /// Moves up to `n` keys of the slot (MIGRATE); how many it moved.
    pub fn move_keys(&self, cluster: &RedisCluster, n: usize) -> usize {
        let (src, dst) = (&cluster.nodes[self.from], &cluster.nodes[self.to]);
        let keys: Vec<String> = redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(self.slot).arg(n).query(&mut src.conn()).unwrap();
        if !keys.is_empty() {
            let _: redis::Value = redis::cmd("MIGRATE").arg(&dst.ip).arg(dst.port).arg("").arg(0).arg(5000).arg("KEYS").arg(&keys).query(&mut src.conn()).unwrap();
        }
        keys.len()
    }

    /// Moves the remaining keys and hands the slot over on every primary.
    pub fn finish(self, cluster: &RedisCluster) {
        while self.move_keys(cluster, 100) > 0 {}
        let dst_id = cluster.nodes[self.to].id();
        for i in cluster.primaries() {
            let _: () = redis::cmd("CLUSTER").arg("SETSLOT").arg(self.slot).arg("NODE").arg(&dst_id).query(&mut cluster.nodes[i].conn()).unwrap();
        }
    }
}
