//! The files embedded at compile time (see `host/build.rs`) and their
//! staging on disk, where build scripts run from.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/embedded_files.rs"));

/// The embedded files under `prefix/` (relative paths kept whole).
pub fn under<'a>(prefix: &'a str) -> impl Iterator<Item = (&'static str, &'static [u8])> + 'a {
    FILES.iter().copied().filter(move |(path, _)| path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
}

/// One embedded file.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

/// A hash of every embedded file: names this binary's SDKs and build scripts.
pub fn sdk_id() -> String {
    let mut hash = Sha256::new();
    for (path, bytes) in FILES {
        hash.update(path.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex::encode(hash.finalize())[..16].to_string()
}

/// The embedded tree written under the cache, once per distinct content:
/// `STAGE/wit/plugin.wit`, `STAGE/plugins/<lang>/build.sh`, ...
pub fn staged_tree() -> anyhow::Result<PathBuf> {
    let id = sdk_id();
    let dir = super::cache_base().join("sdk").join(&id);
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    let tmp = dir.with_file_name(format!(".{id}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        for (path, bytes) in FILES {
            let target = tmp.join(path);
            std::fs::create_dir_all(target.parent().expect("a relative path has a parent"))?;
            std::fs::write(&target, bytes)?;
            if path.ends_with(".sh") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        std::fs::write(tmp.join(".complete"), b"")
    };
    write().map_err(|e| anyhow::anyhow!("cannot write the plugin SDKs to {}: {e} (set WC_HOST_CACHE_DIR to a writable folder)", tmp.display()))?;
    // Another process may have staged the same tree meanwhile: either copy is good.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if !dir.join(".complete").exists() {
        anyhow::bail!("cannot stage the plugin SDKs in {}", dir.display());
    }
    Ok(dir)
}

/// Copies the embedded files under `prefix/` into `dest`, with their paths
/// relative to `prefix`, replacing `__PLUGIN_NAME__` in text files.
pub fn copy_tree(prefix: &str, dest: &Path, replacements: &[(&str, &str)]) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (path, bytes) in under(prefix) {
        let rel = &path[prefix.len() + 1..];
        let target = dest.join(rel);
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let mut text = text.to_string();
                for (from, to) in replacements {
                    text = text.replace(from, to);
                }
                std::fs::write(&target, text)?;
            }
            Err(_) => std::fs::write(&target, bytes)?,
        }
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_contract_and_every_template_are_embedded() {
        assert!(super::file("wit/plugin.wit").is_some_and(|w| String::from_utf8_lossy(w).contains("package wc:plugin@0.2.0")));
        assert!(super::file("plugins/sdk/src/lib.rs").is_some());
        for lang in super::super::Language::ALL {
            let prefix = format!("plugins/{}/template", lang.name());
            assert!(super::under(&prefix).count() > 0, "no template for {}", lang.name());
        }
    }
}
