//! Log setup: `tracing` to stderr, filtered by `RUST_LOG` (default info;
//! `--quiet` warn, `-v` debug for wc-host).
//!
//! While a progress bar is on screen ([`attach_bar`]), every log line is
//! printed above it (the bar is cleared, the line written whole, the bar
//! drawn again: indicatif's `suspend`), never through it.

use std::io::Write;
use std::sync::Mutex;

use indicatif::ProgressBar;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `verbose` (`-v`): debug level for wc-host's own lines (a plugin trap's
/// wasm backtrace, for one), info for its dependencies.
pub fn init(quiet: bool, verbose: bool) {
    VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    let default = if quiet {
        "warn"
    } else if verbose {
        "info,wc_host=debug"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| LineWriter(Vec::new())).with_target(false).try_init();
}

/// Whether `-v` was given: worker processes are started with it too.
pub fn is_verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Log lines go above `bar` until [`detach_bar`].
pub fn attach_bar(bar: &ProgressBar) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
}

pub fn detach_bar() {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Writes `text` (whole lines) to stderr, above the progress bar if one is
/// on screen: for log lines and for lines relayed from worker processes.
pub fn print_above_bar(text: &[u8]) {
    let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text);
        let _ = err.flush();
    };
    match bar {
        Some(bar) if !bar.is_finished() => bar.suspend(write),
        _ => write(),
    }
}

/// One event's text, written whole when tracing drops the writer.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            print_above_bar(&self.0);
        }
    }
}
