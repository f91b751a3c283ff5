//! Jobs on a real Redis Cluster (3 primaries, a replica each, on loopback),
//! with real worker processes, while primaries are killed, failed over and
//! slots migrated. Every count is compared with an independent count.
//!
//! One cluster serves every scenario (creating one takes seconds), so they
//! run in order in one test; each names itself when it fails.

use std::time::Duration;

use wc_host::protocol::connection::slot_of_tag;
use wc_testkit::*;

/// The id of the job that is running on the cluster (its meta hash says so).
fn running_job(cluster: &RedisCluster) -> String {
    let ids: Vec<String> = cluster
        .keys_by_primary("wc:{*}:meta")
        .into_iter()
        .flat_map(|(_, keys)| keys)
        .filter_map(|k| k.split(['{', '}']).nth(1).map(str::to_string))
        .collect();
    ids.into_iter()
        .find(|id| {
            let node = &cluster.nodes[cluster.primary_of_slot(slot_of_tag(id))];
            redis::cmd("HGET").arg(format!("wc:{{{id}}}:meta")).arg("state").query::<Option<String>>(&mut node.conn()).unwrap().as_deref() == Some("running")
        })
        .expect("a running job")
}

/// Tasks done so far by the jobs on the cluster (every partition's done-set).
fn tasks_done(cluster: &RedisCluster) -> usize {
    cluster
        .primaries()
        .into_iter()
        .map(|i| {
            let node = &cluster.nodes[i];
            node.keys("wc:{*}:done").iter().map(|k| redis::cmd("SCARD").arg(k).query::<usize>(&mut node.conn()).unwrap_or(0)).sum::<usize>()
        })
        .sum()
}

/// Starts a job on the cluster and waits until it has made some progress
/// (and is not finished); its workers are then paused.
fn job_in_progress(cluster: &RedisCluster, data: &str, extra: &[&str]) -> (RunningJob, Vec<u32>) {
    let before = tasks_done(cluster);
    let url = cluster.url();
    let mut args = vec!["--redis", &url, "--split-mb", "0.25", data];
    args.extend(extra);
    let job = spawn_job("words", &args);
    poll_until(120, "progress on the cluster", || tasks_done(cluster) >= before + 3);
    let paused = pause_workers(job.child.id());
    (job, paused)
}

