//! AF_XDP capture (`--capture af-xdp`): whole frames to userspace.
//!
//! An XDP program of its own (object `ml-sniffing-xsk`, the record program
//! is untouched) stamps every frame with the kernel time and redirects it
//! through an `XskMap` to the AF_XDP socket of its receive queue, one
//! socket per selected queue ([`queue`], on [`xdpilone`] rings over a UMEM
//! of our own, [`umem`]). Userspace parses each frame with THE shared parser
//! and counts it with THE shared flow update (`capture::state`, the same
//! `FlowState::record` the record program runs), so records are the same as
//! on the record path; the sink also gets the whole frame
//! ([`RecordSink::frame`](super::RecordSink::frame)).
//!
//! A redirected frame no longer goes up the host stack. Unless `--consume`
//! is given, userspace writes every frame back through a TAP device whose
//! TC ingress program redirects it into the receive path of the captured
//! interface ([`tap`], [`kernel`]): the stack sees the frame as having
//! arrived on that interface. This needs the XDP program in driver mode:
//! in generic mode the kernel would run XDP again on the re-injected frame.
//!
//! [`capture`] runs a session with the same contract as
//! [`live::capture`](super::capture) (same sink, stop reasons and
//! summary, plus [`AfXdpSummary`]); `live::capture` calls it when
//! `CaptureOptions::capture` is [`CaptureMode::AfXdp`](super::CaptureMode).

pub mod checksum;
pub mod kernel;
pub mod queue;
mod session;
pub mod stats;
pub mod tap;
pub mod umem;

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use xdpilone::SocketConfig;

pub use self::queue::RingSizes;
pub use self::session::{attach_mode, capture};
pub use self::stats::{AfXdpSummary, QueueSummary};

/// Which receive queues get a socket (`--queues`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Queues {
    /// Every receive queue of the interface.
    #[default]
    All,
    /// These queues (sorted, without duplicates).
    List(Vec<u32>),
}

impl FromStr for Queues {
    type Err = String;

    /// `all`, or a comma-separated list of queue numbers and ranges
    /// (`0,2-3`).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Queues::All);
        }
        let mut list = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let number = |t: &str| -> Result<u32, String> {
                t.trim().parse::<u32>().map_err(|_| {
                    format!("{t:?} is not a queue number (expected `all` or a list like 0,2-3)")
                })
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!("the queue range {part} is empty"));
                    }
                    if b - a >= 4096 {
                        return Err(format!("the queue range {part} is too long"));
                    }
                    list.extend(a..=b);
                }
                None => list.push(number(part)?),
            }
        }
        list.sort_unstable();
        list.dedup();
        Ok(Queues::List(list))
    }
}

impl fmt::Display for Queues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Queues::All => write!(f, "all"),
            Queues::List(l) => {
                let shown: Vec<String> = l.iter().map(u32::to_string).collect();
                write!(f, "{}", shown.join(","))
            }
        }
    }
}

impl Queues {
    /// The queue numbers for an interface with `count` receive queues; one
    /// sentence when a listed queue does not exist.
    pub fn resolve(&self, interface: &str, count: u32) -> Result<Vec<u32>> {
        match self {
            Queues::All => Ok((0..count).collect()),
            Queues::List(list) => {
                if let Some(q) = list.iter().find(|&&q| q >= count) {
                    bail!(
                        "{interface} has {count} receive queue{} (0-{}): there is no queue {q}",
                        if count == 1 { "" } else { "s" },
                        count - 1
                    );
                }
                if list.is_empty() {
                    bail!("--queues lists no queue");
                }
                Ok(list.clone())
            }
        }
    }
}

/// How the AF_XDP sockets are bound (`--af-xdp-bind`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BindMode {
    /// Zero-copy when the driver supports it, else copy (the kernel
    /// decides; the summary says which).
    #[default]
    Auto,
    /// Copy mode: the kernel copies each frame into the UMEM (any driver).
    Copy,
    /// Zero-copy: the driver receives straight into the UMEM (drivers with
    /// AF_XDP zero-copy support, XDP in driver mode).
    ZeroCopy,
}

impl BindMode {
    fn flags(self) -> u16 {
        match self {
            BindMode::Auto => 0,
            BindMode::Copy => SocketConfig::XDP_BIND_COPY,
            BindMode::ZeroCopy => SocketConfig::XDP_BIND_ZEROCOPY,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BindMode::Auto => "auto",
            BindMode::Copy => "copy",
            BindMode::ZeroCopy => "zero-copy",
        }
    }
}

/// AF_XDP settings (used when `CaptureOptions::capture` is `AfXdp`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfXdpOptions {
    pub queues: Queues,
    pub bind: BindMode,
    /// Keep frames from the host stack (no re-injection).
    pub consume: bool,
    /// Entries of each queue's receive and fill rings (`--af-xdp-ring`);
    /// by default [`queue::TOTAL_RING`] shared by the queues.
    pub ring: Option<u32>,
}

