//! `wc-host top` and `wc-host status`.

use std::path::PathBuf;

use clap::Args;

use crate::query::QuerySpec;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Redis URL [default: the managed Redis of --data-dir, started for the query].
    #[arg(long, env = "REDIS_URL")]
    pub redis: Option<String>,
    #[arg(long, default_value = ".wc-data")]
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

impl QueryArgs {
    pub fn spec(self) -> QuerySpec {
        QuerySpec { redis: self.redis, data_dir: self.data_dir, job: self.job, top: self.top, json: self.json }
    }
}
