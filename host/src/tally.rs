//! A table of counts made for merging millions of (key, count) pairs: the
//! coordinator's merge of every task's results.
//!
//! Why not `HashMap<String, u64>`: with a table far larger than the caches,
//! a lookup there is three cache misses (control bytes, the entry, the
//! key's heap allocation), plus an allocation and a free per new key. A
//! profile of a 512 MB job had the coordinator's merge at ~320 ns per pair,
//! more CPU than a worker. Here a slot is 32 bytes holding the hash, the
//! length, the count and the key itself when it is at most 16 bytes (most
//! words); longer keys live in one arena, with their first 8 bytes in the
//! slot to reject most mismatches without touching it. Lookups come in
//! batches whose slots are prefetched before any is probed.

use std::hash::BuildHasher;

/// Keys up to this many bytes live inside their slot.
const INLINE: usize = 16;
/// A slot whose `len` is this is empty.
const EMPTY: u32 = u32::MAX;
/// Pairs looked up together, their slots prefetched first.
const BATCH: usize = 16;

#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    hash: u32,
    len: u32,
    count: u64,
    /// The key (len <= 16), or its arena offset (bytes 0..8) and its first
    /// 8 bytes (8..16).
    key: [u8; INLINE],
}

const EMPTY_SLOT: Slot = Slot { hash: 0, len: EMPTY, count: 0, key: [0; INLINE] };

#[derive(Clone)]
pub struct Tally {
    slots: Vec<Slot>,
    arena: Vec<u8>,
    len: usize,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tally({} keys)", self.len)
    }
}

fn hash_of(key: &[u8]) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(key)
}

