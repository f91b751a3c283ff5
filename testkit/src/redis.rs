//! redis-server processes of a test's own: free loopback ports, their own
//! directories, killable and restartable.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server of the test's own, killable and restartable.
pub struct RedisServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// `extra`: more `redis-server` arguments (e.g. `--requirepass x`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { dir, port, child: None, extra: extra.iter().map(|s| s.to_string()).collect() };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server_bin())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--dbfilename", "dump.rdb", "--logfile", "redis.log", "--maxmemory-policy", "noeviction"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make deps)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let mut c = self.raw_client();
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
                match pong {
                    Ok(_) => return,
                    Err(e) if e.to_string().contains("NOAUTH") => return,
                    Err(_) => {}
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn raw_client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        self.raw_client()
    }

    /// SIGKILL: nothing saved since the last BGSAVE.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts again from the same directory (its dump) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Snapshots completed since the server started (`INFO persistence`).
    pub fn rdb_saves(&self) -> u64 {
        let info: redis::InfoDict = redis::cmd("INFO").arg("persistence").query(&mut self.conn()).unwrap();
        info.get("rdb_saves").expect("INFO persistence has rdb_saves")
    }

    /// BGSAVE and wait until it is on disk.
    pub fn save(&self) {
        let mut c = self.conn();
        let before: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
        let _: redis::RedisResult<String> = redis::cmd("SAVE").query(&mut c);
        let after: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
        assert!(after >= before);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RedisServer {
    /// The URL with credentials: `userinfo` is `:password` or `user:password`.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("redis://{userinfo}@127.0.0.1:{}/", self.port)
    }
}

/// A connection to `url` (credentials included), failing the test if refused.
pub fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection_with_timeout(Duration::from_secs(5)).unwrap()
}

/// The server binary tests start: `redis-server`, or the one named by
/// `WC_TEST_REDIS_SERVER` (Valkey, another Redis version).
pub fn redis_server_bin() -> String {
    std::env::var("WC_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}
