//! Test support for wc-host, shared by its tests, examples and benchmarks
//! and kept out of the product: real redis-server processes (single and
//! Redis Clusters), the wc-host binary driven like a user would, network
//! namespace labs with workers on several "hosts", independent reference
//! counts, process control, and the chaos harness behind `make chaos`.

pub mod chaos;
mod cluster;
mod hosts;
mod jobs;
mod listeners;
mod netns;
mod paths;
mod procs;
mod redis;
mod reference;
mod sentinel;

pub use cluster::*;
pub use hosts::*;
pub use jobs::*;
pub use listeners::*;
pub use netns::*;
pub use paths::*;
pub use procs::*;
pub use redis::*;
pub use reference::*;
pub use sentinel::*;
