//! Deterministic generator of CSV files shaped like Kaggle's "Customer Support on
//! Twitter" (`twcs.csv`), so tests and benchmarks need no download, scale to any
//! size, and still hit the awkward cases of the real data (quoted multi-line text,
//! non-ASCII, empty fields, pandas' float-typed id column).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct GenOptions {
    /// Approximate total over all files (each file stops once it reaches its share).
    pub total_bytes: u64,
    /// Number of files; splitting lets readers and workers run in parallel.
    pub files: usize,
    /// Same seed, same bytes: benchmarks and tests are reproducible.
    pub seed: u64,
}

/// What was written; `bytes` is exact (sum of file sizes, headers included).
pub struct GenReport {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    pub rows: u64,
}

/// Fixed word lists; kept dense because they are data, not logic.
#[rustfmt::skip]
mod lists {
    pub const HEADER: [&str; 7] = ["tweet_id", "author_id", "inbound", "created_at", "text",
        "response_tweet_id", "in_response_to_tweet_id"];
    pub const COMPANIES: &[&str] = &["AppleSupport", "AmazonHelp", "Uber_Support", "SpotifyCares", "Delta",
        "Tesco", "AmericanAir", "comcastcares", "SouthwestAir", "British_Airways", "TMobileHelp",
        "VirginTrains", "hulu_support", "XboxSupport", "sprintcare", "Ask_Spectrum", "UPSHelp",
        "ChipotleTweets", "AskPlayStation", "VerizonSupport"];
    /// Most frequent ranks of the vocabulary, so the head of the Zipf curve looks like English.
    pub const COMMON: &str = "the to i and a you is my for it of in on this that me have with your not be are
        we can but at just so do get was no what please help all out now if they from as or how will our
        there one up about an had been when time has would us here any know thanks can't phone app order
        service account still again why back new need got an issue get would like been today day flight
        work working update iphone customer support email number call team again dm send us details
        look into sorry hear happy hi hello thank great good bad really very more some them than then
        their who which could should after before because over only also other into even most much many
        well way want going make made see said let tell give take use used try trying tried keep help
        hours days week minutes yesterday tomorrow last first next never always every still same another
        since while waiting wait late delayed cancelled refund charged money card payment store online
        delivery package shipping shipped arrived bag seat gate ticket booking plan internet wifi data
        network signal battery screen music song playlist premium driver ride car trip fix fixed broken
        problem error message login password code reset link check let's people something nothing
        anything everything someone anyone where there's ok okay yes love hate worst best ever literally";
    pub const ONSETS: &[&str] = &["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
        "t", "v", "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "sh", "st", "th", "tr", ""];
    pub const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "y", "ee"];
    pub const CODAS: &[&str] = &["", "", "", "n", "r", "s", "t", "l", "m", "ck", "nd", "st", "ng"];
    pub const EMOJI: &[&str] = &["😡", "🙏", "👍", "❤️", "😂", "🙄", "😭", "🔥", "✈️", "📱"];
    pub const ACCENTED: &[&str] = &["café", "naïve", "São Paulo", "Müller", "résumé", "jalapeño", "Zürich",
        "façade", "crème brûlée", "piñata"];
    pub const CJK: &[&str] = &["日本語のテキスト", "你好世界", "ありがとうございます", "客服", "안녕하세요"];
    pub const CYRILLIC: &[&str] = &["привет", "спасибо", "Москва", "заказ", "не работает"];
    pub const CONTRACTIONS: &[&str] = &["don't", "it's", "can't", "I'm", "won't", "doesn't", "I've",
        "you're", "isn't", "didn't", "it’s", "don’t", "can’t", "I’m", "that’s"];
    pub const HASHTAGS: &[&str] = &["fail", "customerservice", "help", "iPhone", "NotHappy", "2017",
        "Thanks"];
    pub const PUNCT: &[&str] = &[",", ",", ",", ".", ".", "!", "!!!", "?", "...", ";", ":", "?!"];
}
use lists::*;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const VOCAB: usize = 4000;
/// 2017-10-01T00:00:00Z, where the real data set starts.
const OCT1_2017: u64 = 1_506_816_000;

