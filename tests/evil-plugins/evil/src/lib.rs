//! `evil`: a counting plugin that misbehaves on demand, for the host's
//! sandbox tests (`host/tests/evil_plugins.rs`). Never ship it.
//!
//! The plugin parameter `mode` picks the misbehaviour:
//!
//! | mode          | what `count_row` does                                              |
//! |---------------|--------------------------------------------------------------------|
//! | `loop`        | loops forever (the CPU deadline must stop it)                      |
//! | `membomb`     | allocates and touches memory until the allocator aborts            |
//! | `trap`        | panics with "evil plugin panics on purpose"                        |
//! | `trap-on`     | panics on rows containing `needle`, else counts whitespace words   |
//! | `trap-after`  | panics on the task's `rows`-th row (a failure that depends on the rows fed before), else counts whitespace words |
//! | (`needle`)    | with `loop`/`membomb`: misbehave only on rows containing it        |
//! | `huge-keys`   | adds `keys` distinct keys (default 5,000,001: one over the host's default cap) |
//! | `long-key`    | adds one key of `bytes` bytes (default 100,000)                    |
//! | `read-file`   | reads /etc/passwd, lists /, writes /tmp: `LEAK:file` or `denied:file` |
//! | `env`         | `LEAK:env` per env var / extra argument, else `denied:env`         |
//! | `socket`      | TCP connect to 127.0.0.1:`port`, UDP bind, DNS: `LEAK:net` or `denied:net` |
//! | `clock`       | `LEAK:clock` if the wall clock is after 2001-01-01, else `denied:clock` |
//! | `guest-error` | returns `Err("evil guest error")`                                  |
//! | `try-alloc`   | tries to reserve `bytes` bytes, handling refusal: `alloc:ok` or `alloc:refused` |
//! | `stderr`      | writes `bytes` bytes (default 10,000) to stderr, then counts whitespace words |
//!
//! With `verbose=true` the probing modes also count one `error:WHAT:MESSAGE`
//! key per refused attempt, to see which layer refused it.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wc_plugin_sdk::{Counter, Counts, Info, Param, Params};

const KNOWN_PARAMS: &[&str] = &["mode", "needle", "port", "keys", "bytes", "rows", "verbose"];
const PARAMS: &[Param] = &[
    Param { name: "mode", default: "", help: "how to misbehave (required; see the module docs)" },
    Param { name: "needle", default: "", help: "with loop/membomb/trap-on: only on rows containing it" },
    Param { name: "port", default: "1", help: "socket: the port to try" },
    Param { name: "keys", default: "", help: "huge-keys: how many keys" },
    Param { name: "bytes", default: "", help: "long-key/try-alloc/stderr: how many bytes" },
    Param { name: "rows", default: "1", help: "trap-after: panic on the task's row number ROWS" },
    Param { name: "verbose", default: "false", help: "print to stderr while counting" },
];
const MODES: &[&str] = &[
    "loop",
    "membomb",
    "trap",
    "trap-on",
    "trap-after",
    "huge-keys",
    "long-key",
    "read-file",
    "env",
    "socket",
    "clock",
    "guest-error",
    "try-alloc",
    "stderr",
];

/// One key more than the host's default `max_keys` (5,000,000). Short keys
/// (at most 7 digits) fit the default 512 MiB of guest memory with the SDK's
/// map; 6,000,000 do not (the guest runs out of memory first).
const DEFAULT_HUGE_KEYS: u64 = 5_000_001;

/// The panic message of the `trap` modes, which the host must report.
pub const PANIC_MESSAGE: &str = "evil plugin panics on purpose";

enum Mode {
    Loop,
    MemBomb,
    Trap,
    TrapOn(String),
    TrapAfter(u64),
    HugeKeys(u64),
    LongKey(usize),
    ReadFile,
    Env,
    Socket(u16),
    Clock,
    GuestError,
    TryAlloc(usize),
    Stderr(usize),
}

