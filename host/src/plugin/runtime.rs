//! Engine, compilation cache, instances and calls into a counting plugin.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::error::{self, PluginError};
use crate::batch::{Batch, Location};
use super::sandbox::{MemoryLimiter, SandboxPolicy, STDERR_QUOTE_BYTES, STDERR_RENEW_BYTES};

/// Bindings of the current contract, `wc:plugin@0.2.0` (`wit/plugin.wit`).
mod v2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "counting-plugin",
    });
}

/// Bindings of the first contract, `wc:plugin@0.1.0`: components built
/// against it keep loading (`wit/legacy/0.1.0/plugin.wit`).
mod v1 {
    wasmtime::component::bindgen!({
        path: "../wit/legacy/0.1.0",
        world: "counting-plugin",
    });
}

/// The WIT world plugins are built against today.
pub const WIT_WORLD: &str = "wc:plugin/counting-plugin@0.2.0";
/// Every world the host loads, newest first.
pub const WIT_WORLDS_ACCEPTED: &[&str] = &["wc:plugin/counting-plugin@0.2.0", "wc:plugin/counting-plugin@0.1.0"];

/// How often the epoch advances; CPU deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a plugin says about itself.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub columns: Vec<String>,
    /// Declared parameters (none for a 0.1.0 component, which cannot say).
    pub params: Vec<ParamInfo>,
    /// The WIT world the component implements.
    pub world: &'static str,
}

/// One declared parameter (`param-info` in the WIT file).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ParamInfo {
    pub name: String,
    pub default: String,
    pub help: String,
}

impl PluginInfo {
    /// Whether the component declares its parameters (0.2.0 and later), so
    /// that an undeclared key can be refused before any task starts.
    pub fn declares_params(&self) -> bool {
        self.world != WIT_WORLDS_ACCEPTED[1]
    }

    /// Refuses a `--plugin-arg` key the plugin does not declare.
    pub fn check_param_names(&self, params: &[(String, String)]) -> Result<(), String> {
        if !self.declares_params() {
            return Ok(());
        }
        match params.iter().find(|(k, _)| !self.params.iter().any(|p| &p.name == k)) {
            None => Ok(()),
            Some((key, _)) if self.params.is_empty() => Err(format!("unknown parameter `{key}` ({} takes no parameters)", self.name)),
            Some((key, _)) => {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                Err(format!("unknown parameter `{key}` (known: {}; see `wc-host plugin info`)", known.join(", ")))
            }
        }
    }
}

/// The instantiation of a component, by contract version.
#[derive(Clone)]
enum Pre {
    V2(v2::CountingPluginPre<StoreState>),
    V1(v1::CountingPluginPre<StoreState>),
}

/// The exports of one instance, by contract version.
enum Bindings {
    V2(v2::CountingPlugin),
    V1(v1::CountingPlugin),
}

impl Pre {
    fn engine(&self) -> &Engine {
        match self {
            Pre::V2(pre) => pre.engine(),
            Pre::V1(pre) => pre.engine(),
        }
    }

    fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V2(pre) => Bindings::V2(pre.instantiate(store)?),
            Pre::V1(pre) => Bindings::V1(pre.instantiate(store)?),
        })
    }
}

impl Bindings {
    fn info(&self, store: &mut Store<StoreState>) -> wasmtime::Result<PluginInfo> {
        Ok(match self {
            Bindings::V2(b) => {
                let i = b.wc_plugin_counter().call_info(store)?;
                let params = i.params.into_iter().map(|p| ParamInfo { name: p.name, default: p.default, help: p.help }).collect();
                PluginInfo { name: i.name, version: i.version, description: i.description, columns: i.columns, params, world: WIT_WORLDS_ACCEPTED[0] }
            }
            Bindings::V1(b) => {
                let i = b.wc_plugin_counter().call_info(store)?;
                PluginInfo { name: i.name, version: i.version, description: i.description, columns: i.columns, params: vec![], world: WIT_WORLDS_ACCEPTED[1] }
            }
        })
    }

    fn create(&self, store: &mut Store<StoreState>, params: &[(String, String)]) -> wasmtime::Result<Result<ResourceAny, String>> {
        match self {
            Bindings::V2(b) => b.wc_plugin_counter().task_counter().call_create(store, params),
            Bindings::V1(b) => b.wc_plugin_counter().task_counter().call_create(store, params),
        }
    }

