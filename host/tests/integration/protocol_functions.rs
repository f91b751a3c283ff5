//! The Redis Function library, called directly against a real redis-server:
//! the exactly-once gate, parts, validation before writes, and retries.

use redis::Connection;
use wc_host::protocol::{Keys as JobKeys, Patience, Store, FUNCTIONS, GROUP};
use wc_testkit::RedisServer;

/// The keys of a job of one partition, flat, as the Lua functions take them.
struct Keys {
    stream: String,
    counts: String,
    counts_building: String,
    done: String,
    parts: String,
    partcount: String,
    attempts: String,
    dead: String,
    results: String,
    meta: String,
}

fn job_keys() -> JobKeys {
    JobKeys::named("testjob", "files", "count", "fname", 1)
}

fn setup() -> (RedisServer, Connection, Keys) {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(FUNCTIONS).query(&mut conn).unwrap();
    let job = job_keys();
    let p = job.partitions[0].clone();
    assert_eq!(p.stats, job.meta, "one partition: its counters are the job's meta");
    wc_host::protocol::ensure_group(&mut conn, &p.stream).unwrap();
    let keys = Keys {
        stream: p.stream,
        counts: job.counts,
        counts_building: job.counts_building,
        done: p.done,
        parts: p.parts,
        partcount: p.partcount,
        attempts: p.attempts,
        dead: p.dead,
        results: p.results,
        meta: job.meta,
    };
    (redis, conn, keys)
}

/// Adds an entry and reads it into the group, as a worker would.
fn deliver(conn: &mut Connection, keys: &Keys) -> String {
    let id: String = redis::cmd("XADD").arg(&keys.stream).arg("*").arg("task").arg("t").query(conn).unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP").arg("GROUP").arg(GROUP).arg("w1").arg("COUNT").arg(1).arg("STREAMS").arg(&keys.stream).arg(">").query(conn).unwrap();
    id
}

fn commit(conn: &mut Connection, keys: &Keys, entry: &str, task: &str, part: usize, parts: usize, pairs: &[(&str, &str)]) -> redis::RedisResult<i64> {
    let mut cmd = redis::cmd("FCALL");
    cmd.arg("atomic_increment_and_acknowledge").arg(6)
        .arg(&keys.stream).arg(&keys.counts).arg(&keys.done).arg(&keys.parts).arg(&keys.partcount).arg(&keys.meta)
        .arg(GROUP).arg(entry).arg(task).arg(part).arg(parts).arg(10).arg(100).arg(0).arg(0).arg(100);
    for (k, n) in pairs {
        cmd.arg(*k).arg(*n);
    }
    cmd.query(conn)
}

fn score(conn: &mut Connection, keys: &Keys, member: &str) -> Option<f64> {
    redis::cmd("ZSCORE").arg(&keys.counts).arg(member).query(conn).unwrap()
}

fn meta(conn: &mut Connection, keys: &Keys, field: &str) -> i64 {
    let v: Option<i64> = redis::cmd("HGET").arg(&keys.meta).arg(field).query(conn).unwrap();
    v.unwrap_or(0)
}

