//! Classic libpcap files: a 24-byte file header (magic, byte order,
//! microsecond or nanosecond timestamps, snap length, link type), then
//! records of a 16-byte header and the captured bytes.

use std::io::Read;

use byteorder_slice::{BigEndian, ByteOrder, LittleEndian};
use ml_sniffing_common::parser::Link;
use pcap_file::pcap::{PcapHeader, RawPcapPacket};
use pcap_file::{Endianness, TsResolution};

use super::input::Input;
use super::{link, Next, Problem};

/// The largest record libpcap accepts for the link types read here
/// (`MAXIMUM_SNAPLEN`); a larger captured length means a corrupt header.
pub const MAX_RECORD: u32 = 262_144;

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

pub struct Classic {
    header: PcapHeader,
    link: Link,
}

impl Classic {
    /// Reads the file header; the magic was checked by the caller.
    pub fn open<R: Read>(input: &mut Input<R>, name: &str) -> Result<Self, Problem> {
        let have = input.fill(FILE_HEADER)?;
        if have < FILE_HEADER {
            return Err(Problem::Unusable(format!(
                "{name} ends inside its pcap file header ({have} of {FILE_HEADER} bytes): \
                 the capture is truncated"
            )));
        }
        let (_, header) = PcapHeader::from_slice(input.available()).map_err(|e| {
            Problem::Unusable(format!("{name} has an invalid pcap file header ({e})"))
        })?;
        // The top 6 bits carry FCS information (libpcap's LT_LINKTYPE).
        let link_type = u32::from(header.datalink) & 0x03ff_ffff;
        let link = link::framing(link_type)
            .ok_or_else(|| Problem::Unusable(link::unsupported(name, link_type)))?;
        input.consume(FILE_HEADER);
        Ok(Classic { header, link })
    }

    pub fn little_endian(&self) -> bool {
        self.header.endianness == Endianness::Little
    }

    pub fn nanosecond(&self) -> bool {
        self.header.ts_resolution == TsResolution::NanoSecond
    }

    pub fn next<R: Read>(&mut self, input: &mut Input<R>) -> Result<Next, Problem> {
        if self.little_endian() {
            self.next_in::<LittleEndian, R>(input)
        } else {
            self.next_in::<BigEndian, R>(input)
        }
    }

    #[inline(always)]
    fn next_in<B: ByteOrder, R: Read>(&mut self, input: &mut Input<R>) -> Result<Next, Problem> {
        let have = input.fill(RECORD_HEADER)?;
        if have == 0 {
            return Ok(Next::End);
        }
        if have < RECORD_HEADER {
            return Ok(Next::Truncated {
                have,
                need: RECORD_HEADER,
            });
        }
        // Validate the captured length before asking for that many bytes:
        // a corrupt length must neither allocate gigabytes nor pass for
        // a truncated file.
        let caplen = B::read_u32(&input.available()[8..12]);
        if caplen > MAX_RECORD {
            return Err(Problem::Corrupt {
                offset: input.offset(),
                what: format!(
                    "the record header announces {caplen} captured bytes, \
                     more than the {MAX_RECORD} a capture can hold"
                ),
            });
        }
        let need = RECORD_HEADER + caplen as usize;
        let have = input.fill(need)?;
        if have < need {
            return Ok(Next::Truncated { have, need });
        }
        // Cannot fail: the whole record is there.
        let (_, raw) =
            RawPcapPacket::from_slice::<B>(input.available()).map_err(|e| Problem::Corrupt {
                offset: input.offset(),
                what: e.to_string(),
            })?;
        // libpcap does not reject out-of-range fractions; neither do we.
        let frac_ns = if self.nanosecond() {
            raw.ts_frac as u64
        } else {
            raw.ts_frac as u64 * 1_000
        };
        Ok(Next::Frame {
            start: RECORD_HEADER,
            len: caplen as usize,
            consumed: need,
            // A length on the wire below the captured length is nonsense;
            // the frame is at least what was captured.
            wire_len: raw.orig_len.max(raw.incl_len),
            timestamp_ns: raw.ts_sec as u64 * 1_000_000_000 + frac_ns,
            link: self.link,
        })
    }
}