    fn feed(&self, store: &mut Store<StoreState>, handle: ResourceAny, values: &str, ends: &[u32]) -> wasmtime::Result<Result<(), String>> {
        match self {
            Bindings::V2(b) => b.wc_plugin_counter().task_counter().call_feed(store, handle, values, ends),
            Bindings::V1(b) => b.wc_plugin_counter().task_counter().call_feed(store, handle, values, ends),
        }
    }

    fn finish(&self, store: &mut Store<StoreState>, handle: ResourceAny) -> wasmtime::Result<Result<FinishedCounts, String>> {
        Ok(match self {
            Bindings::V2(b) => b.wc_plugin_counter().task_counter().call_finish(store, handle)?.map(|p| FinishedCounts::Packed {
                keys: p.keys,
                key_ends: p.key_ends,
                counts: p.counts,
            }),
            Bindings::V1(b) => b.wc_plugin_counter().task_counter().call_finish(store, handle)?.map(FinishedCounts::Pairs),
        })
    }
}

/// What `finish` returned, before the host checks it.
enum FinishedCounts {
    Pairs(Vec<(String, u64)>),
    Packed { keys: String, key_ends: Vec<u32>, counts: Vec<u64> },
}

impl FinishedCounts {
    fn len(&self) -> usize {
        match self {
            FinishedCounts::Pairs(pairs) => pairs.len(),
            FinishedCounts::Packed { counts, .. } => counts.len(),
        }
    }

    /// The counts checked, or what is wrong with the packing. Packed
    /// counts are kept as they came (no string per key); pairs from a
    /// 0.1.0 plugin are packed, their zero counts left out (they carry
    /// nothing).
    fn into_task_counts(self) -> Result<TaskCounts, String> {
        let (keys, key_ends, counts) = match self {
            FinishedCounts::Pairs(pairs) => return TaskCounts::from_pairs(pairs),
            FinishedCounts::Packed { keys, key_ends, counts } => (keys, key_ends, counts),
        };
        if key_ends.len() != counts.len() {
            return Err(format!("packed counts with {} key ends but {} counts", key_ends.len(), counts.len()));
        }
        let mut start = 0usize;
        for (i, (&end, &n)) in key_ends.iter().zip(&counts).enumerate() {
            let end = end as usize;
            let Some(key) = keys.get(start..end) else {
                return Err(format!("packed counts: key {i} ends at byte {end}, which is before its start ({start}), past the {} bytes of keys or inside a character", keys.len()));
            };
            if n == 0 {
                return Err(format!("packed counts: key {i} (`{}`) has count 0", key.chars().take(40).collect::<String>()));
            }
            start = end;
        }
        Ok(TaskCounts { keys, ends: key_ends, counts })
    }
}

/// A task's counts as `finish` returned them, checked: each key with its
/// count, the keys in one string (`ends[i]` is where key `i` ends). Kept in
/// this packed form up to the commit: a task has tens of thousands of keys,
/// and a `String` each was a twentieth of a worker's time in allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    keys: String,
    ends: Vec<u32>,
    counts: Vec<u64>,
}

impl TaskCounts {
    fn from_pairs(pairs: Vec<(String, u64)>) -> Result<TaskCounts, String> {
        let mut packed = TaskCounts::default();
        for (key, n) in pairs.into_iter().filter(|(_, n)| *n > 0) {
            packed.keys.push_str(&key);
            let end = u32::try_from(packed.keys.len()).map_err(|_| "keys of more than 4 GiB in all".to_string())?;
            packed.ends.push(end);
            packed.counts.push(n);
        }
        Ok(packed)
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Each key and its count, in the plugin's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&e| e as usize));
        starts.zip(&self.ends).zip(&self.counts).map(|((start, &end), &n)| (&self.keys[start..end as usize], n))
    }

    /// The pairs, borrowing the keys.
    pub fn pairs(&self) -> Vec<(&str, u64)> {
        self.iter().collect()
    }

    /// The longest key, in bytes.
    fn longest_key(&self) -> Option<&str> {
        self.iter().map(|(k, _)| k).max_by_key(|k| k.len())
    }
}

/// One engine per process, shared by every plugin and instance.
#[derive(Clone)]
pub struct PluginRuntime {
    engine: Engine,
    linker: Arc<Linker<StoreState>>,
    policy: SandboxPolicy,
    cache_dir: Option<PathBuf>,
}

pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl PluginRuntime {
    /// Builds the engine and starts the epoch ticker that enforces deadlines.
    pub fn new(policy: SandboxPolicy) -> anyhow::Result<PluginRuntime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
        let mut linker = Linker::new(&engine);
        // Rust's std for wasm32-wasip2 imports WASI even when unused; link
        // it with the denying context built by the sandbox policy.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok(PluginRuntime { engine, linker: Arc::new(linker), policy, cache_dir: default_cache_dir() })
    }

    /// Where precompiled plugins are kept (`None` disables the cache).
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Loads a component file: compiles it (or reuses the cached artifact),
    /// checks that it implements the counting world and reads its info.
    pub fn load(&self, path: &Path) -> Result<Plugin, PluginError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| PluginError::Unreadable { plugin: label.clone(), detail: e.to_string() })?;
        self.load_bytes(&label, &bytes)
    }

    /// Like [`load`](Self::load), from bytes; `label` names it in messages.
    pub fn load_bytes(&self, label: &str, bytes: &[u8]) -> Result<Plugin, PluginError> {
        check_header(label, bytes)?;
        let hash = hex::encode(Sha256::digest(bytes));
        let component = self.compile_cached(label, &hash, bytes)?;
        let wrong_world = |e: wasmtime::Error| PluginError::WrongWorld { plugin: label.to_string(), detail: format!("{e:#}") };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(wrong_world)?;
        // The newest contract first; its error is the one worth reporting.
        let pre = match v2::CountingPluginPre::new(instance_pre.clone()) {
            Ok(pre) => Pre::V2(pre),
            Err(newest) => match v1::CountingPluginPre::new(instance_pre) {
                Ok(pre) => Pre::V1(pre),
                Err(_) => return Err(wrong_world(newest)),
            },
        };
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                label: label.to_string(),
                hash,
                pre,
                policy: self.policy.clone(),
                info: PluginInfo::default(),
            }),
        };
        let info = {
            let mut instance = plugin.instantiate()?;
            instance.call(&Location::new("info()"), |store, b| Ok(Ok(b.info(store)?)))?
        };
        if info.columns.is_empty() {
            return Err(PluginError::WrongWorld { plugin: label.to_string(), detail: "info() lists no columns to read".into() });
        }
        let inner = Arc::get_mut(&mut plugin.inner).expect("no other reference yet");
        inner.label = format!("{} ({label})", info.name);
        inner.info = info;
        Ok(plugin)
    }

    fn compile_cached(&self, label: &str, hash: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        let compile_err = |e: wasmtime::Error| PluginError::Compile { plugin: label.to_string(), detail: format!("{e:#}") };
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(compile_err);
        };
        let mut engine_hash = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut engine_hash);
        let path = dir.join(format!("{hash}-{:016x}.cwasm", engine_hash.finish()));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash, into our own cache.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => {
                    // Last use, for pruning oldest first.
                    let _ = std::fs::File::options().append(true).open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    return Ok(component);
                }
                Err(e) => tracing::warn!("ignoring unusable cached plugin {}: {e:#}", path.display()),
            }
        }
        let artifact = {
            let _progress = CompileProgress::start(label, bytes.len());
            self.engine.precompile_component(bytes).map_err(compile_err)?
        };
        if let Err(e) = write_atomically(&path, &artifact) {
            tracing::warn!("cannot cache compiled plugin in {}: {e}", dir.display());
        }
        prune_cache(dir, cache_cap_bytes(), &path);
        // SAFETY: the bytes were produced just above by this engine.
        unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(compile_err)
    }
}

/// Components this large take seconds to compile: say so while it runs.
const LARGE_COMPONENT_BYTES: usize = 2 << 20;

/// A spinner (on a terminal) and a log line while a large component
/// compiles, instead of a silent pause.
struct CompileProgress(Option<indicatif::ProgressBar>);

impl CompileProgress {
    fn start(label: &str, bytes: usize) -> CompileProgress {
        if bytes < LARGE_COMPONENT_BYTES {
            return CompileProgress(None);
        }
        let message = format!("compiling plugin {label} ({:.0} MB) for this machine; done once, later loads reuse the cache", bytes as f64 / 1e6);
        tracing::info!("{message}");
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        CompileProgress(Some(bar))
    }
}

impl Drop for CompileProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// The compile cache's size cap: `WC_HOST_PLUGIN_CACHE_MB`, default 1024.
pub fn cache_cap_bytes() -> u64 {
    std::env::var("WC_HOST_PLUGIN_CACHE_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(1024) << 20
}

/// The compiled plugins in the cache: (path, bytes, last use), newest first.
pub fn cached_artifacts(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()?))
        })
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2));
    out
}

