//! The managed Redis: a `redis-server` child on a free loopback port, with
//! its own data directory and a generated password, for when no `--redis`
//! URL is given. Also what the chaos option kills and restarts.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How a managed Redis persists: snapshots only (BGSAVE checkpoints), or an
/// append-only file as well (fsync every second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Durability {
    Snapshot,
    Aof,
}

impl Durability {
    pub const NAMES: [&'static str; 2] = ["snapshot", "aof"];
}

impl std::str::FromStr for Durability {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Durability> {
        match s {
            "snapshot" => Ok(Durability::Snapshot),
            "aof" => Ok(Durability::Aof),
            other => bail!("unknown durability `{other}` (known: snapshot, aof)"),
        }
    }
}

/// The managed Redis's data directory when none is given.
pub const DEFAULT_DATA_DIR: &str = ".wc-data";

pub struct ManagedRedis {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
    durability: Durability,
    child: Option<Child>,
}

impl ManagedRedis {
    /// Starts `redis-server` on a free port with `dir` as its data directory
    /// (created if missing; an existing dump or AOF there is loaded).
    pub fn start(dir: &Path, durability: Durability) -> anyhow::Result<ManagedRedis> {
        let binary = find_redis_server()?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        let password = password_for(&dir)?;
        let port = free_port()?;
        let mut redis = ManagedRedis { binary, dir, port, password, durability, child: None };
        redis.spawn()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/", self.password, self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let aof = if self.durability == Durability::Aof { "yes" } else { "no" };
        let mut child = Command::new(&self.binary)
            // `-`: more configuration on stdin, where the password goes.
            // Never in argv: any local user can read a process's command
            // line (Redis rewrites its title, but only once started).
            .arg("-")
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--dbfilename", "dump.rdb", "--logfile", "redis.log"])
            // Snapshots are taken by the coordinator's checkpoints, not by
            // Redis's own save rules, so their timing is the job's choice.
            .args(["--save", ""])
            // The snapshot is mostly the tasks' result blobs (already
            // compact varints) and is rewritten at every checkpoint: LZF
            // compressing it was about a sixth of Redis's CPU (its forked
            // children's included) in a profile of a 512 MB job.
            .args(["--rdbcompression", "no"])
            .args(["--appendonly", aof, "--appendfsync", "everysec"])
            .args(["--maxmemory-policy", "noeviction"])
            .args(["--daemonize", "no"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let quoted = self.password.replace('\\', "\\\\").replace('"', "\\\"");
            // A failed write means redis-server already exited: reported below.
            let _ = std::io::Write::write_all(&mut stdin, format!("requirepass \"{quoted}\"\n").as_bytes());
        } // closed here: Redis reads its stdin to the end before starting
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = redis::Client::open(self.url())?;
        loop {
            if let Some(status) = child.try_wait()? {
                let mut err = String::new();
                child.stderr.take().map(|mut s| s.read_to_string(&mut err));
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!("redis-server exited at start ({status}): {err}{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
            let ready = client
                .get_connection_with_timeout(Duration::from_millis(500))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            match ready {
                Ok(_) => break,
                // Polled often: this wait is part of every job's start.
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    let _ = child.kill();
                    bail!("redis-server on port {} did not become ready: {e}", self.port);
                }
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash would: nothing is saved.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again from its data directory, on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let mut last = None;
        for _ in 0..50 {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(last.expect("tried at least once")).context("cannot restart the managed Redis")
    }

    /// Saves and stops it.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let client = redis::Client::open(self.url())?;
        if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
            // The reply never comes: the server exits.
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("SAVE").query(&mut conn);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the managed Redis did not shut down in time; killed it");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Drop for ManagedRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_redis_server() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WC_REDIS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")]) {
        let candidate = dir.join("redis-server");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "redis-server is not installed. Install it (Debian/Ubuntu: `sudo apt-get install redis-server`), \
         or point wc-host at a running Redis with --redis URL or REDIS_URL"
    )
}

/// A free loopback port (bound then released; the server binds it next).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The data directory's password, generated on first use and kept there
/// (mode 0600) so that later runs and `wc-host top` can reconnect.
fn password_for(dir: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("redis.pass");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            return Ok(existing.trim().to_string());
        }
    }
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let password = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    std::io::Write::write_all(&mut file, password.as_bytes())?;
    Ok(password)
}