/// The receive queues `interface` has now (the ethtool channel counts; 1
/// for a driver that does not report them).
pub fn rx_queue_count(interface: &str) -> Result<u32> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    #[repr(C)]
    #[derive(Default)]
    struct Channels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    let mut channels = Channels {
        cmd: ETHTOOL_GCHANNELS,
        ..Channels::default()
    };
    // SAFETY: a plain datagram socket for the ioctl.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot open a socket");
    }
    // SAFETY: `raw` is a new fd we own.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        bail!("{interface:?} is not a valid interface name");
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut channels as *mut Channels).cast();
    // SAFETY: SIOCETHTOOL with ETHTOOL_GCHANNELS fills the ethtool_channels
    // `ifru_data` points to, which lives across the call.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            SIOCETHTOOL,
            &mut ifr,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Ok(1),
            _ => Err(e).with_context(|| format!("cannot read the queue count of {interface}")),
        };
    }
    Ok((channels.rx_count + channels.combined_count).max(1))
}

/// The MTU of `interface`.
pub fn interface_mtu(interface: &str) -> Result<u32> {
    // SAFETY: a plain datagram socket for the ioctl.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot open a socket");
    }
    // SAFETY: `raw` is a new fd we own.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= ifr.ifr_name.len() || name.contains(&0) {
        bail!("{interface:?} is not a valid interface name");
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads and writes an ifreq.
    if unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SIOCGIFMTU,
            &mut ifr,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot read the MTU of {interface}"));
    }
    // SAFETY: SIOCGIFMTU filled the union's MTU member.
    Ok(unsafe { ifr.ifr_ifru.ifru_mtu }.max(0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lists_parse_and_resolve() {
        assert_eq!("all".parse::<Queues>(), Ok(Queues::All));
        assert_eq!(" ALL ".parse::<Queues>(), Ok(Queues::All));
        assert_eq!("3".parse::<Queues>(), Ok(Queues::List(vec![3])));
        assert_eq!(
            "2-4, 0,3".parse::<Queues>(),
            Ok(Queues::List(vec![0, 2, 3, 4]))
        );
        assert!("4-2".parse::<Queues>().unwrap_err().contains("empty"));
        assert!("x".parse::<Queues>().unwrap_err().contains("\"x\""));
        assert!("1,".parse::<Queues>().is_err());
        assert!("0-100000".parse::<Queues>().is_err());
        assert_eq!(Queues::List(vec![0, 2]).to_string(), "0,2");

        assert_eq!(Queues::All.resolve("eth0", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(
            Queues::List(vec![1, 2]).resolve("eth0", 3).unwrap(),
            vec![1, 2]
        );
        assert_eq!(
            Queues::List(vec![0, 3])
                .resolve("eth0", 3)
                .unwrap_err()
                .to_string(),
            "eth0 has 3 receive queues (0-2): there is no queue 3"
        );
        assert_eq!(
            Queues::List(vec![1])
                .resolve("lo", 1)
                .unwrap_err()
                .to_string(),
            "lo has 1 receive queue (0-0): there is no queue 1"
        );
    }

    #[test]
    fn ring_sizes_share_the_total_and_fit_the_mtu() {
        let s = RingSizes::plan(1, 1500, None);
        assert_eq!((s.ring, s.chunks, s.chunk_size), (32_768, 33_792, 2048));
        assert_eq!(s.max_frame(), 1792);
        // 32768 / 3 = 10922, rounded down to a power of two.
        assert_eq!(RingSizes::plan(3, 1500, None).ring, 8192);
        assert_eq!(RingSizes::plan(64, 1500, None).ring, 2048);
        assert_eq!(RingSizes::plan(4, 1500, Some(3000)).ring, 2048);
        assert_eq!(RingSizes::plan(1, 1500, Some(1)).ring, 64);
        // 1770 + 22 + 256 = 2048 still fits; one more byte does not.
        assert_eq!(RingSizes::plan(1, 1770, None).chunk_size, 2048);
        let jumbo = RingSizes::plan(1, 1771, None);
        assert_eq!((jumbo.chunk_size, jumbo.max_frame()), (4096, 3840));
        assert_eq!(RingSizes::plan(0, 9000, None).ring, 32_768);
    }

    #[test]
    fn loopback_mtu_is_read() {
        assert!(interface_mtu("lo").unwrap() >= 1500);
        assert!(interface_mtu("no-such-if0").is_err());
    }

    #[test]
    fn loopback_has_one_queue() {
        assert_eq!(rx_queue_count("lo").unwrap(), 1);
    }
}