fn pick<'a, T: ?Sized>(rng: &mut ChaCha8Rng, items: &'a [&'a T]) -> &'a T {
    items[rng.random_range(0..items.len())]
}

/// Fixed vocabulary (independent of the user seed) plus a table mapping a random u16
/// to a Zipf(s=1) rank, so drawing a word costs one lookup instead of a search.
struct Vocab {
    words: Vec<String>,
    table: Vec<u16>,
}

fn word(rng: &mut ChaCha8Rng) -> &'static str {
    static V: OnceLock<Vocab> = OnceLock::new();
    let v = V.get_or_init(|| {
        let mut seen = HashSet::new();
        let mut words: Vec<String> = COMMON.split_whitespace().map(String::from).collect();
        words.retain(|w| seen.insert(w.clone()));
        let mut rng = ChaCha8Rng::seed_from_u64(0x7763_766f_6361_62);
        while words.len() < VOCAB {
            let mut w = String::new();
            for _ in 0..rng.random_range(1..=3) {
                for part in [ONSETS, VOWELS, CODAS] {
                    w.push_str(pick(&mut rng, part));
                }
            }
            if w.len() > 1 && seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let h: f64 = (1..=VOCAB).map(|r| 1.0 / r as f64).sum();
        let (mut r, mut cum) = (0usize, 1.0 / h);
        let table = (0..1u32 << 16).map(|k| {
            while cum < (k as f64 + 0.5) / 65536.0 && r + 1 < VOCAB {
                r += 1;
                cum += 1.0 / ((r + 1) as f64 * h);
            }
            r as u16
        });
        let table = table.collect();
        Vocab { words, table }
    });
    &v.words[v.table[rng.random::<u16>() as usize] as usize]
}

/// Generates one tweet text (exposed for tests of tokenizers).
pub fn tweet_text(rng: &mut ChaCha8Rng) -> String {
    let mut s = String::new();
    push_text(rng, &mut s);
    s
}

/// Appends a tweet body to `out` (the caller's buffer is reused: no per-row allocation).
fn push_text(rng: &mut ChaCha8Rng, out: &mut String) {
    let edge = rng.random_range(0..1000u32);
    out.push_str(match edge {
        0..=3 => return, // empty text
        4..=11 => " ",
        12..=19 => "  ",
        _ => "",
    });
    let n = 2 + (rng.random::<f64>().powi(2) * 38.0) as usize; // mostly short, some long
    let (mut cap, mut quoted) = (true, false);
    for i in 0..n {
        if i > 0 {
            out.push_str(match rng.random_range(0..1000u32) {
                0..=11 => "\n",
                12..=13 => "\r\n",
                14..=44 => "  ",
                _ => " ",
            });
        }
        if !quoted && rng.random_ratio(1, 40) {
            out.push('"');
            quoted = true;
        }
        let (x, w) = (rng.random::<u32>(), word(rng));
        let (a, b) = (x % 10_000, x / 10_000 % 100);
        // Token kind, in per mille: mostly Zipf-distributed words, plus the awkward cases.
        let _ = match rng.random_range(0..1000u32) {
            0..=14 => write!(out, "@{}", pick(rng, COMPANIES)),
            15..=29 => write!(out, "@{}", 100_000 + x % 800_000),
            30..=39 => write!(out, "#{}", pick(rng, HASHTAGS)),
            40..=49 => write!(out, "#{w}"),
            50..=59 => {
                out.push_str("https://t.co/");
                out.extend((0..10).map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char));
                Ok(())
            }
            60..=84 => out.write_str(pick(rng, EMOJI)),
            85..=94 => out.write_str(pick(rng, ACCENTED)),
            95..=99 => out.write_str(pick(rng, CJK)),
            100..=104 => out.write_str(pick(rng, CYRILLIC)),
            105..=114 => write!(out, "${}.{b:02}", a % 200),
            115..=121 => write!(out, "{}", 2000 + a % 19),
            122..=128 => write!(out, "{}%", b + 1),
            129..=135 => write!(out, "{a}"),
            136..=139 => write!(out, "{}:{:02}", a % 12 + 1, b % 60),
            140..=169 => out.write_str(pick(rng, CONTRACTIONS)),
            170..=179 => out.write_str(&w.to_uppercase()),
            _ if cap => write!(out, "{}{}", w[..1].to_ascii_uppercase(), &w[1..]),
            _ => out.write_str(w),
        };
        cap = false;
        if quoted && rng.random_ratio(1, 3) {
            out.push('"');
            quoted = false;
        }
        if rng.random_ratio(3, 25) {
            let p = pick(rng, PUNCT);
            out.push_str(p);
            cap = matches!(p.as_bytes()[0], b'.' | b'!' | b'?');
        }
    }
    if quoted {
        out.push('"');
    }
    out.push_str(match edge {
        990..=994 => " ",
        995.. => "  ",
        _ => "",
    });
}

