//! Plugin projects, for their authors: the languages, the files `plugin new`
//! writes, how `plugin build` turns a project into a component, and where a
//! `--plugin` argument points.
//!
//! Each language's SDK, template and build script are embedded in the
//! binary ([`embedded`]), so projects can live anywhere.

pub mod build;
pub mod componentize;
pub mod embedded;
pub mod new;
pub mod resolve;

use std::path::{Path, PathBuf};

/// The languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    Js,
    C,
}

impl Language {
    pub const ALL: [Language; 4] = [Language::Rust, Language::Python, Language::Js, Language::C];

    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
        }
    }

    pub fn from_name(name: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The file that marks a project of this language.
    fn marker(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &["Cargo.toml"],
            Language::Python => &["app.py", "rule.py"],
            Language::Js => &["rule.js", "package.json"],
            Language::C => &["rule.c"],
        }
    }

    /// The language of the project in `dir`.
    pub fn detect(dir: &Path) -> anyhow::Result<Language> {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a folder (a plugin project is one; make one with `wc-host plugin new --lang rust|python|js|c DIR`)", dir.display());
        }
        Language::ALL.into_iter().find(|l| l.marker().iter().any(|m| dir.join(m).is_file())).ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not a plugin project: it has none of Cargo.toml (Rust), rule.py (Python), rule.js (JavaScript) or rule.c (C); \
                 make one with `wc-host plugin new --lang rust|python|js|c DIR`",
                dir.display()
            )
        })
    }
}

/// The cache folder ([`crate::plugin::cache_base`]), or one under the
/// temporary folder when no home is known.
pub fn cache_base() -> PathBuf {
    crate::plugin::cache_base().unwrap_or_else(|| std::env::temp_dir().join("wc-host"))
}

/// The component a project builds to by default: `DIR.wasm` beside it
/// (`plugins/bigrams` → `plugins/bigrams.wasm`).
pub fn default_output(dir: &Path) -> PathBuf {
    let dir = dir.components().as_path();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into());
    dir.with_file_name(format!("{name}.wasm"))
}
