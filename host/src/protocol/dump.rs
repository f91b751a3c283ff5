//! The sorted set of counts as a `RESTORE` payload: Redis loads it about 3x
//! faster than the same members sent with ZADD in score order (it sizes its
//! hash table once and parses no command per member), which is most of the
//! end of a job with millions of keys.
//!
//! The format is Redis's DUMP format: an RDB object, the RDB version, and a
//! CRC-64 (Jones) of both. Two objects:
//! - ZSET_2 (since Redis 5): members as length-prefixed strings, scores as
//!   binary doubles; Redis builds its skiplist and hash table from it
//!   ([`zset_payload`], the set an indexed one).
//! - ZSET_LISTPACK (since Redis 7.0): the set as one listpack, the encoding
//!   Redis gives small sorted sets; loading it is a copy, ten times faster,
//!   and it takes a seventh of the memory, but every lookup in it is a scan
//!   ([`zset_listpack_payload`], the set a compact one).

use crc::{Crc, Table, CRC_64_REDIS};

use crate::tally::{prefetch, PREFETCH_AHEAD};

/// Slice-by-16 tables: the checksum of a payload of tens of MB is several
/// times faster than with the default one-byte table.
const CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

const RDB_TYPE_ZSET_2: u8 = 5;
/// RDB version 9 (Redis 5 and 6); newer servers load older versions.
const RDB_VERSION: u16 = 9;
const RDB_TYPE_ZSET_LISTPACK: u8 = 17;
/// RDB version 10 (Redis 7.0): the first with listpack sorted sets.
const RDB_VERSION_LISTPACK: u16 = 10;
/// The largest listpack Redis keeps as one (LISTPACK_MAX_SAFETY_SIZE).
const LISTPACK_MAX_BYTES: usize = 1 << 30;
/// A listpack's element count field saturates here ("unknown").
const LISTPACK_COUNT_UNKNOWN: u16 = u16::MAX;
/// Scores are doubles, and Redis stores an integral one in a listpack as
/// the integer it prints as, up to here (exactly, as a count needs).
const LISTPACK_MAX_SCORE: u64 = 1 << 53;