/// Formats a Unix time like Twitter's API: `Tue Oct 31 22:10:47 +0000 2017`.
fn push_date(out: &mut String, t: u64) {
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MON: &str = "JanFebMarAprMayJunJulAugSepOctNovDec";
    let (days, secs) = ((t / 86_400) as i64, t % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (wd, mon) = (
        WD[(days + 4).rem_euclid(7) as usize],
        &MON[3 * m - 3..3 * m],
    );
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let _ = write!(out, "{wd} {mon} {d:02} {hh:02}:{mm:02}:{ss:02} +0000 {y}");
}

/// Counts bytes handed to the file, so a file can stop at its share without flushing per row.
struct Counting<W>(W, u64);

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.0.write(buf)?;
        self.1 += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Writes one file of reply threads until it holds `share` bytes; returns (bytes, rows).
fn write_file(path: &Path, mut rng: ChaCha8Rng, share: u64, mut id: u64) -> Result<(u64, u64)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let sink = Counting(BufWriter::with_capacity(1 << 20, file), 0);
    let mut wtr = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .buffer_capacity(4 << 10) // bounds how far the byte count lags, hence the overshoot
        .from_writer(sink);
    wtr.write_record(HEADER)?;
    let mut rows = 0;
    let mut bufs: [String; 6] = Default::default(); // reused across rows: no per-row allocation
    let [id_s, cust_s, date, text, resp, parent] = &mut bufs;
    'file: loop {
        let customer = rng.random_range(100_000..900_000u32);
        let company = pick(&mut rng, COMPANIES);
        cust_s.clear();
        let _ = write!(cust_s, "{customer}");
        let root = id;
        // Sometimes the opening tweet answers an older tweet that is not in the data.
        let pre = (root > 600 && rng.random_ratio(1, 10)).then(|| root - rng.random_range(1..500));
        // A thread is a lone tweet, a tweet with two company answers, or a back-and-forth.
        let (len, fan) = match rng.random_range(0..100u32) {
            0..=14 => (1, false),
            15..=24 => (3, true),
            _ => (rng.random_range(2..=5u64), false),
        };
        for j in 0..len {
            if wtr.get_ref().1 >= share {
                break 'file;
            }
            let inbound = j == 0 || (!fan && j % 2 == 0);
            for b in [&mut *id_s, &mut *date, &mut *text, &mut *resp, &mut *parent] {
                b.clear();
            }
            let _ = write!(id_s, "{id}");
            if rng.random_ratio(9, 10) {
                // Most tweets open by addressing the other side, as in the real data.
                let _ = write!(text, "@{} ", if inbound { company } else { &**cust_s });
            }
            let start = text.len();
            push_text(&mut rng, text);
            if text.len() == start {
                text.clear();
            } else if !inbound && rng.random_bool(0.4) {
                let (a, b) = (rng.random_range(b'A'..=b'Z'), rng.random_range(b'A'..=b'Z'));
                let _ = write!(text, " ^{}{}", a as char, b as char); // agent signature
            }
            push_date(date, OCT1_2017 + id * 2 + rng.random_range(0..2u64));
            let _ = match (fan, j) {
                (true, 0) => write!(resp, "{},{}", root + 1, root + 2),
                (false, _) if j + 1 < len => write!(resp, "{}", id + 1),
                _ => Ok(()),
            };
            let _ = match (j, fan) {
                (0, _) => pre.map_or(Ok(()), |p| write!(parent, "{p}.0")),
                (_, true) => write!(parent, "{root}.0"), // pandas writes this column as floats
                _ => write!(parent, "{}.0", id - 1),
            };
            let (author, inb) = if inbound {
                (&**cust_s, "True")
            } else {
                (company, "False")
            };
            wtr.write_record([&**id_s, author, inb, date, text, resp, parent])?;
            rows += 1;
            id += 1;
        }
    }
    let mut sink = wtr.into_inner().map_err(|e| e.into_error())?;
    sink.flush()?;
    Ok((sink.1, rows))
}

