//! Guest-side glue for wc-host counting plugins.
//!
//! A plugin implements [`Counter`] — a plain Rust type, testable natively —
//! and calls [`export_counter!`] once. The SDK owns the WIT bindings, the
//! batch decoding and the count map, so a plugin is only its rule.
//!
//! ```ignore
//! struct Shout;
//! impl wc_plugin_sdk::Counter for Shout {
//!     fn info() -> wc_plugin_sdk::Info { /* name, version, description, columns, params */ }
//!     fn new(_params: &wc_plugin_sdk::Params) -> Result<Self, String> { Ok(Shout) }
//!     fn count_row(&mut self, row: &[&str], counts: &mut wc_plugin_sdk::Counts) -> Result<(), String> {
//!         for word in row[0].split_whitespace() { counts.add(&word.to_uppercase()); }
//!         Ok(())
//!     }
//! }
//! wc_plugin_sdk::export_counter!(Shout);
//! ```

use std::cell::RefCell;

use rustc_hash::FxHashMap;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "counting-plugin",
        pub_export_macro: true,
        export_macro_name: "export_counting_plugin",
        default_bindings_module: "wc_plugin_sdk::bindings",
    });
}

use bindings::exports::wc::plugin::counter as wit;

/// What a plugin says about itself (see `plugin-info` in the WIT file).
pub struct Info {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    /// CSV header names read, in the order `count_row` receives them.
    pub columns: &'static [&'static str],
    /// Every parameter `new` accepts; the host refuses any other key before
    /// a task starts, and `wc-host plugin info` lists them.
    pub params: &'static [Param],
}

/// One declared parameter: `--plugin-arg NAME=VALUE`.
pub struct Param {
    pub name: &'static str,
    /// The value used when it is not given, as a user would type it.
    pub default: &'static str,
    /// One line for `wc-host plugin info`.
    pub help: &'static str,
}

impl Info {
    /// The declared parameter names, for [`Params::check_known`].
    pub fn param_names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.name).collect()
    }
}

/// The `--plugin-arg key=value` pairs, in command-line order.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The last value given for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Fails on the first key not in `known`, so a typo is not silently ignored.
    pub fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(format!("unknown parameter `{k}` (known: {})", known.join(", "))),
            None => Ok(()),
        }
    }

    /// A boolean parameter: `true`/`false`/`1`/`0`/`yes`/`no`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(format!("parameter `{key}` must be true or false, got `{v}`")),
        }
    }
}

/// Counts of one task. Adding a key already present does not allocate.
///
/// A small open-addressing table made for this one job (no removal): the
/// keys live in insertion order in one string, `keys` (key `i` ends at
/// `ends[i]`), their counts in `counts`: exactly the packed form `finish`
/// returns, handed over without copying, and no allocation per new key.
/// `slots` holds, per bucket, the key's 32-bit hash and its index plus one
/// (0 = empty), probed linearly.
/// Keys are hashed and compared with 4- and 8-byte loads (`hash_key`,
/// `keys_equal`). In a wasm32 guest this is several times cheaper than
/// `HashMap<String, u64>`: there `memcmp` is wasi-libc's byte loop, the
/// generic hasher works on 32-bit words, and hashbrown's probe loop compiles
/// (through Cranelift) to heavily spilled code. See
/// `host/examples/bench_plugins.rs`.
#[derive(Default, Debug, Clone)]
pub struct Counts {
    keys: String,
    ends: Vec<u32>,
    counts: Vec<u64>,
    slots: Vec<Slot>,
}

#[derive(Default, Debug, Clone, Copy)]
struct Slot {
    hash: u32,
    /// Index of the key plus one; 0 marks an empty slot.
    entry: u32,
}

/// The table grows when more than this share of the slots would be used
/// (linear probing stays short; slots are 8 bytes).
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;

impl Counts {
    // `inline` matters in the guest: LLVM does not inline these for wasm32 on
    // its own, and each call costs a stack-limit and an epoch check there.
    #[inline]
    pub fn add(&mut self, key: &str) {
        self.add_n(key, 1);
    }

