//! Offline captures: classic pcap (both byte orders, micro- and nanosecond
//! timestamps) and pcapng (several sections and interfaces), told apart by
//! their magic bytes, never by the file name.
//!
//! [`CaptureReader`] yields the frames of a capture one at a time from a
//! bounded buffer (memory stays flat whatever the file size);
//! [`records::read_records`] turns them into [`PacketRecord`]s through the
//! shared parser and the flow table.
//!
//! Bad input gives one sentence each: an empty file, a file that is not a
//! capture, an unsupported link type, a corrupt first record or block (with
//! its byte offset). Damage after the first frame is not an error, as in
//! tcpdump: the frames before it are kept, and [`CaptureReader::truncation`]
//! (the file ends inside its last record) or [`CaptureReader::corruption`]
//! (a record or block that cannot be right; nothing after it can be framed)
//! says what was dropped.
//!
//! [`PacketRecord`]: ml_sniffing_common::record::PacketRecord

mod classic;
mod input;
pub mod link;
mod ng;
pub mod records;
pub mod writer;

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{bail, Result};
use ml_sniffing_common::parser::Link;

use self::classic::Classic;
use self::input::Input;
use self::ng::PcapNg;

pub use self::classic::MAX_RECORD;
pub use self::ng::MAX_BLOCK;
pub use self::records::{read_records, read_table, Options, Summary};

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap {
        little_endian: bool,
        nanosecond: bool,
    },
    PcapNg,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Pcap {
                little_endian,
                nanosecond,
            } => write!(
                f,
                "pcap, {}-endian, {}second timestamps",
                if *little_endian { "little" } else { "big" },
                if *nanosecond { "nano" } else { "micro" }
            ),
            Format::PcapNg => write!(f, "pcapng"),
        }
    }
}

/// Bytes [`detect`] needs to recognise every format.
pub const MAGIC_LEN: usize = 12;

/// The capture format announced by a file's first bytes, if any: one of the
/// four classic magics (4 bytes), or a pcapng section header block (its
/// type and its byte-order magic, 12 bytes, so that a text file starting
/// with blank lines is not taken for one).
pub fn detect(first: &[u8]) -> Option<Format> {
    let magic = u32::from_be_bytes(first.get(..4)?.try_into().ok()?);
    let pcap = |little_endian, nanosecond| {
        Some(Format::Pcap {
            little_endian,
            nanosecond,
        })
    };
    match magic {
        0xa1b2_c3d4 => pcap(false, false),
        0xd4c3_b2a1 => pcap(true, false),
        0xa1b2_3c4d => pcap(false, true),
        0x4d3c_b2a1 => pcap(true, true),
        0x0a0d_0d0a => match first.get(8..12)? {
            [0x1a, 0x2b, 0x3c, 0x4d] | [0x4d, 0x3c, 0x2b, 0x1a] => Some(Format::PcapNg),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the file at `path` starts like a capture (for callers that sort
/// files; readers of one input use [`detect`] on the bytes they read).
pub fn is_capture(path: &Path) -> io::Result<bool> {
    let mut first = Vec::with_capacity(MAGIC_LEN);
    std::fs::File::open(path)?
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut first)?;
    Ok(detect(&first).is_some())
}

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The bytes the capture kept.
    pub data: &'a [u8],
    /// The frame's length on the wire (at least `data.len()`).
    pub wire_len: u32,
    /// Epoch nanoseconds.
    pub timestamp_ns: u64,
    /// How the frame starts.
    pub link: Link,
}

/// The file ended inside a record: what was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// Byte offset of the partial record.
    pub offset: u64,
    /// Bytes of it present, and bytes it needed.
    pub have: usize,
    pub need: usize,
    /// Frames read before it.
    pub frames: u64,
}

impl Truncation {
    /// The warning sentence for a capture called `name`.
    pub fn warning(&self, name: &str) -> String {
        format!(
            "{name} ends inside a record at byte offset {} ({} of its {} bytes are present): \
             the capture is truncated; the {} packets before it were read and the partial \
             record was dropped",
            self.offset, self.have, self.need, self.frames
        )
    }
}

/// A record or block that cannot be right: reading stopped there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// Byte offset of the corrupt record or block.
    pub offset: u64,
    /// What is wrong with it.
    pub what: String,
    /// Frames read before it.
    pub frames: u64,
}

