//! Filter expressions for live captures: the subset of the pcap-filter
//! syntax the XDP program runs (see `ml_sniffing_common::filter`), parsed
//! here and compiled into its program of tests. Captures read from files
//! take the whole syntax instead (`super::filter`, through libpcap).
//!
//! The subset: `host ADDR`, `net ADDR/LEN` (or `net ADDR mask MASK`),
//! `port N`, `portrange N-M`, each optionally after `src`, `dst`, `src or
//! dst` or `src and dst`; `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `ip`,
//! `ip6`, optionally before `port`/`portrange`/`src`/`dst`; `proto N`,
//! `ip proto N`, `ip6 proto N`; `and`/`&&`, `or`/`||`, `not`/`!` and
//! parentheses. Addresses are IPv4 or IPv6, ports numbers.

use std::net::IpAddr;

use anyhow::{bail, Result};
use ml_sniffing_common::filter::{end, kind, words, Op, Program, ACCEPT, MAX_OPS, REJECT};

/// The parsed expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Test(Op),
}

fn test(kind: u8, end: u8) -> Op {
    Op {
        kind,
        end,
        ..Op::default()
    }
}

fn protocol(number: u8) -> Expr {
    Expr::Test(Op {
        lo: number as u16,
        ..test(kind::PROTOCOL, end::EITHER)
    })
}

fn version(v: u8) -> Expr {
    Expr::Test(Op {
        lo: v as u16,
        ..test(kind::IP_VERSION, end::EITHER)
    })
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

/// The sentence for what the live subset lacks.
fn unsupported(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`{what}` is not in the filter syntax live captures support (host, net, port, \
         portrange, tcp, udp, sctp, icmp, icmp6, ip, ip6, proto, with and, or, not and \
         parentheses; numbers for ports and protocols); captures read with --read take \
         the whole tcpdump syntax"
    )
}

struct Parser<'a> {
    tokens: Vec<&'a str>,
    at: usize,
}

