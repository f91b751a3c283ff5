//! What can go wrong with a plugin, said so that its author knows where.

pub use crate::batch::Location;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: cannot read it: {detail}")]
    Unreadable { plugin: String, detail: String },
    #[error("plugin {plugin} is not a WebAssembly component: {detail}")]
    NotAComponent { plugin: String, detail: String },
    #[error("plugin {plugin} does not implement the world wc:plugin/counting-plugin@0.2.0 (nor the older 0.1.0): {detail}")]
    WrongWorld { plugin: String, detail: String },
    #[error("plugin {plugin} failed to compile: {detail}")]
    Compile { plugin: String, detail: String },
    #[error("plugin {plugin} rejected its parameters: {message}")]
    BadParams { plugin: String, message: String },
    #[error("plugin {plugin} returned an error{at}: {message}")]
    Guest { plugin: String, at: Location, message: String },
    #[error("plugin {plugin} trapped{at}: {detail}")]
    Trap { plugin: String, at: Location, detail: String },
    #[error("plugin {plugin} ran past its CPU deadline of {deadline_ms} ms{at} (raise it with --plugin-deadline-ms)")]
    Deadline { plugin: String, at: Location, deadline_ms: u128 },
    #[error("plugin {plugin} ran out of its {limit_mib} MiB memory limit{at} (raise it with --plugin-memory-mib)")]
    Memory { plugin: String, at: Location, limit_mib: usize },
    #[error("plugin {plugin} returned too much{at}: {detail}")]
    Output { plugin: String, at: Location, detail: String },
    #[error("plugin {plugin}: host error{at}: {detail}")]
    Host { plugin: String, at: Location, detail: String },
}

impl PluginError {
    /// True when the instance can no longer be used and must be rebuilt.
    pub fn poisons_instance(&self) -> bool {
        matches!(self, PluginError::Trap { .. } | PluginError::Deadline { .. } | PluginError::Memory { .. } | PluginError::Host { .. })
    }
}
