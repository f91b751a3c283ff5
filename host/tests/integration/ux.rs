//! What a person sees: the HTML report (opened in a real headless browser),
//! `status` during a job, the progress line on a terminal, and the
//! summary's findings (no false warning for an empty result, a counts hint
//! that works as printed, a re-report labelled with its first timings).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use wc_testkit::*;

fn data_arg(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

/// Tasks done so far (0 when the done-set is missing).
fn tasks_done(conn: &mut redis::Connection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:done").query(conn).unwrap_or_default();
    keys.first().map_or(0, |k| redis::cmd("SCARD").arg(k).query(conn).unwrap_or(0))
}

/// Debian's `chromium`, which `make test` installs (Makefile, target deps).
fn chromium() -> Command {
    let found = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "chromium is not installed: run `make deps` (apt-get install chromium)");
    Command::new("chromium")
}

/// Runs headless chromium on `page` with `args`, its profile in `profile`
/// (a temporary directory of the test, so nothing is left behind).
fn headless(page: &Path, profile: &Path, args: &[String]) -> String {
    let mut cmd = chromium();
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()));
    let done = run_within(&mut cmd, 120);
    assert!(done.status.success(), "chromium failed ({}): {}", done.status, done.stderr);
    done.stdout
}

/// The `data-value` of the element with `data-field="FIELD"` in `dom`.
fn field_value(dom: &str, field: &str) -> u64 {
    let at = dom.find(&format!("data-field=\"{field}\"")).unwrap_or_else(|| panic!("no data-field {field} in the report"));
    let rest = &dom[at..];
    let value = rest.split("data-value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap();
    // The number shown (with thousands separators) is the same.
    let shown: String = rest[rest.find('>').unwrap() + 1..rest.find('<').unwrap()].chars().filter(|c| c.is_ascii_digit()).collect();
    assert_eq!(shown, value, "{field}: shown and data-value differ");
    value.parse().unwrap()
}

/// Checks the report's DOM (as the browser built it) against `summary`.
fn check_report_dom(dom: &str, summary: &Value) {
    for chart in ["top-chart", "zipf-chart", "throughput-chart"] {
        let at = dom.find(&format!("id=\"{chart}\"")).unwrap_or_else(|| panic!("no {chart} in the report"));
        let figure = &dom[at..at + dom[at..].find("</figure>").unwrap()];
        assert!(figure.contains("<svg"), "{chart} has no SVG");
        assert!(figure.matches("<rect").count() + figure.matches("<polyline").count() + figure.matches("<circle").count() > 3, "{chart} is empty");
    }
    for (field, key) in [
        ("tokens", "tokens"),
        ("distinct", "distinct"),
        ("rows", "rows"),
        ("tasks_stolen", "tasks_stolen"),
        ("tasks_resubmitted", "tasks_resubmitted"),
        ("duplicates_suppressed", "duplicates_suppressed"),
        ("redis_restarts", "redis_restarts"),
        ("worker_respawns", "worker_respawns"),
        ("checkpoints_failed", "checkpoints_failed"),
    ] {
        assert_eq!(field_value(dom, field), summary_u64(summary, key), "{field} in the report vs the summary");
    }
    assert_eq!(field_value(dom, "dead_lettered"), summary["dead_lettered"].as_array().unwrap().len() as u64);
    assert!(!dom.contains("<script"), "the report must not run or fetch scripts");
    assert!(!dom.contains("src=\"http") && !dom.contains("href=\"http") && !dom.contains("url(http"), "the report must not fetch anything");
}

#[test]
fn report_of_a_faulty_job_opens_in_a_browser_with_the_summary_numbers() {
    let mut redis = RedisServer::start();
    let (dir, files) = gen_data(24.0, 6, 41);
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("job report.html");
    let job = spawn_job(
        "words",
        &["--redis", &redis.url(), "--split-mb", "0.5", "--checkpoint-interval", "0.2", "--report", report.to_str().unwrap(), &data_arg(&dir)],
    );
    let pid = job.child.id();
    // A worker SIGKILLed mid-task, then Redis SIGKILLed and restarted from
    // a checkpoint, both while the workers are paused (see jobs.rs).
    let mut conn = redis.conn();
    poll_until(60, "progress", || tasks_done(&mut conn) >= 4);
    let paused = pause_workers(pid);
    // SAFETY: killing a worker process of our own job.
    unsafe { libc::kill(paused[0] as i32, libc::SIGKILL) };
    let saves = redis.rdb_saves();
    poll_until(30, "a checkpoint after the pause", || redis.rdb_saves() >= saves + 2);
    redis.kill();
    redis.restart();
    resume(&paused[1..]);
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    assert_counts_eq(&r.counts, &reference_words(&files));
    assert!(summary_u64(&r.summary, "worker_respawns") >= 1, "{}", r.summary);
    assert!(summary_u64(&r.summary, "redis_restarts") >= 1, "{}", r.summary);
    assert_eq!(r.summary["report"].as_str(), Some(report.to_str().unwrap()));

    // In a real browser: a screenshot, and the DOM it built.
    let profile = tempfile::tempdir().unwrap();
    let shot = out.path().join("report.png");
    headless(&report, profile.path(), &[format!("--screenshot={}", shot.display()), "--window-size=1200,2000".into()]);
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a blank screenshot? {} bytes", png.len());
    let dom = headless(&report, profile.path(), &["--dump-dom".into()]);
    check_report_dom(&dom, &r.summary);
    // Every fault is on the timeline: the worker killed and the restart.
    assert!(dom.contains("data-kind=\"worker_died\""), "no worker_died event in the report");
    assert!(dom.contains("data-kind=\"worker_respawned\""), "no worker_respawned event in the report");
    assert!(dom.contains("data-kind=\"redis_restart\""), "no redis_restart event in the report");

    // The same report afterwards, from Redis alone, on another "machine".
    let later = out.path().join("later.html");
    let done = run_within(wc_host().args(["report", "--redis", &redis.url(), "-o", later.to_str().unwrap()]), 60);
    assert!(done.status.success(), "{}", done.stderr);
    let dom = headless(&later, profile.path(), &["--dump-dom".into()]);
    check_report_dom(&dom, &r.summary);
}

#[test]
fn status_json_during_a_running_job_has_consistent_totals() {
    let redis = RedisServer::start();
    let (dir, _files) = gen_data(24.0, 4, 42);
    // A sleeping worker keeps the job running a few seconds past the work.
    let job = spawn_job("words", &["--redis", &redis.url(), "--split-mb", "0.5", "--sleeping-workers", "1", &data_arg(&dir)]);
    let mut seen: Option<Value> = None;
    poll_until(90, "status while running with progress", || {
        let Some(out) = output_within(wc_host().args(["status", "--json", "--redis", &redis.url()]), 20) else { return false };
        let Ok(status) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
        let running = status["state"] == "running";
        if running && status["tasks_done"].as_u64().unwrap_or(0) >= 2 && status["distinct"].as_u64().unwrap_or(0) > 0 && !status["workers"].as_array().unwrap().is_empty() {
            seen = Some(status);
            return true;
        }
        false
    });
    let status = seen.unwrap();
    let n = |f: &str| status[f].as_u64().unwrap_or_else(|| panic!("status has no {f}: {status}"));
    assert!(n("tasks") > 0 && n("tasks_done") <= n("tasks"), "{status}");
    assert!(n("bytes") > 0 && n("bytes_done") > 0 && n("bytes_done") <= n("bytes"), "{status}");
    assert!(n("tokens") > 0, "{status}");
    let percent = status["percent"].as_f64().unwrap();
    assert!(percent > 0.0 && percent <= 100.0, "{status}");
    assert!(status["elapsed_seconds"].as_f64().unwrap() > 0.0, "{status}");
    assert!(status["mb_per_second"].as_f64().unwrap() > 0.0, "{status}");
    for w in status["workers"].as_array().unwrap() {
        assert!(w["pid"].as_u64().unwrap() > 0 && !w["host"].as_str().unwrap().is_empty(), "{status}");
    }
    // The human view in units a person reads.
    let text = output_within(wc_host().args(["status", "--redis", &redis.url()]), 20).expect("status hung");
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    for part in ["MB/s", "%", "elapsed", "ETA", "workers", "faults"] {
        assert!(text.contains(part), "no {part} in:\n{text}");
    }
    let r = finish_job(job);
    assert!(r.status.success(), "{}", r.stderr);
    let done = output_within(wc_host().args(["status", "--json", "--redis", &redis.url()]), 20).expect("status hung");
    let done: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(done["tasks"], r.summary["tasks"], "{done}");
    assert_eq!(done["distinct"], r.summary["distinct"], "{done}");
    assert_eq!(done["percent"].as_f64(), Some(100.0), "{done}");
    // --watch stops by itself once the job is finished.
    let watch = output_within(wc_host().args(["status", "--watch", "--redis", &redis.url()]), 20).expect("status --watch did not stop on a finished job");
    assert!(watch.status.success());
}

/// Strips ANSI escape sequences (CSI ... letter).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn progress_line_on_a_terminal_keeps_log_lines_above_it() {
    let (dir, _files) = gen_data(16.0, 4, 43);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let data_dir = work.path().join("wc-data");
    let transcript = work.path().join("tty.out");
    // Workers that crash and stall make log lines (relayed from the
    // workers) appear while the bar is on screen.
    let command = format!(
        "stty cols 200 rows 40; exec '{}' --config '{}' --plugin '{}' --data-dir '{}' --split-mb 0.5 --workers 2 --crashing-workers 1 --sleeping-workers 1 --claim-timeout 1 --checkpoint-interval 0.5 '{}'",
        wc_host_bin().display(),
        config.display(),
        plugin("words").display(),
        data_dir.display(),
        data_arg(&dir)
    );
    let mut script = Command::new("script");
    script.args(["-qfec", &command]).arg(&transcript).env_remove("REDIS_URL").env("RUST_LOG", "info").env("TERM", "xterm-256color");
    let done = run_within(&mut script, 180);
    assert!(done.status.success(), "{}\n{}", done.stderr, done.stdout);
    let raw = std::fs::read_to_string(&transcript).unwrap();
    let text = strip_ansi(&raw);
    // What a terminal shows of each line: what follows its last carriage return.
    let visible: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).map(|l| l.rsplit('\r').next().unwrap_or(l)).collect();
    let is_log = |l: &str| l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR ");
    let is_bar = |l: &str| l.contains(" MB/s · tasks ");
    // The bar was drawn, and log lines were printed while it was.
    assert!(text.contains(" MB/s · tasks "), "no progress line:\n{text}");
    let first_bar = text.find(" MB/s · tasks ").unwrap();
    assert!(is_log(&text[first_bar..]), "no log line while the bar was on screen:\n{text}");
    for segment in text.split('\n') {
        // A log line written through the bar shares its line with bar text.
        let pieces: Vec<&str> = segment.split('\r').filter(|p| !p.trim().is_empty()).collect();
        for piece in &pieces {
            assert!(!(is_log(piece) && is_bar(piece)), "a log line through the progress line: {piece:?}");
        }
    }
    for line in visible.iter().filter(|l| is_log(l)) {
        assert!(!is_bar(line), "a log line through the progress line: {line:?}");
    }
    // Planner chatter is at debug; the summary and the report's path end it.
    assert!(!text.contains("submitting"), "planner chatter at info:\n{text}");
    assert!(text.contains("distinct keys"), "no summary:\n{text}");
    let report = data_dir.join("report.html");
    assert!(text.contains(&format!("report: {}", report.display())), "no report path:\n{text}");
    assert!(report.is_file());
    assert!(text.contains("faults: "), "{text}");
}

