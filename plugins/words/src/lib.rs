//! `words`: the default tokenizer, made for tweets. The rules:
//!
//! 1. Whitespace (any Unicode white space) separates chunks.
//! 2. A chunk starting with `http://`, `https://` or `www.` is a URL and is
//!    dropped (`urls=keep` counts it as written, minus trailing punctuation).
//! 3. Inside a chunk, a word is a run of word characters: Unicode letters and
//!    digits, `_`, and combining marks. An apostrophe (`'` or `’`, both
//!    written `'`) or a hyphen joins two word characters (`don't`, `e-mail`);
//!    `.` or `,` joins two digits (`5.99`, `1,000`). Everything else —
//!    punctuation, symbols, emoji — separates words and is not counted.
//! 4. `@` or `#` directly before a word (and not after one) makes a mention or
//!    hashtag key that keeps its sigil: `@AmazonHelp` → `@amazonhelp`.
//!    Sigil keys take letters, digits and `_` only. `mentions=drop` and
//!    `hashtags=drop` skip them.
//! 5. Han ideographs and kana have no spaces between words: each such
//!    character is its own key (`日本語` → `日`, `本`, `語`).
//! 6. Keys are lowercased (Unicode full lowercase) unless `case=keep`.
//!    No other normalisation: `café` and `cafe` are different keys.
//! 7. Numbers (keys of digits, `.` and `,` only) count unless `numbers=drop`.

use wc_plugin_sdk::{Counter, Counts, Info, Params};

/// The tokenizer's settings, from the plugin parameters.
#[derive(Clone, Debug)]
pub struct Rules {
    pub lowercase: bool,
    pub keep_urls: bool,
    pub keep_mentions: bool,
    pub keep_hashtags: bool,
    pub keep_numbers: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { lowercase: true, keep_urls: false, keep_mentions: true, keep_hashtags: true, keep_numbers: true }
    }
}

impl Rules {
    pub const PARAMS: &'static [&'static str] = &["case", "urls", "mentions", "hashtags", "numbers"];

    pub fn from_params(params: &Params) -> Result<Rules, String> {
        params.check_known(Self::PARAMS)?;
        let choice = |key: &str, yes: &str, no: &str, default: bool| match params.get(key) {
            None => Ok(default),
            Some(v) if v == yes => Ok(true),
            Some(v) if v == no => Ok(false),
            Some(v) => Err(format!("parameter `{key}` must be `{yes}` or `{no}`, got `{v}`")),
        };
        Ok(Rules {
            lowercase: choice("case", "lower", "keep", true)?,
            keep_urls: choice("urls", "keep", "drop", false)?,
            keep_mentions: choice("mentions", "keep", "drop", true)?,
            keep_hashtags: choice("hashtags", "keep", "drop", true)?,
            keep_numbers: choice("numbers", "keep", "drop", true)?,
        })
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{20d0}'..='\u{20ff}')
        || (c > '\u{8ff}' && c < '\u{e00}' && !c.is_whitespace()) // Indic scripts' vowel signs and viramas
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}' | '\u{31f0}'..='\u{31ff}' | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{2fa1f}')
}

fn is_url(chunk: &str) -> bool {
    let head = chunk.get(..8).unwrap_or(chunk).to_ascii_lowercase();
    head.starts_with("http://") || head.starts_with("https://") || head.starts_with("www.")
}

/// The rule, usable natively (the benchmark and tests use this same code).
pub fn count_text(text: &str, rules: &Rules, counts: &mut Counts) {
    let mut key = String::new();
    for chunk in text.split(char::is_whitespace) {
        if chunk.is_empty() {
            continue;
        }
        if is_url(chunk) {
            if rules.keep_urls {
                counts.add(chunk.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '/'));
            }
            continue;
        }
        count_chunk(chunk, rules, &mut key, counts);
    }
}