/// Splits an expression into words and the punctuation `( ) ! && ||`.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let two = text.get(i..i + 2);
        let punct = if matches!(two, Some("&&") | Some("||")) {
            2
        } else if matches!(c, b'(' | b')' | b'!') {
            1
        } else {
            0
        };
        if punct > 0 || c.is_ascii_whitespace() {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            if punct > 0 {
                out.push(&text[i..i + punct]);
                i += punct;
                continue;
            }
        } else if start.is_none() {
            start = Some(i);
        }
        i += 1;
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Option<&'a str> {
        let t = self.peek();
        self.at += 1;
        t
    }

    fn expect(&mut self, what: &str) -> Result<&'a str> {
        match self.next() {
            Some(t) => Ok(t),
            None => bail!("the filter ends where {what} was expected"),
        }
    }

    fn or(&mut self) -> Result<Expr> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr> {
        let mut left = self.not()?;
        while matches!(self.peek(), Some("and" | "&&")) {
            self.at += 1;
            left = and(left, self.not()?);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr> {
        match self.peek() {
            Some("not" | "!") => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.not()?)))
            }
            Some("(") => {
                self.at += 1;
                let e = self.or()?;
                match self.next() {
                    Some(")") => Ok(e),
                    _ => bail!("a `(` in the filter is not closed"),
                }
            }
            _ => self.primitive(),
        }
    }

    /// `src`, `dst`, `src or dst`, `src and dst`, or none (either end).
    fn direction(&mut self) -> u8 {
        let one = match self.peek() {
            Some("src") => end::SOURCE,
            Some("dst") => end::DESTINATION,
            _ => return end::EITHER,
        };
        self.at += 1;
        if let (Some(op @ ("or" | "and")), Some(other @ ("src" | "dst"))) =
            (self.peek(), self.tokens.get(self.at + 1).copied())
        {
            if other != if one == end::SOURCE { "src" } else { "dst" } {
                self.at += 2;
                // `src and dst` needs both ends: compiled as two tests.
                return if op == "or" { end::EITHER } else { BOTH };
            }
        }
        one
    }

    fn primitive(&mut self) -> Result<Expr> {
        let first = self.expect("a filter primitive")?;
        let proto = match first {
            "tcp" => Some(6u8),
            "udp" => Some(17),
            "sctp" => Some(132),
            _ => None,
        };
        if let Some(p) = proto {
            return Ok(match self.peek() {
                Some("port" | "portrange" | "src" | "dst") => {
                    let ports = self.qualified()?;
                    and(protocol(p), ports)
                }
                _ => protocol(p),
            });
        }
        match first {
            "icmp" => return Ok(and(version(4), protocol(1))),
            "icmp6" => return Ok(and(version(6), protocol(58))),
            "ip" | "ip6" => {
                let v = if first == "ip" {
                    version(4)
                } else {
                    version(6)
                };
                if self.peek() == Some("proto") {
                    self.at += 1;
                    return Ok(and(v, protocol(self.protocol_number()?)));
                }
                if matches!(self.peek(), Some("host" | "net" | "src" | "dst")) {
                    return Ok(and(v, self.qualified()?));
                }
                return Ok(v);
            }
            "proto" => return Ok(protocol(self.protocol_number()?)),
            _ => {}
        }
        self.at -= 1;
        self.qualified()
    }

    fn protocol_number(&mut self) -> Result<u8> {
        let t = self.expect("a protocol number")?;
        match t.trim_start_matches('\\') {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "sctp" => Ok(132),
            n => n.parse().map_err(|_| unsupported(t)),
        }
    }

    /// `[src|dst] (host A | net N | port P | portrange A-B | A)`.
    fn qualified(&mut self) -> Result<Expr> {
        let dir = self.direction();
        let what = self.expect("host, net, port or portrange")?;
        let tests = match what {
            "host" => {
                let a = self.expect("an address")?;
                address(a, None)?
            }
            "net" => {
                let a = self.expect("a network")?;
                if self.peek() == Some("mask") {
                    self.at += 1;
                    let mask = self.expect("a mask")?;
                    address(a, Some(mask))?
                } else {
                    network(a)?
                }
            }
            "port" => {
                let p = self.expect("a port")?;
                ports(p, p)?
            }
            "portrange" => {
                let r = self.expect("a port range")?;
                let (lo, hi) = r.split_once('-').ok_or_else(|| unsupported(r))?;
                ports(lo, hi)?
            }
            // `src 10.0.0.1`: a host.
            a if dir != end::EITHER && a.parse::<IpAddr>().is_ok() => address(a, None)?,
            other => return Err(unsupported(other)),
        };
        Ok(directed(tests, dir))
    }
}

/// `src and dst`: both ends must hold.
const BOTH: u8 = 0x80;

fn directed(op: Op, dir: u8) -> Expr {
    if dir == BOTH {
        and(
            Expr::Test(Op {
                end: end::SOURCE,
                ..op
            }),
            Expr::Test(Op {
                end: end::DESTINATION,
                ..op
            }),
        )
    } else {
        Expr::Test(Op { end: dir, ..op })
    }
}

fn ports(lo: &str, hi: &str) -> Result<Op> {
    let n = |s: &str| s.parse::<u16>().map_err(|_| unsupported(s));
    let (lo, hi) = (n(lo)?, n(hi)?);
    if lo > hi {
        bail!("the port range {lo}-{hi} is empty");
    }
    Ok(Op {
        lo,
        hi,
        ..test(kind::PORT, end::EITHER)
    })
}

/// An address test for `a` (a whole address, or with a dotted mask).
fn address(a: &str, mask: Option<&str>) -> Result<Op> {
    let ip: IpAddr = a.parse().map_err(|_| unsupported(a))?;
    let prefix = match (ip, mask) {
        (_, None) => None,
        (IpAddr::V4(_), Some(m)) => {
            let m: std::net::Ipv4Addr = m.parse().map_err(|_| unsupported(m))?;
            let bits = u32::from(m);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                bail!("the mask {m} is not a prefix of ones");
            }
            Some(bits.leading_ones() as u8)
        }
        (IpAddr::V6(_), Some(m)) => return Err(unsupported(m)),
    };
    Ok(address_op(ip, prefix))
}

