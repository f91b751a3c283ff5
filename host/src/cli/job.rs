//! `wc-host --plugin P [DATA...]`: a whole job, and the one merge of flags
//! over config.json over the defaults.

use std::path::{Path, PathBuf};

use clap::Args;

use super::shared::{one_of, positive, FormatArgs, PluginParams, SandboxArgs};
use crate::config::Config;
use crate::coordinator::{JobSpec, ReportChoice};
use crate::protocol::{CommitMode, SetEncoding};
use crate::redis_server::Durability;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The counting plugin (a WebAssembly component).
    #[arg(long, default_value = "plugins/words.wasm")]
    pub plugin: PathBuf,
    /// Inputs: CSV/TSV files (plain, .gz, .zst, .bz2), .zip archives,
    /// directories (recursively) or globs [default: DATA_PATH from the config, else data/].
    pub data: Vec<String>,
    /// The configuration file (the seed's keys; see README).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Redis URL: redis://[user][:password]@host:port/db (one server),
    /// redis-cluster://[user:password@]host:port[,host:port...] (a Cluster),
    /// redis-sentinel://[user:password@]host:port[,...][/db]#MASTER (Sentinel).
    /// Without it, a managed redis-server is started on loopback and stopped at the end.
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    /// Data directory of the managed Redis.
    #[arg(long, default_value = crate::redis_server::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Workers (N_NORMAL_WORKERS).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Workers that exit abruptly after claiming a task (N_CRASHING_WORKERS).
    #[arg(long)]
    pub crashing_workers: Option<usize>,
    /// Workers that stall past the claim timeout before committing (N_SLEEPING_WORKERS).
    #[arg(long)]
    pub sleeping_workers: Option<usize>,
    /// Seconds between BGSAVE checkpoints (CHECKPOINT_INTERVAL; 0 disables them).
    #[arg(long)]
    pub checkpoint_interval: Option<f64>,
    /// Seconds a claimed task may idle before another worker steals it (CLAIM_TIMEOUT).
    #[arg(long, value_parser = positive)]
    pub claim_timeout: Option<f64>,
    /// Split files larger than this many MB into ranges (SPLIT_MB).
    #[arg(long, value_parser = positive)]
    pub split_mb: Option<f64>,
    /// Failures before a task is dead-lettered (MAX_ATTEMPTS).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Keys shown in the summary (TOP).
    #[arg(long)]
    pub top: Option<usize>,
    /// Write all counts to PATH (.json object or .csv rows).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write an HTML report of the job (summary, charts, fault timeline)
    /// to FILE [default: DATA_DIR/report.html with the managed Redis].
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Write no HTML report.
    #[arg(long, conflicts_with = "report")]
    pub no_report: bool,
    /// Persistence of the managed Redis.
    #[arg(long, value_parser = one_of::<Durability>(&Durability::NAMES), default_value = "snapshot")]
    pub durability: Durability,
    /// Chaos: SIGKILL the managed Redis every SECS seconds and restart it
    /// from its data directory (REDIS_DOWNTIME sets how long it stays down).
    #[arg(long)]
    pub chaos_redis_restart: Option<f64>,
    /// Forget an earlier run of the same job and count again.
    #[arg(long)]
    pub fresh: bool,
    /// How counts reach Redis: `reduce` (one blob per task, sorted set built
    /// at the end; fastest) or `live` (ZINCRBY as tasks land).
    #[arg(long, value_parser = one_of::<CommitMode>(&CommitMode::NAMES), default_value = "reduce")]
    pub commit_mode: CommitMode,
    /// How reduce mode's published sorted set is held in Redis: `indexed`
    /// (ZSCORE and ZRANK in O(log n), about 100 bytes a key), `compact` (one
    /// listpack: a seventh of the memory and ten times faster to publish,
    /// but every read of it scans it all, 10-30 ms at 2 M keys), or `auto`:
    /// compact on the managed Redis, indexed on a Redis given with --redis.
    #[arg(long, value_parser = ["auto", "indexed", "compact"], default_value = "auto")]
    pub set_encoding: String,
    /// Partitions of the job's tasks, each with its own stream and done-set
    /// in its own slot [default: 1 on one server, 4 per primary on a Cluster].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: Option<u32>,
    /// Wait after each commit, and after publishing, until N replicas hold
    /// it (WAIT); a shortfall is reported, and the result is published only
    /// once N replicas hold it [default: 0, asynchronous replication].
    #[arg(long, default_value_t = 0)]
    pub replicas_ack: u32,
    #[command(flatten)]
    pub params: PluginParams,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

const DEFAULT_CONFIG: &str = "config.json";

impl RunArgs {
    pub fn spec(self, quiet: bool) -> anyhow::Result<JobSpec> {
        let config = self.config()?;
        let inputs = if !self.data.is_empty() { self.data } else { vec![config.data_path.clone().unwrap_or_else(|| "data".into())] };
        Ok(JobSpec {
            plugin: crate::authoring::resolve::plugin_path(&self.plugin)?,
            inputs,
            config,
            redis: self.redis,
            data_dir: self.data_dir,
            output: self.output,
            report: match (self.report, self.no_report) {
                (_, true) => ReportChoice::None,
                (Some(path), _) => ReportChoice::To(path),
                (None, false) => ReportChoice::Default,
            },
            json: self.json,
            quiet,
            durability: self.durability,
            chaos_redis_restart: self.chaos_redis_restart.filter(|s| *s > 0.0),
            fresh: self.fresh,
            commit_mode: self.commit_mode,
            set_encoding: match self.set_encoding.as_str() {
                "indexed" => Some(SetEncoding::Indexed),
                "compact" => Some(SetEncoding::Compact),
                _ => None,
            },
            partitions: self.partitions,
            replicas_ack: self.replicas_ack,
            params: self.params.plugin_args,
            policy: self.sandbox.policy(),
            format: self.format.format(),
        })
    }

    /// Flags over the config file over the defaults; a missing file is
    /// fine only when it is the default one.
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = Config::load(&self.config, self.config == Path::new(DEFAULT_CONFIG))?;
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut c.normal_workers, self.workers);
        set(&mut c.crashing_workers, self.crashing_workers);
        set(&mut c.sleeping_workers, self.sleeping_workers);
        set(&mut c.top, self.top);
        c.checkpoint_interval = self.checkpoint_interval.unwrap_or(c.checkpoint_interval);
        c.claim_timeout = self.claim_timeout.unwrap_or(c.claim_timeout);
        c.split_mb = self.split_mb.unwrap_or(c.split_mb);
        c.max_attempts = self.max_attempts.map_or(c.max_attempts, |v| v.max(1));
        c.check()?;
        Ok(c)
    }
}
