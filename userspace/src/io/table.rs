//! An in-memory table of text cells, stored compactly.
//!
//! `detect` must write every input row back out, sorted by score, with every
//! input column. A `Vec<String>` per cell would cost several allocations per
//! row; here all cells live in one byte arena and each row keeps one offset
//! plus the (row-relative) end of each of its cells.

use std::ops::Range;

/// Rows of UTF-8 text cells under a header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    /// Every cell's text, one after the other (a `String`, so that cells
    /// are `&str` without re-validating UTF-8).
    text: String,
    /// Start of each row's first cell in `text`.
    row_starts: Vec<usize>,
    /// For each row, `headers.len()` cell ends relative to the row start.
    cell_ends: Vec<u32>,
    /// The input line each row came from (1-based), for error messages,
    /// stored sparsely: `(row, line)` wherever a row does not start on the
    /// line after the previous row's (the first row, rows after quoted
    /// newlines or skipped lines). Other rows follow on consecutive lines.
    line_marks: Vec<(usize, u64)>,
}

impl Table {
    pub fn new(headers: Vec<String>) -> Self {
        Table {
            headers,
            ..Table::default()
        }
    }

    /// A table of the given rows, numbered as the lines after a header
    /// line (for tests and small inputs built in code).
    pub fn from_rows(headers: &[&str], rows: &[&[&str]]) -> Result<Self, TableError> {
        let mut table = Table::new(headers.iter().map(|h| h.to_string()).collect());
        for (i, row) in rows.iter().enumerate() {
            table.push_row(row.iter().copied(), i as u64 + 2)?;
        }
        Ok(table)
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn len(&self) -> usize {
        self.row_starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row_starts.is_empty()
    }

    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// Appends a row. `cells` must hold exactly one cell per header; a row
    /// longer than 4 GiB is refused (cell offsets are 32-bit).
    pub fn push_row<'a, I>(&mut self, cells: I, line: u64) -> Result<(), TableError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let start = self.text.len();
        let ends_before = self.cell_ends.len();
        let mut count = 0usize;
        for cell in cells {
            self.text.push_str(cell);
            let Ok(end) = u32::try_from(self.text.len() - start) else {
                self.text.truncate(start);
                self.cell_ends.truncate(ends_before);
                return Err(TableError::RowTooLong { line });
            };
            self.cell_ends.push(end);
            count += 1;
        }
        if count != self.headers.len() {
            self.text.truncate(start);
            self.cell_ends.truncate(ends_before);
            return Err(TableError::WrongCellCount {
                line,
                found: count,
                expected: self.headers.len(),
            });
        }
        let row = self.row_starts.len();
        if row == 0 || self.line(row - 1) + 1 != line {
            self.line_marks.push((row, line));
        }
        self.row_starts.push(start);
        Ok(())
    }

    fn cell_range(&self, row: usize, col: usize) -> Range<usize> {
        let width = self.headers.len();
        let start = self.row_starts[row];
        let ends = &self.cell_ends[row * width..(row + 1) * width];
        let begin = if col == 0 { 0 } else { ends[col - 1] as usize };
        start + begin..start + ends[col] as usize
    }

    /// The text of one cell.
    pub fn cell(&self, row: usize, col: usize) -> &str {
        &self.text[self.cell_range(row, col)]
    }

    /// Touches the storage of `rows` so that it is in cache before they are
    /// read one by one. Rows written in score order come in random order;
    /// reading them in a loop that does nothing else lets the CPU overlap
    /// the cache misses, which a formatting loop would take one at a time.
    pub fn prefetch_rows(&self, rows: &[u32]) -> usize {
        let width = self.headers.len();
        let mut touched = 0usize;
        for &row in rows {
            let start = self.row_starts[row as usize];
            touched ^= start ^ self.cell_ends[row as usize * width] as usize;
            touched ^= self.text.as_bytes().get(start).copied().unwrap_or(0) as usize;
        }
        touched
    }

    /// The input line row `row` came from (1-based, counting the header).
    pub fn line(&self, row: usize) -> u64 {
        let after = self.line_marks.partition_point(|&(r, _)| r <= row);
        match after.checked_sub(1) {
            Some(i) => {
                let (r, line) = self.line_marks[i];
                line + (row - r) as u64
            }
            None => 0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("line {line} has {found} fields but the header has {expected}")]
    WrongCellCount {
        line: u64,
        found: usize,
        expected: usize,
    },
    #[error("line {line} is longer than 4 GiB")]
    RowTooLong { line: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(vec!["a".into(), "b".into(), "c".into()]);
        t.push_row(["1", "", "three"], 2).unwrap();
        t.push_row(["x", "yy", ""], 3).unwrap();
        t
    }

    #[test]
    fn cells_read_back_including_empty_ones() {
        let t = table();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (0..3).map(|c| t.cell(0, c)).collect::<Vec<_>>(),
            ["1", "", "three"]
        );
        assert_eq!(
            (0..3).map(|c| t.cell(1, c)).collect::<Vec<_>>(),
            ["x", "yy", ""]
        );
        assert_eq!(t.line(1), 3);
        assert_eq!(t.column("c"), Some(2));
    }

    #[test]
    fn line_numbers_survive_gaps() {
        let mut t = Table::new(vec!["a".into()]);
        for line in [2, 3, 4, 7, 8, 12] {
            t.push_row(["x"], line).unwrap();
        }
        assert_eq!(
            (0..6).map(|r| t.line(r)).collect::<Vec<_>>(),
            [2, 3, 4, 7, 8, 12]
        );
        assert_eq!(t.line_marks.len(), 3);
        assert_eq!(t.column("d"), None);
    }

    #[test]
    fn wrong_cell_count_is_refused_and_leaves_the_table_unchanged() {
        let mut t = table();
        let err = t.push_row(["1", "2"], 4).unwrap_err();
        assert_eq!(
            err,
            TableError::WrongCellCount {
                line: 4,
                found: 2,
                expected: 3
            }
        );
        assert_eq!(t.len(), 2);
        t.push_row(["p", "q", "r"], 5).unwrap();
        assert_eq!(t.cell(2, 2), "r");
        assert_eq!(t.cell(1, 1), "yy");
    }
}
