//! The workers' CSV reader: records one by one, keeping only the fields a
//! plugin reads, parsed by the rules of csv-core with the settings of
//! `csv_builder` (the planner's `scan.rs` follows the same rules, so a
//! range's records are the whole file's).
//!
//! Hand-written rather than the csv crate's reader, which copies every
//! field of every record through csv-core's byte-at-a-time DFA: that was a
//! quarter of a worker's time (the WASM rule about half). Here the bodies
//! of fields are found with `memchr` and only the fields asked for are
//! copied. The property test `split_fuzz` holds it to the csv crate.

use std::io::{self, Read};

use memchr::{memchr, memchr3};

/// Input is read this much at a time.
const BUFFER_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote in a quoted field: a second quote is an escaped one.
    QuoteInQuoted,
}

/// One record: how many fields it has, and the bytes of those asked for.
#[derive(Debug, Default)]
pub(super) struct Record {
    fields: usize,
    values: Vec<u8>,
    /// For each field index up to the largest asked for: its bytes in
    /// `values` (empty for fields not asked for).
    spans: Vec<(usize, usize)>,
}

impl Record {
    /// Fields in the record.
    pub fn len(&self) -> usize {
        self.fields
    }

    /// The bytes of field `i` (one of those asked for, and `i < len()`).
    pub fn field(&self, i: usize) -> &[u8] {
        let (start, end) = self.spans[i];
        &self.values[start..end]
    }
}

pub(super) struct FieldReader<R> {
    reader: R,
    buffer: Box<[u8]>,
    /// Unread bytes: `buffer[pos..len]`.
    pos: usize,
    len: usize,
    eof: bool,
    started: bool,
    delimiter: u8,
    /// `wanted[i]`: field `i` is kept.
    wanted: Vec<bool>,
}

impl<R: Read> FieldReader<R> {
    /// A reader keeping the fields at `indices`.
    pub fn new(reader: R, delimiter: u8, indices: &[usize]) -> FieldReader<R> {
        let mut wanted = vec![false; indices.iter().max().map_or(0, |m| m + 1)];
        for &i in indices {
            wanted[i] = true;
        }
        FieldReader { reader, buffer: vec![0; BUFFER_BYTES].into_boxed_slice(), pos: 0, len: 0, eof: false, started: false, delimiter, wanted }
    }

