//! pcapng files: blocks framed by a type and a length (repeated at the
//! end), grouped in sections (each with its byte order) that describe their
//! interfaces (each with its link type, timestamp resolution `if_tsresol`
//! and offset `if_tsoffset`) before the packets that refer to them.
//!
//! pcap-file frames the blocks (`RawBlock`, which also checks the trailing
//! length) and parses section headers and interface descriptions (adding
//! back a missing end-of-options marker, see [`options_closed`]). Packet
//! blocks are read here from the block body, because pcap-file reads their
//! timestamps as nanoseconds whatever the interface's resolution, keeps the
//! padding in simple packet blocks, swaps the timestamp halves of
//! little-endian (obsolete) packet blocks, and fails a packet for any
//! option it dislikes, none of which we need.

use std::io::Read;

use byteorder_slice::{BigEndian, ByteOrder, LittleEndian};
use ml_sniffing_common::parser::Link;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::{PcapNgBlock, RawBlock};
use pcap_file::{Endianness, PcapError};

use super::input::Input;
use super::{link, Next, Problem};

/// Blocks larger than this are taken for corruption (a packet block holds
/// at most 256 KiB of packet; other blocks are small).
pub const MAX_BLOCK: u32 = 16 << 20;

const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// What a packet needs from its interface.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: u32,
    link: Option<Link>,
    snaplen: u32,
    /// `if_tsresol`: bit 7 clear = 10^-n seconds per tick, set = 2^-n.
    tsresol: u8,
    /// `if_tsoffset`: seconds to add to every timestamp.
    tsoffset: i64,
}

impl Interface {
    fn of(idb: &InterfaceDescriptionBlock) -> Self {
        let link_type = u32::from(idb.linktype);
        let mut interface = Interface {
            link_type,
            link: link::framing(link_type),
            snaplen: idb.snaplen,
            tsresol: 6,
            tsoffset: 0,
        };
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfTsResol(r) => interface.tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(o) => interface.tsoffset = *o as i64,
                _ => {}
            }
        }
        interface
    }

    /// Timestamp ticks to epoch nanoseconds (saturating; never panics).
    fn nanoseconds(&self, ticks: u64) -> u64 {
        let exponent = (self.tsresol & 0x7f) as u32;
        let ns: u128 = if self.tsresol & 0x80 != 0 {
            (ticks as u128 * 1_000_000_000) >> exponent.min(127)
        } else if exponent <= 9 {
            ticks as u128 * 10u128.pow(9 - exponent)
        } else {
            match 10u128.checked_pow(exponent - 9) {
                Some(div) => ticks as u128 / div,
                None => 0,
            }
        };
        let ns = ns as i128 + self.tsoffset as i128 * 1_000_000_000;
        ns.clamp(0, u64::MAX as i128) as u64
    }
}

pub struct PcapNg {
    little: bool,
    interfaces: Vec<Interface>,
    sections: u32,
}

impl PcapNg {
    /// The first block must be a section header (checked by the caller);
    /// it is read by the first call to `next`.
    pub fn new() -> Self {
        PcapNg {
            little: false,
            interfaces: Vec::new(),
            sections: 0,
        }
    }

    pub fn sections(&self) -> u32 {
        self.sections
    }

