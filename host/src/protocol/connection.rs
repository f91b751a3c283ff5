//! The connection to a job's Redis, whatever the deployment (one server, a
//! Redis Cluster, a master found through Sentinel), and how it comes back
//! after restarts and failovers: reconnect with backoff (asking the
//! sentinels or the cluster afresh), reload the function library, recreate
//! the consumer groups, run the call again.

use std::time::{Duration, Instant};

use anyhow::Context;
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ConnectionLike, InfoDict, IntoConnectionInfo, RedisError, RedisResult, Value};

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

/// Where a job's Redis is, from its URL:
/// `redis://[user][:password]@host:port/db` (one server),
/// `redis-cluster://[user:password@]host:port[,host:port…]` (a Cluster's seed nodes),
/// `redis-sentinel://[user:password@]host:port[,host:port…][/db]#MASTER` (the
/// master Sentinel names; the credentials are the master's, and
/// `?sentinel_password=…` gives the sentinels' own).
#[derive(Clone)]
pub enum Deployment {
    Single(redis::Client),
    Cluster(ClusterClient),
    Sentinel(SentinelTarget),
}

/// A master named by sentinels: asked for on every (re)connect, never cached.
#[derive(Clone)]
pub struct SentinelTarget {
    sentinels: Vec<redis::ConnectionInfo>,
    master: String,
    /// The master's credentials and database.
    redis: redis::RedisConnectionInfo,
}

impl Deployment {
    pub fn parse(url: &str) -> anyhow::Result<Deployment> {
        let bad = || format!("bad Redis URL {}", redact(url));
        if let Some(rest) = url.strip_prefix("redis-cluster://") {
            let (seeds, _) = multi_host(rest).with_context(bad)?;
            let first = seeds.first().with_context(bad)?.redis.clone();
            let mut builder = ClusterClientBuilder::new(seeds)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(IO_TIMEOUT)
                // Our own retry loop backs off; the client's default waits
                // grow past a second each, 16 times.
                .retries(2)
                .min_retry_wait(50)
                .max_retry_wait(500);
            if let Some(user) = first.username {
                builder = builder.username(user);
            }
            if let Some(password) = first.password {
                builder = builder.password(password);
            }
            return Ok(Deployment::Cluster(builder.build().with_context(bad)?));
        }
        if let Some(rest) = url.strip_prefix("redis-sentinel://") {
            let (rest, master) = rest.rsplit_once('#').with_context(|| format!("{}: name the master after `#`", bad()))?;
            anyhow::ensure!(!master.is_empty(), "{}: name the master after `#`", bad());
            let (rest, sentinel_password) = match rest.split_once("?sentinel_password=") {
                Some((rest, password)) => (rest, Some(password.to_string())),
                None => (rest, None),
            };
            let (mut sentinels, redis) = multi_host(rest).with_context(bad)?;
            for s in &mut sentinels {
                s.redis = redis::RedisConnectionInfo { password: sentinel_password.clone(), ..Default::default() };
            }
            return Ok(Deployment::Sentinel(SentinelTarget { sentinels, master: master.to_string(), redis }));
        }
        Ok(Deployment::Single(redis::Client::open(url).with_context(bad)?))
    }

    /// Where it is, for messages (no password).
    pub fn describe(&self) -> String {
        match self {
            Deployment::Single(client) => client.get_connection_info().addr.to_string(),
            Deployment::Cluster(_) => "the Redis Cluster".to_string(),
            Deployment::Sentinel(s) => format!("master `{}` of sentinels {}", s.master, s.sentinels.iter().map(|i| i.addr.to_string()).collect::<Vec<_>>().join(",")),
        }
    }

    /// With Sentinel: the run id of the master the sentinels name now.
    pub fn sentinel_master_run_id(&self) -> Option<RedisResult<String>> {
        let Deployment::Sentinel(target) = self else { return None };
        Some(target.master_client().and_then(|c| c.get_connection_with_timeout(CONNECT_TIMEOUT)).and_then(|mut c| {
            let info: InfoDict = redis::cmd("INFO").arg("server").query(&mut c)?;
            Ok(info.get::<String>("run_id").unwrap_or_default())
        }))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Deployment::Cluster(_))
    }

    fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            Deployment::Single(client) => {
                let conn = client.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(IO_TIMEOUT))?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Conn::Single(conn))
            }
            Deployment::Cluster(client) => Ok(Conn::Cluster(client.get_connection()?)),
            Deployment::Sentinel(target) => {
                let conn = target.master_client()?.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(IO_TIMEOUT))?;
                conn.set_write_timeout(Some(IO_TIMEOUT))?;
                let mut conn = Conn::Single(conn);
                // The sentinels' view may lag a failover: only a master will do.
                let role: Vec<Value> = redis::cmd("ROLE").query(&mut conn)?;
                match role.first() {
                    Some(Value::BulkString(r)) if r.as_slice() == b"master" => Ok(conn),
                    _ => Err(RedisError::from((redis::ErrorKind::TryAgain, "the sentinels named a server that is not a master", target.master.clone()))),
                }
            }
        }
    }
}

