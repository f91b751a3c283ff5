//! Workers on several hosts: a Redis Cluster in one network namespace, the
//! coordinator in another, and `wc-host worker` processes started by hand in
//! three "host" namespaces, all joined by a bridge (testkit's `NetLab`).
//! One host's link is cut mid-job while it holds a task: the task is stolen
//! after the claim timeout, and when the link returns the host's late commit
//! is refused by the done-set. Every count is compared with an independent
//! count.
//!
//! Needs root and `ip netns`; skipped otherwise, except under `CI=true` as
//! root, where it fails instead.

use wc_testkit::*;

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
const WORKERS_PER_HOST: usize = 2;

/// The lab, or `None` (with a message) when this machine cannot make one.
fn lab_or_skip(test: &str, labels: &[&str]) -> Option<NetLab> {
    match NetLab::new(labels) {
        Ok(lab) => Some(lab),
        Err(reason) if netns_required() => panic!("{test}: CI=true as root, but no network namespace lab: {reason}"),
        Err(reason) => {
            eprintln!("SKIPPED hosts::{test}: {reason} (it needs root and `ip netns`)");
            None
        }
    }
}

#[test]
fn workers_on_three_hosts_stay_exact_when_one_is_cut_off() {
    let test = "workers_on_three_hosts_stay_exact_when_one_is_cut_off";
    let Some(lab) = lab_or_skip(test, &["redis", "coord", "h1", "h2", "h3"]) else { return };
    let cluster = RedisCluster::start_in(&lab, "redis", 3);
    let (dir, files) = gen_data(48.0, 8, 43);
    let data = dir.path().display().to_string();
    let want = reference_words(&files);
    let url = cluster.url();
    assert!(url.contains(&lab.host("redis").ip), "the seeds are the namespace's address: {url}");

    // The coordinator in its own namespace, with one worker of its own
    // (at least one is required); the rest of the work is done by hand-started
    // workers in the three hosts.
    let mut coordinator = lab.command("coord", wc_host_bin());
    coordinator.env_remove("REDIS_URL").env("RUST_LOG", "warn");
    let job = spawn_job_with(coordinator, "words", &["--redis", &url, "--split-mb", "0.2", "--workers", "1", &data]);
    let id = cluster.wait_for_running_job(60);
    let logs = tempfile::tempdir().unwrap();
    let words = plugin("words");
    let mut workers: Vec<HostWorker> = HOSTS
        .iter()
        .flat_map(|host| (0..WORKERS_PER_HOST).map(move |i| (host, i)))
        .map(|(host, i)| HostWorker::start(&lab, host, &format!("{host}-{i}"), &url, &id, &words, logs.path()))
        .collect();
    let commits_of = |workers: &[HostWorker], host: &str| workers.iter().filter(|w| w.host == host).map(HostWorker::commits).sum::<usize>();
    poll_until(120, "a commit from every host", || HOSTS.iter().all(|h| commits_of(&workers, h) > 0));

    // h2 cut off while one of its workers holds a task.
    let held = cut_while_holding(&lab, &cluster, &id, &workers, "h2");
    poll_until(120, "h2's tasks stolen and counted by the others while its link is down", || held.iter().all(|h| cluster.task_done(&id, h)));
    lab.restore("h2");
    // A worker whose link was cut reconnects with backoff through a Cluster
    // client that tries each seed in turn: slow on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    while !workers.iter().filter(|w| w.host == "h2").any(|w| w.duplicates() > 0) {
        if std::time::Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().filter(|w| w.host == "h2").map(|w| format!("--- {}:\n{}", w.name, w.log_text())).collect();
            panic!("timed out waiting for h2's late commit refused by the done-set (held {held:?}); h2's logs:\n{}", logs.join("\n"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let r = finish_job_within(job, 180);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &want);
    assert!(summary_u64(&r.summary, "tasks_stolen") >= held.len() as u64, "{}", r.summary);
    for w in &mut workers {
        let status = w.wait_within(30);
        assert!(status.is_some_and(|s| s.success()), "{} did not exit cleanly once the job was finished ({status:?}):\n{}", w.name, w.log_text());
    }
    let per_host: Vec<String> = HOSTS
        .iter()
        .map(|h| {
            let mine = || workers.iter().filter(move |w| w.host == *h);
            let sum = |f: fn(&HostWorker) -> usize| mine().map(f).sum::<usize>();
            format!("{h}: {} commits, {} steals, {} suppressed", sum(HostWorker::commits), sum(HostWorker::steals), sum(HostWorker::duplicates))
        })
        .collect();
    eprintln!("{} tasks held by h2 when cut; {}; summary: stolen {}", held.len(), per_host.join("; "), r.summary["tasks_stolen"]);
    let consumers = cluster.consumers(&id);
    for host in HOSTS {
        assert!(commits_of(&workers, host) > 0, "{host} did no work");
        assert!(consumers.iter().any(|c| c.starts_with(&format!("{host}-"))), "{host} is not a consumer of the job: {consumers:?}");
    }
}
