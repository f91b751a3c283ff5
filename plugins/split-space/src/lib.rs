//! `split-space`: exactly Python's `text.split(" ")` over the `text` column.
//!
//! The rule of the course lab wc-host comes from, kept so that counts can be
//! compared with a pandas reference: split on the single ASCII space only,
//! so consecutive spaces yield empty strings, and newlines, tabs and
//! punctuation stay inside tokens. An empty field yields one empty string,
//! as `"".split(" ")` does. No parameters.

use wc_plugin_sdk::{Counter, Counts, Info, Params};

/// The rule, usable natively (the benchmark and tests use this same code).
///
/// Equivalent to `for token in text.split(' ') { counts.add(token) }`, but
/// finds the spaces 8 bytes at a time: `str::split` searches with core's
/// `memchr`, which on wasm32 works on 4-byte words and was a fifth of the
/// plugin's time.
pub fn count_text(text: &str, counts: &mut Counts) {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let bytes = text.as_bytes();
    let mut start = 0; // where the current token starts
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) ^ SPACES;
        // The top bit of each byte that was a space (exact: no carry crosses bytes).
        let mut spaces = !(((word & LOW7) + LOW7) | word) & !LOW7;
        while spaces != 0 {
            let end = at + (spaces.trailing_zeros() / 8) as usize;
            counts.add(&text[start..end]); // a space is always a char boundary
            start = end + 1;
            spaces &= spaces - 1;
        }
        at += 8;
    }
    for (i, &b) in bytes[at..].iter().enumerate() {
        if b == b' ' {
            counts.add(&text[start..at + i]);
            start = at + i + 1;
        }
    }
    counts.add(&text[start..]);
}

pub struct SplitSpace;

impl Counter for SplitSpace {
    fn info() -> Info {
        Info {
            name: "split-space",
            version: env!("CARGO_PKG_VERSION"),
            description: "Python's text.split(\" \") over the text column (the lab's reference rule)",
            columns: &["text"],
            params: &[],
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
    fn same_as_str_split_at_every_alignment() {
        let texts = [
            "", " ", "  ", "a", "a ", " a", "abcdefgh", "abcdefg ", " bcdefgh", "abcdefgh ijklmnop  qrstuvwx ",
            "        ", "         x", "Café  日本 😀\ttab\nnl  end", "  lead and trail  ", "a b c d e f g h i j k l m n o p",
        ];
        for text in texts {
            for pad in 0..9 {
                let text = format!("{}{text}", "x".repeat(pad));
                let mut want = std::collections::HashMap::new();
                for token in text.split(' ') {
                    *want.entry(token.to_string()).or_insert(0u64) += 1;
                }
                let got: std::collections::HashMap<String, u64> = count(&text).into_vec().into_iter().collect();
                assert_eq!(got, want, "{text:?}");
            }
        }
    }

    #[test]
    fn case_and_unicode_are_kept_as_is() {
        let c = count("Café café 日本 😀");
        assert_eq!((c.get("Café"), c.get("café"), c.get("日本"), c.get("😀")), (1, 1, 1, 1));
    }
}
