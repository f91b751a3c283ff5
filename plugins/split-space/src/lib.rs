//! `split-space`: exactly Python's `text.split(" ")` over the `text` column.
//!
//! The rule of the course lab wc-host comes from, kept so that counts can be
//! compared with a pandas reference: split on the single ASCII space only,
//! so consecutive spaces yield empty strings, and newlines, tabs and
//! punctuation stay inside tokens. An empty field yields one empty string,
//! as `"".split(" ")` does. No parameters.

use wc_plugin_sdk::{Counter, Counts, Info, Params};

/// The rule, usable natively (the benchmark and tests use this same code).
pub fn count_text(text: &str, counts: &mut Counts) {
    for token in text.split(' ') {
        counts.add(token);
    }
}

pub struct SplitSpace;

impl Counter for SplitSpace {
    fn info() -> Info {
        Info {
            name: "split-space",
            version: env!("CARGO_PKG_VERSION"),
            description: "Python's text.split(\" \") over the text column (the lab's reference rule)",
            columns: &["text"],
        }
    }

    fn new(params: &Params) -> Result<Self, String> {
        params.check_known(&[])?;
        Ok(SplitSpace)
    }

    fn count_row(&mut self, row: &[&str], counts: &mut Counts) -> Result<(), String> {
        count_text(row[0], counts);
        Ok(())
    }
}

wc_plugin_sdk::export_counter!(SplitSpace);

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> Counts {
        let mut counts = Counts::default();
        count_text(text, &mut counts);
        counts
    }

    #[test]
    fn matches_python_split_on_single_space() {
        // Python: "a  b ".split(" ") == ['a', '', 'b', '']
        let c = count("a  b ");
        assert_eq!((c.get("a"), c.get(""), c.get("b"), c.total()), (1, 2, 1, 4));
    }

    #[test]
    fn empty_text_is_one_empty_token() {
        let c = count("");
        assert_eq!((c.get(""), c.total()), (1, 1));
    }

    #[test]
    fn other_whitespace_and_punctuation_stay_in_tokens() {
        let c = count("Hi,\tthere\nyou! Hi,");
        assert_eq!(c.get("Hi,\tthere\nyou!"), 1);
        assert_eq!(c.get("Hi,"), 1);
        assert_eq!(c.total(), 2);
    }

    #[test]
    fn case_and_unicode_are_kept_as_is() {
        let c = count("Café café 日本 😀");
        assert_eq!((c.get("Café"), c.get("café"), c.get("日本"), c.get("😀")), (1, 1, 1, 1));
    }
}