/// Writes `opts.files` files named `twcs-00000.csv`, `twcs-00001.csv`, ... into `dir` (created if missing), together about `total_bytes` (each file within a few KB of total/files; stop a file once it reaches its share).
///
/// File `i` uses ChaCha stream `i` of `seed`, so any file can be regenerated alone.
pub fn generate(dir: &Path, opts: &GenOptions) -> Result<GenReport> {
    if opts.files == 0 {
        bail!("GenOptions::files must be at least 1");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = opts.files as u64;
    // Rows are > 32 bytes, so this id stride keeps ids increasing across files.
    let stride = opts.total_bytes / n / 32 + 1024;
    let (mut files, mut bytes, mut rows) = (Vec::new(), 0, 0);
    for i in 0..n {
        let path = dir.join(format!("twcs-{i:05}.csv"));
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        rng.set_stream(i);
        let share = opts.total_bytes / n + u64::from(i < opts.total_bytes % n);
        let (b, r) = write_file(&path, rng, share, i * stride + 1)?;
        (bytes, rows) = (bytes + b, rows + r);
        files.push(path);
    }
    Ok(GenReport { files, bytes, rows })
}

/// How `gen-data --compress` compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Multi-member gzip (like `pigz --independent` or bgzip).
    Gzip,
    /// zstd, one frame per piece.
    Zstd,
}

impl Codec {
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "gz",
            Codec::Zstd => "zst",
        }
    }
}

impl std::str::FromStr for Codec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Codec> {
        match s {
            "gz" | "gzip" => Ok(Codec::Gzip),
            "zst" | "zstd" => Ok(Codec::Zstd),
            other => bail!("unknown compression `{other}` (known: gz, zst)"),
        }
    }
}

/// Compresses `src` into `src.gz` / `src.zst` as independent members
/// (frames) of `member_bytes` of input each, cut anywhere (records cross
/// member boundaries, as they do in real files). Returns the new path and
/// its size.
pub fn compress_file(src: &Path, codec: Codec, member_bytes: usize) -> Result<(PathBuf, u64)> {
    let mut name = src.as_os_str().to_owned();
    name.push(".");
    name.push(codec.extension());
    let dest = PathBuf::from(name);
    compress_to(src, &dest, codec, member_bytes)?;
    let size = std::fs::metadata(&dest)?.len();
    Ok((dest, size))
}