impl Tally {
    pub fn new() -> Tally {
        Tally { slots: Vec::new(), arena: Vec::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        *self = Tally::new();
    }

    /// Adds `n` to `key`'s count.
    pub fn add(&mut self, key: &str, n: u64) {
        self.reserve_one();
        self.add_hashed(key.as_bytes(), hash_of(key.as_bytes()), n);
    }

    /// Adds every pair, looking them up in prefetched batches.
    pub fn add_all<'k>(&mut self, pairs: impl IntoIterator<Item = (&'k str, u64)>) {
        let mut batch: [(&[u8], u64, u64); BATCH] = [(&[], 0, 0); BATCH];
        let mut filled = 0;
        for (key, n) in pairs {
            batch[filled] = (key.as_bytes(), hash_of(key.as_bytes()), n);
            filled += 1;
            if filled == BATCH {
                self.add_batch(&batch);
                filled = 0;
            }
        }
        self.add_batch(&batch[..filled]);
    }

    fn add_batch(&mut self, batch: &[(&[u8], u64, u64)]) {
        if self.slots.len() < (self.len + batch.len()) * 4 / 3 + 1 {
            self.grow_for(self.len + batch.len());
        }
        let mask = self.slots.len() - 1;
        for &(_, hash, _) in batch {
            prefetch(&self.slots[hash as usize & mask]);
        }
        for &(key, hash, n) in batch {
            self.add_hashed(key, hash, n);
        }
    }

    /// The count of `key` (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let at = self.find(key.as_bytes(), hash_of(key.as_bytes()));
        let slot = &self.slots[at];
        if slot.len == EMPTY {
            0
        } else {
            slot.count
        }
    }

    /// Every (key, count), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.slots.iter().filter(|s| s.len != EMPTY).map(|s| (self.key_of(s), s.count))
    }

    /// The counts as a plain map (for writing them out).
    pub fn to_map(&self) -> rustc_hash::FxHashMap<String, u64> {
        let mut map = rustc_hash::FxHashMap::with_capacity_and_hasher(self.len, Default::default());
        map.extend(self.iter().map(|(k, n)| (k.to_owned(), n)));
        map
    }

    fn key_of<'a>(&'a self, slot: &'a Slot) -> &'a str {
        let len = slot.len as usize;
        let bytes = if len <= INLINE {
            &slot.key[..len]
        } else {
            let offset = u64::from_le_bytes(slot.key[..8].try_into().unwrap()) as usize;
            &self.arena[offset..offset + len]
        };
        // SAFETY: only `&str` keys are ever stored, byte for byte.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn find(&self, key: &[u8], hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let short = (hash >> 32) as u32;
        let mut at = hash as usize & mask;
        loop {
            let slot = &self.slots[at];
            if slot.len == EMPTY {
                return at;
            }
            if slot.hash == short && slot.len as usize == key.len() && self.slot_holds(slot, key) {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    #[inline]
    fn slot_holds(&self, slot: &Slot, key: &[u8]) -> bool {
        if key.len() <= INLINE {
            return slot.key[..key.len()] == *key;
        }
        if slot.key[8..16] != key[..8] {
            return false;
        }
        let offset = u64::from_le_bytes(slot.key[..8].try_into().unwrap()) as usize;
        self.arena[offset..offset + key.len()] == *key
    }

    fn add_hashed(&mut self, key: &[u8], hash: u64, n: u64) {
        let at = self.find(key, hash);
        let slot = &mut self.slots[at];
        if slot.len != EMPTY {
            slot.count += n;
            return;
        }
        let mut inline = [0u8; INLINE];
        if key.len() <= INLINE {
            inline[..key.len()].copy_from_slice(key);
        } else {
            inline[..8].copy_from_slice(&(self.arena.len() as u64).to_le_bytes());
            inline[8..].copy_from_slice(&key[..8]);
            self.arena.extend_from_slice(key);
        }
        let len = u32::try_from(key.len()).expect("a key under 4 GiB");
        // The high half: the low one picked the slot and tells nothing more.
        self.slots[at] = Slot { hash: (hash >> 32) as u32, len, count: n, key: inline };
        self.len += 1;
    }

    fn reserve_one(&mut self) {
        if self.slots.len() < (self.len + 1) * 4 / 3 + 1 {
            self.grow_for(self.len + 1);
        }
    }

    /// Doubles the table until `keys` fit under a 3/4 load.
    fn grow_for(&mut self, keys: usize) {
        let mut size = self.slots.len().max(1024);
        while size * 3 / 4 < keys {
            size *= 2;
        }
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|s| s.len != EMPTY) {
            // The full hash is not kept: recompute it from the key.
            let hash = hash_of(self.key_of(&slot).as_bytes());
            let mut at = hash as usize & mask;
            while self.slots[at].len != EMPTY {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

/// Asks for the cache line holding the start of `data`. Keys and slots sit
/// in hash order, so a pass over them in any other order (sorted by count,
/// to publish or write them) misses the cache on every key unless the keys
/// a few steps ahead are prefetched.
#[inline(always)]
pub fn prefetch<T: ?Sized>(data: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(data as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// How far ahead a pass in sorted order prefetches its keys.
pub const PREFETCH_AHEAD: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hash_map_on_short_long_empty_and_colliding_keys() {
        let mut tally = Tally::new();
        let mut want: HashMap<String, u64> = HashMap::new();
        let mut seed = 1u64;
        let mut pairs = Vec::new();
        for i in 0..200_000u64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = match i % 5 {
                0 => String::new(),
                1 => format!("{}", seed % 5000),
                2 => format!("a-long-key-sharing-its-first-8-bytes-{}", seed % 3000),
                3 => format!("é日本{}", seed % 1000),
                _ => "x".repeat((seed % 40) as usize),
            };
            let n = 1 + seed % 3;
            *want.entry(key.clone()).or_insert(0) += n;
            pairs.push((key, n));
        }
        for (key, n) in &pairs[..1000] {
            tally.add(key, *n);
        }
        tally.add_all(pairs[1000..].iter().map(|(k, n)| (k.as_str(), *n)));
        assert_eq!(tally.len(), want.len());
        let got: HashMap<String, u64> = tally.iter().map(|(k, n)| (k.to_owned(), n)).collect();
        assert_eq!(got, want);
        assert_eq!(tally.to_map().len(), want.len());
        for (key, n) in &want {
            assert_eq!(tally.get(key), *n, "{key:?}");
        }
        assert_eq!(tally.get("absent"), 0);
        tally.clear();
        assert!(tally.is_empty() && tally.get("") == 0);
    }
}
