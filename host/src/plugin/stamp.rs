//! Which sources a component was built from, so that a stale `.wasm` is
//! never used silently.
//!
//! `wc-host plugin build` appends a custom section, `wc-plugin-source`, to
//! the component: the project folder and the SHA-256 of each of its source
//! files. Loading a component compares them with the folder as it is now.
//! A component without the section (built by hand) is compared by
//! modification time with a project folder beside it (`plugins/NAME/` for
//! `plugins/NAME.wasm`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The custom section's name.
pub const SECTION: &str = "wc-plugin-source";

/// Folders that hold build outputs, caches or tests, never sources.
const NOT_SOURCE_DIRS: &[&str] = &["target", "node_modules", "__pycache__", ".pytest_cache", ".git", "dist", "test", "tests"];

/// The sources of a component: its project folder and each file's hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceStamp {
    /// The project folder, absolute.
    pub dir: PathBuf,
    pub language: String,
    /// (path relative to `dir`, SHA-256 hex), sorted by path.
    pub files: Vec<(String, String)>,
    /// Which SDKs and build scripts built it (a hash of the ones embedded
    /// in the wc-host that built it): a new SDK makes a rebuild necessary.
    #[serde(default)]
    pub sdk: String,
}

/// Whether a file in a project folder is part of what the component is
/// built from: not tests, golden cases, docs, lock files or hidden files.
fn is_source(name: &str) -> bool {
    !(name.starts_with('.')
        || name.starts_with("test_")
        || name.ends_with(".test.js")
        || name.ends_with(".wasm")
        || name == "cases.json"
        || name.eq_ignore_ascii_case("README.md")
        || name == "Cargo.lock"
        || name == "package-lock.json")
}

