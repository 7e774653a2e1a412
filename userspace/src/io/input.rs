//! Inputs named on the command line: a file, a pipe or device (`/dev/stdin`,
//! `<(...)`), or `-` for stdin. Each is opened once and read as a stream,
//! so a pipe gives the same result as the file it carries.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Whether `path` is `-`, the name of stdin (and of stdout for outputs).
pub fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How messages name `path`.
pub fn shown(path: &Path) -> String {
    if is_dash(path) {
        "stdin".to_string()
    } else {
        path.display().to_string()
    }
}

/// An opened input and its size in bytes when known (0 for stdin and
/// pipes), for progress bars.
pub struct Opened {
    pub reader: Box<dyn Read>,
    pub size: u64,
}

/// Opens `path`, or stdin for `-`, with one clear sentence for a missing,
/// unreadable or empty file (see [`super::csv_input::open_input`]). A
/// gzip or Zstandard stream (told by its magic bytes, whatever the name)
/// is decompressed as it is read.
pub fn open(path: &Path) -> Result<Opened> {
    if path.is_dir() {
        return open_folder(path);
    }
    let (reader, size): (Box<dyn Read>, u64) = if is_dash(path) {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = super::csv_input::open_input(path)?;
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map_or(0, |m| m.len());
        (Box::new(file), size)
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let start = reader
        .fill_buf()
        .with_context(|| format!("cannot read {}", shown(path)))?;
    Ok(match Compression::of(start) {
        // The decompressed size is not known: progress shows as a count.
        Some(Compression::Gzip) => Opened {
            reader: Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            size: 0,
        },
        Some(Compression::Zstd) => Opened {
            reader: Box::new(ZstdFrames::new(reader, shown(path))),
            size: 0,
        },
        None => Opened {
            reader: Box::new(reader),
            size,
        },
    })
}

/// Several inputs read as one: each a capture file (possibly compressed),
/// in the order of their first packets, as a folder's files (see
/// [`open`]). Stdin cannot be one of them: it cannot be read twice.
pub fn open_all(paths: &[PathBuf]) -> Result<Opened> {
    if let [one] = paths {
        return open(one);
    }
    for path in paths {
        if is_dash(path) {
            anyhow::bail!("`-` (stdin) cannot be one of several inputs: give it alone");
        }
        if path.is_dir() {
            anyhow::bail!(
                "{} is a folder: give a folder alone, or files",
                path.display()
            );
        }
    }
    join(paths.to_vec(), "every input")
}

/// How messages name several inputs.
pub fn shown_all(paths: &[PathBuf]) -> String {
    match paths {
        [one] => shown(one),
        [first, rest @ ..] => format!("{} and {} more", shown(first), rest.len()),
        [] => "no input".to_string(),
    }
}

/// A folder of captures (a rotated set): one stream of every capture in
/// it (hidden files left out, each possibly compressed), in the order of
/// their first packets.
fn open_folder(folder: &Path) -> Result<Opened> {
    let shown = folder.display();
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("cannot read the folder {shown}"))?
    {
        let entry = entry.with_context(|| format!("cannot read the folder {shown}"))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        anyhow::bail!(
            "{shown} is a directory with no capture in it: give a file, or a folder of pcap \
             or pcapng captures"
        );
    }
    join(files, &format!("every file in the folder {shown}"))
}

/// Captures joined into one stream in the order of their first packets
/// (then of their names). Classic pcap files after the first must have the
/// same header (byte order, resolution, link type) and go on as records of
/// the first; pcapng files follow each other as sections. Each file is
/// opened when its turn comes, so that a folder of thousands of rotated
/// files does not hold thousands of descriptors.
fn join(files: Vec<PathBuf>, what: &str) -> Result<Opened> {
    let mut captures = Vec::new();
    for path in files {
        let mut opened = open(&path)?;
        let mut head = Vec::with_capacity(HEAD);
        (&mut opened.reader)
            .take(HEAD as u64)
            .read_to_end(&mut head)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let Some(kind) = Kind::of(&head) else {
            anyhow::bail!(
                "{} is not a pcap or pcapng capture: {what} must be one",
                path.display()
            );
        };
        captures.push((kind, first_time(kind, &head), path));
    }
    captures.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.2.cmp(&b.2)));
    let first_kind = captures[0].0;
    let mut parts = std::collections::VecDeque::new();
    for (i, (kind, _, path)) in captures.into_iter().enumerate() {
        let skip = match (first_kind, kind) {
            _ if i == 0 => 0,
            (Kind::Ng, Kind::Ng) => 0,
            (Kind::Classic(a), Kind::Classic(b)) if a == b => CLASSIC_HEADER as u64,
            _ => anyhow::bail!(
                "{} is not of the same capture format as the first capture (byte order, \
                 time resolution, link type): merge them first (e.g. `mergecap -w \
                 merged.pcapng FILES`)",
                path.display()
            ),
        };
        parts.push_back(Later {
            path,
            skip,
            reader: None,
        });
    }
    Ok(Opened {
        reader: Box::new(InTurn(parts)),
        size: 0,
    })
}

