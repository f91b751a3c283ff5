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

use super::error::PluginError;
use crate::batch::{Batch, Location};
use super::sandbox::{MemoryLimiter, SandboxPolicy, STDERR_QUOTE_BYTES, STDERR_RENEW_BYTES};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "counting-plugin",
});

use exports::wc::plugin::counter::PluginInfo as WitPluginInfo;

/// The WIT world every plugin must implement.
pub const WIT_WORLD: &str = "wc:plugin/counting-plugin@0.1.0";

/// How often the epoch advances; CPU deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a plugin says about itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub columns: Vec<String>,
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
        let pre = CountingPluginPre::new(instance_pre).map_err(wrong_world)?;
        let mut plugin = Plugin {
            inner: Arc::new(PluginInner {
                label: label.to_string(),
                hash,
                pre,
                policy: self.policy.clone(),
                info: PluginInfo { name: String::new(), version: String::new(), description: String::new(), columns: vec![] },
            }),
        };
        let info: WitPluginInfo = {
            let mut instance = plugin.instantiate()?;
            instance.call(&Location("info()".into()), |store, b| Ok(Ok(b.wc_plugin_counter().call_info(store)?)))?
        };
        if info.columns.is_empty() {
            return Err(PluginError::WrongWorld { plugin: label.to_string(), detail: "info() lists no columns to read".into() });
        }
        let inner = Arc::get_mut(&mut plugin.inner).expect("no other reference yet");
        inner.label = format!("{} ({label})", info.name);
        inner.info = PluginInfo { name: info.name, version: info.version, description: info.description, columns: info.columns };
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
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!("ignoring unusable cached plugin {}: {e:#}", path.display()),
            }
        }
        let artifact = self.engine.precompile_component(bytes).map_err(compile_err)?;
        if let Err(e) = write_atomically(&path, &artifact) {
            tracing::warn!("cannot cache compiled plugin in {}: {e}", dir.display());
        }
        // SAFETY: the bytes were produced just above by this engine.
        unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(compile_err)
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WC_HOST_CACHE_DIR") {
        return Some(PathBuf::from(dir).join("plugins"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wc-host").join("plugins"))
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
    pre: CountingPluginPre<StoreState>,
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

    fn new_store(&self) -> Result<(Store<StoreState>, CountingPlugin, MemoryOutputPipe), PluginError> {
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
        let bindings = self.inner.pre.instantiate(&mut store).map_err(|e| PluginError::Trap {
            plugin: self.inner.label.clone(),
            at: Location("instantiation".into()),
            detail: format!("{e:#}"),
        })?;
        Ok((store, bindings, stderr))
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
}

/// One live instance. Not shared between threads: one per worker.
pub struct PluginInstance {
    plugin: Plugin,
    store: Store<StoreState>,
    bindings: CountingPlugin,
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
        let at = Location("task start".into());
        let handle = self
            .call(&at, |store, b| b.wc_plugin_counter().task_counter().call_create(store, params))
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
        f: impl FnOnce(&mut Store<StoreState>, &CountingPlugin) -> wasmtime::Result<Result<R, String>>,
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
                    let stderr = String::from_utf8_lossy(tail);
                    let stderr = stderr.trim();
                    let detail = if stderr.is_empty() { format!("{err:#}") } else { format!("{err:#}; plugin stderr: {stderr}") };
                    PluginError::Trap { plugin, at, detail }
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
            .call(at, |store, b| b.wc_plugin_counter().task_counter().call_feed(store, handle, batch.values(), batch.ends()))
    }

    /// Drains the counts, checked against the output caps.
    pub fn finish(mut self, at: &Location) -> Result<Vec<(String, u64)>, PluginError> {
        let handle = self.handle.take().expect("finish twice");
        let result = self.instance.call(at, |store, b| b.wc_plugin_counter().task_counter().call_finish(store, handle));
        self.drop_handle(handle);
        let counts = result?;
        let policy = &self.instance.plugin.inner.policy;
        let output_err = |detail: String| PluginError::Output { plugin: self.instance.plugin.label().to_string(), at: at.clone(), detail };
        if counts.len() > policy.max_keys {
            return Err(output_err(format!("{} keys, more than the limit of {} (--plugin-max-keys)", counts.len(), policy.max_keys)));
        }
        if let Some((key, _)) = counts.iter().find(|(k, _)| k.len() > policy.max_key_bytes) {
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
