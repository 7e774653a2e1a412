//! Sending whole Ethernet frames with an AF_PACKET raw socket, from inside
//! a namespace the test created (open it with `NetNs::enter`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Result};

pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// A raw socket bound to `iface` in the calling thread's namespace.
    pub fn bind(iface: &str) -> Result<Self> {
        let name = CString::new(iface)?;
        // SAFETY: a valid NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            bail!("no interface {iface} in this namespace");
        }
        // Protocol 0: send only, receive nothing.
        // SAFETY: plain socket creation.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            bail!(
                "cannot open an AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: `raw` is a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = index as i32;
        // SAFETY: `addr` is a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            bail!(
                "cannot bind to {iface}: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(RawSocket { fd })
    }

    /// Sends one frame as it is (Ethernet header included).
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: `frame` is valid for its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            bail!("cannot send a frame: {}", std::io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            bail!("sent {n} of {} bytes", frame.len());
        }
        Ok(())
    }
}
