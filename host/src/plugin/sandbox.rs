//! The sandbox a plugin runs in: one policy object, applied to every store.
//!
//! A plugin gets no filesystem, no network, no environment or arguments and
//! a clock frozen at the Unix epoch: counting must be a pure function of the
//! rows it is fed. Its memory, CPU time per call and output are capped.

use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// Limits applied to every plugin instance. The defaults suit counting tasks
/// of tens of MB; raise them with the `--plugin-*` flags.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SandboxPolicy {
    /// Linear memory of one instance, in bytes.
    pub max_memory_bytes: usize,
    /// Wall time one call into the plugin may take.
    pub call_deadline: Duration,
    /// Distinct keys one task may return.
    pub max_keys: usize,
    /// Bytes of one returned key.
    pub max_key_bytes: usize,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            max_memory_bytes: 512 << 20,
            call_deadline: Duration::from_secs(10),
            max_keys: 5_000_000,
            max_key_bytes: 4096,
        }
    }
}

/// Capacity of the guest's stderr pipe. A write past it fails (and Rust's
/// `eprintln!` then panics), so an instance whose pipe passes
/// [`STDERR_RENEW_BYTES`] is rebuilt before its next task.
const STDERR_CAPTURE_BYTES: usize = 1 << 20;
pub(crate) const STDERR_RENEW_BYTES: usize = 64 << 10;
/// The tail of stderr quoted in a trap message.
pub(crate) const STDERR_QUOTE_BYTES: usize = 2 << 10;

impl SandboxPolicy {
    /// A WASI context with every capability denied, and a pipe that captures
    /// what the guest writes to stderr.
    pub(crate) fn wasi_ctx(&self) -> (WasiCtx, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let ctx = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        (ctx, stderr)
    }

    pub(crate) fn limiter(&self) -> MemoryLimiter {
        MemoryLimiter { max_bytes: self.max_memory_bytes, exceeded: false }
    }
}

/// A clock that never moves: plugins must not depend on time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Caps linear memory and remembers that it refused, so that the trap that
/// follows (Rust's allocator aborts) is reported as "out of memory".
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