    /// Refills an empty buffer; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        debug_assert!(self.pos == self.len);
        if self.eof {
            return Ok(false);
        }
        let n = loop {
            match self.reader.read(&mut self.buffer) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        (self.pos, self.len) = (0, n);
        if !self.started {
            self.started = true;
            // csv-core drops a BOM that opens its input (in its first read).
            if self.buffer[..n].starts_with(b"\xef\xbb\xbf") {
                self.pos = 3;
            }
        }
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Reads the next record into `record`; false at the end of the input.
    pub fn read_record(&mut self, record: &mut Record) -> io::Result<bool> {
        record.fields = 0;
        record.values.clear();
        record.spans.clear();
        let mut state = State::StartRecord;
        let mut field_start = 0;
        let delimiter = self.delimiter;
        loop {
            if self.pos == self.len && !self.fill()? {
                // The end of the input ends an open record, as in csv-core.
                if state == State::StartRecord {
                    return Ok(false);
                }
                self.end_field(record, field_start);
                return Ok(true);
            }
            let keep = self.wanted.get(record.fields).copied().unwrap_or(false);
            let bytes = &self.buffer[self.pos..self.len];
            match state {
                State::StartRecord => match bytes.iter().position(|&c| c != b'\r' && c != b'\n') {
                    None => self.pos = self.len,
                    Some(k) => {
                        self.pos += k;
                        state = State::StartField;
                        field_start = record.values.len();
                    }
                },
                State::StartField | State::QuoteInQuoted => {
                    let c = bytes[0];
                    let quote_in_quoted = state == State::QuoteInQuoted;
                    if c == b'"' {
                        if quote_in_quoted && keep {
                            record.values.push(b'"');
                        }
                        state = State::InQuoted;
                        self.pos += 1;
                    } else if c == delimiter {
                        self.end_field(record, field_start);
                        field_start = record.values.len();
                        state = State::StartField;
                        self.pos += 1;
                    } else if c == b'\r' || c == b'\n' {
                        // The terminator is left for the next record's start,
                        // which skips CR and LF (a CRLF's LF included).
                        self.end_field(record, field_start);
                        return Ok(true);
                    } else {
                        state = State::InField;
                    }
                }
                State::InField => {
                    let k = memchr3(delimiter, b'\r', b'\n', bytes);
                    let run = k.unwrap_or(bytes.len());
                    if keep {
                        record.values.extend_from_slice(&bytes[..run]);
                    }
                    self.pos += run;
                    if let Some(k) = k {
                        if bytes[k] == delimiter {
                            self.end_field(record, field_start);
                            field_start = record.values.len();
                            state = State::StartField;
                            self.pos += 1;
                        } else {
                            self.end_field(record, field_start);
                            return Ok(true);
                        }
                    }
                }
                State::InQuoted => {
                    let k = memchr(b'"', bytes);
                    let run = k.unwrap_or(bytes.len());
                    if keep {
                        record.values.extend_from_slice(&bytes[..run]);
                    }
                    self.pos += run;
                    if k.is_some() {
                        state = State::QuoteInQuoted;
                        self.pos += 1;
                    }
                }
            }
        }
    }

    /// Closes the current field (its bytes start at `start` in `values`).
    fn end_field(&self, record: &mut Record, start: usize) {
        if record.fields < self.wanted.len() {
            record.spans.push((start, record.values.len()));
        }
        record.fields += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record and every field, through the reader (all fields asked
    /// for) and through the csv crate, in reads of `piece` bytes.
    fn both(bytes: &[u8], delimiter: u8, piece: usize) -> (Vec<Vec<Vec<u8>>>, Vec<Vec<Vec<u8>>>) {
        struct Pieces<'a>(&'a [u8], usize);
        impl Read for Pieces<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut csv = crate::input::csv_builder(delimiter).from_reader(bytes);
        let mut want = Vec::new();
        let mut record = csv::ByteRecord::new();
        while csv.read_byte_record(&mut record).unwrap() {
            want.push(record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
        }
        let widest = want.iter().map(Vec::len).max().unwrap_or(0);
        // The first read holds the BOM whole, as csv-core needs too.
        let first = bytes.len().min(piece.max(3));
        let input = bytes[..first].chain(Pieces(&bytes[first..], piece));
        let mut reader = FieldReader::new(input, delimiter, &(0..widest).collect::<Vec<_>>());
        let mut got = Vec::new();
        let mut record = Record::default();
        while reader.read_record(&mut record).unwrap() {
            got.push((0..record.len()).map(|i| record.field(i).to_vec()).collect());
        }
        (got, want)
    }

    #[test]
    fn fields_are_the_csv_parsers_in_every_chunking() {
        let files: [&[u8]; 9] = [
            b"id,text\r\n1,\"a\r\nb\"\"c\"\r2,\"\"\"\",x\n\n3,\"\xc3\xa9\n,\"\r\n4,plain\r\n\"\",\"a\"\"\"\n5,last",
            b"\xef\xbb\xbf\"a\nb\",c\nd",
            b"\"unclosed\nquote",
            b"a,b\r\r\n\n\r,\n",
            b"x\"y\"z,\"q\"r\"s\",\"t\"\"\n",
            b"",
            b"\r\n\r\n",
            b"a\tb\n\"c\td\"\te\n",
            b"a,",
        ];
        for bytes in files {
            for delimiter in [b',', b'\t'] {
                for piece in 1..=bytes.len().max(1) {
                    let (got, want) = both(bytes, delimiter, piece);
                    assert_eq!(got, want, "{:?}, delimiter {:?}, reads of {piece}", String::from_utf8_lossy(bytes), delimiter as char);
                }
            }
        }
    }

    #[test]
    fn only_the_fields_asked_for_are_kept() {
        let mut reader = FieldReader::new(&b"a,b,c,d\n1,2\n"[..], b',', &[2, 0]);
        let mut record = Record::default();
        assert!(reader.read_record(&mut record).unwrap());
        assert_eq!((record.len(), record.field(0), record.field(2)), (4, &b"a"[..], &b"c"[..]));
        assert!(record.field(1).is_empty(), "field 1 is not copied");
        assert!(reader.read_record(&mut record).unwrap());
        assert_eq!((record.len(), record.field(0)), (2, &b"1"[..]));
        assert!(!reader.read_record(&mut record).unwrap());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

        #[test]
        fn long_inputs_read_like_the_csv_parser(
            pieces in proptest::collection::vec(proptest::sample::select(vec!["\"", ",", "\t", "\n", "\r", "\r\n", "a", "bcdefghijklmnopqrstuvwxyz0123456789", "\u{e9}", " ", "\"\"", "\u{feff}"]), 0..400),
            piece in 1usize..200,
            delimiter in proptest::sample::select(vec![b',', b'\t']),
        ) {
            let bytes = pieces.concat().into_bytes();
            for size in [piece, bytes.len().max(1)] {
                let (got, want) = both(&bytes, delimiter, size);
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
