//! End-to-end jobs against real redis-server processes and real worker
//! processes. Every test compares the job's counts with an independent count
//! of the same files made here.

use wc_host::protocol::{xadd_task, Keys, Task};
use wc_testkit::*;

fn data_arg(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

fn stream_len(conn: &mut redis::Connection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:files").query(conn).unwrap_or_default();
    keys.first().map_or(0, |k| redis::cmd("XLEN").arg(k).query(conn).unwrap_or(0))
}

/// Tasks done so far (0 when the done-set is missing).
fn tasks_done(conn: &mut redis::Connection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:done").query(conn).unwrap_or_default();
    keys.first().map_or(0, |k| redis::cmd("SCARD").arg(k).query(conn).unwrap_or(0))
}

#[test]
fn words_job_counts_exactly_and_the_sorted_set_is_readable() {
    // On a Redis the user gives, the set is indexed unless asked otherwise.
    sorted_set_readable(&[], "indexed", "skiplist");
}

#[test]
fn a_compact_sorted_set_is_as_readable() {
    sorted_set_readable(&["--set-encoding", "compact"], "compact", "listpack");
}

fn sorted_set_readable(args: &[&str], encoding: &str, redis_encoding: &str) {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(4.0, 4, 11);
    let url = redis.url();
    let mut job_args = vec!["--redis", &url];
    job_args.extend_from_slice(args);
    let data = data_arg(&dir);
    job_args.push(&data);
    let r = run_job("words", &job_args);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(r.summary["set_encoding"], encoding);
    let want = reference_words(&files);
    assert_counts_eq(&r.counts, &want);
    assert_eq!(summary_u64(&r.summary, "tokens"), want.values().sum::<u64>());
    assert_eq!(summary_u64(&r.summary, "distinct"), want.len() as u64);
    // The README's promise: ZREVRANGE on the named key shows the counts.
    let key = r.summary["count_key"].as_str().unwrap().to_string();
    let mut conn = redis.conn();
    let top: Vec<(String, f64)> = redis::cmd("ZREVRANGE").arg(&key).arg(0).arg(0).arg("WITHSCORES").query(&mut conn).unwrap();
    let max = want.values().max().unwrap();
    assert_eq!(top[0].1 as u64, *max);
    assert_eq!(want[&top[0].0], *max);
    let held: String = redis::cmd("OBJECT").arg("ENCODING").arg(&key).query(&mut conn).unwrap();
    assert_eq!(held, redis_encoding);
    let limit: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("zset-max-listpack-entries").query(&mut conn).unwrap();
    assert_eq!(limit[1], "128", "the server's limit is put back");
    // The whole set in Redis, not only the --output written from memory.
    let all: Vec<(String, f64)> = redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).arg("WITHSCORES").query(&mut conn).unwrap();
    assert_counts_eq(&all.into_iter().map(|(k, n)| (k, n as u64)).collect(), &want);
    let (some_key, some_count) = want.iter().next().unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE").arg(&key).arg(some_key).query(&mut conn).unwrap();
    assert_eq!(score, Some(*some_count as f64));

    // `wc-host status` and `wc-host top` read the job back from Redis.
    let status = wc_host().args(["status", "--json", "--redis", &redis.url()]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["state"], "finished");
    assert_eq!(status["job"], r.summary["job"]);
    assert_eq!(status["tokens"].as_u64().unwrap(), want.values().sum::<u64>());
    let top = wc_host().args(["top", "--top", "3", "--redis", &redis.url()]).output().unwrap();
    let top = String::from_utf8(top.stdout).unwrap();
    let mut expected: Vec<(&String, &u64)> = want.iter().collect();
    expected.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let lines: Vec<(String, u64)> = top
        .lines()
        .map(|l| {
            let (k, n) = l.rsplit_once(' ').unwrap();
            (k.trim().to_string(), n.parse().unwrap())
        })
        .collect();
    let expected: Vec<(String, u64)> = expected.iter().take(3).map(|(k, n)| (k.to_string(), **n)).collect();
    assert_eq!(lines, expected);
}

#[test]
fn split_space_job_matches_python_split() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(3.0, 3, 12);
    let r = run_job("split-space", &["--redis", &redis.url(), &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_split_space(&files));
}

