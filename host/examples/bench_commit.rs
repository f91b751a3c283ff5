//! `make bench-commit`: how many task commits per second one Redis primary
//! sustains, and the same job on a 3-primary Cluster. Many workers, small
//! tasks (`--split-mb 0.01`: ~10 KB ranges), a cheap plugin (split-space),
//! so that the commit path (claim, commit function, the coordinator merging
//! results) is what is measured. Printed as a table and written to
//! `bench-data/bench-commit.json`.
//!
//!     cargo run --release -p wc-host --example bench_commit -- [--mb 24] [--workers 8] [--runs 2]
//!
//! Two figures per deployment: commits per second of wall time on this
//! machine (workers, coordinator and Redis share its cores, so this is a
//! lower bound), and commits per CPU-second of the busiest primary (what one
//! primary sustains with a core of its own: Redis runs commands on one
//! thread). The counts are checked against an independent count.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use wc_testkit::*;

#[derive(clap::Parser)]
struct Options {
    /// Size of the generated data, MB.
    #[arg(long, default_value_t = 24.0)]
    mb: f64,
    /// Task size, MB.
    #[arg(long, default_value_t = 0.01)]
    split_mb: f64,
    /// Worker processes.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Runs per deployment (the best is kept).
    #[arg(long, default_value_t = 2)]
    runs: usize,
}

#[derive(Serialize, Clone)]
struct Row {
    deployment: String,
    primaries: usize,
    partitions: u64,
    workers: usize,
    tasks: u64,
    task_kb: f64,
    /// The whole job, start to exit.
    wall_seconds: f64,
    /// Tasks committed per second between 10 % and 90 % of the job.
    commits_per_second: f64,
    /// The steady window (10 % to 90 % of the tasks), and each primary's
    /// CPU seconds in it.
    window_seconds: f64,
    window_primary_cpu_seconds: Vec<f64>,
    /// CPU seconds of each primary during the whole job (the final reduce
    /// included, on the primary of the job's own slot).
    primary_cpu_seconds: Vec<f64>,
    /// Tasks committed on each primary (its partitions' done-sets).
    primary_tasks: Vec<u64>,
    /// In the window, min over primaries of tasks committed / CPU seconds:
    /// one primary's ceiling (Redis runs commands on one thread).
    commits_per_primary_cpu_second: f64,
    /// Tasks committed in the window / the busiest primary's CPU seconds
    /// in it: the deployment's ceiling, each primary with a core of its own.
    ceiling_commits_per_second: f64,
    /// Commands the primaries processed per task committed (claims, reads,
    /// steal scans, the commit, the coordinator's polling).
    commands_per_commit: f64,
    /// The same by command (those with at least 0.05 per task).
    calls_per_commit: Vec<(String, f64)>,
    exact: bool,
}

fn main() -> anyhow::Result<()> {
    let o: Options = clap::Parser::parse();
    let busy: Vec<String> = processes_mentioning("rustc").into_iter().map(|p| p.to_string()).collect();
    if !busy.is_empty() {
        eprintln!("warning: rustc is running (pids {}): the figures will be low", busy.join(" "));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let out_dir = root.join("bench-data");
    std::fs::create_dir_all(&out_dir)?;
    let (dir, files) = gen_data(o.mb, 4, 77);
    let want = reference_split_space(&files);
    let data = dir.path().display().to_string();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("{} MB in ~{:.0} KB tasks, split-space, {} workers; machine: {threads} cores", o.mb, o.split_mb * 1024.0, o.workers);

    let mut rows = Vec::new();
    for primaries in [1usize, 3] {
        let mut best: Option<Row> = None;
        for _ in 0..o.runs {
            let row = if primaries == 1 { run_single(&o, &data, &want) } else { run_cluster(&o, &data, &want, primaries) };
            eprintln!("  {} : {:.0} commits/s, {:.0} per primary CPU-second", row.deployment, row.commits_per_second, row.commits_per_primary_cpu_second);
            if best.as_ref().is_none_or(|b| row.commits_per_second > b.commits_per_second) {
                best = Some(row);
            }
        }
        rows.push(best.unwrap());
    }

    println!();
    println!("| deployment | partitions | tasks | job wall s | commits/s (this machine, steady) | primary CPU s in the window | commits per primary CPU-s | ceiling commits/s | commands per commit | exact |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        let cpu: Vec<String> = r.window_primary_cpu_seconds.iter().map(|c| format!("{c:.2}")).collect();
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {:.0} | {:.0} | {:.1} | {} |",
            r.deployment,
            r.partitions,
            r.tasks,
            r.wall_seconds,
            r.commits_per_second,
            cpu.join(" / "),
            r.commits_per_primary_cpu_second,
            r.ceiling_commits_per_second,
            r.commands_per_commit,
            r.exact
        );
    }
    for r in &rows {
        let calls: Vec<String> = r.calls_per_commit.iter().map(|(n, c)| format!("{n} {c:.2}")).collect();
        println!("calls per commit, {}: {}", r.deployment, calls.join(", "));
    }
    let path = out_dir.join("bench-commit.json");
    std::fs::write(&path, serde_json::to_string_pretty(&serde_json::json!({ "mb": o.mb, "split_mb": o.split_mb, "workers": o.workers, "cores": threads, "rows": rows }))?)?;
    println!("\nwritten to {}", path.display());
    anyhow::ensure!(rows.iter().all(|r| r.exact), "counts differ from the independent count");
    Ok(())
}

