//! The connection to a job's Redis, and how it comes back after Redis
//! restarts: reconnect with backoff, reload the function library, recreate
//! the consumer group, run the call again.

use std::time::{Duration, Instant};

use anyhow::Context;
use redis::RedisError;

use super::keys::{Keys, GROUP};
use super::FUNCTIONS;

/// How long each kind of caller keeps retrying an unavailable Redis before
/// it gives up. One place, so that their relation is visible: a worker gives
/// up before the coordinator (which respawns it), queries fail fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    /// The coordinator: a Redis restart from a large dump can take minutes.
    Coordinator,
    /// A worker exits after this and is respawned by the coordinator.
    Worker,
    /// `top`, `status`, and a summary's extras: a user is waiting.
    Query,
}

impl Patience {
    pub fn duration(self) -> Duration {
        match self {
            Patience::Coordinator => Duration::from_secs(300),
            Patience::Worker => Duration::from_secs(120),
            Patience::Query => Duration::from_secs(10),
        }
    }
}

/// A connection to one job's keys that survives Redis restarts.
pub struct Store {
    client: redis::Client,
    conn: Option<redis::Connection>,
    pub keys: Keys,
    patience: Duration,
}

/// Read and write timeout: longer than any blocking read we issue.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Is this error worth reconnecting for (as opposed to a bug or bad input)?
pub fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN"))
}

/// Errors that mean "the library or the group was lost in a restore":
/// reconnecting restores both.
fn is_lost_state(e: &RedisError) -> bool {
    e.to_string().contains("Function not found") || e.code() == Some("NOGROUP")
}

impl Store {
    pub fn new(url: &str, keys: Keys, patience: Patience) -> anyhow::Result<Store> {
        let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {}", redact(url)))?;
        Ok(Store { client, conn: None, keys, patience: patience.duration() })
    }

    /// The same Redis and keys, on a connection of its own (for a thread).
    pub fn another(&self, patience: Patience) -> Store {
        Store { client: self.client.clone(), conn: None, keys: self.keys.clone(), patience: patience.duration() }
    }

    /// The same store giving up after `limit` instead (a heartbeat must not
    /// outlast its period).
    pub fn giving_up_after(mut self, limit: Duration) -> Store {
        self.patience = limit;
        self
    }

    /// Connects once, without retrying: for the first contact, where a wrong
    /// URL or password should fail fast with a clear message.
    pub fn connect_once(&mut self) -> anyhow::Result<()> {
        let mut conn = self.client.get_connection_with_timeout(Duration::from_secs(3)).map_err(|e| explain(e, &self.client))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        load_functions(&mut conn).map_err(|e| explain(e, &self.client))?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Runs `f` on a live connection; on a transient error reconnects with
    /// backoff (reloading the function library) and runs it again, until the
    /// store's patience has run out. `f` must therefore be idempotent, which
    /// every protocol call is (see the module doc of `protocol`).
    pub fn with_retry<T>(&mut self, f: impl FnMut(&mut redis::Connection, &Keys) -> redis::RedisResult<T>) -> anyhow::Result<T> {
        self.with_retry_for(self.patience, f)
    }

    /// [`with_retry`](Self::with_retry) with another limit.
    pub fn with_retry_for<T>(
        &mut self,
        give_up: Duration,
        mut f: impl FnMut(&mut redis::Connection, &Keys) -> redis::RedisResult<T>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = match self.ensure_connected() {
                Ok(()) => f(self.conn.as_mut().expect("connected"), &self.keys),
                Err(e) => Err(e),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) || is_lost_state(&e) => {
                    if started.elapsed() > give_up {
                        return Err(e).context(format!("Redis unavailable for {give_up:?}"));
                    }
                    tracing::debug!("Redis error, reconnecting: {e}");
                    self.conn = None;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(explain(e, &self.client)),
            }
        }
    }

    fn ensure_connected(&mut self) -> redis::RedisResult<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut conn = self.client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        load_functions(&mut conn)?;
        ensure_group(&mut conn, &self.keys)?;
        self.conn = Some(conn);
        Ok(())
    }
}

/// `FUNCTION LOAD REPLACE`: on every (re)connect, since an old dump brings
/// back an old library.
fn load_functions(conn: &mut redis::Connection) -> redis::RedisResult<()> {
    redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(FUNCTIONS).query::<String>(conn).map(drop)
}

/// Creates the consumer group (and the stream) if missing. Reading from id 0
/// means entries that survived a restore are delivered again.
pub fn ensure_group(conn: &mut redis::Connection, keys: &Keys) -> redis::RedisResult<()> {
    let created: redis::RedisResult<String> =
        redis::cmd("XGROUP").arg("CREATE").arg(&keys.stream).arg(GROUP).arg("0").arg("MKSTREAM").query(conn);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Turns first-contact errors into advice.
fn explain(e: RedisError, client: &redis::Client) -> anyhow::Error {
    let at = format!("{}", client.get_connection_info().addr);
    let msg = e.to_string();
    if e.kind() == redis::ErrorKind::AuthenticationFailed || msg.contains("WRONGPASS") || msg.contains("invalid username-password") {
        anyhow::anyhow!("Redis at {at} refused the credentials in the URL (wrong user or password): {msg}")
    } else if msg.contains("NOAUTH") {
        anyhow::anyhow!("Redis at {at} requires a password: give it in the URL, redis://:PASSWORD@host:port/")
    } else if msg.contains("NOPERM") {
        anyhow::anyhow!(
            "Redis at {at}: the ACL user lacks a permission wc-host needs (keys `wc:*` and the commands listed in the README, section Security): {msg}"
        )
    } else if !e.is_connection_refusal() && (e.is_timeout() || msg.contains("(os error 11)")) {
        anyhow::anyhow!("Redis at {at} did not answer in time (is it a Redis server?): {msg}")
    } else if e.is_connection_refusal() || e.is_io_error() {
        anyhow::anyhow!("cannot reach Redis at {at}: {msg}")
    } else {
        anyhow::anyhow!("Redis at {at}: {msg}")
    }
}

/// Did Redis refuse us for good (credentials, ACL permissions), so that
/// retrying or respawning cannot help?
pub fn is_denied(e: &anyhow::Error) -> bool {
    let msg = format!("{e:#}");
    msg.contains("NOPERM") || msg.contains("credentials") || msg.contains("requires a password")
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}{}:***{}", &url[..scheme], "://", user, &url[at..])
        }
        _ => url.to_string(),
    }
}