/// `net A/LEN`.
fn network(text: &str) -> Result<Op> {
    let (a, len) = text.split_once('/').ok_or_else(|| unsupported(text))?;
    let ip: IpAddr = a.parse().map_err(|_| unsupported(text))?;
    let len: u8 = len.parse().map_err(|_| unsupported(text))?;
    let most = if ip.is_ipv4() { 32 } else { 128 };
    if len > most {
        bail!("{text}: a prefix of {len} bits is longer than the address");
    }
    Ok(address_op(ip, Some(len)))
}

fn address_op(ip: IpAddr, prefix: Option<u8>) -> Op {
    let (addr, version, bits) = match ip {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 4, 96 + prefix.unwrap_or(32)),
        IpAddr::V6(v6) => (v6.octets(), 6, prefix.unwrap_or(128)),
    };
    let mask_bytes: [u8; 16] =
        (u128::MAX.checked_shl(128 - bits as u32).unwrap_or(0)).to_be_bytes();
    let mask = words(&mask_bytes);
    let addr = words(&addr);
    Op {
        addr: [addr[0] & mask[0], addr[1] & mask[1]],
        mask,
        hi: version,
        ..test(kind::ADDRESS, end::EITHER)
    }
}

/// Ops in the order they are made; jump targets are indices into it (or
/// ACCEPT/REJECT), every target made before the op that jumps to it.
struct Emitter {
    ops: Vec<Op>,
}

impl Emitter {
    /// Emits `e` so that it goes to `t` when it holds and `f` when not;
    /// returns its entry.
    fn emit(&mut self, e: &Expr, t: u8, f: u8) -> Result<u8> {
        Ok(match e {
            Expr::Test(op) => {
                if self.ops.len() >= MAX_OPS {
                    bail!("the filter is too long for live captures (at most {MAX_OPS} tests)");
                }
                self.ops.push(Op {
                    on_true: t,
                    on_false: f,
                    ..*op
                });
                (self.ops.len() - 1) as u8
            }
            Expr::Not(a) => self.emit(a, f, t)?,
            Expr::And(a, b) => {
                let b = self.emit(b, t, f)?;
                self.emit(a, b, f)?
            }
            Expr::Or(a, b) => {
                let b = self.emit(b, t, f)?;
                self.emit(a, t, b)?
            }
        })
    }
}

