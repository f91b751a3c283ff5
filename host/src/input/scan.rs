//! Where records end, found the way the workers' parser (csv-core with the
//! settings of `csv_builder`: `"` quotes, doubled quotes, CR, LF or CRLF
//! ends a record, blank lines skipped, a UTF-8 BOM dropped at the start)
//! finds them, without copying a field. The planner needs only that, and a
//! full parse of a large file competed with the workers for the cores.
//!
//! Hand-written rather than csv-core's own DFA because that DFA steps byte
//! by byte and writes every field out (0.62 s for the 537 MB bench file,
//! against 0.24 s here, most of it the kernel's copy). Here each 64-byte
//! block is turned into bitmasks (SSE2 on x86_64) and only the bytes that
//! can change the state are visited: outside quotes, CR, LF and a quote
//! right after a delimiter, a terminator or another quote (elsewhere a
//! quote is a plain byte of an unquoted field); inside quotes, the next
//! quote. Delimiters are not visited: one matters only when a quote follows. The transitions are
//! csv-core's (`transition_nfa` in csv-core 0.1), state for state, and the
//! split property test (`split_fuzz`) holds the planner to a whole-file
//! parse.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between records: CR and LF are skipped (blank lines).
    StartRecord,
    /// After a delimiter, or at a record's first byte.
    StartField,
    /// In an unquoted field: quotes are plain bytes here.
    InField,
    /// In a quoted field: everything up to the next quote is its text.
    InQuoted,
    /// A quote seen in a quoted field: a second quote is an escaped one.
    QuoteInQuoted,
    /// A record ended with CR: an LF right after it belongs to it.
    AfterCr,
}

/// Bitmasks of a block of up to 64 bytes: bit i is byte i.
#[derive(Clone, Copy)]
struct Masks {
    quotes: u64,
    delimiters: u64,
    /// What is visited outside quotes: CR, LF, and each quote that follows
    /// a delimiter, CR, LF or quote (or opens the block).
    unquoted: u64,
}

impl Masks {
    fn new(quotes: u64, delimiters: u64, terminators: u64) -> Masks {
        let unquoted = terminators | (quotes & (((delimiters | terminators | quotes) << 1) | 1));
        Masks { quotes, delimiters, unquoted }
    }
}

/// Feeds bytes in order (any chunking) and reports each record's end: the
/// offset just past its terminator.
#[derive(Debug)]
pub(super) struct RecordScanner {
    state: State,
    delimiter: u8,
    /// Offset of the next byte fed.
    offset: u64,
    /// Offset of the first byte not yet stepped through (the bytes between
    /// two visited ones are stepped through as one: see `plain_run`).
    next: u64,
    /// Was the last byte of the previous block a delimiter?
    delimiter_before: bool,
    records: u64,
}

impl RecordScanner {
    pub fn new(delimiter: u8) -> RecordScanner {
        RecordScanner { state: State::StartRecord, delimiter, offset: 0, next: 0, delimiter_before: false, records: 0 }
    }

    /// Scans the next bytes of the input (the first call with at least its
    /// first 3 bytes, for the BOM check), calling `on_end(offset, records)`
    /// after each record: the offset where the next record may begin and the
    /// number of records ended up to there.
    pub fn scan(&mut self, mut bytes: &[u8], mut on_end: impl FnMut(u64, u64)) {
        if self.offset == 0 && bytes.starts_with(b"\xef\xbb\xbf") {
            // csv-core drops a BOM that opens its input.
            bytes = &bytes[3..];
            (self.offset, self.next) = (3, 3);
        }
        let mut blocks = bytes.chunks_exact(64);
        for block in blocks.by_ref() {
            let masks = classify_64(block.try_into().expect("64 bytes"), self.delimiter);
            self.scan_block(block, masks, &mut on_end);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let masks = classify(rest, self.delimiter);
            self.scan_block(rest, masks, &mut on_end);
        }
    }

    /// Visits the bytes of one block that can change the state, in order.
    fn scan_block(&mut self, block: &[u8], masks: Masks, on_end: &mut impl FnMut(u64, u64)) {
        let base = self.offset;
        let mut from = 0;
        while from < block.len() {
            let visit = if self.state == State::InQuoted { masks.quotes } else { masks.unquoted };
            let pending = visit & (u64::MAX << from);
            if pending == 0 {
                break;
            }
            let i = pending.trailing_zeros() as usize;
            let at = base + i as u64;
            if at > self.next {
                self.plain_run(self.next, on_end);
            }
            let after_delimiter = if i == 0 { self.delimiter_before } else { masks.delimiters & (1 << (i - 1)) != 0 };
            self.visit(block[i], at, after_delimiter, on_end);
            self.next = at + 1;
            from = i + 1;
        }
        self.offset += block.len() as u64;
        if self.offset > self.next {
            self.plain_run(self.next, on_end);
            self.next = self.offset;
        }
        self.delimiter_before = block.last() == Some(&self.delimiter);
    }

