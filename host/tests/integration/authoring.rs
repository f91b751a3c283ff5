//! Plugin authoring as a user does it: `wc-host plugin new --lang L DIR`,
//! `wc-host plugin build DIR` (toolchains installed by the build when
//! missing), the component's counts over generated CSV against an
//! independent `text.split(" ")`, a stale component warned about after an
//! edit, and a rebuild skipped when nothing changed. Every language.

use wc_testkit::{assert_same_counts, gen_data, plugin as plugin_path, reference_split_space, run_within, target_dir, wc_host, RedisServer};

/// The file holding the template's rule, and a comment line in its language.
fn rule_file(lang: &str) -> (&'static str, &'static str) {
    match lang {
        "rust" => ("src/lib.rs", "// edited\n"),
        "python" => ("rule.py", "# edited\n"),
        "js" => ("rule.js", "// edited\n"),
        "c" => ("rule.c", "/* edited */\n"),
        other => panic!("no template for {other}"),
    }
}

fn template_counts_like_python_split(lang: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(format!("tpl-{lang}"));
    let new = run_within(wc_host().args(["plugin", "new", "--lang", lang]).arg(&project), 30);
    assert!(new.status.success(), "plugin new --lang {lang}: {}", new.stderr);
    assert!(project.join("cases.json").is_file() && project.join("README.md").is_file(), "{}", new.stdout);

    // Rust projects share one target folder across runs (wit-bindgen and
    // the SDK compile once); the other toolchains cache themselves.
    let build = |extra: &[&str]| {
        run_within(wc_host().args(["plugin", "build"]).arg(&project).args(extra).env("CARGO_TARGET_DIR", target_dir().join("plugin-projects")), 900)
    };
    let built = build(&[]);
    assert!(built.status.success(), "plugin build ({lang}): {}\n{}", built.stdout, built.stderr);
    assert!(built.stdout.contains("8 cases: 8 passed, 0 failed"), "the template's golden cases run after the build: {}", built.stdout);
    let wasm = dir.path().join(format!("tpl-{lang}.wasm"));
    assert!(wasm.is_file(), "the component goes beside the project: {}", built.stderr);

    // Its counts, with the project folder given as the plugin (resolved to
    // the component beside it), against the reference made here.
    let (_data, files) = gen_data(3.0, 2, seed);
    let counts_path = dir.path().join("counts.json");
    let count = run_within(wc_host().args(["plugin", "count"]).arg(&project).args(&files).arg("--output").arg(&counts_path), 300);
    assert!(count.status.success(), "plugin count ({lang}): {}", count.stderr);
    let got: std::collections::HashMap<String, u64> = serde_json::from_str(&std::fs::read_to_string(&counts_path).unwrap()).unwrap();
    let want = reference_split_space(&files);
    assert!(want.len() > 1000 && want.contains_key(""), "a reference worth comparing with");
    assert_same_counts(&format!("the {lang} template vs text.split(' ')"), &got, &want);

    // Nothing changed: no rebuild. An edit: the component is stale, and
    // `plugin test` (cases found from the component's stamp) says so.
    // (Rust asks cargo every time: its no-op build is the check.)
    let again = build(&["--no-test"]);
    let skipped = if lang == "rust" { "Finished" } else { "is up to date" };
    assert!(again.status.success() && again.stderr.contains(skipped), "{}", again.stderr);
    let (rule, comment) = rule_file(lang);
    let mut text = std::fs::read_to_string(project.join(rule)).unwrap();
    text.push_str(comment);
    std::fs::write(project.join(rule), text).unwrap();
    let stale = run_within(wc_host().args(["plugin", "test"]).arg(&wasm), 120);
    assert!(stale.status.success(), "{}", stale.stderr);
    assert!(stale.stderr.contains("is stale") && stale.stderr.contains(&format!("{rule} changed")), "{}", stale.stderr);
    assert!(stale.stdout.contains(&project.join("cases.json").display().to_string()), "cases.json found by default: {}", stale.stdout);
    let rebuilt = build(&["--no-test"]);
    assert!(rebuilt.status.success() && rebuilt.stderr.contains("built "), "{}", rebuilt.stderr);
    let fresh = run_within(wc_host().args(["plugin", "test"]).arg(&wasm), 120);
    assert!(fresh.status.success() && !fresh.stderr.contains("stale"), "{}", fresh.stderr);
}