impl Corruption {
    /// The warning sentence for a capture called `name`.
    pub fn warning(&self, name: &str) -> String {
        format!(
            "{name} is corrupt at byte offset {}: {}; the {} packets before it were read and \
             the rest of the file was skipped",
            self.offset, self.what, self.frames
        )
    }
}

/// What a container reader found next.
enum Next {
    /// A frame: `len` bytes at `start` in the available input; the record
    /// takes `consumed` bytes.
    Frame {
        start: usize,
        len: usize,
        consumed: usize,
        wire_len: u32,
        timestamp_ns: u64,
        link: Link,
    },
    End,
    /// The input ends inside a record.
    Truncated {
        have: usize,
        need: usize,
    },
}

/// Why a container reader stopped.
enum Problem {
    /// A record or block that cannot be right, at this offset.
    Corrupt {
        offset: u64,
        what: String,
    },
    /// A whole sentence: the capture cannot be read (unsupported link type,
    /// truncated file header...).
    Unusable(String),
    Io(io::Error),
}

impl From<io::Error> for Problem {
    fn from(e: io::Error) -> Self {
        Problem::Io(e)
    }
}

enum Container {
    Classic(Classic),
    Ng(PcapNg),
}

/// Reads the frames of a capture.
pub struct CaptureReader<R> {
    input: Input<R>,
    container: Container,
    format: Format,
    name: String,
    /// Bytes of the frame last returned, consumed on the next call.
    pending: usize,
    frames: u64,
    truncation: Option<Truncation>,
    /// A filter expression: frames that do not match are passed over.
    filter: Option<super::filter::Filter>,
    filtered_out: u64,
    corruption: Option<Corruption>,
    done: bool,
}