    /// Steps through bytes that are not visited (see [`Masks::unquoted`]),
    /// from `at`: after the first, the state no longer changes, and a
    /// delimiter among them acts as a plain byte unless a quote follows,
    /// which `visit` sees.
    fn plain_run(&mut self, at: u64, on_end: &mut impl FnMut(u64, u64)) {
        self.state = match self.state {
            State::InQuoted => State::InQuoted,
            State::AfterCr => {
                self.end(at, on_end);
                State::InField
            }
            State::StartRecord | State::StartField | State::InField | State::QuoteInQuoted => State::InField,
        }
    }

    /// A quote, delimiter, CR or LF at `at`; `after_delimiter`: the byte
    /// before it, not visited, is a delimiter.
    fn visit(&mut self, c: u8, at: u64, after_delimiter: bool, on_end: &mut impl FnMut(u64, u64)) {
        let (quote, delimiter) = (b'"', self.delimiter);
        let is_term = c == b'\r' || c == b'\n';
        // The order of the tests is csv-core's (it matters when the
        // delimiter is a quote, CR or LF).
        let state = self.state;
        self.state = match state {
            State::StartRecord if is_term => State::StartRecord,
            State::StartRecord | State::StartField if c == quote => State::InQuoted,
            State::StartRecord | State::StartField if c == delimiter => State::StartField,
            State::StartRecord | State::StartField => self.end_record(c, at, on_end),
            // A delimiter not visited, outside quotes (else this would be
            // InQuoted): this quote opens a field.
            State::InField if c == quote && after_delimiter => State::InQuoted,
            State::InField if c == delimiter => State::StartField,
            State::InField if is_term => self.end_record(c, at, on_end),
            State::InField => State::InField,
            State::InQuoted if c == quote => State::QuoteInQuoted,
            State::InQuoted => State::InQuoted,
            State::QuoteInQuoted if c == quote => State::InQuoted,
            State::QuoteInQuoted if c == delimiter => State::StartField,
            State::QuoteInQuoted if is_term => self.end_record(c, at, on_end),
            State::QuoteInQuoted => State::InField,
            State::AfterCr if c == b'\n' => {
                self.end(at + 1, on_end);
                State::StartRecord
            }
            State::AfterCr => {
                // The record ended at the CR; this byte begins what follows.
                self.end(at, on_end);
                self.state = State::StartRecord;
                self.visit(c, at, after_delimiter, on_end);
                self.state
            }
        }
    }

    /// The terminator `c` at `at` ends a record: an LF at once, a CR once
    /// the next byte is seen.
    fn end_record(&mut self, c: u8, at: u64, on_end: &mut impl FnMut(u64, u64)) -> State {
        if c == b'\r' {
            State::AfterCr
        } else {
            self.end(at + 1, on_end);
            State::StartRecord
        }
    }

    fn end(&mut self, at: u64, on_end: &mut impl FnMut(u64, u64)) {
        self.records += 1;
        on_end(at, self.records);
    }

    /// The end of the input: the records of the whole input, counting a
    /// last one left open (no terminator, or even an unclosed quote), as
    /// csv-core does.
    #[cfg(test)]
    pub fn finish(&self) -> u64 {
        self.records + u64::from(self.state != State::StartRecord)
    }
}

/// [`classify`] of a whole block, 16 bytes at a time. SSE2 is part of
/// x86_64's baseline, so no detection is needed; elsewhere the plain loop.
#[cfg(target_arch = "x86_64")]
fn classify_64(block: &[u8; 64], delimiter: u8) -> Masks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let (mut quotes, mut delimiters, mut terminators) = (0u64, 0u64, 0u64);
    // SAFETY: SSE2 is always available on x86_64; each unaligned load reads
    // 16 bytes inside `block`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let delim = _mm_set1_epi8(delimiter as i8);
        let cr = _mm_set1_epi8(b'\r' as i8);
        let lf = _mm_set1_epi8(b'\n' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast());
            let bits = |m| u64::from(_mm_movemask_epi8(m) as u16) << (16 * k);
            quotes |= bits(_mm_cmpeq_epi8(v, quote));
            delimiters |= bits(_mm_cmpeq_epi8(v, delim));
            terminators |= bits(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        }
    }
    masks(quotes, delimiters, terminators, delimiter)
}

#[cfg(not(target_arch = "x86_64"))]
fn classify_64(block: &[u8; 64], delimiter: u8) -> Masks {
    classify(block, delimiter)
}

