//! Inputs named on the command line: a file, a pipe or device (`/dev/stdin`,
//! `<(...)`), or `-` for stdin. Each is opened once and read as a stream,
//! so a pipe gives the same result as the file it carries.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

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
