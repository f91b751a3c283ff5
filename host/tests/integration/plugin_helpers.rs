//! Small helpers the plugin tests (Rust and Python evil plugins) share.

use std::collections::BTreeMap;

use wc_host::count::CountMap;
use wc_host::plugin::{PluginRuntime, SandboxPolicy};

pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

pub fn sorted(map: CountMap) -> BTreeMap<String, u64> {
    map.into_iter().collect()
}

/// A runtime with `policy`, compiling into a cache of its own (shared by the
/// test processes, so each plugin is compiled once) rather than the user's.
pub fn runtime(policy: SandboxPolicy) -> PluginRuntime {
    PluginRuntime::new(policy)
        .expect("engine")
        .with_cache_dir(Some(wc_testkit::target_dir().join("wc-host-tests/plugin-cache")))
}