/// The project's source files, relative to `dir`, sorted.
pub fn source_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root.join(rel))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if !name.starts_with('.') && !NOT_SOURCE_DIRS.contains(&name.as_ref()) {
                    walk(root, &rel.join(&*name), out)?;
                }
            } else if kind.is_file() && is_source(&name) {
                out.push(rel.join(&*name));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

impl SourceStamp {
    /// The stamp of `dir` as it is now.
    pub fn of(dir: &Path, language: &str) -> std::io::Result<SourceStamp> {
        let dir = std::path::absolute(dir)?;
        let mut files = Vec::new();
        for rel in source_files(&dir)? {
            let bytes = std::fs::read(dir.join(&rel))?;
            files.push((rel.to_string_lossy().into_owned(), hex::encode(Sha256::digest(&bytes))));
        }
        Ok(SourceStamp { dir, language: language.to_string(), files, sdk: String::new() })
    }

    /// What differs from `now`: changed, added and removed files.
    pub fn changes_since(&self, now: &SourceStamp) -> Vec<String> {
        let mut out = Vec::new();
        for (path, hash) in &now.files {
            match self.files.iter().find(|(p, _)| p == path) {
                Some((_, old)) if old == hash => {}
                Some(_) => out.push(format!("{path} changed")),
                None => out.push(format!("{path} added")),
            }
        }
        for (path, _) in &self.files {
            if !now.files.iter().any(|(p, _)| p == path) {
                out.push(format!("{path} removed"));
            }
        }
        out
    }
}

/// Appends the stamp as a custom section (replacing none: call it on a
/// freshly built component). Written by hand because a custom section is
/// five fields and appending one is all that is needed.
pub fn append(component: &mut Vec<u8>, stamp: &SourceStamp) {
    let data = serde_json::to_vec(stamp).expect("a stamp serializes");
    let mut body = Vec::new();
    leb128(&mut body, SECTION.len() as u64);
    body.extend_from_slice(SECTION.as_bytes());
    body.extend_from_slice(&data);
    component.push(0); // custom section
    leb128(component, body.len() as u64);
    component.extend_from_slice(&body);
}

fn leb128(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// The stamp of a component, if it has one: its top-level sections are
/// walked (nested modules are skipped whole, so this is cheap).
pub fn read(component: &[u8]) -> Option<SourceStamp> {
    let mut at = 8;
    let mut found = None;
    while at < component.len() {
        let id = component[at];
        at += 1;
        let size = read_leb128(component, &mut at)? as usize;
        let body = component.get(at..at.checked_add(size)?)?;
        at += size;
        if id == 0 {
            let mut p = 0;
            let len = read_leb128(body, &mut p)? as usize;
            if body.get(p..p + len) == Some(SECTION.as_bytes()) {
                found = serde_json::from_slice(&body[p + len..]).ok();
            }
        }
    }
    found
}

/// [`staleness`] of the component file at `path`. Only for what talks to
/// the user (a worker has no use for it, so the runtime does not do it).
pub fn staleness_of_file(path: &Path) -> Option<String> {
    staleness(path, &std::fs::read(path).ok()?)
}

/// A warning when the component at `path` is older than its sources, or
/// `None` when it is current or its sources are unknown.
pub fn staleness(path: &Path, component: &[u8]) -> Option<String> {
    if let Some(stamp) = read(component) {
        if !stamp.dir.is_dir() {
            return None; // built elsewhere; nothing to compare with
        }
        let now = SourceStamp::of(&stamp.dir, &stamp.language).ok()?;
        let changes = stamp.changes_since(&now);
        if changes.is_empty() {
            return None;
        }
        let shown: Vec<&str> = changes.iter().take(5).map(String::as_str).collect();
        let more = if changes.len() > 5 { format!(" and {} more", changes.len() - 5) } else { String::new() };
        return Some(format!(
            "{} is stale: its sources in {} changed since it was built ({}{more}); rebuild it with `wc-host plugin build {}`",
            path.display(),
            stamp.dir.display(),
            shown.join(", "),
            stamp.dir.display()
        ));
    }
    // No stamp: a project folder beside it, compared by modification time.
    let dir = path.with_extension("");
    if path.extension().is_none_or(|e| e != "wasm") || !dir.is_dir() {
        return None;
    }
    let built = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let newest = source_files(&dir)
        .ok()?
        .into_iter()
        .filter_map(|rel| Some((std::fs::metadata(dir.join(&rel)).and_then(|m| m.modified()).ok()?, rel)))
        .max()?;
    (newest.0 > built).then(|| {
        format!(
            "{} is older than its sources ({} changed after it was built); rebuild it with `wc-host plugin build {}`",
            path.display(),
            dir.join(&newest.1).display(),
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_the_round_trip_and_names_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("target/x")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() {}").unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(dir.path().join("cases.json"), "[]").unwrap();
        std::fs::write(dir.path().join("test_rule.py"), "").unwrap();
        std::fs::write(dir.path().join("target/x/out.wasm"), "").unwrap();
        let stamp = SourceStamp::of(dir.path(), "rust").unwrap();
        let names: Vec<&str> = stamp.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["Cargo.toml", "src/lib.rs"], "tests, cases and build outputs are not sources");

        // A minimal component: the preamble, one custom section of another name.
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        component.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']);
        assert_eq!(read(&component), None);
        append(&mut component, &stamp);
        assert_eq!(read(&component), Some(stamp.clone()));
        let wasm = dir.path().with_extension("wasm");
        assert_eq!(staleness(&wasm, &component), None);

        std::fs::write(dir.path().join("src/lib.rs"), "fn b() {}").unwrap();
        std::fs::write(dir.path().join("src/new.rs"), "").unwrap();
        std::fs::write(dir.path().join("cases.json"), "[{}]").unwrap();
        let warning = staleness(&wasm, &component).expect("stale");
        assert!(warning.contains("src/lib.rs changed, src/new.rs added"), "{warning}");
        assert!(warning.contains(&format!("wc-host plugin build {}", dir.path().display())), "{warning}");
    }
}
