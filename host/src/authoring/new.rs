//! `wc-host plugin new`: a plugin project from a language's template.

use std::path::{Path, PathBuf};

use super::{embedded, Language};

/// Writes a new project into `dir` (which must not exist or be empty) and
/// returns the files written.
pub fn new_project(language: Language, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!("{} already exists and is not empty; give a new folder", dir.display());
    }
    let dir = std::path::absolute(dir)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        anyhow::bail!("the folder's name, `{name}`, names the plugin: use a letter, then letters, digits, `-` or `_`");
    }
    let template = format!("plugins/{}/template", language.name());
    let sdk_path = if language == Language::Rust { rust_sdk_for(&dir)? } else { String::new() };
    let mut replacements = vec![("__PLUGIN_NAME__", name.as_str())];
    if language == Language::Rust {
        replacements.push(("__WC_PLUGIN_SDK__", &sdk_path));
    }
    let mut written = embedded::copy_tree(&template, &dir, &replacements)?;
    if language == Language::Rust && sdk_path == VENDORED_SDK {
        written.extend(vendor_rust_sdk(&dir.join(VENDORED_SDK))?);
    }
    Ok(written)
}

const VENDORED_SDK: &str = "wc-plugin-sdk";

/// The SDK path a Rust project's Cargo.toml uses: the repository's own
/// (`../sdk`) when the project is made in this repository's `plugins/`,
/// else a copy inside the project.
fn rust_sdk_for(dir: &Path) -> anyhow::Result<String> {
    let sibling = dir.parent().map(|p| p.join("sdk/Cargo.toml"));
    let in_repo = sibling.and_then(|p| std::fs::read_to_string(p).ok()).is_some_and(|t| t.contains("name = \"wc-plugin-sdk\""));
    Ok(if in_repo { "../sdk".into() } else { VENDORED_SDK.into() })
}

/// Copies the Rust SDK and the WIT file it binds into `dest`.
fn vendor_rust_sdk(dest: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = embedded::copy_tree("plugins/sdk", dest, &[("path: \"../../wit\"", "path: \"wit\"")])?;
    let wit = dest.join("wit/plugin.wit");
    std::fs::create_dir_all(wit.parent().expect("has a parent"))?;
    std::fs::write(&wit, embedded::file("wit/plugin.wit").expect("the WIT file is embedded"))?;
    written.push(wit);
    Ok(written)
}