pub struct Evil {
    mode: Mode,
    /// With `loop` or `membomb`: misbehave only on rows containing it, and
    /// count whitespace words elsewhere (a poison row inside a real job).
    needle: Option<String>,
    verbose: bool,
    /// What `membomb` grabbed; kept so that nothing is freed.
    hoard: Vec<Vec<u8>>,
    /// Rows of the task seen so far (`trap-after`).
    seen: u64,
}

fn number<T: std::str::FromStr>(params: &Params, key: &str, default: T) -> Result<T, String> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("parameter `{key}` must be a number, got `{v}`")),
    }
}

impl Counter for Evil {
    fn info() -> Info {
        Info {
            name: "evil",
            version: env!("CARGO_PKG_VERSION"),
            description: "misbehaves on demand (param `mode`); for wc-host's sandbox tests only",
            columns: &["text"],
            params: PARAMS,
        }
    }

    fn new(params: &Params) -> Result<Self, String> {
        params.check_known(KNOWN_PARAMS)?;
        let mode = match params.get("mode") {
            None => return Err(format!("parameter `mode` is required (one of: {})", MODES.join(", "))),
            Some("loop") => Mode::Loop,
            Some("membomb") => Mode::MemBomb,
            Some("trap") => Mode::Trap,
            Some("trap-on") => match params.get("needle") {
                Some(needle) if !needle.is_empty() => Mode::TrapOn(needle.to_string()),
                _ => return Err("mode `trap-on` needs a non-empty parameter `needle`".into()),
            },
            Some("trap-after") => Mode::TrapAfter(number(params, "rows", 1)?),
            Some("huge-keys") => Mode::HugeKeys(number(params, "keys", DEFAULT_HUGE_KEYS)?),
            Some("long-key") => Mode::LongKey(number(params, "bytes", 100_000)?),
            Some("read-file") => Mode::ReadFile,
            Some("env") => Mode::Env,
            Some("socket") => Mode::Socket(number(params, "port", 1)?),
            Some("clock") => Mode::Clock,
            Some("guest-error") => Mode::GuestError,
            Some("try-alloc") => Mode::TryAlloc(number(params, "bytes", 1 << 30)?),
            Some("stderr") => Mode::Stderr(number(params, "bytes", 10_000)?),
            Some(other) => return Err(format!("unknown mode `{other}` (one of: {})", MODES.join(", "))),
        };
        let needle = params.get("needle").filter(|n| !n.is_empty()).map(str::to_string);
        Ok(Evil { mode, needle, verbose: params.flag("verbose", false)?, hoard: Vec::new(), seen: 0 })
    }

    fn count_row(&mut self, row: &[&str], counts: &mut Counts) -> Result<(), String> {
        let text = row[0];
        if matches!(self.mode, Mode::Loop | Mode::MemBomb) && self.needle.as_ref().is_some_and(|n| !text.contains(n.as_str())) {
            for word in text.split_whitespace() {
                counts.add(word);
            }
            return Ok(());
        }
        match &self.mode {
            Mode::Loop => spin_forever(),
            Mode::MemBomb => self.membomb(),
            Mode::Trap => panic!("{PANIC_MESSAGE}"),
            Mode::TrapOn(needle) => {
                if text.contains(needle.as_str()) {
                    panic!("{PANIC_MESSAGE}: the row contains `{needle}`");
                }
                for word in text.split_whitespace() {
                    counts.add(word);
                }
            }
            Mode::TrapAfter(rows) => {
                self.seen += 1;
                if self.seen == *rows {
                    panic!("{PANIC_MESSAGE}: row {rows} of the task");
                }
                for word in text.split_whitespace() {
                    counts.add(word);
                }
            }
            Mode::HugeKeys(n) => {
                // Short keys, so that the guest's memory holds the map, the
                // result list and the keys (see DEFAULT_HUGE_KEYS).
                let mut key = String::with_capacity(20);
                for i in 0..*n {
                    key.clear();
                    push_decimal(&mut key, i);
                    counts.add(&key);
                }
            }
            Mode::LongKey(bytes) => counts.add(&"x".repeat(*bytes)),
            Mode::ReadFile => probe(counts, self.verbose, "file", read_file_attempts()),
            Mode::Env => {
                let mut leaks = 0;
                for (k, _) in std::env::vars_os() {
                    leaks += 1;
                    if self.verbose {
                        counts.add(&format!("error:env:var {}", k.to_string_lossy()));
                    }
                }
                for arg in std::env::args_os().skip(1) {
                    leaks += 1;
                    if self.verbose {
                        counts.add(&format!("error:env:arg {}", arg.to_string_lossy()));
                    }
                }
                if leaks == 0 {
                    counts.add("denied:env");
                } else {
                    counts.add_n("LEAK:env", leaks);
                }
            }
            Mode::Socket(port) => probe(counts, self.verbose, "net", net_attempts(*port)),
            Mode::Clock => {
                // 2001-01-01T00:00:00Z; a clock frozen at the epoch is before it.
                let y2001 = UNIX_EPOCH + Duration::from_secs(978_307_200);
                let now = SystemTime::now();
                counts.add(if now > y2001 { "LEAK:clock" } else { "denied:clock" });
            }
            Mode::GuestError => return Err("evil guest error".into()),
            Mode::TryAlloc(bytes) => {
                let mut v: Vec<u8> = Vec::new();
                counts.add(match v.try_reserve_exact(*bytes) {
                    Ok(()) => "alloc:ok",
                    Err(_) => "alloc:refused",
                });
                black_box(v);
            }
            Mode::Stderr(bytes) => {
                let line = "evil plugin writes to stderr ".repeat(bytes / 29 + 1);
                eprintln!("{}", &line[..bytes.saturating_sub(1).min(line.len())]);
                for word in text.split_whitespace() {
                    counts.add(word);
                }
            }
        }
        Ok(())
    }
}