fn count_chunk(chunk: &str, rules: &Rules, key: &mut String, counts: &mut Counts) {
    let chars: Vec<char> = chunk.chars().collect();
    let word_at = |i: usize| chars.get(i).is_some_and(|&c| is_word_char(c) && !is_cjk(c));
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_cjk(c) {
            key.clear();
            key.push(c);
            counts.add(key);
            i += 1;
            continue;
        }
        let sigil = (c == '@' || c == '#') && word_at(i + 1) && !(i > 0 && is_word_char(chars[i - 1]));
        if !sigil && !word_at(i) {
            i += 1;
            continue;
        }
        key.clear();
        let mut only_digits = true;
        if sigil {
            key.push(c);
            i += 1;
        }
        while i < chars.len() {
            let d = chars[i];
            if word_at(i) {
                only_digits &= d.is_ascii_digit();
                push_char(key, d, rules.lowercase);
                i += 1;
                continue;
            }
            let joins = !sigil
                && i > 0
                && word_at(i + 1)
                && match d {
                    '\'' | '\u{2019}' | '-' => true,
                    '.' | ',' => chars[i - 1].is_ascii_digit() && chars[i + 1].is_ascii_digit(),
                    _ => false,
                };
            if !joins {
                break;
            }
            key.push(if d == '\u{2019}' { '\'' } else { d });
            i += 1;
        }
        let keep = match key.as_bytes()[0] {
            b'@' => rules.keep_mentions,
            b'#' => rules.keep_hashtags,
            _ => rules.keep_numbers || !only_digits,
        };
        if keep {
            counts.add(key);
        }
    }
}

fn push_char(key: &mut String, c: char, lowercase: bool) {
    if lowercase && !c.is_lowercase() {
        key.extend(c.to_lowercase());
    } else {
        key.push(c);
    }
}

pub struct Words {
    rules: Rules,
}

impl Counter for Words {
    fn info() -> Info {
        Info {
            name: "words",
            version: env!("CARGO_PKG_VERSION"),
            description: "Words of the text column for tweets: lowercased, URLs dropped, @mentions and #hashtags kept",
            columns: &["text"],
        }
    }

    fn new(params: &Params) -> Result<Self, String> {
        Ok(Words { rules: Rules::from_params(params)? })
    }

    fn count_row(&mut self, row: &[&str], counts: &mut Counts) -> Result<(), String> {
        count_text(row[0], &self.rules, counts);
        Ok(())
    }
}

wc_plugin_sdk::export_counter!(Words);

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, u64)> {
        words_with(text, &Rules::default())
    }

    fn words_with(text: &str, rules: &Rules) -> Vec<(String, u64)> {
        let mut counts = Counts::default();
        count_text(text, rules, &mut counts);
        let mut v = counts.into_vec();
        v.sort();
        v
    }

    fn keys(text: &str) -> Vec<String> {
        words(text).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn lowercases_and_strips_punctuation() {
        assert_eq!(words("Hello, hello! HELLO?"), vec![("hello".into(), 3)]);
    }

    #[test]
    fn drops_urls_unless_asked() {
        assert_eq!(keys("see https://t.co/AbC123 now"), vec!["now", "see"]);
        let rules = Rules { keep_urls: true, ..Rules::default() };
        assert_eq!(words_with("https://t.co/AbC.", &rules), vec![("https://t.co/AbC".into(), 1)]);
    }

    #[test]
    fn mentions_and_hashtags_keep_their_sigil() {
        assert_eq!(keys("@AmazonHelp #Fail! a@b"), vec!["#fail", "@amazonhelp", "a", "b"]);
    }

    #[test]
    fn apostrophes_hyphens_and_decimals_join() {
        assert_eq!(keys("Don’t e-mail $5.99 1,000 'quoted' -x- 3."), vec!["1,000", "3", "5.99", "don't", "e-mail", "quoted", "x"]);
    }

    #[test]
    fn cjk_counts_per_character_and_accents_are_kept() {
        assert_eq!(keys("日本 Café naïve"), vec!["café", "naïve", "日", "本"]);
    }

    #[test]
    fn emoji_separate_words() {
        assert_eq!(keys("great😡service 👍"), vec!["great", "service"]);
    }

    #[test]
    fn params_are_validated() {
        let bad = Params(vec![("case".into(), "upper".into())]);
        assert!(Rules::from_params(&bad).unwrap_err().contains("case"));
        let unknown = Params(vec![("lang".into(), "en".into())]);
        assert!(Rules::from_params(&unknown).unwrap_err().contains("lang"));
    }
}