impl SentinelTarget {
    /// Asks the sentinels, one after the other, for the current master.
    fn master_client(&self) -> RedisResult<redis::Client> {
        let mut last = None;
        for sentinel in &self.sentinels {
            let answer = redis::Client::open(sentinel.clone())
                .and_then(|c| c.get_connection_with_timeout(CONNECT_TIMEOUT))
                .and_then(|mut c| {
                    c.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                    redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(&self.master).query::<Option<(String, u16)>>(&mut c)
                });
            match answer {
                Ok(Some((host, port))) => {
                    let info = redis::ConnectionInfo { addr: redis::ConnectionAddr::Tcp(host, port), redis: self.redis.clone() };
                    return redis::Client::open(info);
                }
                Ok(None) => last = Some(RedisError::from((redis::ErrorKind::TryAgain, "a sentinel does not know the master", self.master.clone()))),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RedisError::from((redis::ErrorKind::InvalidClientConfig, "no sentinel in the URL"))))
    }
}

/// `user:password@h1:p1,h2:p2/db` -> one connection info per host, and the
/// shared credentials and database.
fn multi_host(rest: &str) -> RedisResult<(Vec<redis::ConnectionInfo>, redis::RedisConnectionInfo)> {
    let (auth, hosts) = match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    let cut = hosts.find(['/', '?']).unwrap_or(hosts.len());
    let (hosts, tail) = hosts.split_at(cut);
    // The crate parses (and percent-decodes) each host as a plain URL.
    let infos = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}{tail}").into_connection_info())
        .collect::<RedisResult<Vec<_>>>()?;
    let shared = infos.first().map(|i| i.redis.clone()).ok_or((redis::ErrorKind::InvalidClientConfig, "no host in the URL"))?;
    Ok((infos, shared))
}

/// A live connection: to one server, or to a Cluster (which routes each
/// command to the node that serves its key).
pub enum Conn {
    Single(redis::Connection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    // Delegated explicitly: the Cluster routes by the command, not its bytes.
    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Single(c) => c.supports_pipelining(),
            Conn::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

impl Conn {
    /// Sends `cmds` in one round trip per node where the deployment allows
    /// it (not atomic: each command must be safe on its own).
    pub fn batch(&mut self, cmds: Vec<Cmd>) -> RedisResult<()> {
        if cmds.is_empty() {
            return Ok(());
        }
        match self {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd).ignore();
                }
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    pipe.add_command(cmd).ignore();
                }
                pipe.query(c)
            }
        }
    }

    /// `INFO section` of the primary that serves the keys of hash tag `tag`
    /// (on one server: of that server).
    pub fn info_for_tag(&mut self, tag: &str, section: &str) -> RedisResult<InfoDict> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg(section);
        match self {
            Conn::Single(c) => cmd.query(c),
            Conn::Cluster(c) => {
                let route = Route::new(slot_of_tag(tag), SlotAddr::Master);
                let value = c.route_command(&cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)))?;
                redis::from_redis_value(&value)
            }
        }
    }

    /// On a Cluster: every slot range and the address of the primary that
    /// serves it (`CLUSTER SLOTS`); `None` on one server.
    pub fn slot_primaries(&mut self) -> RedisResult<Option<Vec<(u16, u16, String)>>> {
        let Conn::Cluster(c) = self else { return Ok(None) };
        let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(c)?;
        let mut out = Vec::new();
        for range in ranges {
            let Value::Array(parts) = range else { continue };
            let (Some(lo), Some(hi), Some(Value::Array(primary))) = (parts.first(), parts.get(1), parts.get(2)) else { continue };
            let (lo, hi): (u16, u16) = (redis::from_redis_value(lo)?, redis::from_redis_value(hi)?);
            let host: String = primary.first().map(redis::from_redis_value).transpose()?.unwrap_or_default();
            let port: u16 = primary.get(1).map(redis::from_redis_value).transpose()?.unwrap_or_default();
            out.push((lo, hi, format!("{host}:{port}")));
        }
        Ok(Some(out))
    }

    /// `INFO section` of every primary, by address.
    pub fn info_of_primaries(&mut self, section: &str) -> RedisResult<Vec<(String, InfoDict)>> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg(section);
        match self {
            Conn::Single(c) => Ok(vec![(String::from("server"), cmd.query(c)?)]),
            // A Cluster sends INFO to every primary and answers with a map.
            Conn::Cluster(c) => Ok(cmd.query::<std::collections::HashMap<String, InfoDict>>(c)?.into_iter().collect()),
        }
    }
}