/// One file of a joined input: opened on its first read (its first `skip`
/// bytes passed over), closed at its end.
struct Later {
    path: PathBuf,
    skip: u64,
    reader: Option<Box<dyn Read>>,
}

/// Files read one after the other.
struct InTurn(std::collections::VecDeque<Later>);

impl Read for InTurn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(part) = self.0.front_mut() {
            if part.reader.is_none() {
                let mut reader = open(&part.path)
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))?
                    .reader;
                std::io::copy(&mut (&mut reader).take(part.skip), &mut std::io::sink())?;
                part.reader = Some(reader);
            }
            let n = part.reader.as_mut().expect("opened").read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.0.pop_front();
        }
        Ok(0)
    }
}

/// Bytes read ahead of each capture of a folder: the classic global header
/// and a record header, or the start of a pcapng file.
const HEAD: usize = 64;
const CLASSIC_HEADER: usize = 24;

/// A capture's format as far as joining files goes: classic pcap with the
/// global header's magic, link type and snap length, or pcapng.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Classic([u8; 24]),
    Ng,
}

impl Kind {
    fn of(head: &[u8]) -> Option<Self> {
        const CLASSIC: [[u8; 4]; 4] = [
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0x4d, 0x3c, 0xb2, 0xa1],
            [0xa1, 0xb2, 0x3c, 0x4d],
        ];
        if head.len() >= CLASSIC_HEADER && CLASSIC.iter().any(|m| head.starts_with(m)) {
            let mut header = [0u8; 24];
            header.copy_from_slice(&head[..24]);
            Some(Kind::Classic(header))
        } else if head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            Some(Kind::Ng)
        } else {
            None
        }
    }
}

/// The first packet's time, for ordering: seconds and fraction of a classic
/// record; for pcapng, 0 (its files keep their names' order).
fn first_time(kind: Kind, head: &[u8]) -> (u64, u64) {
    match kind {
        Kind::Classic(header) if head.len() >= CLASSIC_HEADER + 8 => {
            let little = header[0] == 0xd4 || header[0] == 0x4d;
            let word = |at: usize| {
                let b: [u8; 4] = head[at..at + 4].try_into().expect("4 bytes");
                if little {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                }
            };
            (word(24) as u64, word(28) as u64)
        }
        _ => (0, 0),
    }
}

/// The compressions an input may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    fn of(start: &[u8]) -> Option<Self> {
        if start.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if start.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

type Source = BufReader<Box<dyn Read>>;

/// A Zstandard stream of one frame or several, one after the other (the
/// decoder reads one frame at a time).
struct ZstdFrames {
    frame: Option<ruzstd::decoding::StreamingDecoder<Source, ruzstd::decoding::FrameDecoder>>,
    rest: Option<Source>,
    name: String,
}

impl ZstdFrames {
    fn new(source: Source, name: String) -> Self {
        ZstdFrames {
            frame: None,
            rest: Some(source),
            name,
        }
    }

    fn damaged(&self, e: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a valid Zstandard stream: {e}", self.name),
        )
    }
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf).map_err(|e| self.damaged(e))?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let done = self.frame.take().expect("present");
                self.rest = Some(done.into_inner());
            }
            let Some(mut rest) = self.rest.take() else {
                return Ok(0);
            };
            if rest.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match ruzstd::decoding::StreamingDecoder::new(rest) {
                Ok(frame) => self.frame = Some(frame),
                Err(e) => return Err(self.damaged(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        open(path).unwrap().reader.read_to_end(&mut out).unwrap();
        out
    }

    /// Plain, gzip (several members) and Zstandard (several frames) inputs
    /// read as the same bytes; a damaged stream is an error, not a panic.
    #[test]
    fn compressed_inputs_read_as_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, &text).unwrap();
        assert_eq!(read_all(&plain), text);
        assert_eq!(open(&plain).unwrap().size, text.len() as u64);

        let (a, b) = text.split_at(300_001);
        let mut gz = Vec::new();
        for part in [a, b] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let gz_path = dir.path().join("x.gz");
        std::fs::write(&gz_path, &gz).unwrap();
        assert_eq!(read_all(&gz_path), text);
        assert_eq!(open(&gz_path).unwrap().size, 0);

        let mut zst = Vec::new();
        for part in [a, b] {
            zst.extend(ruzstd::encoding::compress_to_vec(
                part,
                ruzstd::encoding::CompressionLevel::Fastest,
            ));
        }
        let zst_path = dir.path().join("x.zst");
        std::fs::write(&zst_path, &zst).unwrap();
        assert_eq!(read_all(&zst_path), text);

        let mut damaged = zst.clone();
        damaged.truncate(zst.len() / 3);
        damaged.extend([0xff; 64]);
        std::fs::write(&zst_path, &damaged).unwrap();
        let mut out = Vec::new();
        assert!(open(&zst_path)
            .unwrap()
            .reader
            .read_to_end(&mut out)
            .is_err());
    }
}