#[test]
fn jobs_on_a_redis_cluster_survive_failovers_and_migrations() {
    let mut cluster = RedisCluster::start(3);
    let (dir, files) = gen_data(16.0, 6, 41);
    let data = dir.path().display().to_string();
    let want = reference_words(&files);

    // 1. Default partitions (4 per primary): every primary holds keys of
    //    the job, the counts are exact and readable as one sorted set.
    let r = run_job_within("words", &["--redis", &cluster.url(), "--split-mb", "0.5", &data], 180);
    assert!(r.status.success(), "default partitions: {}", r.stderr);
    assert_eq!(summary_u64(&r.summary, "partitions"), 12, "{}", r.summary);
    assert_counts_eq(&r.counts, &want);
    let job = r.summary["job"].as_str().unwrap().to_string();
    // Every primary holds the streams of an equal share of the partitions.
    let mut streams_per_primary: Vec<usize> = cluster.keys_by_primary(&format!("wc:{{{job}.*}}:files")).into_iter().map(|(_, keys)| keys.len()).collect();
    streams_per_primary.sort();
    assert_eq!(streams_per_primary, vec![4, 4, 4], "12 partitions spread evenly over 3 primaries");
    let count_key = r.summary["count_key"].as_str().unwrap();
    let node = cluster.primary_of_slot(slot_of_tag(&job));
    let top: Vec<(String, u64)> = redis::cmd("ZREVRANGE").arg(count_key).arg(0).arg(0).arg("WITHSCORES").query(&mut cluster.nodes[node].conn()).unwrap();
    let best = want.values().max().unwrap();
    assert_eq!(top.first().map(|(_, n)| n), Some(best), "the sorted set is one key on the job's slot");

    // 2. One partition and eight give the same counts. A compact set is
    //    not done on a Cluster: asked for, it is published indexed, saying so.
    for p in ["1", "8"] {
        let url = cluster.url();
        let mut args = vec!["--redis", &url, "--split-mb", "0.5", "--partitions", p, &data];
        if p == "8" {
            args.extend(["--set-encoding", "compact"]);
        }
        let r = run_job_within("words", &args, 180);
        assert!(r.status.success(), "--partitions {p}: {}", r.stderr);
        assert_eq!(r.summary["partitions"].to_string(), p);
        assert_counts_eq(&r.counts, &want);
        assert_eq!(r.summary["set_encoding"], "indexed");
        if p == "8" {
            assert!(r.stderr.contains("not done on a Cluster"), "no warning for compact on a Cluster: {}", r.stderr);
        }
    }

    // 3. A primary SIGKILLed mid-job: its replica is promoted; the job
    //    notices, re-submits what the replica lacks, and is exact.
    let (job, paused) = job_in_progress(&cluster, &data, &["--partitions", "6"]);
    let id = running_job(&cluster);
    let victim = cluster.primary_of_slot(slot_of_tag(&cluster.partition_tags(&id)[0]));
    let replica = cluster.replica_of(victim);
    cluster.nodes[victim].kill();
    resume(&paused);
    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "primary killed: {}", r.stderr);
    assert_counts_eq(&r.counts, &want);
    assert!(summary_u64(&r.summary, "redis_restarts") >= 1, "the failover was noticed: {}", r.summary);
    assert_eq!(cluster.nodes[replica].role(), "master");
    cluster.nodes[victim].restart(); // rejoins as a replica
    cluster.wait_healthy(3);

    // 4. A graceful failover (CLUSTER FAILOVER) mid-job, workers running.
    let (job, paused) = job_in_progress(&cluster, &data, &["--partitions", "7"]);
    resume(&paused);
    let primary = cluster.primaries()[0];
    let replica = cluster.replica_of(primary);
    let _: () = redis::cmd("CLUSTER").arg("FAILOVER").query(&mut cluster.nodes[replica].conn()).unwrap();
    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "CLUSTER FAILOVER: {}", r.stderr);
    assert_counts_eq(&r.counts, &want);
    cluster.wait_healthy(3);

    // 5. A partition's slot migrated to another primary mid-job: half of
    //    its keys move while the workers are paused, then they run against
    //    the half-moved slot (ASK for moved keys, TRYAGAIN for commits whose
    //    keys are split) for a while before the migration completes.
    let (job, paused) = job_in_progress(&cluster, &data, &["--partitions", "5"]);
    let id = running_job(&cluster);
    let tag = cluster.partition_tags(&id)[1].clone();
    let slot = slot_of_tag(&tag);
    let from = cluster.primary_of_slot(slot);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let migration = cluster.begin_migration(slot, to);
    let stream = format!("wc:{{{tag}}}:files");
    let moved = migration.move_keys(&cluster, 2);
    assert!(moved > 0, "the partition has keys to move");
    let tryagain_before = error_count(&cluster.nodes[from], "TRYAGAIN") + error_count(&cluster.nodes[to], "TRYAGAIN");
    let done_before = tasks_done(&cluster);
    resume(&paused);
    // Until the clients have met the migration (workers look at other
    // partitions than their own now and then, not before every task) and
    // some tasks are done, for at most 10 s.
    let redirected = || {
        error_count(&cluster.nodes[from], "TRYAGAIN") + error_count(&cluster.nodes[to], "TRYAGAIN") > tryagain_before
            || error_count(&cluster.nodes[from], "ASK") > 0
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(redirected() && tasks_done(&cluster) >= done_before + 3) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let redirected = redirected();
    migration.finish(&cluster);
    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "slot migration: {}", r.stderr);
    assert_counts_eq(&r.counts, &want);
    assert_eq!(cluster.primary_of_slot(slot), to, "the slot moved");
    assert!(cluster.nodes[to].keys(&stream).len() == 1, "the partition's stream is on its new primary");
    assert!(redirected, "clients met the migration (TRYAGAIN or ASK counted by the nodes)");
}

/// How many `code` error replies a node has sent (`INFO errorstats`).
fn error_count(node: &ClusterNode, code: &str) -> u64 {
    let info: redis::InfoDict = redis::cmd("INFO").arg("errorstats").query(&mut node.conn()).unwrap();
    info.get::<String>(&format!("errorstat_{code}"))
        .and_then(|v| v.strip_prefix("count=").and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