/// The Cluster slot of keys with hash tag `tag` (CRC16/XMODEM mod 16384, as
/// Redis computes it; the redis crate keeps its own function private).
pub fn slot_of_tag(tag: &str) -> u16 {
    const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    CRC16.checksum(tag.as_bytes()) % 16384
}

/// A connection to one job's keys that survives restarts and failovers.
pub struct Store {
    deployment: Deployment,
    conn: Option<Conn>,
    pub keys: Keys,
    patience: Duration,
    /// Write refusals already said (each once per store).
    warned: std::collections::HashSet<&'static str>,
}

/// Read and write timeout: longer than any blocking read or function call
/// we issue (a Cluster connection sends a command again after a timeout).
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Is this error worth reconnecting for (as opposed to a bug or bad input)?
/// Besides lost connections: a server loading its dump, busy, or in the
/// middle of a failover or a slot migration; a demoted master (READONLY);
/// a blocked read cut by a failover (UNBLOCKED).
pub fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(e.code(), Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY" | "UNBLOCKED"))
        || refuses_writes(e).is_some()
        || e.to_string().contains("ClusterConnectionNotFound")
}

/// Redis refusing writes for a reason its operator can fix while the job
/// waits: said loudly, then retried like a restart. (Out of memory is not
/// one: see [`is_out_of_memory`].)
fn refuses_writes(e: &RedisError) -> Option<&'static str> {
    match e.code() {
        Some("MISCONF") => Some(
            "Redis refuses writes because its last snapshot failed (MISCONF: stop-writes-on-bgsave-error). Fix its disk \
             (space, permissions); the job waits and carries on, counts stay exact",
        ),
        Some("NOREPLICAS") => Some(
            "Redis refuses writes: fewer replicas are in sync than min-replicas-to-write asks. The job waits for a \
             replica to come back and carries on; counts stay exact",
        ),
        _ => None,
    }
}

/// Is this Redis out of memory (maxmemory reached under noeviction)? The job
/// must stop, resumable, until its operator raises the limit.
pub fn is_out_of_memory(e: &anyhow::Error) -> bool {
    let msg = format!("{e:#}");
    msg.contains("OOM") && msg.contains("maxmemory")
}

/// Errors that mean "the library or a group was lost in a restore":
/// reconnecting restores both.
fn is_lost_state(e: &RedisError) -> bool {
    e.to_string().contains("Function not found") || e.code() == Some("NOGROUP")
}

impl Store {
    pub fn new(url: &str, keys: Keys, patience: Patience) -> anyhow::Result<Store> {
        Ok(Store { deployment: Deployment::parse(url)?, conn: None, keys, patience: patience.duration(), warned: Default::default() })
    }

    /// The same Redis and keys, on a connection of its own (for a thread).
    pub fn another(&self, patience: Patience) -> Store {
        Store { deployment: self.deployment.clone(), conn: None, keys: self.keys.clone(), patience: patience.duration(), warned: Default::default() }
    }

    /// The same store giving up after `limit` instead (a heartbeat must not
    /// outlast its period).
    pub fn giving_up_after(mut self, limit: Duration) -> Store {
        self.patience = limit;
        self
    }

    /// The write refusals (MISCONF, NOREPLICAS) this store met, explained.
    pub fn write_refusals(&self) -> Vec<String> {
        self.warned.iter().map(|w| w.to_string()).collect()
    }