    pub fn next<R: Read>(&mut self, input: &mut Input<R>) -> Result<Next, Problem> {
        loop {
            let have = input.fill(12)?;
            if have == 0 {
                return Ok(Next::End);
            }
            if have < 12 {
                return Ok(Next::Truncated { have, need: 12 });
            }
            let head = &input.available()[..12];
            let block_type = BigEndian::read_u32(&head[0..4]);
            // The section header's type reads the same in both byte orders;
            // its byte-order magic sets the order of its length and of the
            // whole section.
            let little = if block_type == SECTION_HEADER_BLOCK {
                match BigEndian::read_u32(&head[8..12]) {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    _ => {
                        return Err(corrupt(
                            input,
                            "a section header block has no valid byte-order magic".into(),
                        ))
                    }
                }
            } else {
                self.little
            };
            let len = if little {
                LittleEndian::read_u32(&head[4..8])
            } else {
                BigEndian::read_u32(&head[4..8])
            };
            if len < 12 || len % 4 != 0 || len > MAX_BLOCK {
                return Err(corrupt(
                    input,
                    format!(
                        "the block header announces a length of {len} bytes \
                         (a multiple of 4 from 12 to {MAX_BLOCK} expected)"
                    ),
                ));
            }
            let need = len as usize;
            let have = input.fill(need)?;
            if have < need {
                return Ok(Next::Truncated { have, need });
            }
            let next = if little {
                self.block::<LittleEndian, R>(input, need)?
            } else {
                self.block::<BigEndian, R>(input, need)?
            };
            match next {
                Some(next) => return Ok(next),
                None => input.consume(need),
            }
        }
    }

    /// Handles the whole block at the start of `input`: `Some` for a
    /// packet, `None` for a block that only changes state or is skipped.
    #[inline(always)]
    fn block<B: ByteOrder, R: Read>(
        &mut self,
        input: &Input<R>,
        len: usize,
    ) -> Result<Option<Next>, Problem> {
        let bytes = &input.available()[..len];
        let (_, raw) =
            RawBlock::from_slice::<B>(bytes).map_err(|e| corrupt(input, e.to_string()))?;
        match raw.type_ {
            SECTION_HEADER_BLOCK => {
                let endianness = options_closed(&raw.body, |body| {
                    SectionHeaderBlock::from_slice::<BigEndian>(body).map(|(_, shb)| shb.endianness)
                })
                .map_err(|e| corrupt(input, format!("bad section header ({e})")))?;
                self.little = endianness == Endianness::Little;
                self.interfaces.clear();
                self.sections += 1;
                Ok(None)
            }
            INTERFACE_DESCRIPTION_BLOCK => {
                let interface = options_closed(&raw.body, |body| {
                    InterfaceDescriptionBlock::from_slice::<B>(body)
                        .map(|(_, idb)| Interface::of(&idb))
                })
                .map_err(|e| corrupt(input, format!("bad interface description ({e})")))?;
                self.interfaces.push(interface);
                Ok(None)
            }
            ENHANCED_PACKET_BLOCK | PACKET_BLOCK => {
                let body = &raw.body;
                if body.len() < 20 {
                    return Err(corrupt(input, "a packet block is too short".into()));
                }
                let (interface_id, ticks) = if raw.type_ == ENHANCED_PACKET_BLOCK {
                    (B::read_u32(&body[0..4]), read_ticks::<B>(&body[4..12]))
                } else {
                    (
                        B::read_u16(&body[0..2]) as u32,
                        read_ticks::<B>(&body[4..12]),
                    )
                };
                let caplen = B::read_u32(&body[12..16]) as usize;
                let orig_len = B::read_u32(&body[16..20]);
                if caplen > body.len() - 20 {
                    return Err(corrupt(
                        input,
                        format!(
                            "a packet block announces {caplen} captured bytes \
                             but holds only {}",
                            body.len() - 20
                        ),
                    ));
                }
                let (interface, link) = self.interface(input, interface_id)?;
                Ok(Some(Next::Frame {
                    start: 8 + 20,
                    len: caplen,
                    consumed: len,
                    wire_len: orig_len.max(caplen as u32),
                    timestamp_ns: interface.nanoseconds(ticks),
                    link,
                }))
            }
            SIMPLE_PACKET_BLOCK => {
                let body = &raw.body;
                if body.len() < 4 {
                    return Err(corrupt(input, "a simple packet block is too short".into()));
                }
                let orig_len = B::read_u32(&body[0..4]);
                let (interface, link) = self.interface(input, 0)?;
                // The body is padded to 4 bytes: the packet is the original
                // length, cut to the interface's snap length.
                let mut caplen = (orig_len as usize).min(body.len() - 4);
                if interface.snaplen > 0 {
                    caplen = caplen.min(interface.snaplen as usize);
                }
                Ok(Some(Next::Frame {
                    start: 8 + 4,
                    len: caplen,
                    consumed: len,
                    wire_len: orig_len.max(caplen as u32),
                    // Simple packet blocks carry no timestamp.
                    timestamp_ns: 0,
                    link,
                }))
            }
            // Statistics, name resolution, journal, custom blocks.
            _ => Ok(None),
        }
    }