fn job_args<'a>(url: &'a str, split: &'a str, workers: &'a str, data: &'a str) -> Vec<&'a str> {
    vec!["--redis", url, "--split-mb", split, "--workers", workers, "--checkpoint-interval", "0", data]
}

/// Samples each primary (tasks done in its done-sets, its CPU seconds)
/// while the job (process `pid`) runs, and keeps the window between 10 %
/// and 90 % of the final count (planning, start-up and the final reduce left
/// out): the commit rate in it, and per primary the tasks it committed per
/// CPU-second it used in it (the least of them: the first to saturate).
fn steady_window(pid: u32, conns: &mut [redis::Connection]) -> Steady {
    let started = Instant::now();
    let sample = |conns: &mut [redis::Connection]| -> (f64, Vec<u64>, Vec<f64>) {
        let done = conns.iter_mut().map(|c| scard_sum(c, "wc:{*}:done")).collect();
        let cpu = conns.iter_mut().map(|c| cpu_seconds(c).0).collect();
        (started.elapsed().as_secs_f64(), done, cpu)
    };
    let mut samples = vec![sample(conns)];
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        samples.push(sample(conns));
    }
    let wall = started.elapsed().as_secs_f64();
    let total = |s: &(f64, Vec<u64>, Vec<f64>)| s.1.iter().sum::<u64>();
    let last = total(samples.last().unwrap());
    let at = |fraction: f64| samples.iter().find(|s| total(s) as f64 >= fraction * last as f64).unwrap_or(samples.last().unwrap()).clone();
    let (a, b) = (at(0.1), at(0.9));
    let rate = (total(&b) - total(&a)) as f64 / (b.0 - a.0).max(1e-9);
    let per_cpu = (0..conns.len()).map(|i| (b.1[i] - a.1[i]) as f64 / (b.2[i] - a.2[i]).max(1e-9)).fold(f64::INFINITY, f64::min);
    let window_cpu = (0..conns.len()).map(|i| b.2[i] - a.2[i]).collect();
    let busiest = (0..conns.len()).map(|i| b.2[i] - a.2[i]).fold(0.0, f64::max);
    let ceiling = (total(&b) - total(&a)) as f64 / busiest.max(1e-9);
    Steady { rate, per_cpu, ceiling, window_cpu, window_seconds: b.0 - a.0, wall }
}

struct Steady {
    rate: f64,
    per_cpu: f64,
    ceiling: f64,
    window_cpu: Vec<f64>,
    window_seconds: f64,
    wall: f64,
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
}

/// CPU seconds and commands processed so far by a server.
fn cpu_seconds(conn: &mut redis::Connection) -> (f64, u64) {
    let info: redis::InfoDict = redis::cmd("INFO").arg("all").query(conn).unwrap();
    let cpu = info.get::<f64>("used_cpu_sys").unwrap_or(0.0) + info.get::<f64>("used_cpu_user").unwrap_or(0.0);
    (cpu, info.get::<u64>("total_commands_processed").unwrap_or(0))
}

fn delta(after: (f64, u64), before: (f64, u64)) -> (f64, u64) {
    (after.0 - before.0, after.1 - before.1)
}