impl CaptureReader<Box<dyn Read>> {
    /// Opens the capture at `path` (`-`: stdin), with one clear sentence for
    /// a missing, unreadable or empty file.
    pub fn open(path: &Path) -> Result<Self> {
        let shown = crate::io::input::shown(path);
        let opened = crate::io::input::open(path).map_err(|e| {
            // `open_input` speaks of CSV for an empty file.
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && m.len() == 0 && !crate::io::input::is_dash(path) => {
                    anyhow::anyhow!("{shown} is empty (0 bytes): expected a pcap or pcapng capture")
                }
                _ => e,
            }
        })?;
        CaptureReader::new(opened.reader, &shown)
    }

    /// Opens several captures as one, in the order of their first packets
    /// (see [`crate::io::input::open_all`]).
    pub fn open_all(paths: &[std::path::PathBuf]) -> Result<Self> {
        match paths {
            [one] => Self::open(one),
            _ => CaptureReader::new(
                crate::io::input::open_all(paths)?.reader,
                &crate::io::input::shown_all(paths),
            ),
        }
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the start of a capture from `reader`; `name` is the file name
    /// errors show.
    pub fn new(reader: R, name: &str) -> Result<Self> {
        let mut input = Input::new(reader);
        let have = input
            .fill(MAGIC_LEN)
            .map_err(|e| anyhow::Error::new(e).context(format!("cannot read {name}")))?;
        if have == 0 {
            bail!("{name} is empty (0 bytes): expected a pcap or pcapng capture");
        }
        let first = &input.available()[..have.min(MAGIC_LEN)];
        let Some(format) = detect(first) else {
            bail!("{}", not_a_capture(name, first));
        };
        let container = match format {
            Format::Pcap { .. } => Container::Classic(
                Classic::open(&mut input, name).map_err(|p| describe(p, name, 0))?,
            ),
            Format::PcapNg => Container::Ng(PcapNg::new()),
        };
        Ok(CaptureReader {
            input,
            container,
            format,
            name: name.to_string(),
            pending: 0,
            frames: 0,
            truncation: None,
            filter: None,
            filtered_out: 0,
            corruption: None,
            done: false,
        })
    }

    /// Passes over the frames `filter` does not match (counted in
    /// [`Self::filtered_out`]).
    pub fn set_filter(&mut self, filter: super::filter::Filter) {
        self.filter = Some(filter);
    }

    /// Frames that did not match the filter.
    pub fn filtered_out(&self) -> u64 {
        self.filtered_out
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The name errors show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.input.offset() + self.pending as u64
    }

    /// Set once the reader has met a partial final record.
    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }

    /// Set once the reader has met a corrupt record or block after at
    /// least one frame (before any, it is an error).
    pub fn corruption(&self) -> Option<&Corruption> {
        self.corruption.as_ref()
    }

    /// Sections read so far (pcapng; 1 for a classic capture).
    pub fn sections(&self) -> u32 {
        match &self.container {
            Container::Classic(_) => 1,
            Container::Ng(ng) => ng.sections(),
        }
    }

    /// Bytes of the read buffer, for memory accounting.
    pub fn buffer_bytes(&self) -> usize {
        self.input.capacity()
    }

    /// The next frame, `None` at the end of the capture (also after a
    /// truncated final record or a corrupt one: see [`Self::truncation`] and
    /// [`Self::corruption`]).
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        loop {
            self.input.consume(std::mem::take(&mut self.pending));
            if self.done {
                return Ok(None);
            }
            let next = match &mut self.container {
                Container::Classic(c) => c.next(&mut self.input),
                Container::Ng(ng) => ng.next(&mut self.input),
            };
            if let Ok(Next::Frame {
                start,
                len,
                consumed,
                wire_len,
                timestamp_ns,
                link,
            }) = next
            {
                self.pending = consumed;
                self.frames += 1;
                if let Some(filter) = &mut self.filter {
                    let data = &self.input.available()[start..start + len];
                    if !filter.matches(link, data, wire_len)? {
                        self.filtered_out += 1;
                        continue;
                    }
                }
                let data = &self.input.available()[start..start + len];
                return Ok(Some(Frame {
                    data,
                    wire_len,
                    timestamp_ns,
                    link,
                }));
            }
            return self.stopped(next);
        }
    }

    /// The end of the frames: why, recorded.
    fn stopped(&mut self, next: std::result::Result<Next, Problem>) -> Result<Option<Frame<'_>>> {
        match next {
            Ok(Next::Frame { .. }) => unreachable!("frames are handled by next_frame"),
            Ok(Next::End) => {
                self.done = true;
                Ok(None)
            }
            Ok(Next::Truncated { have, need }) => {
                self.done = true;
                self.truncation = Some(Truncation {
                    offset: self.input.offset(),
                    have,
                    need,
                    frames: self.frames,
                });
                Ok(None)
            }
            // Salvage what came before, as tcpdump does; with nothing to
            // salvage the capture is unusable.
            Err(Problem::Corrupt { offset, what }) if self.frames > 0 => {
                self.done = true;
                self.corruption = Some(Corruption {
                    offset,
                    what,
                    frames: self.frames,
                });
                Ok(None)
            }
            // A compressed capture cut short or damaged: the same.
            Err(Problem::Io(e))
                if self.frames > 0
                    && matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                    ) =>
            {
                self.done = true;
                self.corruption = Some(Corruption {
                    offset: self.input.offset(),
                    what: format!("the compressed stream is damaged or cut short ({e})"),
                    frames: self.frames,
                });
                Ok(None)
            }
            Err(p) => {
                self.done = true;
                Err(describe(p, &self.name, self.frames))
            }
        }
    }
}

fn describe(problem: Problem, name: &str, frames: u64) -> anyhow::Error {
    match problem {
        Problem::Corrupt { offset, what } => anyhow::anyhow!(
            "{name} is corrupt at byte offset {offset}: {what} ({frames} packets were read \
             before it)"
        ),
        Problem::Unusable(sentence) if sentence.starts_with(name) => anyhow::anyhow!(sentence),
        Problem::Unusable(sentence) => anyhow::anyhow!("{name}: {sentence}"),
        Problem::Io(e) => anyhow::Error::new(e).context(format!("cannot read {name}")),
    }
}

fn not_a_capture(name: &str, first: &[u8]) -> String {
    let shown: Vec<String> = first.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let text = first
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    format!(
        "{name} is not a pcap or pcapng capture: it starts with the bytes {}{}",
        shown.join(" "),
        if text { " (text)" } else { "" }
    )
}

#[cfg(test)]
mod tests;