impl Evil {
    /// Grabs 1 MiB at a time, writing every page so none of it is lazy,
    /// until the allocator fails (and aborts the instance).
    fn membomb(&mut self) -> ! {
        loop {
            let mut chunk = vec![0u8; 1 << 20];
            for i in (0..chunk.len()).step_by(4096) {
                chunk[i] = (i as u8) | 1;
            }
            self.hoard.push(black_box(chunk));
        }
    }
}

/// An infinite loop the optimizer cannot remove or prove idle.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n).wrapping_add(1);
    }
}

fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap());
}

/// One attempt to reach outside the sandbox: `Ok` if it got through.
type Attempt = (&'static str, Result<(), String>);

/// Counts `LEAK:{what}` once per attempt that got through, else `denied:{what}`.
fn probe(counts: &mut Counts, verbose: bool, what: &str, attempts: Vec<Attempt>) {
    let mut leaks = 0;
    for (name, result) in attempts {
        match result {
            Ok(()) => leaks += 1,
            Err(e) if verbose => counts.add(&format!("error:{name}:{e}")),
            Err(_) => {}
        }
    }
    if leaks == 0 {
        counts.add(&format!("denied:{what}"));
    } else {
        counts.add_n(&format!("LEAK:{what}"), leaks);
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn read_file_attempts() -> Vec<Attempt> {
    vec![
        ("read /etc/passwd", std::fs::read_to_string("/etc/passwd").map(drop).map_err(err)),
        ("read_dir /", std::fs::read_dir("/").map(drop).map_err(err)),
        ("read_dir .", std::fs::read_dir(".").map(drop).map_err(err)),
        ("write /tmp", std::fs::write("/tmp/wc-host-evil-plugin-was-here", b"evil").map_err(err)),
    ]
}

fn net_attempts(port: u16) -> Vec<Attempt> {
    use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
    let tcp = TcpStream::connect(("127.0.0.1", port)).map(drop).map_err(err);
    let mut attempts = vec![("tcp connect", tcp)];
    match UdpSocket::bind("127.0.0.1:0") {
        Ok(socket) => {
            attempts.push(("udp bind", Ok(())));
            attempts.push(("udp send", socket.send_to(b"evil", ("127.0.0.1", port)).map(drop).map_err(err)));
        }
        Err(e) => attempts.push(("udp bind", Err(err(e)))),
    }
    attempts.push(("dns", ("localhost", port).to_socket_addrs().map(drop).map_err(err)));
    attempts
}

wc_plugin_sdk::export_counter!(Evil);
