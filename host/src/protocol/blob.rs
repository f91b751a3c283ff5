//! The encoding of one task's counts as a single Redis value (reduce mode):
//! a version byte, then for each key its length and bytes and its count,
//! lengths and counts as LEB128 varints. Compact (most keys are short and
//! most counts small) and cheap to write and read.

use crate::tally::Tally;

const VERSION: u8 = 1;

pub fn encode(pairs: &[(&str, u64)]) -> Vec<u8> {
    let bytes: usize = pairs.iter().map(|(k, _)| k.len() + 3).sum();
    let mut out = Vec::with_capacity(1 + bytes);
    out.push(VERSION);
    for (key, count) in pairs {
        put_varint(&mut out, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        put_varint(&mut out, *count);
    }
    out
}

/// Adds the blob's counts into `total` (the whole blob is checked first:
/// a bad one adds nothing).
pub fn decode_into(blob: &[u8], total: &mut Tally) -> Result<(), String> {
    let mut pairs = Vec::with_capacity(blob.len() / 8);
    let (&version, mut rest) = blob.split_first().ok_or("empty result blob")?;
    if version != VERSION {
        return Err(format!("result blob of unknown version {version}"));
    }
    while !rest.is_empty() {
        let len = take_varint(&mut rest)? as usize;
        if len > rest.len() {
            return Err("truncated result blob".into());
        }
        let (key, tail) = rest.split_at(len);
        rest = tail;
        let count = take_varint(&mut rest)?;
        let key = std::str::from_utf8(key).map_err(|_| "result blob key is not UTF-8")?;
        pairs.push((key, count));
    }
    total.add_all(pairs);
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().ok_or("truncated varint in result blob")?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("overlong varint in result blob".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges() {
        let long = "x".repeat(200);
        let pairs = vec![("", 1), ("héllo", 300), (long.as_str(), u64::MAX)];
        let blob = encode(&pairs);
        let mut total = Tally::new();
        decode_into(&blob, &mut total).unwrap();
        decode_into(&encode(&[("héllo", 2)]), &mut total).unwrap();
        assert_eq!(total.get(""), 1);
        assert_eq!(total.get("héllo"), 302);
        assert_eq!(total.get(&"x".repeat(200)), u64::MAX);
    }

    #[test]
    fn rejects_damaged_blobs() {
        let blob = encode(&[("hello", 5)]);
        let mut total = Tally::new();
        assert!(decode_into(&blob[..4], &mut total).is_err());
        assert!(decode_into(&[9], &mut total).is_err());
        assert!(decode_into(&[], &mut total).is_err());
        assert!(total.is_empty(), "a damaged blob adds nothing");
    }
}