    #[inline(always)]
    pub fn add_n(&mut self, key: &str, n: u64) {
        let hash = hash_key(key.as_bytes()) as u32;
        if let Some(slot) = self.find(key, hash) {
            let entry = self.slots[slot].entry as usize - 1;
            self.counts[entry] += n;
            return;
        }
        self.insert_new(key, hash, n);
    }

    /// The slot holding `key`, if present.
    #[inline(always)]
    fn find(&self, key: &str, hash: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot.entry == 0 {
                return None;
            }
            if slot.hash == hash && keys_equal(self.key_bytes_at(slot.entry as usize - 1), key.as_bytes()) {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    #[cold]
    fn insert_new(&mut self, key: &str, hash: u32, n: u64) {
        if (self.counts.len() + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        self.keys.push_str(key);
        self.ends.push(u32::try_from(self.keys.len()).expect("keys under 4 GiB in all"));
        self.counts.push(n);
        let entry = u32::try_from(self.counts.len()).expect("fewer than 4 billion keys");
        self.place(Slot { hash, entry });
    }

    /// Puts a slot into the first free bucket of its probe sequence.
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut at = slot.hash as usize & mask;
        while self.slots[at].entry != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        for slot in old {
            if slot.entry != 0 {
                self.place(slot);
            }
        }
    }

    pub fn get(&self, key: &str) -> u64 {
        match self.find(key, hash_key(key.as_bytes()) as u32) {
            Some(slot) => self.counts[self.slots[slot].entry as usize - 1],
            None => 0,
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn into_map(self) -> FxHashMap<String, u64> {
        let mut map = FxHashMap::with_capacity_and_hasher(self.counts.len(), Default::default());
        map.extend(self.iter().map(|(k, n)| (k.to_owned(), n)));
        map
    }

    /// Each key once, in the order first added.
    pub fn into_vec(self) -> Vec<(String, u64)> {
        self.iter().map(|(k, n)| (k.to_owned(), n)).collect()
    }

    /// Each key and its count, in the order first added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        (0..self.counts.len()).map(|i| (self.key_at(i), self.counts[i]))
    }

    /// The keys concatenated, where each ends, and the counts: the packed
    /// form of `finish`, without a copy.
    pub fn into_packed(self) -> (String, Vec<u32>, Vec<u64>) {
        (self.keys, self.ends, self.counts)
    }

    fn key_at(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }

    /// The key's bytes, for comparing: no char-boundary check in the probe loop.
    #[inline(always)]
    fn key_bytes_at(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys.as_bytes()[start..self.ends[i] as usize]
    }
}

#[inline(always)]
fn load_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[inline(always)]
fn load_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hash of a key: the bytes read as (overlapping) 4- or 8-byte words, each
/// mixed with a 64-bit multiply (one `i64.mul` on wasm32), then folded so
/// that the low 32 bits, which [`Counts`] uses, depend on every byte.
#[inline]
fn hash_key(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let mut h = (n as u64).wrapping_mul(MUL);
    if n <= 8 {
        let word = if n >= 4 {
            // Two overlapping 4-byte loads cover every byte.
            u64::from(load_u32(bytes, 0)) | (u64::from(load_u32(bytes, n - 4)) << 32)
        } else if n > 0 {
            // 1 to 3 bytes: first, middle, last cover every byte.
            u64::from(bytes[0]) | (u64::from(bytes[n / 2]) << 8) | (u64::from(bytes[n - 1]) << 16)
        } else {
            0
        };
        h = (h ^ word).wrapping_mul(MUL);
    } else {
        let mut at = 0;
        while at + 8 < n {
            h = (h ^ load_u64(bytes, at)).wrapping_mul(MUL).rotate_left(29);
            at += 8;
        }
        // The last 8 bytes, overlapping the previous word when n % 8 != 0.
        h = (h ^ load_u64(bytes, n - 8)).wrapping_mul(MUL);
    }
    let h = (h ^ (h >> 32)).wrapping_mul(MUL);
    h ^ (h >> 32)
}

/// Byte equality with at most two loads per side for keys up to 8 bytes.
#[inline]
fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 4 {
        return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
    }
    if n <= 8 {
        return load_u32(a, 0) == load_u32(b, 0) && load_u32(a, n - 4) == load_u32(b, n - 4);
    }
    let mut at = 0;
    while at + 8 < n {
        if load_u64(a, at) != load_u64(b, at) {
            return false;
        }
        at += 8;
    }
    load_u64(a, n - 8) == load_u64(b, n - 8)
}

/// A counting rule. One value per task: `new`, then `count_row` per row.
///
/// Lifetime: the host makes a new `Counter` (and a new [`Counts`]) for each
/// task, a file or a byte range of one, and one instance of the component
/// serves many tasks one after the other. State kept across rows belongs in
/// `self`; a `static` or `thread_local` outlives the task, and anything
/// counted through one would make the counts depend on how the input was
/// split into tasks (`--split-mb`).
pub trait Counter: Sized + 'static {
    fn info() -> Info;
    fn new(params: &Params) -> Result<Self, String>;
    /// Adds one row's keys. `row` has one value per column of `info()`.
    fn count_row(&mut self, row: &[&str], counts: &mut Counts) -> Result<(), String>;
}

/// The WIT resource behind every plugin: a rule plus its counts.
#[doc(hidden)]
pub struct Task<C: Counter> {
    state: RefCell<Option<(C, Counts)>>,
}

#[doc(hidden)]
pub fn plugin_info<C: Counter>() -> wit::PluginInfo {
    let info = C::info();
    wit::PluginInfo {
        name: info.name.into(),
        version: info.version.into(),
        description: info.description.into(),
        columns: info.columns.iter().map(|c| c.to_string()).collect(),
        params: info
            .params
            .iter()
            .map(|p| wit::ParamInfo { name: p.name.into(), default: p.default.into(), help: p.help.into() })
            .collect(),
    }
}

/// The counts in the packed form `finish` returns: every key in one string,
/// its end offsets and the counts, so crossing the boundary costs three
/// copies whatever the number of keys.
#[doc(hidden)]
pub fn pack(counts: Counts) -> wit::PackedCounts {
    let (keys, key_ends, counts) = counts.into_packed();
    wit::PackedCounts { keys, key_ends, counts }
}

impl<C: Counter> wit::GuestTaskCounter for Task<C> {
    fn create(params: Vec<(String, String)>) -> Result<wit::TaskCounter, String> {
        let counter = C::new(&Params(params))?;
        Ok(wit::TaskCounter::new(Task::<C> {
            state: RefCell::new(Some((counter, Counts::default()))),
        }))
    }

