//! Guest-side glue for wc-host counting plugins.
//!
//! A plugin implements [`Counter`] — a plain Rust type, testable natively —
//! and calls [`export_counter!`] once. The SDK owns the WIT bindings, the
//! batch decoding and the count map, so a plugin is only its rule.
//!
//! ```ignore
//! struct Shout;
//! impl wc_plugin_sdk::Counter for Shout {
//!     fn info() -> wc_plugin_sdk::Info { /* name, version, columns */ }
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
#[derive(Default, Debug, Clone)]
pub struct Counts {
    map: FxHashMap<String, u64>,
}

impl Counts {
    pub fn add(&mut self, key: &str) {
        self.add_n(key, 1);
    }

    pub fn add_n(&mut self, key: &str, n: u64) {
        match self.map.get_mut(key) {
            Some(count) => *count += n,
            None => {
                self.map.insert(key.to_owned(), n);
            }
        }
    }

    pub fn get(&self, key: &str) -> u64 {
        self.map.get(key).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.map.values().sum()
    }

    pub fn into_map(self) -> FxHashMap<String, u64> {
        self.map
    }

    pub fn into_vec(self) -> Vec<(String, u64)> {
        self.map.into_iter().collect()
    }
}

/// A counting rule. One value per task: `new`, then `count_row` per row.
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
    }
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

    fn finish(&self) -> Result<Vec<(String, u64)>, String> {
        let (_, counts) = self.state.borrow_mut().take().ok_or("finish called twice")?;
        Ok(counts.into_vec())
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
