//! Golden cases: a plugin's expected counts for given texts, kept in a JSON
//! file next to the plugin and checked by `wc-host plugin test`.
//!
//! ```json
//! [
//!   {"name": "lowercase", "text": "Hi hi", "expect": {"hi": 2}},
//!   {"name": "rows", "texts": ["a b", "b"], "params": {"case": "keep"}, "expect": {"a": 1, "b": 2}},
//!   {"name": "bad param", "text": "", "params": {"case": "x"}, "expect_error": "case"}
//! ]
//! ```
//! `expect` is the complete result: a key missing or extra is a failure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::count::count_texts;
use crate::plugin::PluginInstance;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub text: Option<String>,
    /// Several rows, for rules that look across rows.
    #[serde(default)]
    pub texts: Option<Vec<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Option<BTreeMap<String, u64>>,
    /// A substring the plugin's error message must contain.
    #[serde(default)]
    pub expect_error: Option<String>,
}

pub fn load_cases(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read cases file {}", path.display()))?;
    let cases: Vec<Case> = serde_json::from_str(&text).with_context(|| format!("{}: not a valid cases file", path.display()))?;
    for case in &cases {
        if case.text.is_some() == case.texts.is_some() {
            anyhow::bail!("{}: case `{}` needs exactly one of `text` and `texts`", path.display(), case.name);
        }
        if case.expect.is_some() == case.expect_error.is_some() {
            anyhow::bail!("{}: case `{}` needs exactly one of `expect` and `expect_error`", path.display(), case.name);
        }
    }
    Ok(cases)
}

/// The outcome of one case: `None` when it passed, else what differed.
pub fn run_case(instance: &mut PluginInstance, case: &Case) -> Option<String> {
    let texts: Vec<&str> = match (&case.text, &case.texts) {
        (Some(t), _) => vec![t.as_str()],
        (None, Some(ts)) => ts.iter().map(String::as_str).collect(),
        (None, None) => vec![],
    };
    let params: Vec<(String, String)> = case.params.clone().into_iter().collect();
    let result = count_texts(instance, &params, &texts);
    match (&case.expect, &case.expect_error, result) {
        (Some(expect), _, Ok(got)) => {
            let got: BTreeMap<String, u64> = got.into_iter().collect();
            diff(expect, &got)
        }
        (Some(_), _, Err(e)) => Some(format!("  expected counts, got an error: {e}")),
        (None, Some(needle), Err(e)) if e.to_string().contains(needle.as_str()) => None,
        (None, Some(needle), Err(e)) => Some(format!("  expected an error containing {needle:?}, got: {e}")),
        (None, Some(needle), Ok(_)) => Some(format!("  expected an error containing {needle:?}, got counts")),
        (None, None, _) => Some("  case has no expectation".into()),
    }
}

fn diff(expect: &BTreeMap<String, u64>, got: &BTreeMap<String, u64>) -> Option<String> {
    let mut out = String::new();
    for (key, &want) in expect {
        match got.get(key) {
            None => writeln!(out, "  - {key:?}: {want} (missing)").unwrap(),
            Some(&have) if have != want => writeln!(out, "  ~ {key:?}: expected {want}, got {have}").unwrap(),
            Some(_) => {}
        }
    }
    for (key, have) in got {
        if !expect.contains_key(key) {
            writeln!(out, "  + {key:?}: {have} (unexpected)").unwrap();
        }
    }
    (!out.is_empty()).then_some(out)
}
