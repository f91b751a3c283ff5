//! `make cluster-demo`: a job on a Redis Cluster (3 primaries + 3 replicas)
//! in a network namespace, the coordinator in another, and workers started by
//! hand in three "host" namespaces, all joined by a bridge. Mid-job one
//! host's link is cut while it holds a task, and a primary is SIGKILLed; the
//! counts are then compared with an independent count of the same files.
//!
//!     sudo cargo run --release -p wc-host --example cluster_demo -- [--mb 96] [--workers-per-host 2]
//!
//! Needs root (network namespaces, `ip netns`). Everything it makes (the
//! namespaces, their links, the Redis nodes and workers) is removed at the
//! end, also on failure.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use wc_testkit::*;

/// A Redis Cluster job with workers on three namespaced hosts, a link cut
/// and a primary killed, checked against an independent count.
#[derive(clap::Parser)]
struct Options {
    /// Size of the generated data, MB.
    #[arg(long, default_value_t = 96.0)]
    mb: f64,
    /// Files the data is generated in.
    #[arg(long, default_value_t = 8)]
    files: usize,
    /// Task size (files above it are split), MB.
    #[arg(long, default_value_t = 0.25)]
    split_mb: f64,
    /// Workers started by hand in each of the three hosts.
    #[arg(long, default_value_t = 2)]
    workers_per_host: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 8)]
    seed: u64,
}

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
const CUT: &str = "h2";

