//! wc-host: a distributed, fault-tolerant word count whose counting rules live
//! in sandboxed WebAssembly components.
//!
//! Modules, one concern each:
//! - [`plugin`]: the WebAssembly runtime and sandbox for counting plugins.
//! - [`input`]: resolving inputs, splitting CSV files on record boundaries, reading ranges.
//! - [`count`]: a plugin over ranges, files or texts, without Redis.
//! - [`cases`]: golden cases for `wc-host plugin test`.
//! - [`gen_data`]: the twcs-shaped data generator.
//! - [`config`]: config.json (the seed's keys) and its validation.
//! - [`store`]: the Redis key layout and the exactly-once function library.
//! - [`worker`]: the worker process loop (claim, count, commit).
//! - [`job`]: the coordinator (plan, workers, recovery, finish, reduce).
//! - [`checkpoint`]: BGSAVE on a timer; progress held by a snapshot.
//! - [`query`]: `wc-host top` and `wc-host status`.
//! - [`redis_server`]: the managed `redis-server` child.
//! - [`report`]: progress bar, summary, reading counts back.
//! - [`chaos`]: the fault-injection harness behind `make chaos`.

pub mod cases;
pub mod chaos;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod count;
pub mod gen_data;
pub mod input;
pub mod job;
pub mod logging;
pub mod plugin;
pub mod plugin_cmd;
pub mod query;
pub mod redis_server;
pub mod report;
pub mod store;
pub mod worker;
