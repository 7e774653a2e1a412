//! A read buffer that knows the file offset of every byte it holds, so that
//! errors can name the offset of a bad record, and that never grows past
//! what the caller asks for (callers validate record lengths first).

use std::io::{self, Read};

/// Bytes read per refill (the buffer is at least this large).
const CHUNK: usize = 1 << 20;

pub struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    pub fn new(reader: R) -> Self {
        Input {
            reader,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// The unconsumed bytes held now.
    #[inline(always)]
    pub fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// File offset of the first unconsumed byte.
    #[inline(always)]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes at least `n` bytes available unless the input ends first;
    /// returns how many are available (less than `n` only at the end).
    #[inline]
    pub fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n {
            return Ok(self.end - self.start);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<usize> {
        if self.buf.len() - self.start < n {
            // Move what is left to the front, growing only for a record
            // larger than the buffer (its length was validated).
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                self.buf.resize(n.next_power_of_two(), 0);
            }
        }
        while self.end - self.start < n && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Marks `n` available bytes as used.
    #[inline(always)]
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Bytes held in memory (the buffer), for memory accounting.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 3 bytes per call.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(3).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn fills_across_short_reads_tracks_offsets_and_grows_on_demand() {
        let data: Vec<u8> = (0..3 * CHUNK as u32).map(|i| i as u8).collect();
        let mut input = Input::new(Trickle(&data));
        assert!(input.fill(10).unwrap() >= 10);
        assert_eq!(&input.available()[..10], &data[..10]);
        input.consume(7);
        assert_eq!(input.offset(), 7);
        // A "record" larger than the buffer.
        let big = CHUNK + 5;
        assert!(input.fill(big).unwrap() >= big);
        assert_eq!(&input.available()[..big], &data[7..7 + big]);
        input.consume(big);
        assert_eq!(input.offset(), 7 + big as u64);
        let rest = data.len() - 7 - big;
        assert_eq!(input.fill(rest + 100).unwrap(), rest);
        assert_eq!(input.available(), &data[7 + big..]);
    }

    #[test]
    fn reports_the_end() {
        let data = [1u8, 2, 3, 4, 5];
        let mut input = Input::new(&data[..]);
        assert_eq!(input.fill(100).unwrap(), 5);
        input.consume(5);
        assert_eq!(input.fill(1).unwrap(), 0);
        assert_eq!(input.offset(), 5);
    }
}
