//! Self-contained HTML reports (`detect --report`, `classify --report`):
//! one file, no script, every chart an inline SVG drawn by plotters, so the
//! report opens anywhere, offline, and can be mailed or archived as is.

pub mod charts;
pub mod classify;
pub mod detect;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::io::output::AtomicFile;

/// An HTML page being put together, section after section.
pub struct Page {
    title: String,
    body: String,
}

impl Page {
    pub fn new(title: &str, subtitle: &str) -> Self {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
            escape(title),
            escape(subtitle)
        );
        Page {
            title: title.to_string(),
            body,
        }
    }

    /// A chart (an SVG document) under a heading, with a caption.
    pub fn chart(&mut self, id: &str, heading: &str, svg: &str, caption: &str) {
        let _ = write!(
            self.body,
            "<section id=\"{id}\"><h2>{}</h2>\n<figure>{svg}<figcaption>{}</figcaption></figure></section>\n",
            escape(heading),
            escape(caption)
        );
    }

    /// A table of `rows` under a heading.
    pub fn table(&mut self, id: &str, heading: &str, headers: &[&str], rows: &[Vec<String>]) {
        let _ = write!(
            self.body,
            "<section id=\"{id}\"><h2>{}</h2>\n<table><tr>",
            escape(heading)
        );
        for h in headers {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for cell in row {
                let _ = write!(self.body, "<td>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table></section>\n");
    }

    /// Writes the page to `path` (whole or not at all).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut file = AtomicFile::create(path)?;
        write!(
            file,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{}</title><style>{STYLE}</style></head><body>\n{}</body></html>\n",
            escape(&self.title),
            self.body
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        file.commit()?;
        Ok(())
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}\
h1{margin-bottom:0}.sub{color:#666;margin-top:.3em}section{margin:2em 0}\
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;\
text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:0}\
figcaption{color:#555;font-size:.9em}";

/// `s` safe inside HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_are_given() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        let mut page = Page::new("T <1>", "sub");
        page.table(
            "t",
            "Top",
            &["source", "n"],
            &[vec!["<script>".into(), "3".into()]],
        );
        page.write(&path).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<td>&lt;script&gt;</td><td>3</td>"));
        assert!(!html.contains("<script>"));
    }
}
