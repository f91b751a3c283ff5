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
    /// `detail` is one line: the guest's panic message when it printed one
    /// (`panicked at src/lib.rs:18:47: ...`), then the kind of trap. The
    /// wasm backtrace is kept apart, out of the message: it helps only the
    /// plugin's author, who sees it with `-v` (logged at debug level).
    #[error("plugin {plugin} trapped{at}: {detail}")]
    Trap { plugin: String, at: Location, detail: String, backtrace: Option<String> },
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

    /// Where in the input it happened, for the errors of a call.
    pub fn at(&self) -> Option<&Location> {
        match self {
            PluginError::Guest { at, .. }
            | PluginError::Trap { at, .. }
            | PluginError::Deadline { at, .. }
            | PluginError::Memory { at, .. }
            | PluginError::Output { at, .. }
            | PluginError::Host { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The same error, said to have happened at `location`.
    pub fn located(mut self, location: Location) -> PluginError {
        match &mut self {
            PluginError::Guest { at, .. }
            | PluginError::Trap { at, .. }
            | PluginError::Deadline { at, .. }
            | PluginError::Memory { at, .. }
            | PluginError::Output { at, .. }
            | PluginError::Host { at, .. } => *at = location,
            _ => {}
        }
        self
    }

    /// The wasm backtrace of a trap (not part of the message).
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            PluginError::Trap { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }

    /// Whether `other` is the same kind of failure (the same variant):
    /// what a re-run must give to count as the failure reproduced.
    pub fn same_kind(&self, other: &PluginError) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// The longest panic message or stderr quote kept in a trap's one line.
const MAX_QUOTE_CHARS: usize = 600;

/// The guest's last panic in what it wrote to stderr, as one line:
/// Rust's `thread '<unnamed>' panicked at src/lib.rs:18:47:\nmessage\nnote:
/// run with RUST_BACKTRACE=1 ...` becomes `panicked at src/lib.rs:18:47:
/// message` (the note cannot help: a sandboxed guest has no environment).
pub(crate) fn panic_line(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let text = &stderr[start..];
    let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
    let message: Vec<&str> = rest
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace:"))
        .filter(|l| !l.is_empty())
        .collect();
    let head = head.trim().trim_end_matches(':');
    let line = if message.is_empty() { head.to_string() } else { format!("{head}: {}", message.join(" ")) };
    Some(shorten(&line))
}

/// The last lines of a guest's stderr as one line, for a trap without a
/// panic message; the RUST_BACKTRACE note left out.
pub(crate) fn stderr_quote(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains("RUST_BACKTRACE")).collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    (!tail.is_empty()).then(|| shorten(&tail.join(" | ")))
}

/// A wasmtime trap, short: `wasm trap: unreachable`.
pub(crate) fn trap_kind(trap: &wasmtime::Trap) -> String {
    match trap {
        wasmtime::Trap::UnreachableCodeReached => "wasm trap: unreachable".into(),
        other => format!("wasm trap: {other}"),
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_becomes_one_line_without_the_backtrace_note() {
        let stderr = "some log line\nthread '<unnamed>' (1) panicked at src/lib.rs:18:47:\nend byte index 20 is out of bounds of `abc`\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_line(stderr).unwrap(), "panicked at src/lib.rs:18:47: end byte index 20 is out of bounds of `abc`");
        let multi = "thread 'main' panicked at src/lib.rs:3:5:\nassertion `left == right` failed\n  left: 1\n right: 2\n";
        assert_eq!(panic_line(multi).unwrap(), "panicked at src/lib.rs:3:5: assertion `left == right` failed left: 1 right: 2");
        assert_eq!(panic_line("no panic here\n"), None);
        let long = format!("thread 'x' panicked at a.rs:1:1:\n{}\n", "y".repeat(5000));
        assert!(panic_line(&long).unwrap().len() < 700);
    }

    #[test]
    fn stderr_without_a_panic_is_quoted_on_one_line() {
        assert_eq!(stderr_quote("a\n\nb\nnote: run with `RUST_BACKTRACE=1` env\n").unwrap(), "a | b");
        assert_eq!(stderr_quote("  \n"), None);
    }
}
