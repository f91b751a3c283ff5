//! Where things are: the workspace, the wc-host binary, the shipped
//! plugins (built on first use), the test-only evil plugins.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `<root>/plugins/NAME.wasm`, built first if any shipped plugin is missing.
/// The Rust ones come from cargo; the others (Python, JavaScript, the
/// templates' twins) from `wc-host plugin build`, like `make plugins`.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(ensure_plugins_built);
    let path = workspace_root().join("plugins").join(format!("{name}.wasm"));
    if !path.is_file() {
        build_with_wc_host(name, &path);
    }
    assert!(path.is_file(), "{} does not exist (not a shipped plugin?)", path.display());
    path
}

/// The templates' twins `make plugins` ships: name, language.
const TEMPLATE_PLUGINS: [(&str, &str); 2] = [("split-space-py", "python"), ("split-space-js", "js")];

/// `wc-host plugin build` of `plugins/NAME` (or of a fresh template
/// project for a template's twin), under the same lock as the cargo build.
fn build_with_wc_host(name: &str, out: &Path) {
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap();
    let lock = File::create(target.join("wc-host-test-plugins.lock")).unwrap();
    // SAFETY: a plain flock(2) on a descriptor we own for the whole block.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    if out.is_file() {
        return;
    }
    let project = match TEMPLATE_PLUGINS.iter().find(|(n, _)| *n == name) {
        Some((_, lang)) => {
            let project = target.join("template-plugins").join(name);
            let _ = std::fs::remove_dir_all(&project);
            let status = Command::new(wc_host_bin()).args(["plugin", "new", "--lang", lang]).arg(&project).status().unwrap();
            assert!(status.success(), "wc-host plugin new --lang {lang} {} failed", project.display());
            project
        }
        None => workspace_root().join("plugins").join(name),
    };
    if !project.is_dir() {
        return; // not a shipped plugin: the caller says so
    }
    let status = Command::new(wc_host_bin()).args(["plugin", "build", "--no-test"]).arg(&project).arg("-o").arg(out).status().unwrap();
    assert!(status.success(), "wc-host plugin build {} failed ({status}); try `make plugins`", project.display());
}

/// `<root>/plugins/NAME/cases.json`.
pub fn cases_path(name: &str) -> PathBuf {
    workspace_root().join("plugins").join(name).join("cases.json")
}

/// The plugins `make plugins` builds: package name, file stem in `plugins/`.
const PLUGINS: [(&str, &str); 3] = [("words", "words"), ("split-space", "split-space"), ("hashtags", "hashtags")];

fn missing_plugins() -> Vec<PathBuf> {
    let dir = workspace_root().join("plugins");
    PLUGINS.iter().map(|(_, file)| dir.join(format!("{file}.wasm"))).filter(|p| !p.is_file()).collect()
}

/// Builds the plugins like `make plugins` when one is missing. Test processes
/// run in parallel (nextest: one per test), so the check and the build happen
/// under an exclusive `flock` on a file in the target directory; the copies
/// are written to a temporary name and renamed, so a reader never sees half
/// a component.
fn ensure_plugins_built() {
    if missing_plugins().is_empty() {
        return;
    }
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    let lock_path = target.join("wc-host-test-plugins.lock");
    let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    // SAFETY: a plain flock(2) on a descriptor we own for the whole block.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}: {}", lock_path.display(), std::io::Error::last_os_error());

    // Another process may have built them while we waited for the lock.
    if missing_plugins().is_empty() {
        return; // dropping `lock` closes the descriptor and releases it
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--profile", "wasm", "--target", "wasm32-wasip2"]);
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    eprintln!("building the plugins: {cmd:?}");
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    assert!(status.success(), "building the plugins failed ({status}); try `make plugins`");

    let wasm_dir = target.join("wasm32-wasip2").join("wasm");
    let plugins_dir = workspace_root().join("plugins");
    for (package, file) in PLUGINS {
        let built = wasm_dir.join(format!("{}.wasm", package.replace('-', "_")));
        let dest = plugins_dir.join(format!("{file}.wasm"));
        let tmp = plugins_dir.join(format!(".{file}.wasm.{}", std::process::id()));
        std::fs::copy(&built, &tmp).unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", built.display(), tmp.display()));
        std::fs::rename(&tmp, &dest).unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), dest.display()));
    }
    drop(lock);
}

/// `$CARGO_TARGET_DIR`, else the repository's usual `~/.cache/wc-host/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/wc-host/target"),
    }
}

/// The test-only plugins of `tests/evil-plugins`, built once per test
/// process: (`evil.wasm`, `other_world.wasm`).
pub fn evil_plugins() -> &'static (PathBuf, PathBuf) {
    static BUILT: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = workspace_root().join("tests/evil-plugins/Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", target_dir())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&manifest)
            .output()
            .expect("cannot run cargo");
        assert!(output.status.success(), "building the evil plugins failed:\n{}", String::from_utf8_lossy(&output.stderr));
        let dir = target_dir().join("wasm32-wasip2/release");
        (dir.join("evil.wasm"), dir.join("other_world.wasm"))
    })
}

/// The wc-host binary of the running test or example's build: tests run
/// from `target/PROFILE/deps/`, examples from `target/PROFILE/examples/`,
/// and the binary sits in `target/PROFILE/` (cargo builds it before a
/// package's integration tests). `WC_HOST_BIN` overrides it: worktrees that
/// share one target directory also share that one uplifted binary, which the
/// last build of any of them replaces.
pub fn wc_host_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("WC_HOST_BIN").filter(|b| !b.is_empty()) {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "WC_HOST_BIN={} is not a file", bin.display());
            return bin;
        }
        let exe = std::env::current_exe().expect("the running executable");
        let profile_dir = exe.parent().and_then(Path::parent).expect("an executable under target/PROFILE/");
        let bin = profile_dir.join("wc-host");
        assert!(bin.is_file(), "{} is missing: build wc-host first (make build)", bin.display());
        bin
    })
    .clone()
}

/// `wc-host` with a clean environment: no REDIS_URL, warnings only.
pub fn wc_host() -> Command {
    let mut cmd = Command::new(wc_host_bin());
    cmd.env_remove("REDIS_URL").env("RUST_LOG", "warn");
    cmd
}