    /// Drops the connection: the next call connects afresh (asking the
    /// sentinels or the cluster again).
    pub fn reconnect(&mut self) {
        self.conn = None;
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Connects once, without retrying: for the first contact, where a wrong
    /// URL or password should fail fast with a clear message.
    pub fn connect_once(&mut self) -> anyhow::Result<()> {
        let mut conn = self.deployment.connect(Duration::from_secs(3)).map_err(|e| explain(e, &self.deployment))?;
        load_functions(&mut conn).map_err(|e| explain(e, &self.deployment))?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Runs `f` on a live connection; on a transient error reconnects with
    /// backoff (reloading the function library) and runs it again, until the
    /// store's patience has run out. `f` must therefore be idempotent, which
    /// every protocol call is (see the module doc of `protocol`).
    pub fn with_retry<T>(&mut self, f: impl FnMut(&mut Conn, &Keys) -> RedisResult<T>) -> anyhow::Result<T> {
        self.with_retry_for(self.patience, f)
    }

    /// [`with_retry`](Self::with_retry) with another limit.
    pub fn with_retry_for<T>(&mut self, give_up: Duration, mut f: impl FnMut(&mut Conn, &Keys) -> RedisResult<T>) -> anyhow::Result<T> {
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
                        return Err(e).context(format!("Redis ({}) unavailable for {give_up:?}", self.deployment.describe()));
                    }
                    match refuses_writes(&e) {
                        Some(why) if self.warned.insert(why) => tracing::warn!("{why} ({})", self.deployment.describe()),
                        _ => tracing::debug!("Redis error, reconnecting: {e}"),
                    }
                    // A Cluster connection does not learn of a failover from
                    // a refused connection: only a new one asks again.
                    self.conn = None;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(explain(e, &self.deployment)),
            }
        }
    }

    fn ensure_connected(&mut self) -> RedisResult<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut conn = self.deployment.connect(CONNECT_TIMEOUT)?;
        load_functions(&mut conn)?;
        for partition in &self.keys.partitions {
            ensure_group(&mut conn, &partition.stream)?;
        }
        self.conn = Some(conn);
        Ok(())
    }
}

/// `FUNCTION LOAD REPLACE` (on every primary of a Cluster): on every
/// (re)connect, since an old dump brings back an old library.
fn load_functions(conn: &mut Conn) -> RedisResult<()> {
    redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(FUNCTIONS).query::<Value>(conn).map(drop)
}

/// Creates the consumer group (and the stream) if missing. Reading from id 0
/// means entries that survived a restore are delivered again.
pub fn ensure_group<C: ConnectionLike>(conn: &mut C, stream: &str) -> RedisResult<()> {
    let created: RedisResult<String> = redis::cmd("XGROUP").arg("CREATE").arg(stream).arg(GROUP).arg("0").arg("MKSTREAM").query(conn);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Turns first-contact errors into advice.
fn explain(e: RedisError, deployment: &Deployment) -> anyhow::Error {
    let at = deployment.describe();
    let msg = e.to_string();
    if e.kind() == redis::ErrorKind::AuthenticationFailed || msg.contains("WRONGPASS") || msg.contains("invalid username-password") {
        anyhow::anyhow!("Redis at {at} refused the credentials in the URL (wrong user or password): {msg}")
    } else if msg.contains("NOAUTH") {
        anyhow::anyhow!("Redis at {at} requires a password: give it in the URL, redis://:PASSWORD@host:port/")
    } else if e.code() == Some("OOM") {
        anyhow::anyhow!(
            "Redis at {at} is out of memory (maxmemory reached, noeviction): it refuses the job's writes. \
             Raise its maxmemory (CONFIG SET maxmemory …) or free memory, then run the same command again: the job resumes where it stopped. ({msg})"
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_of_tag_is_redis_keyslot() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(slot_of_tag("foo"), 12182);
        assert_eq!(slot_of_tag("123456789"), 12739);
    }

    #[test]
    fn cluster_and_sentinel_urls_parse() {
        assert!(Deployment::parse("redis-cluster://u:p@127.0.0.1:7000,127.0.0.1:7001").unwrap().is_cluster());
        let Deployment::Sentinel(s) = Deployment::parse("redis-sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/2#mymaster").unwrap() else {
            panic!("not a sentinel URL")
        };
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.sentinels.len(), 2);
        assert_eq!((s.redis.db, s.redis.password.as_deref()), (2, Some("pw")));
        assert!(s.sentinels.iter().all(|i| i.redis.password.is_none()));
        assert!(Deployment::parse("redis-sentinel://127.0.0.1:26379").is_err(), "a master name is required");
        assert_eq!(redact("redis-cluster://u:secret@h:1,h:2"), "redis-cluster://u:***@h:1,h:2");
    }
}
