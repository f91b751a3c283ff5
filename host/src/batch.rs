//! Rows handed to a plugin in one call, and where they came from: what
//! reading files produces and the plugin runtime consumes, so that neither
//! needs to know the other.

use std::fmt;

/// Where in the input a plugin call happened, e.g. `data/a.csv rows 2-4097`.
/// A batch's location also knows the number of each of its rows, so that a
/// failure can be pinned to one row ([`at_row`](Self::at_row)).
#[derive(Clone, Debug, Default)]
pub struct Location {
    text: String,
    rows: Option<RowNumbers>,
}

/// The input rows of one batch: `first..=last` of `label`, less the rows
/// the reader skipped (too short for the plugin's columns), in order.
#[derive(Clone, Debug)]
struct RowNumbers {
    label: String,
    first: u64,
    skipped: Vec<u64>,
}

impl Location {
    /// A location that is not a batch of rows (`task start`, a byte range).
    pub fn new(text: impl Into<String>) -> Location {
        Location { text: text.into(), rows: None }
    }

    /// The rows `first..=last` of `label` (e.g. `data/a.csv`), but for the
    /// `skipped` ones (ascending), fed in one batch in that order.
    pub fn rows(label: &str, first: u64, last: u64, skipped: Vec<u64>) -> Location {
        debug_assert!(skipped.windows(2).all(|w| w[0] < w[1]) && skipped.iter().all(|r| (first..=last).contains(r)));
        Location { text: format!("{label} rows {first}-{last}"), rows: Some(RowNumbers { label: label.to_string(), first, skipped }) }
    }

    /// The text after "at", e.g. `data/a.csv rows 2-4097`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this names a batch whose rows can be told apart.
    pub fn has_rows(&self) -> bool {
        self.rows.is_some()
    }

    /// The input row number of the batch's row `index` (0-based).
    pub fn row_number(&self, index: usize) -> Option<u64> {
        let rows = self.rows.as_ref()?;
        let mut row = rows.first + index as u64;
        for &s in &rows.skipped {
            if s <= row {
                row += 1;
            } else {
                break;
            }
        }
        Some(row)
    }

    /// The location of the batch's row `index` alone: `data/a.csv row 1234`.
    pub fn at_row(&self, index: usize) -> Location {
        match (&self.rows, self.row_number(index)) {
            (Some(rows), Some(n)) => Location::new(format!("{} row {n}", rows.label)),
            _ => self.clone(),
        }
    }

    /// The batch's rows `from..=to` (0-based indices): `data/a.csv rows 5-9`.
    pub fn at_rows(&self, from: usize, to: usize) -> Location {
        if from == to {
            return self.at_row(from);
        }
        match (&self.rows, self.row_number(from), self.row_number(to)) {
            (Some(rows), Some(a), Some(b)) => Location::new(format!("{} rows {a}-{b}", rows.label)),
            _ => self.clone(),
        }
    }

    /// The same place with a remark after it, in parentheses.
    pub fn with_note(&self, note: &str) -> Location {
        Location { text: format!("{} ({note})", self.text), rows: self.rows.clone() }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            Ok(())
        } else {
            write!(f, " at {}", self.text)
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

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.ends.len() / self.columns.max(1)
    }

    /// A batch of this one's first `rows` rows.
    pub fn prefix(&self, rows: usize) -> Batch {
        let n = (rows * self.columns).min(self.ends.len());
        let end = if n == 0 { 0 } else { self.ends[n - 1] as usize };
        Batch { values: self.values[..end].to_string(), ends: self.ends[..n].to_vec(), columns: self.columns }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_row_is_named_by_its_input_row_skipped_rows_counted() {
        let at = Location::rows("a.csv", 10, 16, vec![10, 12, 13]);
        assert_eq!(at.to_string(), " at a.csv rows 10-16");
        let rows: Vec<u64> = (0..4).map(|i| at.row_number(i).unwrap()).collect();
        assert_eq!(rows, [11, 14, 15, 16]);
        assert_eq!(at.at_row(1).to_string(), " at a.csv row 14");
        assert_eq!(at.at_rows(0, 2).text(), "a.csv rows 11-15");
        assert_eq!(Location::new("task start").row_number(0), None);
    }

    #[test]
    fn a_prefix_keeps_whole_rows() {
        let mut batch = Batch::new(2);
        batch.push_row(["a", "bb"]);
        batch.push_row(["ccc", ""]);
        batch.push_row(["d", "e"]);
        assert_eq!(batch.rows(), 3);
        let p = batch.prefix(2);
        assert_eq!((p.values(), p.ends(), p.rows()), ("abbccc", &[1u32, 3, 6, 6][..], 2));
        assert!(batch.prefix(0).is_empty());
        assert_eq!(batch.prefix(9).ends(), batch.ends());
    }
}