fn pending(conn: &mut Connection, keys: &Keys) -> i64 {
    let summary: (i64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING").arg(&keys.stream).arg(GROUP).query(conn).unwrap();
    summary.0
}

#[test]
fn a_task_counts_once_however_often_it_is_committed() {
    let (_redis, mut conn, keys) = setup();
    let entry = deliver(&mut conn, &keys);
    assert_eq!(commit(&mut conn, &keys, &entry, "task-a", 0, 1, &[("hello", "2"), ("world", "1")]).unwrap(), 1);
    assert_eq!(pending(&mut conn, &keys), 0, "acked");
    // A stolen copy, a re-submission, a late worker: all the same task id.
    let again = deliver(&mut conn, &keys);
    assert_eq!(commit(&mut conn, &keys, &again, "task-a", 0, 1, &[("hello", "2"), ("world", "1")]).unwrap(), 0);
    assert_eq!(commit(&mut conn, &keys, &entry, "task-a", 0, 1, &[("hello", "2")]).unwrap(), 0);
    assert_eq!(score(&mut conn, &keys, "hello"), Some(2.0));
    assert_eq!(meta(&mut conn, &keys, "duplicates"), 2);
    assert_eq!(meta(&mut conn, &keys, "tokens"), 3);
    assert_eq!(meta(&mut conn, &keys, "rows"), 10, "stats added once");
    assert_eq!(pending(&mut conn, &keys), 0, "the duplicate entry is acked too");
}

#[test]
fn counts_apply_even_when_the_group_was_lost() {
    // XACK returns 0 without error when the group is gone (after a restore):
    // an XACK-only gate would drop these counts.
    let (_redis, mut conn, keys) = setup();
    let entry = deliver(&mut conn, &keys);
    let _: i64 = redis::cmd("XGROUP").arg("DESTROY").arg(&keys.stream).arg(GROUP).query(&mut conn).unwrap();
    assert_eq!(commit(&mut conn, &keys, &entry, "task-b", 0, 1, &[("x", "5")]).unwrap(), 1);
    assert_eq!(score(&mut conn, &keys, "x"), Some(5.0));
}

#[test]
fn a_task_in_parts_is_done_after_its_last_part_and_each_part_counts_once() {
    let (_redis, mut conn, keys) = setup();
    let entry = deliver(&mut conn, &keys);
    assert_eq!(commit(&mut conn, &keys, &entry, "task-c", 0, 2, &[("a", "1")]).unwrap(), 1);
    let done: bool = redis::cmd("SISMEMBER").arg(&keys.done).arg("task-c").query(&mut conn).unwrap();
    assert!(!done);
    assert_eq!(pending(&mut conn, &keys), 1, "not acked before the last part");
    // The worker died; another one redoes the task from part 0.
    assert_eq!(commit(&mut conn, &keys, &entry, "task-c", 0, 2, &[("a", "1")]).unwrap(), 0);
    assert_eq!(commit(&mut conn, &keys, &entry, "task-c", 1, 2, &[("b", "1")]).unwrap(), 1);
    let done: bool = redis::cmd("SISMEMBER").arg(&keys.done).arg("task-c").query(&mut conn).unwrap();
    assert!(done);
    assert_eq!(commit(&mut conn, &keys, &entry, "task-c", 1, 2, &[("b", "1")]).unwrap(), 0);
    assert_eq!((score(&mut conn, &keys, "a"), score(&mut conn, &keys, "b")), (Some(1.0), Some(1.0)));
    assert_eq!(pending(&mut conn, &keys), 0);
    let parts_left: i64 = redis::cmd("SCARD").arg(&keys.parts).query(&mut conn).unwrap();
    assert_eq!(parts_left, 0, "part ids are cleaned up");
}

#[test]
fn a_malformed_commit_writes_nothing() {
    let (_redis, mut conn, keys) = setup();
    let entry = deliver(&mut conn, &keys);
    let err = commit(&mut conn, &keys, &entry, "task-d", 0, 1, &[("good", "1"), ("bad", "x")]).unwrap_err();
    assert!(err.to_string().contains("bad count"), "{err}");
    assert_eq!(score(&mut conn, &keys, "good"), None);
    let done: bool = redis::cmd("SISMEMBER").arg(&keys.done).arg("task-d").query(&mut conn).unwrap();
    assert!(!done, "validation happens before the first write");
    assert!(commit(&mut conn, &keys, &entry, "task-d", 1, 1, &[]).is_err(), "part out of range");
    assert!(commit(&mut conn, &keys, &entry, "task-d", 0, 1, &[("odd", "1"), ("pairs", "0")]).is_err(), "zero count");
}

#[test]
fn a_commit_of_many_keys_does_not_hit_lua_unpack_limits() {
    let (_redis, mut conn, keys) = setup();
    let entry = deliver(&mut conn, &keys);
    let names: Vec<String> = (0..20_000).map(|i| format!("k{i}")).collect();
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    assert_eq!(commit(&mut conn, &keys, &entry, "task-e", 0, 1, &pairs).unwrap(), 1);
    let card: i64 = redis::cmd("ZCARD").arg(&keys.counts).query(&mut conn).unwrap();
    assert_eq!(card, 20_000);
}

#[test]
fn a_failing_task_is_retried_then_dead_lettered() {
    let (_redis, mut conn, keys) = setup();
    let fail = |conn: &mut Connection, entry: &str| -> String {
        redis::cmd("FCALL").arg("wc_fail_task").arg(5)
            .arg(&keys.stream).arg(&keys.done).arg(&keys.attempts).arg(&keys.dead).arg(&keys.meta)
            .arg(GROUP).arg(entry).arg("task-f").arg(3).arg("boom: file x.csv")
            .arg("task").arg("task-f").arg("spec").arg("{}")
            .query(conn).unwrap()
    };
    let mut entry = deliver(&mut conn, &keys);
    assert_eq!(fail(&mut conn, &entry), "retry");
    let len: i64 = redis::cmd("XLEN").arg(&keys.stream).query(&mut conn).unwrap();
    assert_eq!(len, 1, "old entry deleted, a fresh one added");
    let (entries, _): (Vec<(String, Vec<(String, String)>)>, ()) = (redis::cmd("XRANGE").arg(&keys.stream).arg("-").arg("+").query(&mut conn).unwrap(), ());
    entry = entries[0].0.clone();
    assert_eq!(fail(&mut conn, &entry), "retry");
    assert_eq!(fail(&mut conn, &entry), "dead");
    let error: String = redis::cmd("HGET").arg(&keys.dead).arg("task-f").query(&mut conn).unwrap();
    assert_eq!(error, "boom: file x.csv");
    assert_eq!(meta(&mut conn, &keys, "retries"), 2);
    assert_eq!(meta(&mut conn, &keys, "dead"), 1);
}

fn commit_result(conn: &mut Connection, keys: &Keys, entry: &str, task: &str, blob: &[u8]) -> redis::RedisResult<i64> {
    redis::cmd("FCALL").arg("wc_commit_task_result").arg(4)
        .arg(&keys.stream).arg(&keys.done).arg(&keys.results).arg(&keys.meta)
        .arg(GROUP).arg(entry).arg(task).arg(10).arg(100).arg(0).arg(0).arg(100).arg(3).arg(2).arg(blob)
        .query(conn)
}

#[test]
fn a_task_result_is_stored_once_and_published_only_when_complete() {
    let (redis, mut conn, keys) = setup();
    let blob = wc_host::protocol::blob::encode(&[("hello".into(), 2), ("world".into(), 1)]);
    let entry = deliver(&mut conn, &keys);
    assert_eq!(commit_result(&mut conn, &keys, &entry, "task-r", &blob).unwrap(), 1);
    assert_eq!(pending(&mut conn, &keys), 0);
    let other = wc_host::protocol::blob::encode(&[("hello".into(), 99)]);
    assert_eq!(commit_result(&mut conn, &keys, &entry, "task-r", &other).unwrap(), 0, "gated by the done-set");
    let stored: Vec<u8> = redis::cmd("HGET").arg(&keys.results).arg("task-r").query(&mut conn).unwrap();
    assert_eq!(stored, blob, "the first result stays");
    assert_eq!((meta(&mut conn, &keys, "tokens"), meta(&mut conn, &keys, "duplicates")), (3, 1));

    let mut store = Store::new(&redis.url(), job_keys(), Patience::Query).unwrap();
    let _: i64 = redis::cmd("ZADD").arg(&keys.counts_building).arg(2).arg("hello").query(&mut conn).unwrap();
    // A build that lost members (a restart mid-way) is refused, nothing changes.
    assert!(format!("{:#}", store.publish_counts(2).unwrap_err()).contains("rebuild"));
    assert_eq!(score(&mut conn, &keys, "hello"), None);
    let _: i64 = redis::cmd("ZADD").arg(&keys.counts_building).arg(1).arg("world").query(&mut conn).unwrap();
    store.publish_counts(2).unwrap();
    store.drop_results().unwrap();
    assert_eq!((score(&mut conn, &keys, "hello"), score(&mut conn, &keys, "world")), (Some(2.0), Some(1.0)));
    let state: String = redis::cmd("HGET").arg(&keys.meta).arg("state").query(&mut conn).unwrap();
    assert_eq!(state, "finished");
    let results: i64 = redis::cmd("EXISTS").arg(&keys.results).query(&mut conn).unwrap();
    assert_eq!(results, 0, "blobs are dropped once published");
}

/// Members that exercise every listpack entry form: strings of each length
/// class (and each back-length size), strings Redis stores as integers and
/// ones it does not (`-0`, `01`, `+1`, past i64), and counts of each integer
/// width; plus enough members to pass the 16-bit element count.
fn listpack_members() -> Vec<(String, u64)> {
    let mut members: Vec<(String, u64)> = [
        "", "a", "é", "0", "-0", "01", "+1", " 1", "7", "-1", "127", "128", "-4096", "4095", "-4097", "4096", "32767", "-32769", "8388607",
        "-8388609", "2147483647", "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "1e3", "0x10",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| (k.to_string(), [1, 127, 128, 4095, 4096, 32767, 32768, 8_388_607, 8_388_608, 1 << 31, 1 << 40, 1 << 53][i % 12]))
    .collect();
    for len in [63, 64, 126, 127, 4095, 4096, 16_380, 16_400, 2_090_000, 2_100_000] {
        members.push(("x".repeat(len), len as u64));
    }
    for i in 0..40_000u64 {
        members.push((format!("w{:x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20), 1 + i % 5));
    }
    members.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
    members.dedup_by(|a, b| a.0 == b.0);
    members
}

fn zadd_all(conn: &mut Connection, key: &str, members: &[(String, u64)]) {
    for chunk in members.chunks(1000) {
        let pairs: Vec<(u64, &str)> = chunk.iter().map(|(k, n)| (*n, k.as_str())).collect();
        let _: i64 = redis::Cmd::zadd_multiple(key, &pairs).query(conn).unwrap();
    }
}

fn zrange_all(conn: &mut Connection, key: &str) -> Vec<(Vec<u8>, f64)> {
    redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query(conn).unwrap()
}

/// The compact payload is, object for object, what the server itself dumps
/// for the same sorted set held as a listpack (it builds that one with
/// ZUNIONSTORE under raised limits), and it loads back as a listpack with
/// the same members and scores.
#[test]
fn a_compact_payload_is_the_servers_own_listpack_dump() {
    let redis = RedisServer::start_with(&["--rdbcompression", "no", "--proto-max-bulk-len", "1gb"]);
    let mut conn = redis.conn();
    let members = listpack_members();
    zadd_all(&mut conn, "src", &members);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("zset-max-listpack-entries").arg(1_000_000).arg("zset-max-listpack-value").arg(3_000_000).query(&mut conn).unwrap();
    let _: i64 = redis::cmd("ZUNIONSTORE").arg("theirs").arg(1).arg("src").query(&mut conn).unwrap();
    let encoding: String = redis::cmd("OBJECT").arg("ENCODING").arg("theirs").query(&mut conn).unwrap();
    assert_eq!(encoding, "listpack");
    let theirs: Vec<u8> = redis::cmd("DUMP").arg("theirs").query(&mut conn).unwrap();

    let pairs: Vec<(&str, u64)> = members.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    let ours = wc_host::protocol::dump::zset_listpack_payload(&pairs).expect("fits a listpack");
    // The object; the trailer (RDB version, checksum) differs with the version.
    let object = |p: &[u8]| p[..p.len() - 10].to_vec();
    assert!(object(&ours) == object(&theirs), "payloads differ (ours {} bytes, the server's {})", ours.len(), theirs.len());

    let _: () = redis::cmd("RESTORE").arg("ours").arg(0).arg(&ours).query(&mut conn).unwrap();
    let encoding: String = redis::cmd("OBJECT").arg("ENCODING").arg("ours").query(&mut conn).unwrap();
    assert_eq!(encoding, "listpack");
    assert_eq!(zrange_all(&mut conn, "ours"), zrange_all(&mut conn, "src"));
    let score: Option<f64> = redis::cmd("ZSCORE").arg("ours").arg("-4096").query(&mut conn).unwrap();
    assert!(score.is_some(), "a member stored as an integer is found by its text");
}

/// A job's store publishes a compact set as a listpack and puts the
/// server's limits back; an indexed one is a skiplist; both read the same
/// through the report's rank reads; and where CONFIG is refused, compact
/// falls back to indexed.
#[test]
fn a_compact_set_is_published_as_a_listpack_and_the_limits_are_put_back() {
    use wc_host::protocol::SetEncoding;
    let (redis, mut conn, keys) = setup();
    let members = listpack_members();
    let pairs: Vec<(&str, u64)> = members.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    let limits = |conn: &mut Connection| -> Vec<String> {
        redis::cmd("CONFIG").arg("GET").arg("zset-max-listpack-*").query::<std::collections::BTreeMap<String, String>>(conn).unwrap().into_values().collect()
    };
    let before = limits(&mut conn);
    let mut store = Store::new(&redis.url(), job_keys(), Patience::Query).unwrap();
    let mut read_back = Vec::new();
    for (asked, encoding) in [(SetEncoding::Compact, "listpack"), (SetEncoding::Indexed, "skiplist")] {
        let (_, written) = store.write_building_counts(&pairs, asked).unwrap();
        assert_eq!(written, asked);
        store.publish_counts(pairs.len()).unwrap();
        let got: String = redis::cmd("OBJECT").arg("ENCODING").arg(&keys.counts).query(&mut conn).unwrap();
        assert_eq!(got, encoding);
        assert_eq!(limits(&mut conn), before, "the server's listpack limits are as they were");
        let mut expect: Vec<(Vec<u8>, f64)> = pairs.iter().map(|(k, n)| (k.as_bytes().to_vec(), *n as f64)).collect();
        assert_eq!(zrange_all(&mut conn, &keys.counts), std::mem::take(&mut expect));
        let ranks: Vec<u64> = [1, 2, 3, 100, 20_000, 39_999, 40_010, pairs.len() as u64, pairs.len() as u64 + 5].to_vec();
        read_back.push((store.counts_at_ranks(&ranks).unwrap(), store.top_keys(5).unwrap()));
    }
    assert_eq!(read_back[0], read_back[1], "compact and indexed sets read the same");
    let by_rank = &read_back[0].0;
    assert_eq!(by_rank.len(), 8, "ranks past the end are left out");
    assert_eq!(by_rank[0], (1, 1 << 53));
    assert_eq!(by_rank[7], (pairs.len() as u64, 1));

    // A user that may not run CONFIG: the set is published indexed.
    let _: () = redis::cmd("ACL").arg("SETUSER").arg("noconfig").arg("on").arg(">pw").arg("~*").arg("+@all").arg("-config").query(&mut conn).unwrap();
    let url = redis.url().replace("redis://", "redis://noconfig:pw@");
    let mut limited = Store::new(&url, job_keys(), Patience::Query).unwrap();
    let (_, written) = limited.write_building_counts(&pairs, SetEncoding::Compact).unwrap();
    assert_eq!(written, SetEncoding::Indexed);
    let got: String = redis::cmd("OBJECT").arg("ENCODING").arg(&keys.counts_building).query(&mut conn).unwrap();
    assert_eq!(got, "skiplist");
}
