//! The TAP device frames are written back through, so that the host stack
//! still receives them (AF_XDP mode without `--consume`).
//!
//! A frame written to a TAP file descriptor enters the kernel as if the TAP
//! device had received it. The re-injection TC program on the TAP's ingress
//! then redirects it (`bpf_redirect(ifindex, BPF_F_INGRESS)`) into the
//! receive path of the captured interface, so the stack handles it as having
//! arrived there (routes, sockets bound to the device, reverse-path checks,
//! ARP replies all see the captured interface).
//!
//! The device is not persistent: the kernel removes it when its last file
//! descriptor closes, so even a killed process leaves nothing behind.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use super::checksum::Partial;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `struct virtio_net_hdr` (10 bytes, the TAP default size), little-endian
/// on every host this runs on: flags, gso_type, hdr_len, gso_size,
/// csum_start, csum_offset.
const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;

/// A TAP device that exists as long as this value.
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Creates a TAP device (named by the kernel from `template`, e.g.
    /// `mlsx%d`), with IPv6 off (so the kernel sends nothing of its own
    /// through it) and up.
    pub fn create(template: &str) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .context("cannot open /dev/net/tun to create the re-injection TAP device")?;
        // SAFETY: ifreq is plain data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        copy_name(&mut ifr, template)?;
        // A virtio-net header in front of each frame says which frames
        // carry a partial (offloaded) checksum; see `super::checksum`.
        ifr.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        // SAFETY: TUNSETIFF reads and writes an ifreq.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut ifr) } != 0 {
            return Err(std::io::Error::last_os_error())
                .context("cannot create the re-injection TAP device");
        }
        // SAFETY: the kernel wrote a NUL-terminated name into ifr_name.
        let name = unsafe { CStr::from_ptr(ifr.ifr_name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let tap = Tap { file, name };
        // Best effort: without IPv6 on the host there is no such file.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", tap.name),
            "1",
        );
        tap.set_up()?;
        Ok(tap)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn set_up(&self) -> Result<()> {
        // SAFETY: a plain datagram socket for the interface ioctls.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("cannot open a socket");
        }
        // SAFETY: `raw` is a new fd we own.
        let socket = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ifreq is plain data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        copy_name(&mut ifr, &self.name)?;
        // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS read and write an ifreq.
        unsafe {
            if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("cannot read the flags of {}", self.name));
            }
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("cannot bring {} up", self.name));
            }
        }
        Ok(())
    }

    /// Writes one whole frame (Ethernet header included): the kernel
    /// receives it on the TAP device. A frame whose checksum was left to
    /// offload (`partial`) is marked so, as it was before it was captured.
    #[inline]
    pub fn write(&mut self, frame: &[u8], partial: Option<Partial>) -> std::io::Result<()> {
        let mut header = [0u8; VNET_HDR_LEN];
        if let Some(p) = partial {
            header[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            header[6..8].copy_from_slice(&p.start.to_le_bytes());
            header[8..10].copy_from_slice(&p.offset.to_le_bytes());
        }
        let n = self
            .file
            .write_vectored(&[IoSlice::new(&header), IoSlice::new(frame)])?;
        if n != VNET_HDR_LEN + frame.len() {
            return Err(std::io::Error::other("the TAP device took part of a frame"));
        }
        Ok(())
    }
}

fn copy_name(ifr: &mut libc::ifreq, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    if bytes.len() >= ifr.ifr_name.len() || bytes.contains(&0) {
        bail!("{name:?} is not a valid interface name");
    }
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(())
}
