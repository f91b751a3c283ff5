//! What the coordinator asks of the Redis server itself: its run id (a
//! changed one means a restart, hence a possible rollback), checkpoints,
//! persistence status and resource use.

use std::time::Duration;

use redis::InfoDict;

use super::connection::Store;

/// `INFO persistence`, the fields the coordinator acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persistence {
    /// Snapshots completed since the server started.
    pub rdb_saves: u64,
    pub bgsave_in_progress: bool,
    /// `ok`, or `err` when the last BGSAVE failed.
    pub last_bgsave_status: String,
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
    fn info(&mut self, section: &str, give_up: Option<Duration>) -> anyhow::Result<InfoDict> {
        let query = |conn: &mut redis::Connection, _: &_| redis::cmd("INFO").arg(section).query::<InfoDict>(conn);
        match give_up {
            Some(limit) => self.with_retry_for(limit, query),
            None => self.with_retry(query),
        }
    }

    /// The server's run id: it changes when the server restarts.
    pub fn run_id(&mut self) -> anyhow::Result<String> {
        self.info("server", None)?.get::<String>("run_id").ok_or_else(|| anyhow::anyhow!("INFO server has no run_id"))
    }

    pub fn persistence(&mut self) -> anyhow::Result<Persistence> {
        let info = self.info("persistence", None)?;
        Ok(Persistence {
            rdb_saves: info.get("rdb_saves").unwrap_or(0),
            bgsave_in_progress: info.get::<u64>("rdb_bgsave_in_progress").unwrap_or(0) == 1,
            last_bgsave_status: info.get("rdb_last_bgsave_status").unwrap_or_default(),
        })
    }

    /// CPU seconds the server has used and its peak memory in MB, for the
    /// summary; asked with little patience (it is only an extra).
    pub fn server_usage(&mut self) -> anyhow::Result<(f64, f64)> {
        let info = self.info("all", Some(Duration::from_secs(5)))?;
        let field = |name: &str| info.get::<f64>(name).unwrap_or(0.0);
        Ok((field("used_cpu_sys") + field("used_cpu_user"), field("used_memory_peak") / 1e6))
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
