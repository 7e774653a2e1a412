//! How tables on screen look: one rule under the header, long cells cut.

/// comfy-table preset: no borders, no row lines, one rule under the header.
pub const HEADER_RULE_ONLY: &str = "     -             ";

/// Characters of a cell shown in a table on screen: a longer cell is cut
/// (its whole text stays in the output files), so that a huge cell neither
/// floods the terminal nor costs the table's layout seconds.
const SHOWN_CHARS: usize = 64;

/// `cell` as tables on screen show it: at most [`SHOWN_CHARS`] characters,
/// an ellipsis marking a cut.
pub fn shown_cell(cell: &str) -> String {
    match cell.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &cell[..end]),
        None => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_for_the_screen() {
        assert_eq!(shown_cell("udp"), "udp");
        let long = "é".repeat(3_000_000);
        let shown = shown_cell(&long);
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(
            shown_cell(&"x".repeat(SHOWN_CHARS)),
            "x".repeat(SHOWN_CHARS)
        );
    }
}