/// Removes the least recently used artifacts until the cache fits `cap`;
/// `keep` (the one just written) stays whatever its size.
fn prune_cache(dir: &Path, cap: u64, keep: &Path) {
    let mut total = 0u64;
    for (path, size, _) in cached_artifacts(dir) {
        total += size;
        if total > cap && path != keep {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!("compile cache over {} MB: removed {}", cap >> 20, path.display()),
                Err(e) => tracing::debug!("cannot prune {}: {e}", path.display()),
            }
        }
    }
}

/// Where compiled plugins are cached (see [`PluginRuntime::with_cache_dir`]).
pub fn compile_cache_dir() -> Option<PathBuf> {
    default_cache_dir()
}

fn default_cache_dir() -> Option<PathBuf> {
    cache_base().map(|base| base.join("plugins"))
}

/// Where wc-host keeps what it can make again (compiled plugins, plugin
/// toolchains, staged SDKs): `$WC_HOST_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/wc-host`, else `~/.cache/wc-host`; `None` without any.
pub fn cache_base() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WC_HOST_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wc-host"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}", std::process::id(), path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Tells apart "not wasm", "a core module" and "a component" before
/// compiling, so the error says which.
fn check_header(label: &str, bytes: &[u8]) -> Result<(), PluginError> {
    let not = |detail: &str| Err(PluginError::NotAComponent { plugin: label.to_string(), detail: detail.to_string() });
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return not("the file does not start with the WebAssembly magic number");
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return not("it is a core WebAssembly module; build it for the wasm32-wasip2 target to get a component");
    }
    Ok(())
}

/// A loaded, compiled plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    label: String,
    hash: String,
    pre: Pre,
    policy: SandboxPolicy,
    info: PluginInfo,
}

impl Plugin {
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// SHA-256 of the component file, hex: identifies the counting rule.
    pub fn hash(&self) -> &str {
        &self.inner.hash
    }

    /// `name (path)`, as used in messages.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// A fresh instance in its own store with the sandbox applied.
    pub fn instantiate(&self) -> Result<PluginInstance, PluginError> {
        let (store, bindings, stderr) = self.new_store()?;
        Ok(PluginInstance { plugin: self.clone(), store, bindings, stderr, poisoned: false })
    }

    fn new_store(&self) -> Result<(Store<StoreState>, Bindings, MemoryOutputPipe), PluginError> {
        let policy = &self.inner.policy;
        let (wasi, stderr) = policy.wasi_ctx();
        let state = StoreState { wasi, table: ResourceTable::new(), limiter: policy.limiter() };
        let mut store = Store::new(self.inner.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // Wasmtime caps what one call may copy out of the guest at 128 MiB
        // by default, about 3.4 million keys from `finish`: below the key
        // cap, and reported as a trap. A guest cannot return more than its
        // memory, which the host holds in at most 4 times the bytes (a
        // 16-byte (string, u64) becomes 32; an 8-byte string 24), so the
        // policy's memory limit bounds it and the output caps apply.
        store.set_hostcall_fuel(policy.max_memory_bytes.saturating_mul(4));
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(policy.call_deadline));
        let bindings = self.inner.pre.instantiate(&mut store).map_err(|e| {
            // A trap in the guest's start-up is reported like any trap; a
            // linking failure in full.
            let (detail, backtrace) = match e.downcast_ref::<Trap>() {
                Some(_) => trap_report(&e, &String::from_utf8_lossy(&stderr.contents())),
                None => (format!("{e:#}"), None),
            };
            PluginError::Trap { plugin: self.inner.label.clone(), at: Location::new("instantiation"), detail, backtrace }
        })?;
        Ok((store, bindings, stderr))
    }
}

/// A failed call, said in one line: the guest's panic message if it
/// printed one (else the tail of its stderr), then the kind of trap; and,
/// apart, the wasm backtrace.
fn trap_report(err: &wasmtime::Error, stderr: &str) -> (String, Option<String>) {
    let kind = match err.downcast_ref::<Trap>() {
        Some(trap) => error::trap_kind(trap),
        // Not a trap (a WASI exit, a host-side refusal): its own words, the
        // backtrace context left out.
        None => err.root_cause().to_string(),
    };
    let detail = match (error::panic_line(stderr), error::stderr_quote(stderr)) {
        (Some(panic), _) => format!("{panic} ({kind})"),
        (None, Some(quote)) => format!("{kind}; plugin stderr: {quote}"),
        (None, None) => kind,
    };
    let backtrace = match err.downcast_ref::<wasmtime::WasmBacktrace>() {
        Some(bt) => Some(bt.to_string()),
        None => Some(format!("{err:?}")),
    };
    (detail, backtrace)
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
}