fn main() {
    let o: Options = clap::Parser::parse();
    if let Some(reason) = netns_unavailable() {
        eprintln!("cluster-demo: {reason}; run it as root (sudo make cluster-demo) on Linux with iproute2");
        std::process::exit(2);
    }
    let started = Instant::now();
    let t = || format!("[{:5.1} s]", started.elapsed().as_secs_f64());

    let lab = NetLab::new(&["redis", "coord", "h1", "h2", "h3"]).unwrap_or_else(|e| panic!("cannot make the namespaces: {e}"));
    println!("{} namespaces of lab {} on bridge 10.213.{}.0/24:", t(), lab.name, lab.subnet);
    for h in lab.hosts() {
        println!("          {:6} {:15} ({})", h.label, h.ip, h.netns);
    }
    let mut cluster = RedisCluster::start_in(&lab, "redis", 3);
    let url = cluster.url();
    println!("{} Redis Cluster: primaries {}, replicas {}", t(), addrs(&cluster, true), addrs(&cluster, false));

    let (dir, files) = gen_data(o.mb, o.files, o.seed);
    let want = reference_words(&files);
    println!("{} {} MB in {} files generated; independent count: {} distinct words", t(), o.mb, files.len(), want.len());

    let mut coordinator = lab.command("coord", wc_host_bin());
    coordinator.env_remove("REDIS_URL").env("RUST_LOG", "warn");
    let split = o.split_mb.to_string();
    let data = dir.path().display().to_string();
    let job = spawn_job_with(coordinator, "words", &["--redis", &url, "--split-mb", &split, "--workers", "1", &data]);
    let id = cluster.wait_for_running_job(60);
    println!("{} coordinator in `coord` (1 worker of its own): job {id} on {url}", t());

    let logs = tempfile::tempdir().unwrap();
    let words = plugin("words");
    let mut workers: Vec<HostWorker> = Vec::new();
    for host in HOSTS {
        for i in 0..o.workers_per_host {
            workers.push(HostWorker::start(&lab, host, &format!("{host}-{i}"), &url, &id, &words, logs.path()));
        }
    }
    println!(
        "{} {} workers started by hand: wc-host worker --redis {url} --job {id} --plugin {} --name HOST-i",
        t(),
        workers.len(),
        words.display()
    );

    let total = total_tasks(&cluster, &id);
    poll_until(300, "a quarter of the tasks", || cluster.tasks_done(&id) * 4 >= total.max(4));
    let held = cut_while_holding(&lab, &cluster, &id, &workers, CUT);
    println!("{} link of {CUT} cut while it holds {} task(s): {}", t(), held.len(), held.iter().map(|h| format!("{} ({})", short(&h.task), h.consumer)).collect::<Vec<_>>().join(", "));

    let victim = cluster.node_for(&format!("wc:{{{}}}:files", cluster.partition_tags(&id)[0])).addr();
    let victim_index = cluster.nodes.iter().position(|n| n.addr() == victim).unwrap();
    let replica = cluster.replica_of(victim_index);
    let done_before = cluster.tasks_done(&id);
    cluster.nodes[victim_index].kill();
    let killed_at = Instant::now();
    println!("{} SIGKILL primary {victim} ({done_before} of {total} tasks done); its replica is {}", t(), cluster.nodes[replica].addr());
    poll_until(60, "the replica's promotion", || cluster.nodes[replica].role() == "master");
    println!("{} replica {} promoted after {:.1} s", t(), cluster.nodes[replica].addr(), killed_at.elapsed().as_secs_f64());

    poll_until(120, "the cut host's tasks stolen and counted", || held.iter().all(|h| cluster.task_done(&id, h)));
    println!("{} {CUT}'s task(s) stolen by the other hosts and counted; restoring its link", t());
    lab.restore(CUT);
    let cut_workers = || workers.iter().filter(|w| w.host == CUT);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cut_workers().map(HostWorker::duplicates).sum::<usize>() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("{} {CUT}'s late commit(s) refused by the done-set: {}", t(), cut_workers().map(HostWorker::duplicates).sum::<usize>());

    let r = finish_job_within(job, 600);
    for w in &mut workers {
        if w.wait_within(30).is_none() {
            eprintln!("worker {} still running 30 s after the job; killed", w.name);
        }
    }
    println!("{} job finished (exit {})", t(), r.status);

    let keys: BTreeSet<&String> = want.keys().chain(r.counts.keys()).collect();
    let mismatches = keys.iter().filter(|k| want.get(**k) != r.counts.get(**k)).count();
    let s = &r.summary;
    println!();
    println!("tasks {}, partitions {}, {:.1} MB at {:.1} MB/s", s["tasks"], s["partitions"], s["bytes"].as_f64().unwrap_or(0.0) / 1e6, s["mb_per_second"].as_f64().unwrap_or(0.0));
    println!("failovers/restarts noticed   {}", s["redis_restarts"]);
    println!("tasks re-submitted           {}", s["tasks_resubmitted"]);
    println!("tasks stolen                 {}", s["tasks_stolen"]);
    println!("duplicates suppressed        {} (in the summary; late commits after it are in the workers' logs)", s["duplicates_suppressed"]);
    println!("work by host (commits / steals / suppressed late commits):");
    for host in HOSTS {
        let mine: Vec<&HostWorker> = workers.iter().filter(|w| w.host == host).collect();
        let sum = |f: fn(&HostWorker) -> usize| mine.iter().map(|w| f(w)).sum::<usize>();
        println!("  {host}: {:4} / {} / {}", sum(HostWorker::commits), sum(HostWorker::steals), sum(HostWorker::duplicates));
    }
    let by_hosts: usize = workers.iter().map(HostWorker::commits).sum();
    println!("  coord's own worker: {} (a commit lost with the killed primary is redone, so the hosts' can add up to more than the tasks)", s["tasks"].as_u64().unwrap_or(0).saturating_sub(by_hosts as u64));
    println!();
    println!("{} distinct words, {} in the independent count: {mismatches} mismatches", r.counts.len(), want.len());
    drop(workers);
    drop(cluster);
    drop(lab);
    if mismatches > 0 || !r.status.success() {
        eprintln!("cluster-demo: FAILED ({mismatches} mismatches, exit {}):\n{}", r.status, r.stderr);
        std::process::exit(1);
    }
}

/// The running primaries' (or replicas') addresses.
fn addrs(cluster: &RedisCluster, primaries: bool) -> String {
    let p = cluster.primaries();
    let list: Vec<String> = (0..cluster.nodes.len()).filter(|i| p.contains(i) == primaries).map(|i| cluster.nodes[i].addr()).collect();
    list.join(" ")
}

/// The job's task count, once the coordinator has planned them all.
fn total_tasks(cluster: &RedisCluster, job: &str) -> usize {
    let meta = format!("wc:{{{job}}}:meta");
    let mut total = 0;
    poll_until(120, "the plan", || {
        total = cluster.query_key::<Option<usize>>(&meta, redis::cmd("HGET").arg(&meta).arg("total_tasks")).ok().flatten().unwrap_or(0);
        total > 0
    });
    total
}

fn short(task: &str) -> &str {
    &task[..task.len().min(10)]
}
