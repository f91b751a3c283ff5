//! Security of a job's Redis: passwords and ACL users in the URL, a clear
//! and quick error for wrong credentials or missing permissions, the managed
//! Redis bound to loopback with a password, and workers refusing a plugin
//! that is not the job's.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use wc_testkit::*;

fn data_arg(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

/// The ACL rules of a wc-host user: its keys (`wc:*`, every job key and
/// `wc:latest-job`) and exactly the commands the coordinator, the workers,
/// `status`/`top` and the Redis Functions (which run as the calling user)
/// issue. The README's line is
/// `ACL SETUSER wcuser on >PASSWORD ` followed by these rules.
const ACL_RULES: &str = "resetkeys ~wc:* resetchannels -@all \
    +function|load +fcall +info +bgsave +client|setinfo \
    +get +set +del +unlink +rename +restore \
    +hget +hmget +hgetall +hkeys +hset +hsetnx +hincrby +hdel +expire \
    +sadd +srem +sismember +smismember \
    +zadd +zincrby +zcard +zrevrange +zrevrangebyscore +zscan \
    +xadd +xrange +xpending +xgroup|create +xinfo|groups +xreadgroup +xautoclaim +xclaim +xack +xdel";

/// A coarser alternative that survives new data commands in wc-host:
/// all of @read/@write/@scripting on `wc:*` but nothing @dangerous, plus the
/// three @dangerous commands wc-host uses (INFO for Redis's run id, BGSAVE for
/// checkpoints, RESTORE to load the final sorted set fast; without it the
/// sorted set is written with ZADD, more slowly).
const ACL_RULES_BY_CATEGORY: &str =
    "resetkeys ~wc:* resetchannels -@all +@read +@write +@scripting +@connection -@dangerous +info +bgsave +restore";

/// Creates `user`. A `+command` this server does not know is left out
/// (`CLIENT SETINFO`, which redis-rs sends at connection and ignores the
/// reply of, exists from Redis 7.2 on; older servers reject the rule).
fn set_user(redis: &RedisServer, user: &str, password: &str, rules: &str) {
    let mut conn = redis.conn();
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(user).arg("reset").arg("on").arg(format!(">{password}"));
    for rule in rules.split_whitespace() {
        if let Some(command) = rule.strip_prefix('+').filter(|c| !c.starts_with('@')) {
            let info: Vec<redis::Value> = redis::cmd("COMMAND").arg("INFO").arg(command).query(&mut conn).unwrap();
            if matches!(info.first(), None | Some(redis::Value::Nil)) {
                continue;
            }
        }
        cmd.arg(rule);
    }
    let _: () = cmd.query(&mut conn).unwrap();
}

/// `ACL LOG` entries (every command or key an ACL user was denied, also
/// inside functions and with errors ignored by the caller).
fn acl_log(redis: &RedisServer) -> Vec<String> {
    let mut conn = redis.conn();
    let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(&mut conn).unwrap();
    log.iter().map(|entry| format!("{entry:?}")).collect()
}

/// `run_job`, but a job still running after `secs` is killed and fails the
/// test (with the ACL log of `redis`, which says what was denied).
fn run_job_within(redis: &RedisServer, plugin_name: &str, args: &[&str], secs: u64) -> JobResult {
    let mut job = spawn_job(plugin_name, args);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while job.child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = job.child.kill();
            let _ = job.child.wait();
            panic!("the job hung for {secs} s; ACL log:\n{}", acl_log(redis).join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    finish_job(job)
}

/// Runs a spawned job to the end, or kills it after `secs`.
fn finish_within(mut job: RunningJob, secs: u64) -> Option<(std::process::ExitStatus, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while job.child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = job.child.kill();
            let _ = job.child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = job.child.wait_with_output().unwrap();
    Some((out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[test]
fn password_in_the_url_works_and_counts_exactly() {
    let password = "s3cret-Pw_42";
    let redis = RedisServer::start_with(&["--requirepass", password]);
    let (dir, files) = gen_data(3.0, 3, 31);
    let url = redis.url_with(&format!(":{password}"));
    let r = run_job("words", &["--redis", &url, "--split-mb", "0.5", &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let summary = r.summary.to_string();
    assert!(!summary.contains(password), "the password leaked into the summary: {summary}");
    assert!(!r.stderr.contains(password), "the password leaked on stderr: {}", r.stderr);
    // The counts are there for a client with the password.
    let mut conn = connect(&url);
    let key = r.summary["count_key"].as_str().unwrap();
    let distinct: u64 = redis::cmd("ZCARD").arg(key).query(&mut conn).unwrap();
    assert_eq!(distinct, summary_u64(&r.summary, "distinct"));
}

/// A whole job (and a `--fresh` rerun, and `status`) as an ACL user limited
/// to `wc:*` and the listed commands: exact counts and no denial at all in
/// Redis's ACL log (a denied XACK inside a function, or a denied BGSAVE,
/// would not fail the job but would show there).
fn job_as_acl_user(rules: &str, seed: u64) {
    let redis = RedisServer::start();
    set_user(&redis, "wcuser", "pw-of-wcuser", rules);
    let url = redis.url_with("wcuser:pw-of-wcuser");
    let (dir, files) = gen_data(3.0, 3, seed);
    let want = reference_words(&files);
    // Both commit modes; the rerun of the reduce-mode job (same job id)
    // with --fresh deletes its keys first.
    for args in [&["--commit-mode", "live"][..], &[], &["--fresh"]] {
        let mut all = vec!["--redis", &url, "--split-mb", "0.5", "--checkpoint-interval", "0.2"];
        all.extend_from_slice(args);
        let data = data_arg(&dir);
        all.push(&data);
        let r = run_job_within(&redis, "words", &all, 120);
        assert!(r.status.success(), "{args:?}: {}", r.stderr);
        assert_counts_eq(&r.counts, &want);
    }
    let status = output_within(wc_host().args(["status", "--json", "--redis", &url]), 30).expect("status hung");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["state"], "finished", "{status}");
    let denied = acl_log(&redis);
    assert!(denied.is_empty(), "the ACL user was denied something:\n{}", denied.join("\n"));
    // It really is restricted: other keys and admin commands are refused.
    let mut conn = connect(&url);
    let other: redis::RedisResult<()> = redis::cmd("SET").arg("other:key").arg(1).query(&mut conn);
    assert!(other.unwrap_err().to_string().contains("NOPERM"));
    let flush: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut conn);
    assert!(flush.unwrap_err().to_string().contains("NOPERM"));
}

#[test]
fn acl_user_with_the_minimal_rules_counts_exactly() {
    job_as_acl_user(ACL_RULES, 32);
}

#[test]
fn acl_user_with_the_category_rules_counts_exactly() {
    job_as_acl_user(ACL_RULES_BY_CATEGORY, 33);
}

#[test]
fn acl_user_whose_keys_exclude_the_jobs_fails_quickly_naming_noperm() {
    let redis = RedisServer::start();
    let rules = ACL_RULES.replace("~wc:*", "~other:*");
    set_user(&redis, "wcuser", "pw-of-wcuser", &rules);
    let url = redis.url_with("wcuser:pw-of-wcuser");
    let (dir, _files) = gen_data(1.0, 2, 34);
    let started = Instant::now();
    let job = spawn_job("words", &["--redis", &url, &data_arg(&dir)]);
    let pid = job.child.id();
    let (status, _, stderr) = finish_within(job, 60).expect("the job hung instead of failing on NOPERM");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("NOPERM"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(!stderr.contains("pw-of-wcuser"), "password leaked: {stderr}");
    assert!(workers_of(pid).is_empty());
}

/// A user with access to the keys but without one command wc-host needs:
/// the job must fail with exit 2 and NOPERM, not retry forever.
fn job_lacking(command: &str, seed: u64) {
    let redis = RedisServer::start();
    let rules = ACL_RULES.replace(&format!(" +{command} "), " ");
    assert_ne!(rules, ACL_RULES, "{command} is not in ACL_RULES");
    set_user(&redis, "wcuser", "pw-of-wcuser", &rules);
    let url = redis.url_with("wcuser:pw-of-wcuser");
    let (dir, _files) = gen_data(1.0, 2, seed);
    let job = spawn_job("words", &["--redis", &url, &data_arg(&dir)]);
    let (status, _, stderr) = finish_within(job, 60)
        .unwrap_or_else(|| panic!("without +{command} the job hung instead of failing on NOPERM; ACL log:\n{}", acl_log(&redis).join("\n")));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("NOPERM"), "{stderr}");
}

/// FCALL is the workers' commit: every worker exits on NOPERM.
#[test]
fn acl_user_lacking_a_worker_command_fails_instead_of_hanging() {
    job_lacking("fcall", 35);
}

/// HMGET is the coordinator's merge of result blobs (reduce mode).
#[test]
fn acl_user_lacking_a_coordinator_command_fails_instead_of_hanging() {
    job_lacking("hmget", 39);
}

/// Without BGSAVE the job still counts exactly, but has no checkpoints: a
/// Redis crash then loses everything since Redis's own last save, not at
/// most CHECKPOINT_INTERVAL seconds. The operator should be told.
#[test]
fn acl_user_without_bgsave_is_warned_that_checkpoints_are_off() {
    let redis = RedisServer::start();
    set_user(&redis, "wcuser", "pw-of-wcuser", &ACL_RULES.replace(" +bgsave ", " "));
    let url = redis.url_with("wcuser:pw-of-wcuser");
    // A job shorter than the interval never tries a checkpoint (and risks
    // nothing one would save): a sleeping worker holds a task until it is
    // stolen after the claim timeout, so the job lasts many intervals.
    let (dir, files) = gen_data(12.0, 4, 41);
    let args = ["--redis", &url, "--checkpoint-interval", "0.1", "--workers", "1", "--sleeping-workers", "1", "--split-mb", "0.5", &data_arg(&dir)];
    let r = run_job_within(&redis, "words", &args, 120);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let wall = r.summary["wall_seconds"].as_f64().unwrap();
    assert!(wall > 0.5, "the job took {wall} s: too short for the test");
    assert!(r.stderr.contains("BGSAVE") || r.stderr.contains("checkpoint"), "no warning about checkpoints: {}", r.stderr);
}

#[test]
fn wrong_password_is_a_clear_error_quickly() {
    let redis = RedisServer::start_with(&["--requirepass", "the-right-one"]);
    let (dir, _files) = gen_data(1.0, 1, 36);
    for (userinfo, expect) in [
        (":the-wrong-one", "credentials"),
        ("nosuchuser:the-right-one", "credentials"),
        ("", "requires a password"),
    ] {
        let url = if userinfo.is_empty() { redis.url() } else { redis.url_with(userinfo) };
        let started = Instant::now();
        let job = spawn_job("words", &["--redis", &url, &data_arg(&dir)]);
        let (status, _, stderr) = finish_within(job, 60).unwrap_or_else(|| panic!("{url}: hung"));
        let took = started.elapsed();
        assert_eq!(status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains(expect), "{url}: the message should mention {expect:?}: {stderr}");
        assert!(took < Duration::from_secs(15), "{url}: took {took:?}");
        assert!(!stderr.contains("the-wrong-one") && !stderr.contains("the-right-one"), "password leaked: {stderr}");
    }
    // A hand-started worker says the same, with the exit status that tells
    // a coordinator not to respawn it.
    let out = output_within(
        wc_host().args(["worker", "--job", "0123456789abcdef", "--redis", &redis.url_with(":the-wrong-one")]).arg("--plugin").arg(plugin("words")),
        30,
    )
    .expect("worker hung on a wrong password");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(wc_host::worker::EXIT_REDIS_DENIED), "{stderr}");
    assert!(stderr.contains("credentials"), "{stderr}");
}

#[test]
fn managed_redis_listens_on_loopback_only_and_requires_its_password() {
    let data_dir = tempfile::tempdir().unwrap();
    let dd = data_dir.path().display().to_string();
    let (dir, files) = gen_data(24.0, 4, 37);
    // A sleeping worker stalls 2 × CLAIM_TIMEOUT + 1 s before its first
    // commit, and the coordinator waits for it: the job runs for a while.
    let mut job = spawn_job("words", &["--data-dir", &dd, "--workers", "1", "--sleeping-workers", "1", &data_arg(&dir)]);
    poll_until(120, "the managed redis-server", || !redis_servers_in(data_dir.path()).is_empty());
    assert!(job.child.try_wait().unwrap().is_none(), "the job ended before it could be inspected; use more data");
    let pids = redis_servers_in(data_dir.path());
    assert_eq!(pids.len(), 1, "{pids:?}");
    let addrs = listening_addrs(pids[0]);
    assert!(!addrs.is_empty(), "no listening socket found for redis-server pid {}", pids[0]);
    for addr in &addrs {
        assert_eq!(addr.ip(), std::net::IpAddr::from([127, 0, 0, 1]), "listens on {addr} (all: {addrs:?})");
    }
    let port = addrs[0].port();
    let mut anonymous = connect(&format!("redis://127.0.0.1:{port}/"));
    let ping: redis::RedisResult<String> = redis::cmd("PING").query(&mut anonymous);
    let err = ping.expect_err("an unauthenticated PING was answered");
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    let pass_file = data_dir.path().join("redis.pass");
    let mode = std::fs::metadata(&pass_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "redis.pass has mode {mode:o}");
    let password = std::fs::read_to_string(&pass_file).unwrap().trim().to_string();
    assert!(password.len() >= 32, "a short password: {} chars", password.len());
    let mut authed = connect(&format!("redis://:{password}@127.0.0.1:{port}/"));
    let pong: String = redis::cmd("PING").query(&mut authed).unwrap();
    assert_eq!(pong, "PONG");
    drop((anonymous, authed));
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    assert!(!r.summary.to_string().contains(&password), "password leaked in the summary");
    assert!(redis_servers_in(data_dir.path()).is_empty(), "the managed redis-server is still running");
}

#[test]
fn worker_refuses_a_plugin_whose_hash_differs_from_the_jobs() {
    let redis = RedisServer::start();
    let (dir, _files) = gen_data(1.0, 2, 38);
    let r = run_job("split-space", &["--redis", &redis.url(), &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    let mut conn = redis.conn();
    let job: String = redis::cmd("GET").arg("wc:latest-job").query(&mut conn).unwrap();
    assert_eq!(r.summary["job"].as_str(), Some(job.as_str()));

    let (words, split_space) = (plugin("words"), plugin("split-space"));
    let started = Instant::now();
    let out = output_within(wc_host().args(["worker", "--redis", &redis.url(), "--job", &job]).arg("--plugin").arg(&words), 60)
        .expect("the worker hung instead of refusing the plugin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&sha256_file(&words)), "the message should name the worker's plugin hash: {stderr}");
    assert!(stderr.contains(&sha256_file(&split_space)), "the message should name the job's plugin hash: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());

    // Control: the job's own plugin is accepted (the job is finished, so
    // the worker finds nothing to do and exits 0).
    let out = output_within(wc_host().args(["worker", "--redis", &redis.url(), "--job", &job]).arg("--plugin").arg(&split_space), 60)
        .expect("a worker with the right plugin did not exit on a finished job");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The managed Redis's password must not be in redis-server's argv: any
/// local user can read /proc/PID/cmdline, and Redis only hides its
/// arguments (by rewriting its title) once started. A wrapper named by
/// `WC_REDIS_SERVER` records the arguments it is given.
#[test]
fn managed_redis_password_is_not_on_its_command_line() {
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .expect("redis-server is installed");
    let wrap_dir = tempfile::tempdir().unwrap();
    let argv_file = wrap_dir.path().join("argv");
    let wrapper = wrap_dir.path().join("redis-server");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexec '{}' \"$@\"\n", argv_file.display(), real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let (dir, files) = gen_data(0.5, 1, 40);
    let out_dir = tempfile::tempdir().unwrap();
    let counts = out_dir.path().join("counts.json");
    let out = output_within(
        wc_host()
            .env("WC_REDIS_SERVER", &wrapper)
            .arg("--plugin")
            .arg(plugin("words"))
            .args(["--json", "--quiet", "--data-dir", &data_dir.path().display().to_string(), &data_arg(&dir)])
            .arg("--output")
            .arg(&counts),
        120,
    )
    .expect("the job hung");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: std::collections::HashMap<String, u64> = serde_json::from_str(&std::fs::read_to_string(&counts).unwrap()).unwrap();
    assert_counts_eq(&got, &reference_words(&files));
    let password = std::fs::read_to_string(data_dir.path().join("redis.pass")).unwrap().trim().to_string();
    let argv = std::fs::read_to_string(&argv_file).expect("the wrapper was not used");
    assert!(argv.contains("--port"), "{argv}");
    assert!(!argv.contains(&password), "the password is on redis-server's command line:\n{argv}");
}