    fn feed(&self, values: String, ends: Vec<u32>) -> Result<(), String> {
        let mut state = self.state.borrow_mut();
        let (counter, counts) = state.as_mut().ok_or("feed after finish")?;
        feed_batch(counter, counts, C::info().columns.len(), &values, &ends)
    }

    fn finish(&self) -> Result<wit::PackedCounts, String> {
        let (_, counts) = self.state.borrow_mut().take().ok_or("finish called twice")?;
        Ok(pack(counts))
    }
}

/// Decodes one batch (see `feed` in the WIT file) and counts its rows.
pub fn feed_batch<C: Counter>(
    counter: &mut C,
    counts: &mut Counts,
    columns: usize,
    values: &str,
    ends: &[u32],
) -> Result<(), String> {
    if columns == 0 || ends.len() % columns != 0 {
        return Err(format!("batch of {} values is not a whole number of {columns}-column rows", ends.len()));
    }
    let mut row: Vec<&str> = Vec::with_capacity(columns);
    let mut start = 0usize;
    for chunk in ends.chunks_exact(columns) {
        row.clear();
        for &end in chunk {
            let end = end as usize;
            let value = values.get(start..end).ok_or("batch offsets out of range or not on a char boundary")?;
            row.push(value);
            start = end;
        }
        counter.count_row(&row, counts)?;
    }
    Ok(())
}

/// Exports a [`Counter`] as the plugin's implementation of the WIT world.
#[macro_export]
macro_rules! export_counter {
    ($counter:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct WcPluginExport;
            impl $crate::bindings::exports::wc::plugin::counter::Guest for WcPluginExport {
                type TaskCounter = $crate::Task<$counter>;
                fn info() -> $crate::bindings::exports::wc::plugin::counter::PluginInfo {
                    $crate::plugin_info::<$counter>()
                }
            }
            $crate::bindings::export_counting_plugin!(WcPluginExport with_types_in $crate::bindings);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of every length up to 40, and pairs differing in one byte.
    fn samples() -> Vec<String> {
        let mut keys = vec![String::new()];
        for len in 1..=40 {
            let base: String = (0..len).map(|i| (b'a' + (i * 7 % 26) as u8) as char).collect();
            keys.push(base.clone());
            for at in [0, len / 2, len - 1] {
                let mut bytes = base.clone().into_bytes();
                bytes[at] = b'Z';
                keys.push(String::from_utf8(bytes).unwrap());
            }
        }
        keys.extend(["é", "日本", "😀", "a b", "\n", "café", "cafe"].map(String::from));
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn keys_equal_is_byte_equality() {
        let keys = samples();
        for a in &keys {
            for b in &keys {
                assert_eq!(keys_equal(a.as_bytes(), b.as_bytes()), a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn hash_depends_on_every_byte() {
        let keys = samples();
        let hashes: std::collections::HashSet<u64> = keys.iter().map(|k| hash_key(k.as_bytes())).collect();
        assert_eq!(hashes.len(), keys.len(), "a collision among the samples");
        // `Counts` uses the low 32 bits.
        let low: std::collections::HashSet<u32> = keys.iter().map(|k| hash_key(k.as_bytes()) as u32).collect();
        assert_eq!(low.len(), keys.len());
    }

    #[test]
    fn counts_add_get_and_drain() {
        let mut counts = Counts::default();
        for key in samples() {
            counts.add(&key);
            counts.add_n(&key, 2);
        }
        counts.add("café");
        assert_eq!((counts.get("café"), counts.get("cafe"), counts.get(""), counts.get("missing")), (4, 3, 3, 0));
        assert_eq!(counts.len(), samples().len());
        assert_eq!(counts.total(), 3 * samples().len() as u64 + 1);
        let map = counts.clone().into_map();
        let mut vec = counts.into_vec();
        vec.sort();
        let mut from_map: Vec<(String, u64)> = map.into_iter().collect();
        from_map.sort();
        assert_eq!(vec, from_map);
        assert!(vec.iter().all(|(k, n)| *n == 3 || (k == "café" && *n == 4)));
    }

    #[test]
    fn the_packed_form_is_the_keys_in_order_with_their_ends_and_counts() {
        let mut counts = Counts::default();
        for key in ["b", "", "é", "b", "long key over sixteen bytes", ""] {
            counts.add(key);
        }
        let pairs: Vec<(String, u64)> = counts.iter().map(|(k, n)| (k.to_owned(), n)).collect();
        let (keys, ends, ns) = counts.into_packed();
        assert_eq!(keys, "bélong key over sixteen bytes");
        assert_eq!(ends, [1, 1, 3, 30]);
        assert_eq!(ns, [2, 2, 1, 1]);
        assert_eq!(pairs, [("b".to_string(), 2), ("".into(), 2), ("é".into(), 1), ("long key over sixteen bytes".into(), 1)]);
    }

    #[test]
    fn many_keys_survive_growth() {
        let mut counts = Counts::default();
        for i in 0..50_000u32 {
            counts.add(&format!("k{i}"));
            counts.add(&format!("k{}", i / 2));
        }
        assert_eq!(counts.len(), 50_000);
        assert_eq!((counts.get("k0"), counts.get("k1"), counts.get("k24999"), counts.get("k25000")), (3, 3, 3, 1));
    }
}
