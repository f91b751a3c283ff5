//! `__PLUGIN_NAME__`: Python's `text.split(" ")` over the `text` column.
//!
//! Split on the single ASCII space only: consecutive spaces give empty
//! strings, an empty field gives one empty string, everything else (case,
//! punctuation, newlines) stays in the token. Change `count_text` to your
//! rule, then the cases in `cases.json`.

use wc_plugin_sdk::{Counter, Counts, Info, Params};

/// The rule, a plain function: unit-tested natively below.
pub fn count_text(text: &str, counts: &mut Counts) {
    for token in text.split(' ') {
        counts.add(token);
    }
}

pub struct Plugin;

impl Counter for Plugin {
    fn info() -> Info {
        Info {
            name: "__PLUGIN_NAME__",
            version: env!("CARGO_PKG_VERSION"),
            description: "text.split(\" \") over the text column",
            // CSV header names read; `count_row` gets one value per column, in this order.
            columns: &["text"],
            // Declared parameters (`--plugin-arg NAME=VALUE`), e.g.
            // `Param { name: "min_len", default: "1", help: "shortest word counted" }`.
            params: &[],
        }
    }

    /// One `Plugin` per task: state kept across rows lives here, never in a
    /// `static` (one instance serves many tasks).
    fn new(params: &Params) -> Result<Self, String> {
        params.check_known(&Self::info().param_names())?;
        Ok(Plugin)
    }

    fn count_row(&mut self, row: &[&str], counts: &mut Counts) -> Result<(), String> {
        count_text(row[0], counts);
        Ok(())
    }
}

wc_plugin_sdk::export_counter!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> Vec<(String, u64)> {
        let mut counts = Counts::default();
        count_text(text, &mut counts);
        let mut out = counts.into_vec();
        out.sort();
        out
    }

    #[test]
    fn splits_on_single_spaces_like_python() {
        assert_eq!(count("a b a"), vec![("a".into(), 2), ("b".into(), 1)]);
        assert_eq!(count("a  b"), vec![("".into(), 1), ("a".into(), 1), ("b".into(), 1)]);
        assert_eq!(count(""), vec![("".into(), 1)]);
    }
}
