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

use wc_plugin_sdk::{Counter, Counts, Info, Param, Params};

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
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_'; // the same answer, without the Unicode tables
    }
    c.is_alphanumeric() || matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{20d0}'..='\u{20ff}')
        || (c > '\u{8ff}' && c < '\u{e00}' && !c.is_whitespace()) // Indic scripts' vowel signs and viramas
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}' | '\u{31f0}'..='\u{31ff}' | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{2fa1f}')
}

/// A word character that is not a CJK character (those are keys alone).
fn is_word(c: char) -> bool {
    is_word_char(c) && !is_cjk(c)
}

#[inline(always)]
fn is_url(chunk: &str) -> bool {
    // Most chunks fail on the first byte, without a call.
    matches!(chunk.as_bytes().first(), Some(b'h' | b'H' | b'w' | b'W')) && has_url_prefix(chunk)
}

#[inline(never)]
fn has_url_prefix(chunk: &str) -> bool {
    let starts = |prefix: &str| chunk.as_bytes().get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()));
    starts("http://") || starts("https://") || starts("www.")
}

/// The rule, usable natively (the benchmark and tests use this same code).
///
/// Chunks are first cut at ASCII white space; an all-ASCII chunk (most of
/// them) takes a byte-level path whose keys are slices of the text, the
/// others are cut again at Unicode white space and go through the general,
/// char-level path. Both give what the general path alone would (a test
/// checks them against the rule as first written).
pub fn count_text(text: &str, rules: &Rules, counts: &mut Counts) {
    let mut key = String::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if is_ascii_space(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        let mut ascii = true;
        loop {
            at = next_special(bytes, at);
            match bytes.get(at) {
                Some(&b) if is_ascii_space(b) => break,
                Some(&b) => {
                    ascii &= b.is_ascii();
                    at += 1;
                }
                None => break,
            }
        }
        let piece = &text[start..at]; // cut at ASCII bytes: char boundaries
        if !ascii {
            for chunk in piece.split(char::is_whitespace).filter(|c| !c.is_empty()) {
                if is_url(chunk) {
                    count_url(chunk, rules, counts);
                } else {
                    count_chunk(chunk, rules, &mut key, counts);
                }
            }
        } else if is_url(piece) {
            count_url(piece, rules, counts);
        } else {
            count_ascii_chunk(text, start, at, rules, &mut key, counts);
        }
    }
}

#[inline(never)]
fn count_url(chunk: &str, rules: &Rules, counts: &mut Counts) {
    if rules.keep_urls {
        counts.add(chunk.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '/'));
    }
}

/// The index of the first byte from `at` that is below `!` (white space
/// or another control character) or not ASCII, or `bytes.len()`. Looks at
/// 8 bytes per step: most of a tweet is printable ASCII.
fn next_special(bytes: &[u8], mut at: usize) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TO_21: u64 = 0x5f5f_5f5f_5f5f_5f5f; // 0x21 + 0x5f = 0x80
    while at + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        // Top bit of a byte set when it is below 0x21 or at least 0x80 (no
        // carry crosses bytes: (b & 0x7f) + 0x5f <= 0xde).
        let special = (!((word & LOW7) + TO_21) | word) & !LOW7;
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && (0x21..0x80).contains(&bytes[at]) {
        at += 1;
    }
    at
}

/// `char::is_whitespace` for an ASCII byte (U+0009 to U+000D and space).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Per byte: [`WORD`], [`UPPER`] and [`NOT_DIGIT`] flags (none for
/// non-ASCII bytes).
static ASCII_CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            table[b] = WORD | if c.is_ascii_uppercase() { UPPER } else { 0 } | if c.is_ascii_digit() { 0 } else { NOT_DIGIT };
        }
        b += 1;
    }
    table
};
/// [`is_word_char`] for an ASCII byte.
const WORD: u8 = 1;
const UPPER: u8 = 2;
const NOT_DIGIT: u8 = 4;