/// Calls per command so far (`INFO commandstats`).
fn command_calls(conn: &mut redis::Connection) -> HashMap<String, u64> {
    let text: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// Per task: the commands that cost most calls, summed over servers.
fn calls_per_task(before: &[HashMap<String, u64>], after: &[HashMap<String, u64>], tasks: u64) -> Vec<(String, f64)> {
    let mut sum: HashMap<String, u64> = HashMap::new();
    for (b, a) in before.iter().zip(after) {
        for (name, calls) in a {
            *sum.entry(name.clone()).or_default() += calls - b.get(name).copied().unwrap_or(0);
        }
    }
    let mut v: Vec<(String, f64)> = sum.into_iter().map(|(n, c)| (n, c as f64 / tasks.max(1) as f64)).filter(|(_, c)| *c >= 0.05).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

fn scard_sum(conn: &mut redis::Connection, pattern: &str) -> u64 {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn).unwrap();
    keys.iter().map(|k| redis::cmd("SCARD").arg(k).query::<u64>(conn).unwrap_or(0)).sum()
}

fn run_single(o: &Options, data: &str, want: &HashMap<String, u64>) -> Row {
    let server = RedisServer::start();
    // A replica, as each Cluster primary has: replicating is part of a commit's cost.
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &server.port.to_string()]);
    poll_until(30, "the replica in sync", || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut replica.conn()).unwrap_or_default();
        info.contains("master_link_status:up")
    });
    let (split, workers) = (o.split_mb.to_string(), o.workers.to_string());
    let url = server.url();
    let before = cpu_seconds(&mut server.conn());
    let calls_before = vec![command_calls(&mut server.conn())];
    let job = spawn_job("split-space", &job_args(&url, &split, &workers, data));
    let steady = steady_window(job.child.id(), &mut [server.conn()]);
    let r = finish_job_within(job, 1800);
    let cpu = delta(cpu_seconds(&mut server.conn()), before);
    assert!(r.status.success(), "{}", r.stderr);
    let tasks = summary_u64(&r.summary, "tasks");
    let done = scard_sum(&mut server.conn(), "wc:{*}:done");
    let calls = calls_per_task(&calls_before, &[command_calls(&mut server.conn())], tasks);
    row("one server + replica", 1, &r, o, steady, vec![cpu], vec![done], tasks, want, calls)
}

fn run_cluster(o: &Options, data: &str, want: &HashMap<String, u64>, primaries: usize) -> Row {
    let cluster = RedisCluster::start(primaries);
    let (split, workers) = (o.split_mb.to_string(), o.workers.to_string());
    let url = cluster.url();
    let ps = cluster.primaries();
    let before: Vec<(f64, u64)> = ps.iter().map(|&i| cpu_seconds(&mut cluster.nodes[i].conn())).collect();
    let calls_before: Vec<HashMap<String, u64>> = ps.iter().map(|&i| command_calls(&mut cluster.nodes[i].conn())).collect();
    let job = spawn_job("split-space", &job_args(&url, &split, &workers, data));
    let mut conns: Vec<redis::Connection> = ps.iter().map(|&i| cluster.nodes[i].conn()).collect();
    let steady = steady_window(job.child.id(), &mut conns);
    let r = finish_job_within(job, 1800);
    assert!(r.status.success(), "{}", r.stderr);
    let cpu: Vec<(f64, u64)> = ps.iter().zip(&before).map(|(&i, b)| delta(cpu_seconds(&mut cluster.nodes[i].conn()), *b)).collect();
    let done: Vec<u64> = ps.iter().map(|&i| scard_sum(&mut cluster.nodes[i].conn(), "wc:{*}:done")).collect();
    let tasks = summary_u64(&r.summary, "tasks");
    let calls_after: Vec<HashMap<String, u64>> = ps.iter().map(|&i| command_calls(&mut cluster.nodes[i].conn())).collect();
    let calls = calls_per_task(&calls_before, &calls_after, tasks);
    row(&format!("Cluster, {primaries} primaries + replicas"), primaries, &r, o, steady, cpu, done, tasks, want, calls)
}

#[allow(clippy::too_many_arguments)]
fn row(name: &str, primaries: usize, r: &JobResult, o: &Options, steady: Steady, usage: Vec<(f64, u64)>, done: Vec<u64>, tasks: u64, want: &HashMap<String, u64>, calls: Vec<(String, f64)>) -> Row {
    let cpu: Vec<f64> = usage.iter().map(|u| u.0).collect();
    let commands: u64 = usage.iter().map(|u| u.1).sum();
    Row {
        deployment: name.into(),
        primaries,
        partitions: summary_u64(&r.summary, "partitions"),
        workers: o.workers,
        tasks,
        task_kb: o.mb * 1024.0 / tasks.max(1) as f64,
        wall_seconds: steady.wall,
        commits_per_second: steady.rate,
        window_seconds: steady.window_seconds,
        window_primary_cpu_seconds: steady.window_cpu,
        primary_cpu_seconds: cpu,
        primary_tasks: done,
        commits_per_primary_cpu_second: steady.per_cpu,
        ceiling_commits_per_second: steady.ceiling,
        commands_per_commit: commands as f64 / tasks.max(1) as f64,
        calls_per_commit: calls,
        exact: &r.counts == want,
    }
}
