//! Grouping rows into flows with compact keys.
//!
//! A million-row capture can hold a million distinct flows; keying maps by
//! strings would cost hundreds of bytes a flow. Addresses are interned once
//! (their text borrowed from the table), flows are keyed by small integer
//! tuples, and each row keeps only its dense flow number.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::cells::PacketColumns;
use crate::io::Table;

/// A dense number for each distinct address text of the source and
/// destination columns.
pub struct AddressIds {
    pub source: Vec<u32>,
    pub destination: Vec<u32>,
}

impl AddressIds {
    pub fn new(table: &Table, cols: &PacketColumns) -> Self {
        let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut intern = |text| {
            let next = ids.len() as u32;
            *ids.entry(text).or_insert(next)
        };
        let mut source = Vec::with_capacity(table.len());
        let mut destination = Vec::with_capacity(table.len());
        for row in 0..table.len() {
            source.push(intern(table.cell(row, cols.source_ip)));
            destination.push(intern(table.cell(row, cols.destination_ip)));
        }
        AddressIds {
            source,
            destination,
        }
    }
}

/// Rows grouped by a key: `of_row[r]` is the dense group number of row `r`.
pub struct Groups {
    pub of_row: Vec<u32>,
    pub len: usize,
}

/// Groups `n` rows by `key(row)`; groups are numbered in order of first
/// appearance.
pub fn group_rows<K: Hash + Eq>(n: usize, mut key: impl FnMut(usize) -> K) -> Groups {
    let mut numbers: FxHashMap<K, u32> = FxHashMap::default();
    let of_row = (0..n)
        .map(|row| {
            let next = numbers.len() as u32;
            *numbers.entry(key(row)).or_insert(next)
        })
        .collect();
    Groups {
        of_row,
        len: numbers.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_numbered_in_order_of_first_appearance() {
        let keys = ["b", "a", "b", "c", "a"];
        let g = group_rows(keys.len(), |r| keys[r]);
        assert_eq!(g.of_row, [0, 1, 0, 2, 1]);
        assert_eq!(g.len, 3);
    }

    #[test]
    fn addresses_are_interned_by_text() {
        let mut t = Table::new(
            super::super::cells::SEED_COLUMNS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        for (src, dst) in [
            ("10.0.0.1", "10.0.0.2"),
            ("10.0.0.2", "10.0.0.1"),
            ("::1", "0::1"),
        ] {
            t.push_row(["1", src, dst, "tcp", "60"], 2).unwrap();
        }
        let ids = AddressIds::new(&t, &PacketColumns::find(&t).unwrap());
        assert_eq!(ids.source, [0, 1, 2]);
        // "0::1" is another text for ::1: the original grouped by text.
        assert_eq!(ids.destination, [1, 0, 3]);
    }
}
