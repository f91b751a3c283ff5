//! Processes seen through /proc: a coordinator's workers (to SIGKILL or
//! pause them), what is left running, what a process listens on.

use std::path::Path;

/// Processes whose command line mentions `needle` (for "nothing left running").
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Worker processes started by the coordinator `pid` (its children that
/// run `wc-host worker`, not a managed redis-server).
pub fn workers_of(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|child| std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("worker")))
        .collect()
}

/// `redis-server` processes working in `dir` (their cwd: Redis chdirs to
/// its `--dir`). Needed because Redis rewrites its command line into
/// "redis-server 127.0.0.1:PORT", so `processes_mentioning(dir)` cannot see it.
pub fn redis_servers_in(dir: &Path) -> Vec<u32> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("redis-server") && !comm.trim().starts_with("valkey-server") {
            continue;
        }
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir) {
            pids.push(pid);
        }
    }
    pids
}

/// The addresses process `pid` listens on (TCP, IPv4 and IPv6), from its
/// socket inodes and /proc/net/tcp{,6}.
pub fn listening_addrs(pid: u32) -> Vec<std::net::SocketAddr> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    // An address field is the IP as 32-bit words in host (little-endian) order, then the port.
    fn parse(addr: &str) -> Option<std::net::SocketAddr> {
        let (ip, port) = addr.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let mut bytes = Vec::new();
        for word in ip.as_bytes().chunks(8) {
            let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
            bytes.extend(word.to_le_bytes());
        }
        let ip: std::net::IpAddr = match bytes.len() {
            4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
            16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
            _ => return None,
        };
        Some(std::net::SocketAddr::new(ip, port))
    }
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // cols: sl, local, remote, state (0A = LISTEN), ..., inode at 9.
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                out.extend(parse(cols[1]));
            }
        }
    }
    out
}

/// SIGSTOPs the workers of coordinator `pid` (so the test can change Redis
/// while nothing is committed); returns them for [`resume`].
pub fn pause_workers(pid: u32) -> Vec<u32> {
    let workers = workers_of(pid);
    for w in &workers {
        // SAFETY: signalling a worker process of our own job.
        unsafe { libc::kill(*w as i32, libc::SIGSTOP) };
    }
    workers
}

pub fn resume(workers: &[u32]) {
    for w in workers {
        // SAFETY: as above.
        unsafe { libc::kill(*w as i32, libc::SIGCONT) };
    }
}

/// Child processes of `pid` (read from /proc): a coordinator's workers.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let after = &stat[stat.rfind(')').map_or(0, |i| i + 2).min(stat.len())..];
            after.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}