/// [`count_chunk`] for the chunk `text[start..end]` of ASCII only (no CJK,
/// no `’`). A key is always a slice of the text, lowercased through `key`
/// when needed.
#[inline(always)]
fn count_ascii_chunk(text: &str, start: usize, end: usize, rules: &Rules, key: &mut String, counts: &mut Counts) {
    let b = text.as_bytes();
    let is_word_at = |i: usize| i < end && ASCII_CLASS[b[i] as usize] & WORD != 0;
    let mut i = start;
    while i < end {
        let c = b[i];
        let sigil = (c == b'@' || c == b'#') && is_word_at(i + 1) && !(i > start && is_word_at(i - 1));
        if !sigil && ASCII_CLASS[c as usize] & WORD == 0 {
            i += 1;
            continue;
        }
        let first = i;
        if sigil {
            i += 1;
        }
        let mut seen = 0; // the flags of the key's word characters, or-ed
        loop {
            i = word_run(b, i, end, &mut seen);
            if i >= end {
                break;
            }
            // b[i] ends a run of at least one word character.
            let joins = !sigil
                && is_word_at(i + 1)
                && match b[i] {
                    b'\'' | b'-' => true,
                    b'.' | b',' => b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit(),
                    _ => false,
                };
            if !joins {
                break;
            }
            i += 1;
        }
        let keep = match (sigil, c) {
            (true, b'@') => rules.keep_mentions,
            (true, _) => rules.keep_hashtags,
            (false, _) => rules.keep_numbers || seen & NOT_DIGIT != 0,
        };
        if keep {
            let token = &text[first..i];
            if rules.lowercase && seen & UPPER != 0 {
                key.clear();
                key.push_str(token);
                key.make_ascii_lowercase();
                counts.add(key);
            } else {
                counts.add(token);
            }
        }
    }
}

/// The end of the run of word bytes starting at `at` (at most `end`), with
/// the [`ASCII_CLASS`] flags of the run or-ed into `seen`. (Classifying 8
/// bytes per step with SWAR was measured: +6% in WASM, -3% natively; not
/// worth its bit tricks.)
#[inline(always)]
fn word_run(b: &[u8], mut at: usize, end: usize, seen: &mut u8) -> usize {
    while at < end {
        let k = ASCII_CLASS[b[at] as usize];
        if k & WORD == 0 {
            break;
        }
        *seen |= k;
        at += 1;
    }
    at
}

/// The characters of a chunk with one character of context on each side,
/// so that the rules can look back and ahead without collecting the chunk.
struct Window<'a> {
    rest: std::str::Chars<'a>,
    prev: Option<char>,
    cur: Option<char>,
    next: Option<char>,
}

impl<'a> Window<'a> {
    fn new(chunk: &'a str) -> Self {
        let mut rest = chunk.chars();
        let (cur, next) = (rest.next(), rest.next());
        Window { rest, prev: None, cur, next }
    }

    fn advance(&mut self) {
        (self.prev, self.cur, self.next) = (self.cur, self.next, self.rest.next());
    }
}

