//! wc-host: a distributed, fault-tolerant word count whose counting rules live
//! in sandboxed WebAssembly components.
//!
//! The modules, and the one direction their imports run in:
//!
//! ```text
//! main ─► cli ─► { coordinator, worker, query, report_cmd, plugin_cmd, gen_data }
//!                    └─► { protocol, plugin, authoring, input, count, report, html_report, config, redis_server, cases }
//!                           └─► batch (rows and their location: what input makes and plugins take),
//!                               tally (counts merged by the millions: what the protocol decodes into)
//! ```
//!
//! - [`cli`]: the only module that knows clap; turns arguments into plain specs.
//! - [`coordinator`]: a whole job: plan, supervise workers, checkpoints,
//!   recover after Redis restarts, reduce and publish.
//! - [`worker`]: the worker process loop (claim, count, commit).
//! - [`query`]: `wc-host top` and `wc-host status [--watch]`.
//! - [`report_cmd`]: `wc-host report` and a job's `--report`: gathers the
//!   HTML report's data from Redis.
//! - [`plugin_cmd`]: `wc-host plugin info|count|test|new|build|cache`.
//! - [`authoring`]: plugin projects: languages, templates and SDKs embedded
//!   in the binary, `plugin build` per language, `--plugin` resolution.
//! - [`protocol`]: **the exactly-once protocol** — the Lua function library,
//!   one typed call per function, key layout, task state, the connection and
//!   its retries. Every write to a job's keys goes through it; its module
//!   doc states the invariants.
//! - [`plugin`]: the WebAssembly runtime and sandbox for counting plugins.
//! - [`input`]: resolving inputs (CSV/TSV, gzip, zstd, bzip2, zip), splitting them
//!   on record boundaries (compressed ones at member boundaries), reading ranges.
//! - [`count`]: a plugin over ranges, files or texts, without Redis.
//! - [`report`]: the progress line and the summary (presentation only).
//! - [`html_report`]: the HTML report with its charts (presentation only).
//! - [`config`]: config.json (the seed's keys) and its validation.
//! - [`redis_server`]: the managed `redis-server` child.
//! - [`cases`]: golden cases for `wc-host plugin test`.
//! - [`gen_data`]: the twcs-shaped data generator.
//! - [`batch`]: a batch of rows for one plugin call, and where it came from.
//! - [`tally`]: the table the coordinator merges every task's counts into.
//! - [`logging`]: `tracing` to stderr, above the progress line when there is one.
//!
//! Test and benchmark harnesses (chaos, reference counts, test support) live
//! outside the product, in the `wc-testkit` crate.

pub mod authoring;
pub mod batch;
pub mod cases;
pub mod cli;
pub mod config;
pub mod coordinator;
pub mod count;
pub mod gen_data;
pub mod html_report;
pub mod input;
pub mod logging;
pub mod plugin;
pub mod plugin_cmd;
pub mod protocol;
pub mod query;
pub mod redis_server;
pub mod report;
pub mod report_cmd;
pub mod tally;
pub mod worker;