/// One live instance. Not shared between threads: one per worker.
pub struct PluginInstance {
    plugin: Plugin,
    store: Store<StoreState>,
    bindings: Bindings,
    stderr: MemoryOutputPipe,
    poisoned: bool,
}

impl PluginInstance {
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Starts a task. Rebuilds the instance first if a trap poisoned it.
    pub fn start_task(&mut self, params: &[(String, String)]) -> Result<TaskCounter<'_>, PluginError> {
        if self.poisoned || self.stderr.contents().len() > STDERR_RENEW_BYTES {
            let (store, bindings, stderr) = self.plugin.new_store()?;
            (self.store, self.bindings, self.stderr, self.poisoned) = (store, bindings, stderr, false);
        }
        let at = Location::new("task start");
        let info = self.plugin.info();
        if let Err(message) = info.check_param_names(params) {
            return Err(PluginError::BadParams { plugin: self.plugin.label().to_string(), message });
        }
        let handle = self
            .call(&at, |store, b| b.create(store, params))
            .map_err(|e| match e {
                PluginError::Guest { plugin, message, .. } => PluginError::BadParams { plugin, message },
                other => other,
            })?;
        Ok(TaskCounter { instance: self, handle: Some(handle) })
    }

    /// Runs one call under the deadline and turns every failure into a
    /// [`PluginError`] that says what happened.
    fn call<R>(
        &mut self,
        at: &Location,
        f: impl FnOnce(&mut Store<StoreState>, &Bindings) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, PluginError> {
        let plugin = self.plugin.inner.label.clone();
        self.store.set_epoch_deadline(deadline_ticks(self.plugin.inner.policy.call_deadline));
        // Only a refusal during this call explains its failure: a guest may
        // have survived an earlier one (a failed `try_reserve`).
        self.store.data_mut().limiter.exceeded = false;
        match f(&mut self.store, &self.bindings) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(PluginError::Guest { plugin, at: at.clone(), message }),
            Err(err) => {
                self.poisoned = true;
                let policy = &self.plugin.inner.policy;
                let at = at.clone();
                Err(if self.store.data().limiter.exceeded {
                    PluginError::Memory { plugin, at, limit_mib: policy.max_memory_bytes >> 20 }
                } else if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    PluginError::Deadline { plugin, at, deadline_ms: policy.call_deadline.as_millis() }
                } else {
                    let stderr = self.stderr.contents();
                    let tail = &stderr[stderr.len().saturating_sub(STDERR_QUOTE_BYTES)..];
                    let (detail, backtrace) = trap_report(&err, &String::from_utf8_lossy(tail));
                    PluginError::Trap { plugin, at, detail, backtrace }
                })
            }
        }
    }
}

/// A task in progress inside an instance: `feed` batches, then `finish`.
pub struct TaskCounter<'a> {
    instance: &'a mut PluginInstance,
    handle: Option<ResourceAny>,
}

impl TaskCounter<'_> {
    pub fn feed(&mut self, batch: &Batch, at: &Location) -> Result<(), PluginError> {
        let handle = self.handle.expect("feed after finish");
        let columns = self.instance.plugin.info().columns.len();
        debug_assert_eq!(batch.columns(), columns, "batch built for another plugin");
        self.instance
            .call(at, |store, b| b.feed(store, handle, batch.values(), batch.ends()))
    }

    /// Drains the counts, checked against the output caps.
    pub fn finish(mut self, at: &Location) -> Result<TaskCounts, PluginError> {
        let handle = self.handle.take().expect("finish twice");
        let result = self.instance.call(at, |store, b| b.finish(store, handle));
        self.drop_handle(handle);
        let finished = result?;
        let policy = &self.instance.plugin.inner.policy;
        let output_err = |detail: String| PluginError::Output { plugin: self.instance.plugin.label().to_string(), at: at.clone(), detail };
        if finished.len() > policy.max_keys {
            return Err(output_err(format!("{} keys, more than the limit of {} (--plugin-max-keys)", finished.len(), policy.max_keys)));
        }
        let counts = finished.into_task_counts().map_err(output_err)?;
        if let Some(key) = counts.longest_key().filter(|k| k.len() > policy.max_key_bytes) {
            let shown: String = key.chars().take(40).collect();
            return Err(output_err(format!(
                "a key of {} bytes (`{shown}...`), more than the limit of {} (--plugin-max-key-bytes)",
                key.len(),
                policy.max_key_bytes
            )));
        }
        Ok(counts)
    }

    fn drop_handle(&mut self, handle: ResourceAny) {
        if !self.instance.poisoned {
            if let Err(e) = handle.resource_drop(&mut self.instance.store) {
                tracing::debug!("dropping a task resource failed: {e:#}");
                self.instance.poisoned = true;
            }
        }
    }
}

