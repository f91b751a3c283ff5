//! Rows handed to a plugin in one call, and where they came from: what
//! reading files produces and the plugin runtime consumes, so that neither
//! needs to know the other.

use std::fmt;

/// Where in the input a plugin call happened, e.g. `data/a.csv rows 2-4097`.
#[derive(Clone, Debug, Default)]
pub struct Location(pub String);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " at {}", self.0)
        }
    }
}

/// Rows for one `feed` call, laid out as the WIT `feed` expects.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    values: String,
    ends: Vec<u32>,
    columns: usize,
}

impl Batch {
    pub fn new(columns: usize) -> Batch {
        Batch { values: String::new(), ends: Vec::new(), columns }
    }

    /// Appends one row: one value per plugin column.
    ///
    /// Panics if the batch would pass 4 GiB; callers flush long before.
    pub fn push_row<'v>(&mut self, row: impl IntoIterator<Item = &'v str>) {
        for value in row {
            self.push_value(value);
        }
        debug_assert_eq!(self.ends.len() % self.columns, 0);
    }

    /// Appends the next value; a row is complete after one per column.
    pub fn push_value(&mut self, value: &str) {
        self.values.push_str(value);
        self.ends.push(u32::try_from(self.values.len()).expect("batch larger than 4 GiB"));
    }

    /// All values, concatenated row-major.
    pub fn values(&self) -> &str {
        &self.values
    }

    /// The byte offset where each value ends in [`values`](Self::values).
    pub fn ends(&self) -> &[u32] {
        &self.ends
    }

    /// Values per row.
    pub fn columns(&self) -> usize {
        self.columns
    }

    pub fn bytes(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.values.clear();
        self.ends.clear();
    }
}
