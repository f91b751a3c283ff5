//! wc-host's integration tests, in one binary over one support crate
//! (`wc-testkit`): real redis-server processes, real worker processes, real
//! plugins, and every count compared with an independent one made here.
//!
//! Run one area with `cargo nextest run -p wc-host --release -E 'test(/^jobs::/)'`.

mod architecture;
mod authoring;
mod bad_input;
mod chaos_short;
mod cluster;
mod evil_jobs;
mod evil_plugins;
mod failover;
mod inputs;
mod hosts;
mod jobs;
mod plugin_counts;
mod plugin_helpers;
mod python_plugins;
mod protocol_functions;
mod security;
mod split_fuzz;
mod trap_reports;
mod ux;
