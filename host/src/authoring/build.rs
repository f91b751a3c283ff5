//! `wc-host plugin build`: a project into a component, whatever its
//! language, stamped with the hash of its sources.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{embedded, Language};
use crate::plugin::stamp::{self, SourceStamp};

/// What [`build_project`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// A new component was written.
    Fresh(Language),
    /// `out` was already built from these sources by these SDKs.
    UpToDate(Language),
}

/// Builds the project in `dir` into `out`, unless `out` was built from the
/// same sources by the same SDKs and `force` is off.
pub fn build_project(dir: &Path, out: &Path, force: bool) -> anyhow::Result<Built> {
    let language = Language::detect(dir)?;
    let dir = std::path::absolute(dir)?;
    let out = std::path::absolute(out)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // The sources as they are when the build starts: an edit during the
    // build makes the component stale, not silently current.
    let sources = SourceStamp { sdk: embedded::sdk_id(), ..SourceStamp::of(&dir, language.name())? };
    let current = std::fs::read(&out).ok().and_then(|bytes| stamp::read(&bytes));
    // Cargo knows best what a Rust build depends on (the workspace's
    // profiles, path dependencies) and its no-op build is quick: always ask it.
    if !force && language != Language::Rust && current.as_ref() == Some(&sources) {
        return Ok(Built::UpToDate(language));
    }
    let built = match language {
        Language::Rust => build_rust(&dir)?,
        _ => build_with_script(language, &dir, &out)?,
    };
    let mut component = std::fs::read(&built).map_err(|e| anyhow::anyhow!("cannot read the built component {}: {e}", built.display()))?;
    stamp::append(&mut component, &sources);
    let tmp = out.with_file_name(format!(".{}.{}", out.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, &component)?;
    std::fs::rename(&tmp, &out)?;
    if language != Language::Rust {
        let _ = std::fs::remove_file(&built); // the script's unstamped output
    }
    Ok(Built::Fresh(language))
}

/// Python, JavaScript, C: the language's build script from the staged SDK
/// tree, into a temporary file beside `out`.
fn build_with_script(language: Language, dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let stage = embedded::staged_tree()?;
    let script = stage.join("plugins").join(language.name()).join("build.sh");
    if !script.is_file() {
        anyhow::bail!("this wc-host was built without the {} SDK ({} is missing)", language.name(), script.display());
    }
    let tmp = out.with_extension("wasm.unstamped");
    let status = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .arg(&tmp)
        .env("WC_HOST", std::env::current_exe()?)
        .env("WC_HOST_CACHE", super::cache_base())
        .env("WC_HOST_BUILDING", "1")
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run bash for {}: {e}", script.display()))?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!(
            "building {} failed at the {} build step ({}, {status}); its output is above",
            dir.display(),
            language.name(),
            script.display()
        );
    }
    Ok(tmp)
}

/// Rust: `cargo build` for wasm32-wasip2, which makes a component directly.
/// A project with a `[workspace]` of its own (what `plugin new` writes)
/// builds in release; a member of a larger workspace (this repository's
/// plugins) with that workspace's `wasm` profile.
fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)?;
    let standalone = text.lines().any(|l| l.trim() == "[workspace]");
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if let Ok(installed) = installed {
        if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
            eprintln!("installing the Rust target wasm32-wasip2 (rustup target add wasm32-wasip2)");
            let status = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status()?;
            anyhow::ensure!(status.success(), "`rustup target add wasm32-wasip2` failed; run it yourself, then build again");
        }
    }
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.args(["build", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics", "--manifest-path"]).arg(&manifest);
    cargo.args(if standalone { &["--release"][..] } else { &["--profile", "wasm"][..] });
    cargo.stderr(std::process::Stdio::inherit());
    let output = cargo.output().map_err(|e| anyhow::anyhow!("cannot run cargo: {e} (is Rust installed?)"))?;
    if !output.status.success() {
        anyhow::bail!("building {} failed at `cargo build` ({}); its output is above", dir.display(), output.status);
    }
    // The cdylib artifact of the project's own package.
    let mut found = None;
    for line in output.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        if message["reason"] == "compiler-artifact" && message["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()) {
            if let Some(files) = message["filenames"].as_array() {
                found = files.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")).map(PathBuf::from).or(found);
            }
        }
    }
    found.ok_or_else(|| anyhow::anyhow!("cargo built {} but made no .wasm: is `crate-type = [\"cdylib\", ...]` in its [lib]?", manifest.display()))
}