/// Compiles `expression` for the XDP program, or says in one sentence what
/// the live subset does not support.
pub fn compile(expression: &str) -> Result<Program> {
    let tokens = tokens(expression);
    if tokens.is_empty() {
        return Ok(Program::default());
    }
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    if let Some(rest) = parser.peek() {
        return Err(unsupported(rest));
    }
    let mut emitter = Emitter { ops: Vec::new() };
    let entry = emitter.emit(&expr, ACCEPT, REJECT)?;
    // Made last-first: reversed, the entry is op 0 and jumps go forward.
    let n = emitter.ops.len();
    debug_assert_eq!(entry as usize, n - 1);
    let flip = |target: u8| {
        if target == ACCEPT || target == REJECT {
            target
        } else {
            (n - 1 - target as usize) as u8
        }
    };
    let mut program = Program {
        len: n as u32,
        ..Program::default()
    };
    for (i, op) in emitter.ops.iter().rev().enumerate() {
        program.ops[i] = Op {
            on_true: flip(op.on_true),
            on_false: flip(op.on_false),
            ..*op
        };
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
    use ml_sniffing_common::filter::matches;
    use ml_sniffing_common::parser::{self, Link};
    use ml_sniffing_common::record::PacketRecord;

    fn record(src: &str, dst: &str, transport: Transport) -> PacketRecord {
        let frame = FrameSpec::new(src.parse().unwrap(), dst.parse().unwrap(), transport).build();
        let mut r = PacketRecord::default();
        parser::parse(frame.as_slice(), Link::Ethernet, frame.len(), &mut r);
        r
    }

    fn tcp(src: &str, dst: &str, sport: u16, dport: u16) -> PacketRecord {
        record(
            src,
            dst,
            Transport::Tcp {
                src: sport,
                dst: dport,
                flags: tcp_flags::SYN,
            },
        )
    }

    fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> PacketRecord {
        record(
            src,
            dst,
            Transport::Udp {
                src: sport,
                dst: dport,
            },
        )
    }

    fn m(expression: &str, r: &PacketRecord) -> bool {
        matches(&compile(expression).unwrap(), r)
    }

    #[test]
    fn primitives_and_their_combinations() {
        let web = tcp("10.0.0.1", "10.0.0.2", 40000, 80);
        let dns = udp("192.168.1.5", "8.8.8.8", 5353, 53);
        let v6 = tcp("2001:db8::1", "2001:db8::2", 1234, 443);
        assert!(m("tcp", &web) && !m("tcp", &dns) && m("udp", &dns));
        assert!(m("port 80", &web) && !m("port 80", &dns));
        assert!(m("dst port 80", &web) && !m("src port 80", &web));
        assert!(m("tcp port 80 and not host 10.9.9.9", &web));
        assert!(!m("tcp port 80 and not host 10.0.0.1", &web));
        assert!(m("host 10.0.0.2", &web) && m("src host 10.0.0.1", &web));
        assert!(m("src 10.0.0.1", &web) && !m("dst 10.0.0.1", &web));
        assert!(m("net 10.0.0.0/8", &web) && !m("net 10.0.0.0/8", &dns));
        assert!(m("net 192.168.0.0 mask 255.255.0.0", &dns));
        assert!(m("portrange 50-60", &dns) && !m("portrange 81-1000", &web));
        assert!(m("udp src port 5353", &dns) && !m("tcp src port 5353", &dns));
        assert!(m("ip6", &v6) && !m("ip", &v6) && m("ip", &web));
        assert!(m("net 2001:db8::/32 and port 443", &v6));
        assert!(
            !m("host ::ffff:10.0.0.1", &web),
            "an IPv6 address is not an IPv4 one"
        );
        assert!(m("ip proto 6", &web) && m("proto 17", &dns) && m("ip proto \\udp", &dns));
        assert!(m("(udp or tcp) and (port 53 or port 80)", &dns));
        assert!(m("! (udp && port 53) || tcp", &web) && !m("!(udp && port 53) || tcp", &dns));
        assert!(m("src or dst host 8.8.8.8", &dns));
        assert!(!m("src and dst net 192.168.0.0/16", &dns));
        assert!(m("src and dst net 10.0.0.0/8", &web));
        assert!(m("", &web), "no expression: everything");
    }

    #[test]
    fn what_is_not_in_the_subset_is_one_sentence() {
        for (e, named) in [
            ("tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags]"),
            ("port http", "http"),
            ("ether host 00:11:22:33:44:55", "ether"),
            ("vlan 10", "vlan"),
            ("greater 100", "greater"),
        ] {
            let err = compile(e).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("`{named}` is not in the filter syntax")),
                "{e}: {err}"
            );
        }
        assert!(compile("(tcp")
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        assert!(compile("port 90-80").is_err());
        let long = vec!["port 1"; 40].join(" or ");
        assert!(compile(&long).unwrap_err().to_string().contains("too long"));
    }

    /// Compiled programs only jump forward, and evaluate as the expression
    /// reads (checked against a direct evaluation on many records).
    #[test]
    fn jumps_go_forward_and_agree_with_the_expression() {
        let program =
            compile("(tcp or udp port 53) and not (src net 10.0.0.0/8 or dst port 22)").unwrap();
        for op in &program.ops[..program.len as usize] {
            for t in [op.on_true, op.on_false] {
                assert!(t == ACCEPT || t == REJECT || (t as usize) < program.len as usize);
            }
        }
        for (i, op) in program.ops[..program.len as usize].iter().enumerate() {
            for t in [op.on_true, op.on_false] {
                assert!(
                    t == ACCEPT || t == REJECT || t as usize > i,
                    "op {i} jumps back"
                );
            }
        }
        for src in ["10.1.1.1", "192.168.0.9"] {
            for dport in [22, 53, 80] {
                for is_tcp in [true, false] {
                    let r = if is_tcp {
                        tcp(src, "172.16.0.1", 40000, dport)
                    } else {
                        udp(src, "172.16.0.1", 40000, dport)
                    };
                    let direct =
                        (is_tcp || dport == 53) && !(src.starts_with("10.") || dport == 22);
                    assert_eq!(matches(&program, &r), direct, "{src} {dport} tcp={is_tcp}");
                }
            }
        }
    }
}