#[test]
fn one_large_file_is_split_across_workers() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(8.0, 1, 13);
    let r = run_job("words", &["--redis", &redis.url(), "--workers", "3", "--split-mb", "0.5", &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(summary_u64(&r.summary, "tasks") >= 15, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn workers_killed_mid_task_are_respawned_and_nothing_is_lost() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(24.0, 6, 14);
    let job = spawn_job("words", &["--redis", &redis.url(), "--split-mb", "0.5", &data_arg(&dir)]);
    let pid = job.child.id();
    let mut conn = redis.conn();
    let mut kills = 0;
    for round in 1..=2 {
        poll_until(60, "progress", || tasks_done(&mut conn) >= round * 3);
        // Freeze the workers (each is likely mid-task, holding a claim),
        // SIGKILL one, let the others go on: its task must be stolen and
        // the coordinator must start a new worker.
        let paused = pause_workers(pid);
        if let Some(victim) = paused.first() {
            // SAFETY: killing a worker process of our own job.
            unsafe { libc::kill(*victim as i32, libc::SIGKILL) };
            kills += 1;
        }
        resume(&paused[1..]);
    }
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(kills, 2);
    assert!(summary_u64(&r.summary, "worker_respawns") >= 1, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn sleeping_worker_is_robbed_and_its_late_commit_suppressed() {
    sleeping_worker_in_mode("reduce");
}

#[test]
fn sleeping_worker_is_robbed_and_suppressed_in_live_commit_mode() {
    sleeping_worker_in_mode("live");
}

fn sleeping_worker_in_mode(mode: &str) {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(12.0, 4, 15);
    let r = run_job("words", &["--redis", &redis.url(), "--commit-mode", mode, "--workers", "1", "--sleeping-workers", "1", "--split-mb", "0.5", &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(summary_u64(&r.summary, "tasks_stolen") >= 1, "{}", r.summary);
    assert!(summary_u64(&r.summary, "duplicates_suppressed") >= 1, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn crashing_workers_from_config_lose_nothing() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(8.0, 4, 16);
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    std::fs::write(&config, r#"{"N_NORMAL_WORKERS": 1, "N_CRASHING_WORKERS": 2, "N_SLEEPING_WORKERS": 0, "CLAIM_TIMEOUT": 1, "SPLIT_MB": 0.5}"#).unwrap();
    let r = run_job("words", &["--redis", &redis.url(), "--config", config.to_str().unwrap(), &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(summary_u64(&r.summary, "tasks_stolen") >= 2, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn redis_killed_and_restarted_from_its_dump_several_times() {
    redis_restarts_in_mode("reduce");
}

#[test]
fn redis_killed_and_restarted_several_times_in_live_commit_mode() {
    redis_restarts_in_mode("live");
}

fn redis_restarts_in_mode(mode: &str) {
    let mut redis = RedisServer::start();
    let (dir, files) = gen_data(32.0, 8, 17);
    let job = spawn_job("words", &["--redis", &redis.url(), "--commit-mode", mode, "--split-mb", "1", "--checkpoint-interval", "0.2", &data_arg(&dir)]);
    let total = 40; // 32 MiB in ranges of about 1 MiB (checked below)
    // Three SIGKILLs of Redis, each after some progress, each while the
    // workers are mid-job: they are paused around the restart so that the
    // job cannot end before it (the job is faster than the test's timing),
    // then carry on against the restored Redis.
    let mut restarts = 0;
    for round in 1..=3 {
        let mut conn = redis.conn();
        poll_until(60, "progress", || tasks_done(&mut conn) >= round * 4);
        let paused = pause_workers(job.child.id());
        // A checkpoint that started after the pause holds all progress so
        // far: two more completed saves (one may have been running).
        let saves = redis.rdb_saves();
        poll_until(30, "a checkpoint after the pause", || redis.rdb_saves() >= saves + 2);
        redis.kill();
        redis.restart();
        restarts += 1;
        resume(&paused);
        let mut conn = redis.conn();
        if tasks_done(&mut conn) + 4 >= total {
            break;
        }
    }
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(summary_u64(&r.summary, "tasks"), total as u64, "{}", r.summary);
    assert!(restarts >= 2, "{restarts} restarts");
    assert!(summary_u64(&r.summary, "redis_restarts") >= 2, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn restore_from_a_dump_older_than_the_tasks() {
    let mut redis = RedisServer::start();
    redis.save(); // an empty dump: predates every XADD of the job
    let (dir, files) = gen_data(16.0, 8, 18);
    let job = spawn_job("words", &["--redis", &redis.url(), "--workers", "1", "--checkpoint-interval", "0", &data_arg(&dir)]);
    let mut conn = redis.conn();
    poll_until(60, "a first task done", || tasks_done(&mut conn) > 0);
    let paused = pause_workers(job.child.id());
    redis.restart();
    let mut conn = redis.conn();
    assert_eq!(tasks_done(&mut conn), 0, "the restore should have lost the done tasks");
    resume(&paused);
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(summary_u64(&r.summary, "redis_restarts") >= 1, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn the_same_task_submitted_twice_counts_once() {
    same_task_twice_in_mode("reduce");
}

#[test]
fn the_same_task_submitted_twice_counts_once_in_live_commit_mode() {
    same_task_twice_in_mode("live");
}

fn same_task_twice_in_mode(mode: &str) {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(16.0, 16, 19);
    let job = spawn_job("words", &["--redis", &redis.url(), "--commit-mode", mode, "--workers", "1", &data_arg(&dir)]);
    let mut conn = redis.conn();
    poll_until(60, "tasks in the stream", || stream_len(&mut conn) > 2 && !workers_of(job.child.id()).is_empty());
    let paused = pause_workers(job.child.id());
    let stream: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:files").query(&mut conn).unwrap();
    // A consumer of the test's own takes every entry not yet delivered and
    // then vanishes; the tasks are submitted a second time, all but the
    // last. The worker counts the copies, then steals the originals once
    // they idle past the claim timeout: every original but the last is a
    // duplicate, and the last one keeps the job open until they are seen.
    let taken: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP").arg("workers").arg("vanished")
        .arg("COUNT").arg(1000).arg("STREAMS").arg(&stream[0]).arg(">")
        .query(&mut conn)
        .unwrap();
    let tasks: Vec<Task> = taken.keys.iter().flat_map(|k| &k.ids).map(|e| serde_json::from_str(&e.get::<String>("spec").unwrap()).unwrap()).collect();
    assert!(tasks.len() > 2, "{} entries taken", tasks.len());
    let job_id = stream[0].split(['{', '}']).nth(1).unwrap();
    let keys = Keys::named(job_id, "files", "count", "fname", 1);
    assert_eq!(keys.partitions[0].stream, stream[0]);
    for task in &tasks[..tasks.len() - 1] {
        let _: String = xadd_task(&mut conn, &keys, task).unwrap();
    }
    resume(&paused);
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(summary_u64(&r.summary, "duplicates_suppressed") >= 1, "{}", r.summary);
    assert!(summary_u64(&r.summary, "tasks_stolen") >= 2, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn consumer_group_destroyed_and_recreated_mid_job() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(16.0, 16, 20);
    let job = spawn_job("words", &["--redis", &redis.url(), "--workers", "1", &data_arg(&dir)]);
    let mut conn = redis.conn();
    poll_until(60, "a first task done", || tasks_done(&mut conn) > 0);
    let paused = pause_workers(job.child.id());
    let stream: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:files").query(&mut conn).unwrap();
    let _: i64 = redis::cmd("XGROUP").arg("DESTROY").arg(&stream[0]).arg("workers").query(&mut conn).unwrap();
    // Recreated at `$`: the entries already in the stream are never delivered
    // to it; the coordinator must notice and submit those tasks again.
    let _: String = redis::cmd("XGROUP").arg("CREATE").arg(&stream[0]).arg("workers").arg("$").query(&mut conn).unwrap();
    resume(&paused);
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn a_file_without_the_text_column_is_dead_lettered_and_the_rest_counts() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(2.0, 2, 21);
    std::fs::write(dir.path().join("bad.csv"), "a,b,c\n1,2,3\n").unwrap();
    let r = run_job("words", &["--redis", &redis.url(), &data_arg(&dir)]);
    assert_eq!(r.status.code(), Some(1), "dead letters make the exit status 1: {}", r.stderr);
    let dead = r.summary["dead_lettered"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{}", r.summary);
    assert!(dead[0]["file"].as_str().unwrap().ends_with("bad.csv"));
    assert!(dead[0]["error"].as_str().unwrap().contains("no column named `text`"), "{}", dead[0]);
    assert_eq!(summary_u64(&r.summary, "retries"), 2, "3 attempts = 2 retries");
    assert_counts_eq(&r.counts, &reference_words(&files));
}

#[test]
fn managed_redis_is_started_used_and_stopped_and_a_rerun_gives_the_same_answer() {
    let data_dir = tempfile::tempdir().unwrap();
    let (dir, files) = gen_data(64.0, 16, 22);
    let dd = data_dir.path().display().to_string();
    let r = run_job("words", &["--data-dir", &dd, "--workers", "1", "--checkpoint-interval", "0.2", "--chaos-redis-restart", "0.25", &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    let want = reference_words(&files);
    assert_counts_eq(&r.counts, &want);
    assert_eq!(r.summary["set_encoding"], "compact", "the managed Redis's set is compact");
    assert!(summary_u64(&r.summary, "redis_restarts") >= 1, "{}", r.summary);
    assert!(redis_servers_in(data_dir.path()).is_empty(), "a managed redis-server is still running");
    assert!(!r.summary["redis"].as_str().unwrap().contains(&std::fs::read_to_string(data_dir.path().join("redis.pass")).unwrap()), "password leaked in the summary");
    // Same job again: found finished in the managed Redis's dump, same answer.
    let again = run_job("words", &["--data-dir", &dd, &data_arg(&dir)]);
    assert!(again.status.success(), "{}", again.stderr);
    assert_eq!(again.summary["resumed"], true);
    assert_eq!(again.summary["job"], r.summary["job"]);
    assert_counts_eq(&again.counts, &want);
    assert!(redis_servers_in(data_dir.path()).is_empty());
}

#[test]
fn managed_redis_with_an_append_only_file_survives_chaos_restarts() {
    let data_dir = tempfile::tempdir().unwrap();
    let (dir, files) = gen_data(192.0, 16, 23);
    let dd = data_dir.path().display().to_string();
    let r = run_job("words", &["--data-dir", &dd, "--workers", "1", "--durability", "aof", "--checkpoint-interval", "0", "--chaos-redis-restart", "0.25", &data_arg(&dir)]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(summary_u64(&r.summary, "redis_restarts") >= 1, "{}", r.summary);
    assert_counts_eq(&r.counts, &reference_words(&files));
    let aof = data_dir.path().join("appendonlydir");
    assert!(aof.is_dir(), "the append-only file is in the data directory");
    assert!(redis_servers_in(data_dir.path()).is_empty());
}

#[test]
fn a_coordinator_killed_mid_job_is_resumed_by_running_it_again() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(24.0, 24, 24);
    let args = ["--redis", &redis.url(), "--workers", "1", &data_arg(&dir)];
    let mut first = spawn_job("words", &args);
    let mut conn = redis.conn();
    poll_until(60, "progress", || tasks_done(&mut conn) >= 3);
    let workers = workers_of(first.child.id());
    first.child.kill().unwrap(); // SIGKILL: no summary, no cleanup
    first.child.wait().unwrap();
    // Its workers die with it (parent-death signal), holding whatever they claimed.
    poll_until(10, "the workers to die", || workers.iter().all(|w| !std::path::Path::new(&format!("/proc/{w}")).exists()));
    let done_before = tasks_done(&mut conn);
    assert!(done_before < 24, "the first run finished before it could be killed");
    let again = run_job("words", &args);
    assert!(again.status.success(), "{}", again.stderr);
    assert_eq!(again.summary["resumed"], true);
    assert_counts_eq(&again.counts, &reference_words(&files));
}

/// A rebuilt plugin makes a new job over the same files; it is said, with
/// both builds' hashes, instead of a silently new job id.
#[test]
fn a_new_job_after_a_plugin_rebuild_says_it_counts_from_zero() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(1.0, 2, 16);
    let old_build = workspace_root().join("host/tests/fixtures/split-space-wit-0.1.0.wasm");
    let first = run_job(old_build.to_str().unwrap(), &["--redis", &redis.url(), &data_arg(&dir)]);
    assert!(first.status.success(), "{}", first.stderr);
    let second = run_job("split-space", &["--redis", &redis.url(), &data_arg(&dir)]);
    assert!(second.status.success(), "{}", second.stderr);
    let first_job = first.summary["job"].as_str().unwrap();
    assert_ne!(first_job, second.summary["job"].as_str().unwrap());
    assert!(
        second.stderr.contains("is a new job and counts from zero") && second.stderr.contains(&format!("the last job over the same files, {first_job}, used another build of plugin split-space")),
        "{}",
        second.stderr
    );
    assert_counts_eq(&second.counts, &reference_split_space(&files));
    // The same command again resumes nothing new and says nothing of the kind.
    let third = run_job("split-space", &["--redis", &redis.url(), &data_arg(&dir)]);
    assert!(third.status.success() && !third.stderr.contains("counts from zero"), "{}", third.stderr);
}
