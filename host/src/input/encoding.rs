//! Compressed inputs: which encoding a file has (from its first bytes, not
//! its name), and a decoder that knows where each gzip member, zstd frame or
//! bzip2 stream starts, in compressed and in decoded bytes. Those starts are
//! the only places a compressed file can be entered without decoding what
//! comes before, so they are where the planner splits it (see `split.rs`),
//! and where a worker starts decoding its task.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::{io_err, InputError};

/// How a file's bytes hold its CSV text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// CSV as it is.
    Plain,
    /// gzip: one member, or several (pigz --independent, bgzip/BGZF, `cat a.gz b.gz`).
    Gzip,
    /// zstd: one frame or several (`zstd --split`... or `gen-data --compress zst`).
    Zstd,
    /// bzip2: one stream or several (pbzip2).
    Bzip2,
    /// A zip archive: each CSV member is read as a file of the job.
    Zip,
}

impl Encoding {
    /// The encoding of the file's first bytes; anything unknown is plain.
    pub fn of_magic(head: &[u8]) -> Encoding {
        match head {
            [0x1f, 0x8b, ..] => Encoding::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Encoding::Zstd,
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => Encoding::Bzip2,
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Encoding::Zip,
            _ => Encoding::Plain,
        }
    }

    /// Reads the first bytes of `path` and names its encoding.
    pub fn detect(path: &Path) -> Result<Encoding, InputError> {
        let mut head = [0u8; 4];
        let mut file = File::open(path).map_err(io_err(path))?;
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(path)(e)),
            }
        }
        Ok(Encoding::of_magic(&head[..got]))
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::Bzip2 => "bzip2",
            Encoding::Zip => "zip",
        }
    }

    /// What one independently decodable piece is called.
    pub fn member_word(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip member",
            Encoding::Zstd => "zstd frame",
            Encoding::Bzip2 => "bzip2 stream",
            Encoding::Zip => "zip member",
            Encoding::Plain => "file",
        }
    }

    /// A stream of members (gzip, zstd, bzip2): decoded by [`MemberReader`].
    pub fn is_stream(self) -> bool {
        matches!(self, Encoding::Gzip | Encoding::Zstd | Encoding::Bzip2)
    }
}

/// A file name's extensions that say "compressed": stripped before looking
/// at what is underneath (`a.tsv.gz` is a TSV file).
pub const COMPRESSED_SUFFIXES: [&str; 5] = ["gz", "zst", "zstd", "bz2", "bgz"];

/// The name without a compression suffix (`a.csv.gz` -> `a.csv`).
pub fn strip_compressed_suffix(name: &str) -> &str {
    if let Some((stem, ext)) = name.rsplit_once('.') {
        if COMPRESSED_SUFFIXES.iter().any(|s| ext.eq_ignore_ascii_case(s)) {
            return stem;
        }
    }
    name
}

/// Where a member (frame, stream) starts: its offset in the file, and in the
/// decoded text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boundary {
    pub compressed: u64,
    pub decoded: u64,
}

/// A decoding failure, carried through the csv reader as the cause of an
/// I/O error so that it reaches the task's error with its offsets.
#[derive(Debug)]
pub struct DecodeFailure(pub String);

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeFailure {}

/// A buffered file that counts the bytes its consumers take (decoders
/// consume exactly what they decode, so this is the compressed offset).
pub struct Counting {
    inner: BufReader<File>,
    pos: u64,
}

