//! What a `--plugin` argument points at: a component file, a project
//! folder beside its built component, or a bare name under `plugins/`.

use std::path::{Path, PathBuf};

use super::{default_output, Language};

/// The component file `arg` means:
/// - an existing file: itself;
/// - a project folder (`plugins/bigrams`): the component built from it
///   (`plugins/bigrams.wasm`), or an error saying how to build it;
/// - a bare name (`bigrams`): `plugins/bigrams.wasm`, or `bigrams.wasm`.
pub fn plugin_path(arg: &Path) -> anyhow::Result<PathBuf> {
    if arg.is_file() {
        return Ok(arg.to_path_buf());
    }
    if arg.is_dir() {
        let built = default_output(arg);
        if built.is_file() {
            return Ok(built);
        }
        return Err(match Language::detect(arg) {
            Ok(language) => anyhow::anyhow!(
                "{} is a {} plugin project, not a component, and {} is not built yet: run `wc-host plugin build {}`",
                arg.display(),
                language.name(),
                built.display(),
                arg.display()
            ),
            Err(_) => anyhow::anyhow!("plugin {} is a folder, not a WebAssembly component (.wasm)", arg.display()),
        });
    }
    let bare = arg.components().count() == 1 && arg.extension().is_none();
    if bare {
        for candidate in [Path::new("plugins").join(arg).with_extension("wasm"), arg.with_extension("wasm")] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let known: Vec<String> = std::fs::read_dir("plugins")
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "wasm")).map(|p| p.display().to_string()).collect())
        .unwrap_or_default();
    let mut known = known;
    known.sort();
    let hint = if known.is_empty() { String::new() } else { format!(" (built plugins here: {})", known.join(", ")) };
    anyhow::bail!("plugin {} not found{hint}", arg.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_folder_resolves_to_its_component_or_says_how_to_build_it() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("bigrams");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("rule.py"), "").unwrap();
        let err = plugin_path(&project).unwrap_err().to_string();
        assert!(err.contains("is a python plugin project") && err.contains("wc-host plugin build"), "{err}");
        std::fs::write(dir.path().join("bigrams.wasm"), b"\0asm").unwrap();
        assert_eq!(plugin_path(&project).unwrap(), dir.path().join("bigrams.wasm"));
        assert_eq!(plugin_path(&dir.path().join("bigrams.wasm")).unwrap(), dir.path().join("bigrams.wasm"));
        let err = plugin_path(&dir.path().join("nothing")).unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
    }
}