/// A CSV in the shape of the twcs data with the given texts.
fn csv_with_texts(dir: &Path, texts: &[&str]) -> PathBuf {
    let path = dir.join("t.csv");
    let mut body = String::from("tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n");
    for (i, t) in texts.iter().enumerate() {
        body.push_str(&format!("{i},a{i},True,Tue Oct 31 22:10:47 +0000 2017,{t},,\n"));
    }
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn a_job_whose_every_key_is_filtered_out_warns_about_nothing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    csv_with_texts(dir.path(), &["no tags here", "nor here at all", "plain words only"]);
    let mut job = wc_host();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let report = out.path().join("empty.html");
    job.arg("--config").arg(&config).arg("--plugin").arg(plugin("hashtags")).arg("--report").arg(&report).args(["--json", "--redis", &redis.url(), &data_arg(&dir)]);
    let done = run_within(&mut job, 60);
    assert!(done.status.success(), "{}", done.stderr);
    let summary: Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(summary_u64(&summary, "distinct"), 0, "{summary}");
    assert_eq!(summary_u64(&summary, "tokens"), 0, "{summary}");
    assert!(!done.stderr.contains("WARN") && !done.stderr.contains("RESTORE"), "a warning for an empty result:\n{}", done.stderr);
    // Its report says so instead of drawing empty charts.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("No keys: the result is empty."), "{html}");
}

