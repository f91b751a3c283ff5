//! config.json: the seed's keys as they are, plus wc-host's own.
//!
//! Unknown keys (the seed's LOGFILE, say) are accepted with a warning; a key
//! with a value of the wrong type is an error naming the key. Command-line
//! flags override every value here (merged in `cli`, then [`Config::check`]ed).

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Config {
    /// Workers started and kept running (respawned when they die).
    pub normal_workers: usize,
    /// Workers that exit abruptly right after claiming their first task.
    pub crashing_workers: usize,
    /// Workers that stall past the claim timeout before their first commit.
    pub sleeping_workers: usize,
    /// Seconds between BGSAVE checkpoints (0 disables them).
    pub checkpoint_interval: f64,
    /// Seconds a managed Redis stays down in each chaos restart (0: no chaos
    /// unless `--chaos-redis-restart` is given).
    pub redis_downtime: f64,
    /// Default inputs when none are given on the command line.
    pub data_path: Option<String>,
    /// Stream name (namespaced per job).
    pub stream: String,
    /// Field of a stream entry that holds the task's file name.
    pub fname_field: String,
    /// Name of the sorted set of counts (namespaced per job).
    pub count_key: String,
    /// Seconds a claimed task may go without progress before another worker steals it.
    pub claim_timeout: f64,
    /// Files larger than this are split into ranges of about this size, MB.
    pub split_mb: f64,
    /// Failures of a task before it is dead-lettered.
    pub max_attempts: u32,
    /// Keys shown in the summary.
    pub top: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            normal_workers: 2,
            crashing_workers: 0,
            sleeping_workers: 0,
            checkpoint_interval: 2.0,
            redis_downtime: 0.0,
            data_path: None,
            stream: "files".into(),
            fname_field: "fname".into(),
            count_key: "count".into(),
            claim_timeout: 3.0,
            split_mb: 16.0,
            max_attempts: 3,
            top: 10,
        }
    }
}

impl Config {
    /// Reads `path`; a missing file gives the defaults only if `optional`.
    pub fn load(path: &Path, optional: bool) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read config {}", path.display())),
        };
        let value: Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
        Config::from_json(&value).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_json(value: &Value) -> anyhow::Result<Config> {
        let Value::Object(map) = value else { bail!("the config must be a JSON object") };
        let mut config = Config::default();
        for (key, v) in map {
            match key.as_str() {
                "N_NORMAL_WORKERS" => config.normal_workers = count(key, v)?,
                "N_CRASHING_WORKERS" => config.crashing_workers = count(key, v)?,
                "N_SLEEPING_WORKERS" => config.sleeping_workers = count(key, v)?,
                "CHECKPOINT_INTERVAL" => config.checkpoint_interval = seconds(key, v)?,
                "REDIS_DOWNTIME" => config.redis_downtime = seconds(key, v)?,
                "DATA_PATH" => config.data_path = Some(name(key, v)?),
                "IN" => config.stream = name(key, v)?,
                "FNAME" => config.fname_field = name(key, v)?,
                "COUNT" => config.count_key = name(key, v)?,
                "CLAIM_TIMEOUT" => config.claim_timeout = seconds(key, v)?,
                "SPLIT_MB" => config.split_mb = seconds(key, v)?,
                "MAX_ATTEMPTS" => config.max_attempts = count(key, v)?.max(1) as u32,
                "TOP" => config.top = count(key, v)?,
                _ => tracing::warn!("config key `{key}` is not used by wc-host; ignored"),
            }
        }
        Ok(config)
    }

    /// Checks the merged configuration (defaults, file, then flags, whose
    /// own ranges are checked when they are parsed).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.claim_timeout <= 0.0 {
            bail!("config key `CLAIM_TIMEOUT` must be greater than 0");
        }
        if self.split_mb <= 0.0 {
            bail!("config key `SPLIT_MB` must be greater than 0");
        }
        if self.normal_workers == 0 {
            bail!("at least one normal worker is needed (N_NORMAL_WORKERS / --workers)");
        }
        Ok(())
    }
}

fn count(key: &str, v: &Value) -> anyhow::Result<usize> {
    v.as_u64()
        .map(|n| n as usize)
        .with_context(|| format!("config key `{key}` must be a non-negative integer, got {v}"))
}

fn seconds(key: &str, v: &Value) -> anyhow::Result<f64> {
    v.as_f64()
        .filter(|s| *s >= 0.0 && s.is_finite())
        .with_context(|| format!("config key `{key}` must be a non-negative number, got {v}"))
}

fn name(key: &str, v: &Value) -> anyhow::Result<String> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .with_context(|| format!("config key `{key}` must be a non-empty string, got {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seed_keys_and_ignores_unknown() {
        let v = serde_json::json!({"N_NORMAL_WORKERS": 3, "CHECKPOINT_INTERVAL": 0.5, "IN": "tasks", "LOGFILE": "x.log"});
        let c = Config::from_json(&v).unwrap();
        assert_eq!((c.normal_workers, c.checkpoint_interval, c.stream.as_str()), (3, 0.5, "tasks"));
        assert_eq!(c.count_key, "count");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let v = serde_json::json!({"N_NORMAL_WORKERS": "two"});
        let err = Config::from_json(&v).unwrap_err().to_string();
        assert!(err.contains("N_NORMAL_WORKERS"), "{err}");
        let v = serde_json::json!({"COUNT": 5});
        assert!(Config::from_json(&v).unwrap_err().to_string().contains("COUNT"));
    }
}
