//! wc-host: a distributed, fault-tolerant word count whose counting rules live
//! in sandboxed WebAssembly components.
//!
//! Modules, one concern each:
//! - [`plugin`]: the WebAssembly runtime and sandbox for counting plugins.
//! - [`input`]: resolving inputs, splitting CSV files on record boundaries, reading ranges.
//! - [`count`]: a plugin over ranges, files or texts, without Redis.
//! - [`cases`]: golden cases for `wc-host plugin test`.
//! - [`gen_data`]: the twcs-shaped data generator.

pub mod cases;
pub mod cli;
pub mod count;
pub mod gen_data;
pub mod input;
pub mod logging;
pub mod plugin;
pub mod plugin_cmd;
