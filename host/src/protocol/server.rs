//! What the coordinator asks of the Redis servers themselves: their run ids
//! (a changed one means a restart or a failover, hence a possible
//! rollback), checkpoints, persistence status and resource use.

use std::time::Duration;

use super::connection::{slot_of_tag, Store};
use super::keys::default_tags;

/// `INFO persistence`, the fields the coordinator acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persistence {
    /// Snapshots completed since the server started.
    pub rdb_saves: u64,
    pub bgsave_in_progress: bool,
    /// `ok`, or `err` when the last BGSAVE failed.
    pub last_bgsave_status: String,
    pub aof_enabled: bool,
    /// `ok`, or `err` when writing the append-only file failed.
    pub aof_last_write_status: String,
}

impl Persistence {
    fn from_info(info: &redis::InfoDict) -> Persistence {
        Persistence {
            rdb_saves: info.get("rdb_saves").unwrap_or(0),
            bgsave_in_progress: info.get::<u64>("rdb_bgsave_in_progress").unwrap_or(0) == 1,
            last_bgsave_status: info.get("rdb_last_bgsave_status").unwrap_or_default(),
            aof_enabled: info.get::<u64>("aof_enabled").unwrap_or(0) == 1,
            aof_last_write_status: info.get("aof_last_write_status").unwrap_or_default(),
        }
    }
}

/// Outcome of asking for a checkpoint.
#[derive(Debug)]
pub enum Checkpoint {
    Started,
    /// A save is already running: it serves as well.
    AlreadyRunning,
    /// The user may not BGSAVE (ACL): checkpoints are off.
    Denied(String),
    /// Any other refusal or failure, with Redis's message.
    Failed(String),
}

impl Store {
    /// For each partition, then for the job's own keys: the run id of the
    /// server that holds them. A change means that server restarted (from
    /// a snapshot) or another took its place in a failover: either way its
    /// keys may have rolled back to an earlier state.
    pub fn serving_run_ids(&mut self) -> anyhow::Result<Vec<String>> {
        self.with_retry(|conn, keys| {
            let tags = keys.partitions.iter().map(|p| p.tag.as_str()).chain([keys.job.as_str()]);
            let mut ids = Vec::new();
            for tag in tags {
                ids.push(conn.info_for_tag(tag, "server")?.get::<String>("run_id").unwrap_or_default());
            }
            Ok(ids)
        })
    }

    /// The persistence status of the server holding the job's own keys.
    pub fn persistence(&mut self) -> anyhow::Result<Persistence> {
        let info = self.with_retry(|conn, keys| conn.info_for_tag(&keys.job, "persistence"))?;
        Ok(Persistence::from_info(&info))
    }

    /// The persistence status of every primary, by address.
    pub fn persistence_of_primaries(&mut self, give_up: Duration) -> anyhow::Result<Vec<(String, Persistence)>> {
        let nodes = self.with_retry_for(give_up, |conn, _| conn.info_of_primaries("persistence"))?;
        let single = (!self.deployment().is_cluster()).then(|| self.deployment().describe());
        Ok(nodes.into_iter().map(|(node, info)| (single.clone().unwrap_or(node), Persistence::from_info(&info))).collect())
    }

    /// Hash tags for `partitions` partitions of `job` that spread evenly
    /// over a Cluster's primaries: partition p lands on primary p mod N (by
    /// the slot map now), trying the tag `J.p`, then `J.p.1`, `J.p.2`, …
    /// (Hashing alone put 1387, 599 and 395 of 2381 tasks on three
    /// primaries.) On one server, the default tags.
    pub fn balanced_tags(&mut self, job: &str, partitions: u32) -> anyhow::Result<Vec<String>> {
        let Some(ranges) = self.with_retry(|conn, _| conn.slot_primaries())? else { return Ok(default_tags(job, partitions)) };
        let mut primaries: Vec<&String> = ranges.iter().map(|(_, _, p)| p).collect();
        primaries.sort();
        primaries.dedup();
        if partitions <= 1 || primaries.len() <= 1 {
            return Ok(default_tags(job, partitions));
        }
        let primary_of = |slot: u16| ranges.iter().find(|(lo, hi, _)| (*lo..=*hi).contains(&slot)).map(|(_, _, p)| p);
        let tags = (0..partitions)
            .map(|p| {
                let target = primaries[p as usize % primaries.len()];
                (0..)
                    .map(|k| if k == 0 { format!("{job}.{p}") } else { format!("{job}.{p}.{k}") })
                    .take(10_000)
                    .find(|tag| primary_of(slot_of_tag(tag)) == Some(target))
                    .unwrap_or_else(|| format!("{job}.{p}"))
            })
            .collect();
        Ok(tags)
    }

