//! `wc-host top`, `wc-host status` and `wc-host report`.

use std::path::PathBuf;

use clap::Args;

use crate::query::QuerySpec;
use crate::report_cmd::ReportSpec;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Redis URL [default: the managed Redis of --data-dir, started for the query].
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    #[arg(long, default_value = crate::redis_server::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Job id [default: the last job started on this Redis].
    #[arg(long)]
    pub job: Option<String>,
    /// How many keys (top).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `wc-host status`: the query, and `--watch`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Refresh every second (in place on a terminal) until the job is finished.
    #[arg(long)]
    pub watch: bool,
}

/// `wc-host report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The HTML file to write.
    #[arg(short, long, value_name = "FILE.html")]
    pub output: PathBuf,
}

impl StatusArgs {
    pub fn spec(self) -> QuerySpec {
        QuerySpec { watch: self.watch, ..self.query.spec() }
    }
}

impl ReportArgs {
    pub fn spec(self) -> ReportSpec {
        let mut query = self.query.spec();
        query.top = query.top.max(crate::report_cmd::REPORT_TOP);
        ReportSpec { query, output: self.output }
    }
}

impl QueryArgs {
    pub fn spec(self) -> QuerySpec {
        QuerySpec { redis: self.redis, data_dir: self.data_dir, job: self.job, top: self.top, json: self.json, watch: false }
    }
}