impl Counting {
    /// `path` opened and positioned at `offset`.
    pub fn open(path: &Path, offset: u64) -> Result<Counting, InputError> {
        let mut file = File::open(path).map_err(io_err(path))?;
        file.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
        Ok(Counting { inner: BufReader::with_capacity(1 << 20, file), pos: offset })
    }

    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl BufRead for Counting {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

/// One member being decoded.
enum Member {
    Gzip(Box<flate2::bufread::GzDecoder<Counting>>),
    Zstd(zstd::stream::read::Decoder<'static, Counting>),
    Bzip2(bzip2::bufread::BzDecoder<Counting>),
}

impl Member {
    fn start(encoding: Encoding, input: Counting) -> io::Result<Member> {
        Ok(match encoding {
            Encoding::Gzip => Member::Gzip(Box::new(flate2::bufread::GzDecoder::new(input))),
            Encoding::Zstd => Member::Zstd(zstd::stream::read::Decoder::with_buffer(input)?.single_frame()),
            Encoding::Bzip2 => Member::Bzip2(bzip2::bufread::BzDecoder::new(input)),
            Encoding::Plain | Encoding::Zip => unreachable!("not a member stream"),
        })
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Member::Gzip(d) => d.read(buf),
            Member::Zstd(d) => d.read(buf),
            Member::Bzip2(d) => d.read(buf),
        }
    }

    fn position(&self) -> u64 {
        match self {
            Member::Gzip(d) => d.get_ref().position(),
            Member::Zstd(d) => d.get_ref().position(),
            Member::Bzip2(d) => d.get_ref().position(),
        }
    }

    fn into_inner(self) -> Counting {
        match self {
            Member::Gzip(d) => (*d).into_inner(),
            Member::Zstd(d) => d.finish(),
            Member::Bzip2(d) => d.into_inner(),
        }
    }
}

enum State {
    Decoding(Member),
    Between(Counting),
    Done,
}

/// Decodes a stream of members from a member boundary to the end of the
/// file, member after member, recording where each member starts.
pub struct MemberReader {
    encoding: Encoding,
    path: PathBuf,
    state: State,
    /// Decoded bytes produced so far, counted from the first member read.
    decoded: u64,
    /// Compressed offset of the member being decoded.
    member_start: u64,
    boundaries: Rc<RefCell<Vec<Boundary>>>,
}

impl MemberReader {
    /// Starts decoding `path` at `offset`, which must be a member boundary.
    pub fn open(path: &Path, encoding: Encoding, offset: u64) -> Result<MemberReader, InputError> {
        debug_assert!(encoding.is_stream());
        let input = Counting::open(path, offset)?;
        Ok(MemberReader {
            encoding,
            path: path.to_path_buf(),
            state: State::Between(input),
            decoded: 0,
            member_start: offset,
            boundaries: Rc::default(),
        })
    }

    /// Member starts found so far (the first is where reading began); the
    /// list grows as the reader goes.
    pub fn boundaries(&self) -> Rc<RefCell<Vec<Boundary>>> {
        self.boundaries.clone()
    }

    fn failure(&self, at: u64, error: &io::Error) -> io::Error {
        let what = self.encoding.name();
        let detail = if error.kind() == io::ErrorKind::UnexpectedEof {
            "the file ends inside it (truncated?)".to_string()
        } else {
            error.to_string()
        };
        io::Error::other(DecodeFailure(format!(
            "{}: corrupt {what} data near compressed byte {at} (in the {} starting at byte {}, {} bytes into the decoded text): {detail}; \
             the file is damaged or truncated: re-download or re-compress it",
            self.path.display(),
            self.encoding.member_word(),
            self.member_start,
            self.decoded,
        )))
    }
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Between(mut input) => {
                    let at = input.position();
                    let more = match input.fill_buf() {
                        Ok(rest) => !rest.is_empty(),
                        Err(e) => return Err(io_err_at(&self.path, at, e)),
                    };
                    if !more {
                        return Ok(0); // the end of the file, between members
                    }
                    if self.encoding == Encoding::Gzip && zero_padding_to_the_end(&mut input).map_err(|e| io_err_at(&self.path, at, e))? {
                        return Ok(0); // NUL bytes after the last member (tar-style padding), as gzip(1) accepts
                    }
                    self.member_start = at;
                    self.boundaries.borrow_mut().push(Boundary { compressed: at, decoded: self.decoded });
                    match Member::start(self.encoding, input) {
                        Ok(member) => self.state = State::Decoding(member),
                        Err(e) => return Err(self.failure(at, &e)),
                    }
                }
                State::Decoding(mut member) => match member.read(buf) {
                    Ok(0) => {
                        let input = member.into_inner();
                        if input.position() == self.member_start {
                            // Nothing consumed, nothing produced: not a member.
                            return Err(self.failure(self.member_start, &io::Error::other("not a valid member header")));
                        }
                        self.state = State::Between(input);
                    }
                    Ok(n) => {
                        self.decoded += n as u64;
                        self.state = State::Decoding(member);
                        return Ok(n);
                    }
                    Err(e) => {
                        let at = member.position();
                        return Err(self.failure(at, &e));
                    }
                },
            }
        }
    }
}

/// Are the bytes from here to the end of the file all zeros? Consumes
/// the zeros it sees; stops at the first other byte (which is then left for
/// the member decoder, which will call it what it is).
fn zero_padding_to_the_end(input: &mut Counting) -> io::Result<bool> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(true);
        }
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        if zeros < buf.len() {
            input.consume(zeros);
            return Ok(false);
        }
        input.consume(zeros);
    }
}

fn io_err_at(path: &Path, at: u64, e: io::Error) -> io::Error {
    io::Error::other(DecodeFailure(format!("{}: cannot read at byte {at}: {e}", path.display())))
}

/// The decoding failure behind an I/O error, if that is what it is.
pub fn decode_failure(error: &io::Error) -> Option<&DecodeFailure> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<DecodeFailure>())
}
