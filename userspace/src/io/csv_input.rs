//! CSV input with one clear sentence for each way a file can be unusable.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::table::Table;
use crate::progress;

/// Checks that `path` names a readable, non-empty regular file and opens it.
pub fn open_input(path: &Path) -> Result<File> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!("{shown} does not exist"),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            bail!("cannot read {shown}: permission denied")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
    };
    if meta.is_dir() {
        bail!("{shown} is a directory, not a file");
    }
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => {
            anyhow::anyhow!("cannot read {shown}: permission denied")
        }
        _ => anyhow::Error::new(e).context(format!("cannot open {shown}")),
    })?;
    if meta.is_file() && meta.len() == 0 {
        bail!("{shown} is empty: expected a CSV header line and at least one row");
    }
    Ok(file)
}

/// Reads a whole CSV file into a [`Table`], validating shape and encoding.
pub fn read_csv(path: &Path) -> Result<Table> {
    let file = open_input(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_csv_stream(file, path, size)
}

/// [`read_csv_from`] with a progress bar for an input of `size` bytes.
pub fn read_csv_stream<R: Read>(input: R, path: &Path, size: u64) -> Result<Table> {
    let bar = progress::bytes(size, "reading CSV");
    let table = read_csv_from(bar.wrap_read(input), path, |pos| bar.set_position(pos))?;
    bar.finish_and_clear();
    Ok(table)
}

/// Reads CSV from any reader; `path` is only used in messages. `on_progress`
/// receives the byte offset now and then.
pub fn read_csv_from<R: Read>(
    input: R,
    path: &Path,
    mut on_progress: impl FnMut(u64),
) -> Result<Table> {
    let shown = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input);

    let header = match reader.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(describe_csv_error(e, &shown.to_string())),
    };
    let mut headers = Vec::with_capacity(header.len());
    for field in header.iter() {
        match std::str::from_utf8(field) {
            Ok(name) => headers.push(name.to_string()),
            Err(_) => bail!("{shown} is not UTF-8 text (the header line holds other bytes)"),
        }
    }
    if headers.iter().all(|h| h.trim().is_empty()) {
        bail!("{shown} is empty: expected a CSV header line and at least one row");
    }
    if let Some(dup) = first_duplicate(&headers) {
        bail!("{shown}: the column `{dup}` appears more than once in the header");
    }

    let mut table = Table::new(headers);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(describe_csv_error(e, &shown.to_string())),
        }
        let line = record.position().map_or(0, |p| p.line());
        // A blank line at the end of a file is not a row.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        // Every field is UTF-8 exactly when the concatenation is and each
        // field starts and ends on a character boundary.
        let text = std::str::from_utf8(record.as_slice()).ok();
        let field = |i: usize| text?.get(record.range(i)?);
        if (0..record.len()).any(|i| field(i).is_none()) {
            let bad = (0..record.len())
                .find(|&i| std::str::from_utf8(&record[i]).is_err())
                .unwrap_or(0);
            let column = table.headers().get(bad).map_or("?", String::as_str);
            bail!("{shown} is not UTF-8 text (line {line}, column `{column}` holds other bytes)");
        }
        table
            .push_row(
                (0..record.len()).map(|i| field(i).unwrap_or_default()),
                line,
            )
            .with_context(|| format!("{shown} is not a well-formed CSV file"))?;
        if table.len().is_multiple_of(65_536) {
            on_progress(record.position().map_or(0, |p| p.byte()));
        }
    }
    if table.is_empty() {
        bail!("{shown} has a header line but no data rows");
    }
    Ok(table)
}

fn first_duplicate(headers: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    headers
        .iter()
        .find(|h| !seen.insert(h.as_str()))
        .map(String::as_str)
}

fn describe_csv_error(e: csv::Error, shown: &str) -> anyhow::Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => anyhow::Error::new(io).context(format!("cannot read {shown}")),
        csv::ErrorKind::Utf8 { pos, .. } => {
            let line = pos.map(|p| p.line()).or(line).unwrap_or(0);
            anyhow::anyhow!("{shown} is not UTF-8 text (line {line})")
        }
        other => match line {
            Some(line) => {
                anyhow::anyhow!("{shown} is not a well-formed CSV file (line {line}): {other:?}")
            }
            None => anyhow::anyhow!("{shown} is not a well-formed CSV file: {other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<Table> {
        read_csv_from(text, Path::new("in.csv"), |_| {})
    }

    #[test]
    fn reads_rows_and_keeps_quoted_cells() {
        let t = read(b"a,b\n1,\"x,y\"\n2,z\n").unwrap();
        assert_eq!(t.headers(), ["a", "b"]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.cell(0, 1), "x,y");
        assert_eq!(t.line(1), 3);
    }

    #[test]
    fn header_only_blank_and_ragged_inputs_are_refused() {
        let e = read(b"a,b\n").unwrap_err().to_string();
        assert_eq!(e, "in.csv has a header line but no data rows");
        let e = read(b"\n\n").unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
        let e = format!("{:#}", read(b"a,b\n1,2\n3\n").unwrap_err());
        assert!(
            e.contains("line 3 has 1 fields but the header has 2"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_cells_name_line_and_column() {
        let e = read(b"a,b\n1,2\n3,\xff\xfe\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "in.csv is not UTF-8 text (line 3, column `b` holds other bytes)"
        );
    }

    #[test]
    fn a_character_split_across_fields_is_not_utf8() {
        // "é" is C3 A9: valid as one string, not as two fields.
        let e = read(b"a,b\n1,2\n\xc3,\xa9\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "in.csv is not UTF-8 text (line 3, column `a` holds other bytes)"
        );
        let t = read("a,b\n\u{e9},\u{1f600}\n".as_bytes()).unwrap();
        assert_eq!((t.cell(0, 0), t.cell(0, 1)), ("\u{e9}", "\u{1f600}"));
    }

    #[test]
    fn duplicate_columns_are_refused() {
        let e = read(b"a,b,a\n1,2,3\n").unwrap_err().to_string();
        assert!(e.contains("`a` appears more than once"), "{e}");
    }
}