/// The masks of up to 64 bytes, one byte at a time.
fn classify(bytes: &[u8], delimiter: u8) -> Masks {
    let (mut quotes, mut delimiters, mut terminators) = (0u64, 0u64, 0u64);
    for (i, &c) in bytes.iter().enumerate() {
        quotes |= u64::from(c == b'"') << i;
        delimiters |= u64::from(c == delimiter) << i;
        terminators |= u64::from(c == b'\r' || c == b'\n') << i;
    }
    masks(quotes, delimiters, terminators, delimiter)
}

/// A delimiter that is also a quote, CR or LF (`--delimiter` allows it)
/// plays two parts: every such byte is visited, as csv-core would see it.
fn masks(quotes: u64, delimiters: u64, terminators: u64, delimiter: u8) -> Masks {
    let mut masks = Masks::new(quotes, delimiters, terminators);
    if matches!(delimiter, b'"' | b'\r' | b'\n') {
        masks.unquoted |= delimiters;
        masks.delimiters = 0;
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Record ends and count, the input fed in pieces of `piece` bytes.
    fn ends(bytes: &[u8], delimiter: u8, piece: usize) -> (Vec<u64>, u64) {
        let mut scanner = RecordScanner::new(delimiter);
        let mut ends = Vec::new();
        // The first piece holds a BOM whole, as csv-core needs too.
        let first = bytes.len().min(piece.max(3));
        let pieces = std::iter::once(&bytes[..first]).chain(bytes[first..].chunks(piece.max(1)));
        for chunk in pieces {
            scanner.scan(chunk, |end, records| {
                assert_eq!(records as usize, ends.len() + 1);
                ends.push(end)
            });
        }
        (ends, scanner.finish())
    }

    /// The csv crate's record count and each record's end position.
    fn csv_ends(bytes: &[u8], delimiter: u8) -> (Vec<u64>, u64) {
        let mut csv = crate::input::csv_builder(delimiter).from_reader(bytes);
        let mut record = csv::ByteRecord::new();
        let mut ends = Vec::new();
        while csv.read_byte_record(&mut record).unwrap() {
            ends.push(csv.position().byte());
        }
        let n = ends.len() as u64;
        (ends, n)
    }

    #[test]
    fn counts_records_like_the_csv_parser_in_every_chunking() {
        let files: [&[u8]; 8] = [
            b"id,text\r\n1,\"a\r\nb\"\"c\"\r2,\"\"\"\",x\n\n3,\"\xc3\xa9\n,\"\r\n4,plain\r\n\"\",\"a\"\"\"\n5,last",
            b"\xef\xbb\xbf\"a\nb\",c\nd",
            b"\"unclosed\nquote",
            b"a,b\r\r\n\n\r,\n",
            b"x\"y\"z,\"q\"r\n",
            b"",
            b"\r\n\r\n",
            b"a\tb\n\"c\td\"\te\n",
        ];
        for bytes in files {
            for delimiter in [b',', b'\t', b';'] {
                let (want_ends, want) = csv_ends(bytes, delimiter);
                for piece in 1..=bytes.len().max(1) {
                    let (got_ends, got) = ends(bytes, delimiter, piece);
                    assert_eq!(got, want, "{:?}, delimiter {:?}, pieces of {piece}", String::from_utf8_lossy(bytes), delimiter as char);
                    // The csv crate reports a CRLF record's end before its
                    // LF when the LF is not yet read; both are valid starts.
                    for (g, w) in got_ends.iter().zip(&want_ends) {
                        assert!(*g == *w || (*g == *w + 1 && bytes[*w as usize] == b'\n'), "ends {got_ends:?} vs {want_ends:?} in {:?}", String::from_utf8_lossy(bytes));
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

        /// Long inputs (many 64-byte blocks, quoted runs across them) in
        /// pieces of any size, with several delimiters.
        #[test]
        fn long_inputs_scan_like_the_csv_parser(
            pieces in proptest::collection::vec(proptest::sample::select(vec!["\"", ",", "\t", "\n", "\r", "\r\n", "a", "bcdefghijklmnopqrstuvwxyz0123456789", "\u{e9}", " ", "\"\"", "\u{feff}"]), 0..400),
            piece in 1usize..200,
            delimiter in proptest::sample::select(vec![b',', b'\t', b'"', b'\n']),
        ) {
            let bytes = pieces.concat().into_bytes();
            let (want_ends, want) = csv_ends(&bytes, delimiter);
            for size in [piece, 64, bytes.len().max(1)] {
                let (got_ends, got) = ends(&bytes, delimiter, size);
                proptest::prop_assert_eq!(got, want);
                for (g, w) in got_ends.iter().zip(&want_ends) {
                    proptest::prop_assert!(*g == *w || (*g == *w + 1 && bytes[*w as usize] == b'\n'));
                }
            }
        }
    }
}