    /// How many primaries serve the job (1 for one server).
    pub fn primaries(&mut self) -> anyhow::Result<usize> {
        Ok(self.with_retry(|conn, _| conn.info_of_primaries("server"))?.len())
    }

    /// Primaries that keep no append-only file: after one crashes (and its
    /// replica with it) it comes back from its last snapshot, if any, and
    /// the work since is redone. Counts stay exact; progress is what is at
    /// stake. Read from `INFO persistence`.
    pub fn primaries_without_persistence(&mut self) -> anyhow::Result<Vec<String>> {
        let nodes = self.with_retry(|conn, _| conn.info_of_primaries("persistence"))?;
        Ok(nodes
            .into_iter()
            .filter(|(_, info)| info.get::<u64>("aof_enabled").unwrap_or(0) == 0)
            .map(|(node, _)| node)
            .collect())
    }

    /// CPU seconds the servers have used and their peak memory in MB
    /// (summed over a Cluster's primaries), for the summary; asked with
    /// little patience (it is only an extra).
    pub fn server_usage(&mut self) -> anyhow::Result<(f64, f64)> {
        let nodes = self.with_retry_for(Duration::from_secs(5), |conn, _| conn.info_of_primaries("all"))?;
        let sum = |name: &str| nodes.iter().map(|(_, info)| info.get::<f64>(name).unwrap_or(0.0)).sum::<f64>();
        Ok((sum("used_cpu_sys") + sum("used_cpu_user"), sum("used_memory_peak") / 1e6))
    }

    /// Waits up to `timeout` until `replicas` replicas (of every primary, on
    /// a Cluster) have every write made so far on this connection — and so,
    /// since replication is in order, every write the server made before
    /// them. True when they have.
    pub fn wait_replicas(&mut self, replicas: u32, timeout: Duration) -> anyhow::Result<bool> {
        let acked: i64 = self.with_retry(|conn, _| redis::cmd("WAIT").arg(replicas).arg(timeout.as_millis() as u64).query(conn))?;
        Ok(acked >= replicas as i64)
    }

    /// Counts a commit that the replicas `--replicas-ack` asks for did not
    /// acknowledge in time.
    pub fn count_unreplicated(&mut self, partition: u32) -> anyhow::Result<()> {
        self.with_retry(|conn, keys| redis::cmd("HINCRBY").arg(&keys.partitions[partition as usize].stats).arg(super::keys::field::UNREPLICATED).arg(1).query::<i64>(conn))?;
        Ok(())
    }

    /// Is the server holding the job's keys still the master Sentinel names?
    /// (After a failover the old master may accept writes for seconds, all of
    /// them lost when it is turned into a replica.) Always true elsewhere.
    pub fn still_the_master(&mut self) -> anyhow::Result<bool> {
        let Some(named) = self.deployment().sentinel_master_run_id() else { return Ok(true) };
        let named = named.map_err(|e| anyhow::anyhow!("asking the sentinels for the master: {e}"))?;
        let ours = self.with_retry(|conn, keys| conn.info_for_tag(&keys.job, "server"))?.get::<String>("run_id").unwrap_or_default();
        Ok(ours == named)
    }

    /// Starts a BGSAVE; retries for at most `give_up`.
    pub fn checkpoint(&mut self, give_up: Duration) -> Checkpoint {
        match self.with_retry_for(give_up, |conn, _| redis::cmd("BGSAVE").query::<String>(conn)) {
            Ok(_) => Checkpoint::Started,
            Err(e) => {
                let message = format!("{e:#}");
                if message.contains("in progress") {
                    Checkpoint::AlreadyRunning
                } else if message.contains("NOPERM") {
                    Checkpoint::Denied(message)
                } else {
                    Checkpoint::Failed(message)
                }
            }
        }
    }
}