#[inline(never)] // the rarer path: keep it out of the ASCII loop
fn count_chunk(chunk: &str, rules: &Rules, key: &mut String, counts: &mut Counts) {
    let mut w = Window::new(chunk);
    while let Some(c) = w.cur {
        if is_cjk(c) {
            key.clear();
            key.push(c);
            counts.add(key);
            w.advance();
            continue;
        }
        let sigil = (c == '@' || c == '#') && w.next.is_some_and(is_word) && !w.prev.is_some_and(is_word_char);
        if !sigil && !is_word(c) {
            w.advance();
            continue;
        }
        key.clear();
        let mut only_digits = true;
        if sigil {
            key.push(c);
            w.advance();
        }
        while let Some(d) = w.cur {
            if is_word(d) {
                only_digits &= d.is_ascii_digit();
                push_char(key, d, rules.lowercase);
                w.advance();
                continue;
            }
            let joins = !sigil
                && w.next.is_some_and(is_word)
                && match (w.prev, d) {
                    (None, _) => false,
                    (Some(_), '\'' | '\u{2019}' | '-') => true,
                    (Some(p), '.' | ',') => p.is_ascii_digit() && w.next.is_some_and(|n| n.is_ascii_digit()),
                    _ => false,
                };
            if !joins {
                break;
            }
            key.push(if d == '\u{2019}' { '\'' } else { d });
            w.advance();
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
    if c.is_ascii() {
        key.push(if lowercase { c.to_ascii_lowercase() } else { c });
    } else if lowercase && !c.is_lowercase() {
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
            params: &[
                Param { name: "case", default: "lower", help: "`lower` lowercases every key, `keep` keeps the case" },
                Param { name: "urls", default: "drop", help: "`keep` counts URLs as written (minus trailing punctuation)" },
                Param { name: "mentions", default: "keep", help: "`drop` skips @mentions" },
                Param { name: "hashtags", default: "keep", help: "`drop` skips #hashtags" },
                Param { name: "numbers", default: "keep", help: "`drop` skips numbers (keys of digits, `.` and `,`)" },
            ],
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

    /// The rule as first written (collecting each chunk into a `Vec<char>`),
    /// kept as the reference for the faster `count_text`.
    mod reference {
        use super::super::*;

        pub fn count_text(text: &str, rules: &Rules, counts: &mut Counts) {
            let mut key = String::new();
            for chunk in text.split(char::is_whitespace) {
                if chunk.is_empty() {
                    continue;
                }
                let head = chunk.get(..8).unwrap_or(chunk).to_ascii_lowercase();
                if head.starts_with("http://") || head.starts_with("https://") || head.starts_with("www.") {
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
                        if rules.lowercase && !d.is_lowercase() {
                            key.extend(d.to_lowercase());
                        } else {
                            key.push(d);
                        }
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
    }

    #[test]
    fn same_counts_as_the_reference_rule() {
        const PIECES: &[&str] = &[
            "a", "B", "z", "Q", "1", "9", "0", ".", ",", "'", "-", "@", "#", "_", " ", "  ", "\n", "\t", "Ab", "wWw.",
            "\u{2019}", "\u{a0}", "日", "の", "é", "É", "İ", "ß", "Σ", "\u{301}", "\u{94d}", "😀", "❤\u{fe0f}", "!", "?", "$", "%", "/", ":",
            "http://", "HTTPS://", "www.", "WwW.", "htt", "x.co/", "\u{2028}", "ǅ", "Ⅻ", "²", "٣",
            "\u{1}", "\u{1f}", "\u{7f}", "\r\n", "\u{b}", "\u{85}", "\u{3000}", "abcdefghij", "A1_b-2.3,4'5",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let all_rules = [
            Rules::default(),
            Rules { lowercase: false, keep_urls: true, keep_mentions: false, keep_hashtags: false, keep_numbers: false },
            Rules { lowercase: true, keep_urls: true, keep_mentions: false, keep_hashtags: true, keep_numbers: false },
            Rules { lowercase: false, keep_urls: false, keep_mentions: true, keep_hashtags: false, keep_numbers: true },
        ];
        // Half of the texts are pure ASCII, to exercise the byte-level path.
        let ascii: Vec<&str> = PIECES.iter().copied().filter(|p| p.is_ascii()).collect();
        for round in 0..40_000 {
            let len = next(24);
            let alphabet = if round % 2 == 0 { &ascii[..] } else { PIECES };
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let rules = &all_rules[round / 2 % all_rules.len()];
            let (mut got, mut want) = (Counts::default(), Counts::default());
            count_text(&text, rules, &mut got);
            reference::count_text(&text, rules, &mut want);
            let (mut got, mut want) = (got.into_vec(), want.into_vec());
            got.sort();
            want.sort();
            assert_eq!(got, want, "text {text:?} with {rules:?}");
        }
    }

    #[test]
    fn next_special_finds_controls_spaces_and_non_ascii() {
        let text = "abcdefghijklmnop qrstuvwxyz\t0123456789é!\u{1}~";
        let bytes = text.as_bytes();
        for from in 0..=bytes.len() {
            let want = (from..bytes.len()).find(|&i| bytes[i] < 0x21 || bytes[i] >= 0x80).unwrap_or(bytes.len());
            assert_eq!(next_special(bytes, from), want, "from {from}");
        }
    }

    #[test]
    fn params_are_validated() {
        let bad = Params(vec![("case".into(), "upper".into())]);
        assert!(Rules::from_params(&bad).unwrap_err().contains("case"));
        let unknown = Params(vec![("lang".into(), "en".into())]);
        assert!(Rules::from_params(&unknown).unwrap_err().contains("lang"));
    }
}
