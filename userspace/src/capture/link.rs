//! Watching the captured interface: an interface that is down delivers
//! nothing and one that is deleted takes the XDP program with it, both
//! silently. Live sessions look at it when they start (a warning when it
//! cannot deliver) and at every tick (a note when it goes down or comes
//! back, the end of the capture when it vanished).
//!
//! The interface is followed by its index, not its name: a deleted
//! interface whose name is reused is still gone.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};

/// What the interface can do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Up, with a carrier: packets can arrive.
    Up,
    /// Administratively down (`ip link set dev IF down`).
    Down,
    /// Up, but no carrier (cable out, the other end of a veth down).
    NoCarrier,
    /// No interface has the index any more (deleted, or moved to another
    /// network namespace).
    Gone,
}

/// The captured interface, by index.
pub struct LinkWatch {
    index: u32,
    name: String,
    state: LinkState,
    socket: OwnedFd,
}

impl LinkWatch {
    /// Starts watching `name` (index `index`) and prints a warning when it
    /// cannot deliver packets now.
    pub fn start(name: &str, index: u32) -> Result<Self> {
        // SAFETY: a plain datagram socket for the interface ioctls.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("cannot open a socket");
        }
        let mut watch = LinkWatch {
            index,
            name: name.to_owned(),
            state: LinkState::Up,
            // SAFETY: `raw` is a new fd we own.
            socket: unsafe { OwnedFd::from_raw_fd(raw) },
        };
        watch.state = watch.read();
        if let Some(warning) = start_warning(&watch.name, watch.state) {
            eprintln!("{warning}");
        }
        Ok(watch)
    }

    /// Looks again and returns the state; prints a note when the
    /// interface went down or came back (vanishing is the caller's to say:
    /// it ends the capture, see [`vanished`]).
    pub fn check(&mut self) -> LinkState {
        let now = self.read();
        let before = std::mem::replace(&mut self.state, now);
        if now != before {
            if let Some(note) = change_note(&self.name, before, now) {
                eprintln!("{note}");
            }
        }
        now
    }

    /// The interface's name (its latest, should it have been renamed).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self) -> LinkState {
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname writes.
        if unsafe { libc::if_indextoname(self.index, buf.as_mut_ptr()) }.is_null() {
            return LinkState::Gone;
        }
        // SAFETY: if_indextoname wrote a NUL-terminated name.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
        // Renamed: say the new name from now on.
        self.name = name.to_string_lossy().into_owned();
        // SAFETY: ifreq is plain data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.to_bytes()) {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads and writes an ifreq.
        if unsafe { libc::ioctl(self.socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
            // Deleted between the two calls.
            return LinkState::Gone;
        }
        // SAFETY: SIOCGIFFLAGS filled the union's flags member.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags } as libc::c_int;
        if flags & libc::IFF_UP == 0 {
            LinkState::Down
        } else if flags & libc::IFF_RUNNING == 0 {
            LinkState::NoCarrier
        } else {
            LinkState::Up
        }
    }
}

/// The error of a capture whose interface went away.
pub fn vanished(name: &str) -> String {
    format!(
        "{name} vanished during the capture (deleted, or moved to another network namespace): \
         the capture ended; nothing is left attached"
    )
}

/// What to say when a capture starts on an interface in `state`.
pub fn start_warning(name: &str, state: LinkState) -> Option<String> {
    match state {
        LinkState::Up | LinkState::Gone => None,
        LinkState::Down => Some(format!(
            "warning: {name} is down: no packets will arrive until it is up \
             (ip link set dev {name} up); capturing anyway"
        )),
        LinkState::NoCarrier => Some(format!(
            "warning: {name} is up but has no carrier (no cable, or the other end of the link \
             is down): no packets will arrive until it has; capturing anyway"
        )),
    }
}

/// What to say when the interface changes from `before` to `now` (not
/// gone: that ends the capture).
pub fn change_note(name: &str, before: LinkState, now: LinkState) -> Option<String> {
    match (before, now) {
        (_, LinkState::Up) => Some(format!("{name} is up again: packets can arrive.")),
        (_, LinkState::Down) => Some(format!(
            "warning: {name} went down: no packets will arrive until it is up again"
        )),
        (LinkState::Up, LinkState::NoCarrier) => Some(format!(
            "warning: {name} lost its carrier: no packets will arrive until it has one again"
        )),
        // Coming up: the carrier follows.
        (_, LinkState::NoCarrier) | (_, LinkState::Gone) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_an_unused_index_is_gone() {
        let lo = crate::capture::xdp::interface_index("lo").unwrap();
        let mut watch = LinkWatch::start("lo", lo).unwrap();
        assert_eq!(watch.state, LinkState::Up);
        assert_eq!(watch.check(), LinkState::Up);
        assert_eq!(watch.name(), "lo");
        let mut gone = LinkWatch::start("nothing", u32::MAX).unwrap();
        assert_eq!(gone.check(), LinkState::Gone);
        assert!(vanished("eth0").starts_with("eth0 vanished during the capture"));
    }

    #[test]
    fn warnings_say_what_to_expect() {
        assert_eq!(start_warning("eth0", LinkState::Up), None);
        let down = start_warning("eth0", LinkState::Down).unwrap();
        assert!(down.contains("eth0 is down: no packets will arrive until it is up"));
        assert!(down.contains("ip link set dev eth0 up"));
        assert!(start_warning("eth0", LinkState::NoCarrier)
            .unwrap()
            .contains("no carrier"));
        assert_eq!(
            change_note("eth0", LinkState::Down, LinkState::Up).unwrap(),
            "eth0 is up again: packets can arrive."
        );
        assert!(change_note("eth0", LinkState::Up, LinkState::Down)
            .unwrap()
            .contains("went down"));
        assert!(change_note("eth0", LinkState::Up, LinkState::NoCarrier)
            .unwrap()
            .contains("lost its carrier"));
        assert_eq!(
            change_note("eth0", LinkState::Down, LinkState::NoCarrier),
            None
        );
    }
}
