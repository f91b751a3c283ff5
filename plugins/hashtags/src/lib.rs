//! `hashtags`: counts the #hashtags of the `text` column, case-folded.
//!
//! Shows what plugins are for: a different question over the same data, with
//! no change to the host. A hashtag is `#` followed by one or more word
//! characters (Unicode letters, digits, `_`), not preceded by a word
//! character (so `a#b` and URL fragments are not tags). Keys keep the `#` and
//! are lowercased unless `case=keep`.

use wc_plugin_sdk::{Counter, Counts, Info, Param, Params};

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The rule, usable natively.
pub fn count_hashtags(text: &str, lowercase: bool, counts: &mut Counts) {
    let mut key = String::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts_tag = c == '#' && !prev.is_some_and(|p| is_tag_char(p) || p == '#' || p == '/');
        prev = Some(c);
        if !starts_tag {
            continue;
        }
        let body_start = i + 1;
        let mut body_end = body_start;
        while let Some(&(j, d)) = chars.peek() {
            if !is_tag_char(d) {
                break;
            }
            body_end = j + d.len_utf8();
            prev = Some(d);
            chars.next();
        }
        if body_end > body_start {
            key.clear();
            key.push('#');
            let body = &text[body_start..body_end];
            if lowercase {
                key.extend(body.chars().flat_map(char::to_lowercase));
            } else {
                key.push_str(body);
            }
            counts.add(&key);
        }
    }
}

pub struct Hashtags {
    lowercase: bool,
}

impl Counter for Hashtags {
    fn info() -> Info {
        Info {
            name: "hashtags",
            version: env!("CARGO_PKG_VERSION"),
            description: "#hashtags in the text column, lowercased (case=keep to keep case)",
            columns: &["text"],
            params: &[Param { name: "case", default: "lower", help: "`lower` lowercases hashtags, `keep` keeps their case" }],
        }
    }

    fn new(params: &Params) -> Result<Self, String> {
        params.check_known(&["case"])?;
        let lowercase = match params.get("case") {
            None | Some("lower") => true,
            Some("keep") => false,
            Some(v) => return Err(format!("parameter `case` must be `lower` or `keep`, got `{v}`")),
        };
        Ok(Hashtags { lowercase })
    }

    fn count_row(&mut self, row: &[&str], counts: &mut Counts) -> Result<(), String> {
        count_hashtags(row[0], self.lowercase, counts);
        Ok(())
    }
}

wc_plugin_sdk::export_counter!(Hashtags);

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<(String, u64)> {
        let mut counts = Counts::default();
        count_hashtags(text, true, &mut counts);
        let mut v = counts.into_vec();
        v.sort();
        v
    }

    #[test]
    fn finds_tags_case_folded() {
        assert_eq!(tags("#Delay again #delay! #ÉTÉ"), vec![("#delay".into(), 2), ("#été".into(), 1)]);
    }

    #[test]
    fn ignores_hash_inside_words_urls_and_bare_hash() {
        assert!(tags("a#b https://x.co/#frag # ## 5#").is_empty());
    }

    #[test]
    fn tag_ends_at_punctuation() {
        assert_eq!(tags("(#fail_whale), #2017."), vec![("#2017".into(), 1), ("#fail_whale".into(), 1)]);
    }
}
