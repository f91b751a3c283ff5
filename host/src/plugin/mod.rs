//! The plugin runtime: loads counting components, runs them sandboxed.
//!
//! One [`PluginRuntime`] per process (one engine, one epoch ticker); a
//! [`Plugin`] per component file, compiled once and cached on disk; a
//! [`PluginInstance`] per worker, rebuilt after a trap.

mod error;
mod runtime;
mod sandbox;
pub mod stamp;

pub use error::{Location, PluginError};
pub use runtime::{cache_base, cache_cap_bytes, cached_artifacts, compile_cache_dir, ParamInfo, Plugin, PluginInfo, PluginInstance, PluginRuntime, TaskCounter, TaskCounts, WIT_WORLD, WIT_WORLDS_ACCEPTED};
pub use sandbox::SandboxPolicy;