/// [`compress_file`] into a path of the caller's choosing.
pub fn compress_to(src: &Path, dest: &Path, codec: Codec, member_bytes: usize) -> Result<()> {
    use std::io::Read;
    let mut input = io::BufReader::with_capacity(1 << 20, File::open(src).with_context(|| format!("opening {}", src.display()))?);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dest).with_context(|| format!("creating {}", dest.display()))?);
    let mut chunk = vec![0u8; member_bytes.max(1)];
    loop {
        let mut filled = 0;
        while filled < chunk.len() {
            match input.read(&mut chunk[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        match codec {
            Codec::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
                enc.write_all(&chunk[..filled])?;
                enc.finish()?;
            }
            Codec::Zstd => out.write_all(&zstd::bulk::compress(&chunk[..filled], 3)?)?,
        }
        if filled < chunk.len() {
            break;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn gen(dir: &Path, total_bytes: u64, files: usize, seed: u64) -> GenReport {
        let opts = GenOptions {
            total_bytes,
            files,
            seed,
        };
        generate(dir, &opts).unwrap()
    }

    /// All records of all files, parsed by the csv crate (fails on a ragged record).
    fn records(r: &GenReport) -> Vec<csv::StringRecord> {
        let mut out = Vec::new();
        for p in &r.files {
            let mut rd = csv::ReaderBuilder::new();
            let mut rd = rd.has_headers(true).from_path(p).unwrap();
            assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), HEADER);
            out.extend(rd.records().map(Result::unwrap));
        }
        out
    }

    #[test]
    fn deterministic_per_seed_and_per_file() {
        let t = tempfile::tempdir().unwrap();
        let run = |sub: &str, total, files, seed| -> Vec<Vec<u8>> {
            let r = gen(&t.path().join(sub), total, files, seed);
            r.files.iter().map(|p| fs::read(p).unwrap()).collect()
        };
        let a = run("a", 200_000, 2, 42);
        assert_eq!(a, run("b", 200_000, 2, 42));
        assert_ne!(a, run("c", 200_000, 2, 43));
        // Same share and seed: file 0 does not depend on how many siblings it has.
        assert_eq!(a[0], run("d", 100_000, 1, 42)[0]);
        let mut r = [5, 5].map(ChaCha8Rng::seed_from_u64);
        assert_eq!(tweet_text(&mut r[0]), tweet_text(&mut r[1]));
    }

    #[test]
    fn file_count_and_sizes() {
        let t = tempfile::tempdir().unwrap();
        let total = 3 * 150_000 + 2;
        let r = gen(&t.path().join("new/sub"), total, 3, 1);
        assert_eq!(r.files.len(), 3);
        let mut sum = 0;
        for (i, p) in r.files.iter().enumerate() {
            assert!(p.ends_with(format!("twcs-{i:05}.csv")));
            let (len, share) = (fs::metadata(p).unwrap().len(), total / 3 + u64::from(i < 2));
            assert!(
                len >= share && len < share + 8192,
                "file {i}: {len} vs {share}"
            );
            sum += len;
        }
        assert_eq!((sum, records(&r).len() as u64), (r.bytes, r.rows));
    }

    #[test]
    fn every_record_has_seven_plausible_fields() {
        let t = tempfile::tempdir().unwrap();
        let mut last_id = 0;
        for rec in records(&gen(t.path(), 400_000, 2, 9)) {
            assert_eq!(rec.len(), 7);
            let id: u64 = rec[0].parse().unwrap();
            assert!(id > last_id, "ids must increase, also across files");
            last_id = id;
            assert!(matches!(&rec[2], "True" | "False"));
            assert!(
                rec[3].ends_with(" +0000 2017") && rec[3].len() == 30,
                "{:?}",
                &rec[3]
            );
            let int = |x: &str| x.parse::<u64>().is_ok();
            assert!(rec[5].is_empty() || rec[5].split(',').all(int));
            assert!(rec[6].is_empty() || rec[6].strip_suffix(".0").is_some_and(int));
        }
    }

    #[test]
    fn text_column_has_every_feature() {
        let t = tempfile::tempdir().unwrap();
        let recs = records(&gen(t.path(), 1 << 20, 1, 3));
        let has = |f: &dyn Fn(&str) -> bool| recs.iter().any(|r| f(&r[4]));
        let needles = [
            "\n",
            "\r\n",
            ",",
            "\"",
            "@",
            "#",
            "https://t.co/",
            "  ",
            "’",
            "é",
            "$",
        ];
        for needle in needles {
            assert!(has(&|t| t.contains(needle)), "no text contains {needle:?}");
        }
        assert!(has(&|t| !t.is_ascii()) && has(&str::is_empty));
        assert!(has(&|t| t.starts_with(' ')) && has(&|t| t.ends_with(' ')));
        assert!(
            has(&|t| t.contains("你好世界") || t.contains("日本語")),
            "no CJK"
        );
    }

    #[test]
    fn dates_and_zipf() {
        let mut s = String::new();
        push_date(&mut s, 1_509_487_847);
        assert_eq!(s, "Tue Oct 31 22:10:47 +0000 2017");
        let mut counts = std::collections::HashMap::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100_000 {
            *counts.entry(word(&mut rng)).or_insert(0u32) += 1;
        }
        assert!(counts["the"] > 5_000, "head must dominate");
        assert!(counts.len() > 3_000, "tail must be long: {}", counts.len());
    }
}