impl Drop for TaskCounter<'_> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.drop_handle(handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(keys: &str, key_ends: &[u32], counts: &[u64]) -> FinishedCounts {
        FinishedCounts::Packed { keys: keys.into(), key_ends: key_ends.to_vec(), counts: counts.to_vec() }
    }

    #[test]
    fn packed_counts_unpack_with_empty_and_multibyte_keys() {
        let counts = packed("aécafé", &[1, 1, 3, 8], &[1, 2, 3, 4]).into_task_counts().unwrap();
        assert_eq!(counts.pairs(), vec![("a", 1), ("", 2), ("é", 3), ("café", 4)]);
        assert_eq!(counts.longest_key(), Some("café"));
        assert!(packed("", &[], &[]).into_task_counts().unwrap().is_empty());
        // A 0.1.0 plugin's pairs, packed; a zero count carries nothing.
        let old = FinishedCounts::Pairs(vec![("x".into(), 2), ("zero".into(), 0), ("é".into(), 1)]).into_task_counts().unwrap();
        assert_eq!(old.pairs(), vec![("x", 2), ("é", 1)]);
    }

    #[test]
    fn bad_packings_are_refused_with_the_reason() {
        let err = |p: FinishedCounts| p.into_task_counts().unwrap_err();
        assert!(err(packed("ab", &[1, 2], &[1])).contains("2 key ends but 1 counts"));
        assert!(err(packed("ab", &[3], &[1])).contains("past the 2 bytes"));
        assert!(err(packed("ab", &[2, 1], &[1, 1])).contains("key 1 ends at byte 1"));
        assert!(err(packed("é", &[1], &[1])).contains("inside a character"));
        assert!(err(packed("ab", &[1, 2], &[1, 0])).contains("key 1 (`b`) has count 0"));
    }

    #[test]
    fn the_compile_cache_is_pruned_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = std::time::SystemTime::now() - Duration::from_secs(100);
        for (i, name) in ["old", "mid", "new"].iter().enumerate() {
            let path = dir.path().join(format!("{name}.cwasm"));
            std::fs::write(&path, vec![0u8; 1000]).unwrap();
            std::fs::File::options().append(true).open(&path).unwrap().set_modified(t0 + Duration::from_secs(10 * i as u64)).unwrap();
        }
        std::fs::write(dir.path().join("not-an-artifact.txt"), vec![0u8; 5000]).unwrap();
        prune_cache(dir.path(), 2500, &dir.path().join("new.cwasm"));
        let left: Vec<String> = cached_artifacts(dir.path()).iter().map(|(p, _, _)| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(left, ["new", "mid"]);
        // The artifact just written stays even when it alone is over the cap.
        prune_cache(dir.path(), 10, &dir.path().join("new.cwasm"));
        assert!(dir.path().join("new.cwasm").exists() && !dir.path().join("mid.cwasm").exists());
    }

    #[test]
    fn undeclared_parameters_are_refused_by_name() {
        let param = |name: &str| ParamInfo { name: name.into(), default: String::new(), help: String::new() };
        let info = PluginInfo { name: "p".into(), params: vec![param("min_len"), param("stop")], world: WIT_WORLDS_ACCEPTED[0], ..PluginInfo::default() };
        assert!(info.check_param_names(&[("stop".into(), "a".into())]).is_ok());
        let err = info.check_param_names(&[("stop".into(), "a".into()), ("min_lenn".into(), "2".into())]).unwrap_err();
        assert_eq!(err, "unknown parameter `min_lenn` (known: min_len, stop; see `wc-host plugin info`)");
        let none = PluginInfo { name: "q".into(), world: WIT_WORLDS_ACCEPTED[0], ..PluginInfo::default() };
        assert_eq!(none.check_param_names(&[("x".into(), "1".into())]).unwrap_err(), "unknown parameter `x` (q takes no parameters)");
        let old = PluginInfo { world: WIT_WORLDS_ACCEPTED[1], ..PluginInfo::default() };
        assert!(old.check_param_names(&[("anything".into(), "1".into())]).is_ok(), "0.1.0 plugins check their own");
    }
}