#[test]
fn a_finished_job_is_reported_again_with_its_first_timings_and_a_hint_that_works() {
    let (dir, _files) = gen_data(3.0, 2, 44);
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("wc-data");
    let config = work.path().join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let run = |json: bool| {
        let mut cmd = wc_host();
        cmd.arg("--config").arg(&config).arg("--plugin").arg(plugin("words")).arg("--data-dir").arg(&data_dir).arg(data_arg(&dir));
        if json {
            cmd.arg("--json");
        }
        let done = run_within(&mut cmd, 120);
        assert!(done.status.success(), "{}", done.stderr);
        done.stdout
    };
    let first: Value = serde_json::from_str(&run(true)).unwrap();
    assert_eq!(first["reported_again"], false);
    let again: Value = serde_json::from_str(&run(true)).unwrap();
    assert_eq!(again["reported_again"], true, "{again}");
    assert_eq!(first["set_encoding"], "compact", "the managed Redis's set is compact");
    assert!(again["set_encoding"].is_null(), "a re-report published nothing: {again}");
    assert_eq!(again["wall_seconds"], first["wall_seconds"], "the re-report must show the first run's wall time");
    assert_eq!(again["mb_per_second"], first["mb_per_second"]);
    for field in ["tokens", "distinct", "tasks_stolen", "redis_restarts", "worker_respawns", "tasks_resubmitted"] {
        assert_eq!(again[field], first[field], "{field}");
    }
    let text = run(false);
    assert!(text.contains("reported again"), "{text}");
    // The closing hint is a command that works as printed (the managed
    // Redis has stopped and has a password).
    let job = first["job"].as_str().unwrap();
    let hint = text.lines().find_map(|l| l.strip_prefix("counts: ")).unwrap_or_else(|| panic!("no counts hint in:\n{text}"));
    assert_eq!(hint, format!("wc-host top --job {job} --data-dir {}", data_dir.display()));
    let args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let top = run_within(wc_host().args(&args), 60);
    assert!(top.status.success(), "{hint}: {}", top.stderr);
    let top_word = first["top"][0][0].as_str().unwrap();
    assert!(top.stdout.lines().next().unwrap_or("").starts_with(top_word), "{hint} printed:\n{}", top.stdout);
    // And a report was written where the summary said.
    assert!(data_dir.join("report.html").is_file());
    assert!(redis_servers_in(&data_dir).is_empty(), "the managed Redis was left running");
}