#[test]
fn rust_template_builds_and_counts_like_python_split() {
    template_counts_like_python_split("rust", 41);
}

#[test]
fn python_template_builds_and_counts_like_python_split() {
    template_counts_like_python_split("python", 42);
}

#[test]
fn js_template_builds_and_counts_like_python_split() {
    template_counts_like_python_split("js", 43);
}

#[test]
fn c_template_builds_and_counts_like_python_split() {
    template_counts_like_python_split("c", 44);
}

#[test]
fn plugin_new_refuses_a_folder_in_use_and_a_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), "").unwrap();
    let busy = run_within(wc_host().args(["plugin", "new", "--lang", "python"]).arg(dir.path()), 30);
    assert!(!busy.status.success() && busy.stderr.contains("already exists and is not empty"), "{}", busy.stderr);
    let bad = run_within(wc_host().args(["plugin", "new", "--lang", "js"]).arg(dir.path().join("9 lives")), 30);
    assert!(!bad.status.success() && bad.stderr.contains("names the plugin"), "{}", bad.stderr);
    let not_a_project = run_within(wc_host().args(["plugin", "build"]).arg(dir.path()), 30);
    assert!(!not_a_project.status.success() && not_a_project.stderr.contains("is not a plugin project"), "{}", not_a_project.stderr);
}

#[test]
fn plugin_info_lists_declared_parameters_in_every_language() {
    for (name, params) in [("words", &["case", "urls"][..]), ("stopwords", &["stop", "min_len"][..]), ("bigrams", &["sep", "min_len"][..])] {
        let info = run_within(wc_host().args(["plugin", "info", "--json"]).arg(plugin_path(name)), 120);
        assert!(info.status.success(), "{}", info.stderr);
        let value: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
        assert_eq!(value["world"], "wc:plugin/counting-plugin@0.2.0");
        let declared: Vec<&str> = value["params"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        for p in params {
            assert!(declared.contains(p), "{name} declares {p}: {declared:?}");
        }
        assert!(value["params"].as_array().unwrap().iter().all(|p| !p["help"].as_str().unwrap().is_empty()), "every parameter has help");
    }
    // An undeclared parameter is refused by name before any task starts.
    let bad = run_within(wc_host().args(["plugin", "count"]).arg(plugin_path("stopwords")).args(["--text", "a b", "--plugin-arg", "min_lenn=2"]), 120);
    assert!(!bad.status.success() && bad.stderr.contains("unknown parameter `min_lenn` (known: stop, min_len"), "{}", bad.stderr);
}

/// A Python plugin inside a real job whose workers are SIGKILLed
/// mid-task: its counts are exact.
#[test]
fn python_plugin_job_survives_worker_kills_exactly() {
    let redis = RedisServer::start();
    let (dir, files) = gen_data(6.0, 4, 45);
    let mut conn = redis.conn();
    let job = wc_testkit::spawn_job("split-space-py", &["--redis", &redis.url(), "--split-mb", "0.25", &dir.path().display().to_string()]);
    let pid = job.child.id();
    let mut kills = 0;
    for round in 1..=2 {
        wc_testkit::poll_until(180, "progress", || tasks_done(&mut conn) >= round * 3);
        let paused = wc_testkit::pause_workers(pid);
        if let Some(victim) = paused.first() {
            // SAFETY: killing a worker process of our own job.
            unsafe { libc::kill(*victim as i32, libc::SIGKILL) };
            kills += 1;
        }
        wc_testkit::resume(&paused[1..]);
    }
    let r = wc_testkit::finish_job_within(job, 600);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(kills, 2);
    assert!(wc_testkit::summary_u64(&r.summary, "worker_respawns") >= 1, "{}", r.summary);
    wc_testkit::assert_counts_eq(&r.counts, &reference_split_space(&files));
}

fn tasks_done(conn: &mut redis::Connection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("wc:{*}:done").query(conn).unwrap_or_default();
    keys.iter().map(|k| redis::cmd("SCARD").arg(k).query::<usize>(conn).unwrap_or(0)).sum()
}
