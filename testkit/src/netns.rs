//! Linux network namespaces of a test's own, so that workers run on
//! "hosts" that reach Redis over a network link that can be cut.
//!
//! A [`NetLab`] is a hub namespace holding a bridge, and one namespace per
//! host, each joined to the bridge by a veth pair (`eth0` inside the host,
//! the host's label on the bridge side), with an address in
//! `10.213.N.0/24`. Nothing of it is in the root namespace: every link and
//! address lives in namespaces the lab made, so the addresses cannot clash
//! with anything on the machine or with another run's lab (names carry the
//! test's pid and a sequence number). Processes run in a host with
//! [`NetLab::command`] (`ip netns exec NS …`, which execs: the `Child` is the
//! process itself); the test process itself talks to them through
//! [`in_netns`], which makes a socket from a thread that entered the
//! namespace. [`NetLab::cut`] sets a host's link down (no tc, no iptables
//! here), [`NetLab::restore`] brings it back.
//!
//! Drop kills every process in the lab's namespaces and deletes them (the
//! veths and the bridge go with them), also when the test panics; a lab of
//! a test process that died without dropping (SIGKILL on a timeout) is
//! swept by the next lab made on the machine.
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Prefix of every namespace a lab makes: `wclab<pid>x<seq>-<label>`.
const PREFIX: &str = "wclab";

/// One host of a lab: a namespace with one address on the lab's bridge.
#[derive(Clone, Debug)]
pub struct NsHost {
    /// What the test calls it (`h1`, `redis`, …); also the name of its link
    /// on the bridge side.
    pub label: String,
    /// The namespace's name (for `ip netns exec`).
    pub netns: String,
    /// Its address on the bridge.
    pub ip: String,
}

pub struct NetLab {
    /// `wclab<pid>x<seq>`: the start of every namespace name of this lab.
    pub name: String,
    /// The `N` of `10.213.N.0/24`.
    pub subnet: u8,
    hub: String,
    hosts: Vec<NsHost>,
    /// Every namespace made so far (hub first), deleted on drop.
    namespaces: Vec<String>,
}

/// Why a lab cannot be made here (`None`: it can): not root, or no `ip netns`.
pub fn netns_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".into());
    }
    match Command::new("ip").args(["netns", "list"]).stdout(Stdio::null()).stderr(Stdio::piped()).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`ip netns list` failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Some(format!("cannot run `ip` (iproute2): {e}")),
    }
}

/// Should a test that cannot make a lab fail instead of skipping? Under CI
/// (`CI=true`) as root: there the namespaces are expected to work.
pub fn netns_required() -> bool {
    // SAFETY: as above.
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") && unsafe { libc::geteuid() } == 0
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl NetLab {
    /// A lab with one namespace per label (labels: at most 15 characters,
    /// letters, digits and `-`), each at `10.213.N.(10 + index)`.
    pub fn new(labels: &[&str]) -> Result<NetLab, String> {
        if let Some(reason) = netns_unavailable() {
            return Err(reason);
        }
        sweep_stale_labs();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}x{}", SEQ.fetch_add(1, Ordering::SeqCst));
        // Only inside the lab's namespaces: any N works; vary it anyway.
        let subnet = (pid % 200) as u8 + 20;
        let hub = format!("{name}-hub");
        let mut lab = NetLab { name, subnet, hub: hub.clone(), hosts: Vec::new(), namespaces: Vec::new() };
        // From here on, a failure drops `lab`, which removes what exists.
        ip(&["netns", "add", &hub])?;
        lab.namespaces.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, label) in labels.iter().enumerate() {
            assert!(
                label.len() <= 15 && label != &"br0" && label != &"lo" && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "bad host label {label:?}"
            );
            let netns = format!("{}-{label}", lab.name);
            ip(&["netns", "add", &netns])?;
            lab.namespaces.push(netns.clone());
            let addr = format!("10.213.{subnet}.{}", 10 + i);
            // Made inside the hub, the peer created straight in the host: no
            // interface ever exists in the root namespace.
            ip(&["-n", &hub, "link", "add", label, "type", "veth", "peer", "name", "eth0", "netns", &netns])?;
            ip(&["-n", &hub, "link", "set", label, "master", "br0", "up"])?;
            ip(&["-n", &netns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            lab.hosts.push(NsHost { label: label.to_string(), netns, ip: addr });
        }
        Ok(lab)
    }

    pub fn host(&self, label: &str) -> &NsHost {
        self.hosts.iter().find(|h| h.label == label).unwrap_or_else(|| panic!("no host {label} in lab {}", self.name))
    }

    pub fn hosts(&self) -> &[NsHost] {
        &self.hosts
    }

    /// `program` to run in host `label` (`ip netns exec NS program`); it is
    /// SIGKILLed if the thread that spawns it dies.
    pub fn command(&self, label: &str, program: impl AsRef<OsStr>) -> Command {
        netns_command(&self.host(label).netns, program)
    }

    /// Cuts host `label` off the bridge (its link down, bridge side): its
    /// packets go nowhere until [`restore`](Self::restore).
    pub fn cut(&self, label: &str) {
        self.host(label);
        ip(&["-n", &self.hub, "link", "set", label, "down"]).unwrap();
    }

    pub fn restore(&self, label: &str) {
        self.host(label);
        ip(&["-n", &self.hub, "link", "set", label, "up"]).unwrap();
    }

    /// Runs `f` on a thread inside host `label`'s namespace (sockets it
    /// opens stay there, usable from any thread).
    pub fn within<T: Send>(&self, label: &str, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.host(label).netns, f)
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        // Hosts first, the hub (and its bridge) last.
        for ns in self.namespaces.iter().rev() {
            remove_netns(ns);
        }
    }
}

/// `program` run in namespace `netns`, SIGKILLed when the spawning thread
/// dies (so that a test killed on a timeout leaves no process behind).
pub fn netns_command(netns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).arg(program);
    // SAFETY: prctl is async-signal-safe; `ip netns exec` execs the program
    // without forking, and the death signal survives exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    };
    cmd
}

/// Runs `f` on a thread that entered network namespace `netns`.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{netns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a namespace file we hold open; it changes
            // this (short-lived) thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// The pids of the processes in namespace `netns`.
fn pids_in(netns: &str) -> Vec<i32> {
    let out = Command::new("ip").args(["netns", "pids", netns]).stderr(Stdio::null()).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()).unwrap_or_default()
}

/// SIGKILLs every process in `netns`, then deletes it (its links go with it).
fn remove_netns(netns: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = pids_in(netns);
        // Zombies (our own children not yet waited for) hold no namespace.
        let live: Vec<i32> = pids.into_iter().filter(|p| !is_zombie(*p)).collect();
        if live.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in live {
            // SAFETY: a process in a namespace this lab made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Err(e) = ip(&["netns", "del", netns]) {
        eprintln!("netlab: {e}");
    }
}

fn is_zombie(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()).is_none_or(|s| s == "Z" || s == "X")
}

/// Removes labs left by test processes that no longer exist.
fn sweep_stale_labs() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some(pid) = rest.split('x').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netlab: removing {name}, left by process {pid} that no longer runs");
            remove_netns(name);
        }
    }
}