/// The payload of a sorted set of `members`, given in the set's own order
/// (score, then member). They are written greatest first, as Redis's own
/// DUMP does: loading inserts each member into the skiplist, and a member
/// smaller than all before it goes in at the head at once, where one greater
/// than all walks the whole list (O(log n) cache misses each; the load of
/// 1.9 M members took 1.3 s in ascending order).
pub fn zset_payload(members: &[(&str, u64)]) -> Vec<u8> {
    let bytes: usize = members.iter().map(|(k, _)| k.len() + 14).sum();
    let mut out = Vec::with_capacity(bytes + 32);
    out.push(RDB_TYPE_ZSET_2);
    put_len(&mut out, members.len() as u64);
    for (i, (key, count)) in members.iter().enumerate().rev() {
        if let Some((ahead, _)) = i.checked_sub(PREFETCH_AHEAD).map(|j| members[j]) {
            prefetch(ahead.as_bytes());
        }
        put_len(&mut out, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        // Scores are doubles: exact up to 2^53, far beyond any count here.
        out.extend_from_slice(&(*count as f64).to_le_bytes());
    }
    finish_payload(out, RDB_VERSION)
}

/// The payload of a sorted set of `members` (in the set's own order, score
/// then member) as one listpack: what Redis itself builds for a small set
/// and DUMPs, byte for byte. `None` when a listpack cannot hold them: over
/// Redis's 1 GiB limit, or a count Redis would not store as an integer.
///
/// Redis keeps it a listpack only while the set is within its
/// `zset-max-listpack-entries` and `-value` limits (else it converts it to
/// an indexed set as it loads it, which costs what loading one does).
pub fn zset_listpack_payload(members: &[(&str, u64)]) -> Option<Vec<u8>> {
    if members.iter().any(|(_, n)| *n > LISTPACK_MAX_SCORE) {
        return None;
    }
    let bytes: usize = members.iter().map(|(k, _)| k.len() + 16).sum();
    if bytes > LISTPACK_MAX_BYTES + (LISTPACK_MAX_BYTES >> 2) {
        return None;
    }
    // Entries are self-contained (each ends with its own length), so parts
    // of the set are encoded on every core and joined.
    use rayon::prelude::*;
    let parts: Vec<Vec<u8>> = members.par_chunks(members.len().div_ceil(rayon::current_num_threads() * 4).max(1)).map(listpack_entries).collect();
    // The listpack: a header (total bytes, element count), the entries, an
    // end byte; written straight into the payload after its RDB length.
    let total = 6 + parts.iter().map(Vec::len).sum::<usize>() + 1;
    if total > LISTPACK_MAX_BYTES {
        return None;
    }
    let count = u16::try_from(members.len() * 2).unwrap_or(LISTPACK_COUNT_UNKNOWN).min(LISTPACK_COUNT_UNKNOWN);
    let mut out = Vec::with_capacity(total + 32);
    out.push(RDB_TYPE_ZSET_LISTPACK);
    put_len(&mut out, total as u64);
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for part in parts {
        out.extend_from_slice(&part);
    }
    out.push(0xff);
    Some(finish_payload(out, RDB_VERSION_LISTPACK))
}

/// The listpack entries of `members`: each member (as Redis stores it: a
/// member that reads as an integer in its canonical form is that integer),
/// then its score.
fn listpack_entries(members: &[(&str, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(members.iter().map(|(k, _)| k.len() + 16).sum());
    let mut digits = itoa::Buffer::new();
    for (i, (key, count)) in members.iter().enumerate() {
        if let Some((ahead, _)) = members.get(i + PREFETCH_AHEAD) {
            prefetch(ahead.as_bytes());
        }
        match key.parse::<i64>() {
            Ok(v) if digits.format(v) == *key => put_listpack_int(&mut out, v),
            _ => put_listpack_str(&mut out, key.as_bytes()),
        }
        put_listpack_int(&mut out, *count as i64);
    }
    out
}

/// Appends the RDB version and the checksum.
fn finish_payload(mut out: Vec<u8>, version: u16) -> Vec<u8> {
    out.extend_from_slice(&version.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A listpack integer entry (listpack.c, `lpEncodeIntegerGetType`): the
/// smallest of its encodings, then the entry's length backwards.
fn put_listpack_int(out: &mut Vec<u8>, v: i64) {
    let start = out.len();
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u16;
        out.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
    } else if (-32768..=32767).contains(&v) {
        out.push(0xf1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-8_388_608..=8_388_607).contains(&v) {
        out.push(0xf2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
        out.push(0xf3);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.push(0xf4);
        out.extend_from_slice(&v.to_le_bytes());
    }
    put_backlen(out, out.len() - start);
}

/// A listpack string entry: 6-, 12- or 32-bit length, the bytes, then the
/// entry's length backwards.
fn put_listpack_str(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len();
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]);
    } else {
        out.push(0xf0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
    put_backlen(out, out.len() - start);
}

/// An entry's length as listpack.c's `lpEncodeBacklen` writes it: 7 bits a
/// byte, most significant first, every byte but the first flagged.
fn put_backlen(out: &mut Vec<u8>, len: usize) {
    let len = len as u64;
    let bytes = match len {
        0..=127 => 1,
        128..16383 => 2,
        16383..2_097_151 => 3,
        2_097_151..268_435_455 => 4,
        _ => 5,
    };
    for i in (0..bytes).rev() {
        let part = ((len >> (7 * i)) & 127) as u8;
        out.push(if i == bytes - 1 { part } else { part | 128 });
    }
}

/// RDB length encoding: 6, 14, 32 or 64 bits.
fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_redis_crc64() {
        // The check value of CRC-64/Jones as Redis uses it (src/crc64.c).
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
        let long: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        assert_eq!(CRC64.checksum(&long), Crc::<u64>::new(&CRC_64_REDIS).checksum(&long), "the fast tables give the same checksum");
    }

    #[test]
    fn members_are_written_greatest_first() {
        let payload = zset_payload(&[("a", 1), ("b", 1), ("c", 5)]);
        // type, count, then (len, member, score) greatest first.
        assert_eq!(&payload[..3], &[RDB_TYPE_ZSET_2, 3, 1]);
        assert_eq!(payload[3], b'c');
        assert_eq!(&payload[4..12], &5f64.to_le_bytes());
        assert_eq!(&payload[12..14], &[1, b'b']);
        assert_eq!(&payload[22..24], &[1, b'a']);
    }

    #[test]
    fn lengths_use_the_rdb_encoding() {
        let mut v = Vec::new();
        put_len(&mut v, 5);
        put_len(&mut v, 300);
        put_len(&mut v, 70_000);
        assert_eq!(v, [5, 0x41, 0x2c, 0x80, 0, 1, 0x11, 0x70]);
    }
}