    /// The interface a packet refers to, which must exist and be readable.
    fn interface<R: Read>(&self, input: &Input<R>, id: u32) -> Result<(Interface, Link), Problem> {
        let Some(interface) = self.interfaces.get(id as usize) else {
            return Err(corrupt(
                input,
                format!(
                    "a packet refers to interface {id} but section {} describes {} interface(s)",
                    self.sections,
                    self.interfaces.len()
                ),
            ));
        };
        match interface.link {
            Some(link) => Ok((*interface, link)),
            None => Err(Problem::Unusable(link::unsupported(
                &format!("interface {id} of section {}", self.sections),
                interface.link_type,
            ))),
        }
    }
}

/// Parses a block body with pcap-file, again with an end-of-options marker
/// appended when pcap-file refuses an option list that lacks one (the
/// pcapng specification tells readers not to rely on the marker).
fn options_closed<T>(
    body: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, PcapError>,
) -> Result<T, PcapError> {
    match parse(body) {
        Err(PcapError::InvalidField(INVALID_OPTION)) => {
            let mut closed = body.to_vec();
            closed.extend_from_slice(&[0; 4]);
            parse(&closed)
        }
        other => other,
    }
}

/// pcap-file's error for an option list that runs to the end of the body.
const INVALID_OPTION: &str = "Invalid option";

/// A 64-bit timestamp stored as two 32-bit halves, high first, each in the
/// section's byte order.
#[inline(always)]
fn read_ticks<B: ByteOrder>(bytes: &[u8]) -> u64 {
    ((B::read_u32(&bytes[0..4]) as u64) << 32) | B::read_u32(&bytes[4..8]) as u64
}

fn corrupt<R>(input: &Input<R>, what: String) -> Problem
where
    R: Read,
{
    Problem::Corrupt {
        offset: input.offset(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(tsresol: u8, tsoffset: i64) -> Interface {
        Interface {
            link_type: 1,
            link: Some(Link::Ethernet),
            snaplen: 0,
            tsresol,
            tsoffset,
        }
    }

    #[test]
    fn timestamp_resolutions_and_offsets() {
        assert_eq!(interface(6, 0).nanoseconds(1_500_000), 1_500_000_000);
        assert_eq!(interface(9, 0).nanoseconds(7), 7);
        assert_eq!(interface(3, 0).nanoseconds(2), 2_000_000);
        assert_eq!(interface(12, 0).nanoseconds(5_000), 5);
        // 2^-10 s per tick: 1024 ticks is one second.
        assert_eq!(interface(0x80 | 10, 0).nanoseconds(1024), 1_000_000_000);
        assert_eq!(interface(0x80 | 1, 0).nanoseconds(1), 500_000_000);
        assert_eq!(interface(6, 100).nanoseconds(1), 100_000_001_000);
        assert_eq!(interface(6, -100).nanoseconds(1), 0);
        // Extremes saturate instead of overflowing.
        assert_eq!(interface(0, 0).nanoseconds(u64::MAX), u64::MAX);
        assert_eq!(interface(127, 0).nanoseconds(u64::MAX), 0);
        assert_eq!(interface(0xff, 0).nanoseconds(u64::MAX), 0);
    }
}
