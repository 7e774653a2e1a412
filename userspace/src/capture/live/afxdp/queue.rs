//! One AF_XDP socket, bound to one receive queue of the interface, with its
//! own UMEM, fill ring and receive ring (xdpilone). Nothing is shared
//! between queues, so each can be drained without locks.
//!
//! The fill ring is kept as full as the free chunks allow: after each
//! receive batch the frames' chunks go back to the free list and from there
//! to the fill ring. The ring may take fewer entries than asked (the
//! producer's cached view of the kernel's consumer lags), so the refill
//! retries until the ring or the free list is empty.

use std::num::NonZeroU32;
use std::os::fd::RawFd;

use anyhow::{bail, Context, Result};
use xdpilone::xdp::XdpStatisticsV2;
use xdpilone::{DeviceQueue, IfInfo, RingRx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::umem::{FreeList, UmemArea};
use super::BindMode;

/// Ring and UMEM sizes of one queue's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    /// Entries of the receive ring and of the fill ring (a power of two).
    pub ring: u32,
    /// Chunks of the UMEM: the fill ring's worth, plus those userspace
    /// holds while it handles a batch ([`SPARE_CHUNKS`]). While userspace
    /// is away the kernel moves chunks from the fill ring to the receive
    /// ring, so the fill ring's size is what absorbs a stall.
    pub chunks: u32,
    /// Bytes per chunk: the frame, and the 256 bytes of headroom the
    /// kernel keeps in front of it (where the timestamp goes), must fit.
    pub chunk_size: u32,
}

/// Frames the fill rings of all queues hold together by default, like the
/// record path's 64 MiB ring buffer (700,000 records) absorbs a reader's
/// stalls: 32,768 frames, 16 ms at 2 Mpps, 64 MiB of 2 KiB chunks. Waking
/// an idle reader took milliseconds at times on the VMs this was measured
/// on; 4,096 frames per queue lost 30 % of bursts at 2 Mpps.
pub const TOTAL_RING: u32 = 32_768;
/// The smallest default ring of a queue (many queues).
pub const MIN_RING: u32 = 2_048;
/// Chunks beyond the fill ring's (see [`RingSizes::chunks`]).
pub const SPARE_CHUNKS: u32 = 1_024;
/// The kernel's headroom in front of each frame (XDP_PACKET_HEADROOM).
pub const HEADROOM: u32 = 256;

impl RingSizes {
    /// Sizes for one of `queues` sockets on an interface of `mtu`:
    /// [`TOTAL_RING`] shared by the queues unless `ring` (per queue) is
    /// given, rounded down to a power of two; 2 KiB chunks when a frame of
    /// the MTU (with two VLAN tags) fits, 4 KiB otherwise.
    pub fn plan(queues: u32, mtu: u32, ring: Option<u32>) -> Self {
        let ring = ring
            .unwrap_or((TOTAL_RING / queues.max(1)).max(MIN_RING))
            .clamp(64, 1 << 16);
        let ring = 1 << (31 - ring.leading_zeros());
        let frame = mtu.saturating_add(14 + 8);
        let chunk_size = if frame + HEADROOM <= 2048 { 2048 } else { 4096 };
        RingSizes {
            ring,
            chunks: ring + SPARE_CHUNKS,
            chunk_size,
        }
    }

    /// The largest frame a chunk holds; longer frames are dropped by the
    /// socket and counted in its `rx_dropped`.
    pub fn max_frame(&self) -> u32 {
        self.chunk_size - HEADROOM
    }
}

/// Completion ring entries: the capture never transmits, but the kernel
/// wants a completion ring with the fill ring.
const COMPLETION_RING: u32 = 64;

/// Userspace-side events of one queue, counted like the kernel's drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueEvents {
    /// Frames taken from the receive ring.
    pub received: u64,
    /// Receive descriptors pointing outside the UMEM (never read; counted).
    pub bad_descriptors: u64,
    /// Refills that ran out of free chunks before the fill ring was full:
    /// the other chunks were all in the receive ring or being handled (UMEM
    /// exhausted). It happens after a stall, while the receive ring holds
    /// more than the spare chunks; the fill ring then waits for those.
    pub umem_exhausted: u64,
    /// Times the fill ring was found empty by userspace before a refill
    /// (the kernel had no chunk left: frames arriving then are dropped and
    /// counted in `rx_fill_ring_empty_descs`).
    pub fill_empty: u64,
}

/// The socket of one receive queue.
pub struct QueueSocket {
    queue: u32,
    rx: RingRx,
    device: DeviceQueue,
    user: User,
    // Kept for the socket's lifetime; the UMEM's fd closes with it.
    umem: Umem,
    free: FreeList,
    sizes: RingSizes,
    zero_copy: bool,
    events: QueueEvents,
    /// Declared last: unmapped after every ring and the sockets are gone.
    area: UmemArea,
}

impl QueueSocket {
    /// Creates the socket for `queue` of the interface `ifindex`, fills its
    /// fill ring and binds it. Frames reach it once its fd is in the
    /// program's socket map.
    pub fn bind(
        interface: &str,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        bind: BindMode,
    ) -> Result<Self> {
        let area = UmemArea::new(sizes.chunks, sizes.chunk_size)?;
        let config = UmemConfig {
            fill_size: sizes.ring,
            complete_size: COMPLETION_RING,
            frame_size: sizes.chunk_size,
            headroom: 0,
            flags: 0,
        };
        let errno = |what: &str, e: xdpilone::Errno| {
            anyhow::Error::new(std::io::Error::from_raw_os_error(e.get_raw().abs()))
                .context(format!("{what} for queue {queue} of {interface}"))
        };
        // SAFETY: the area is page aligned (an mmap), as long as given, and
        // outlives the UMEM (`area` is dropped last, see the field order).
        let umem = unsafe { Umem::new(config, area.as_slice_ptr()) }
            .map_err(|e| errno("cannot register the AF_XDP memory", e))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex)
            .map_err(|e| errno("cannot find the interface", e))?;
        info.set_queue(queue);
        let socket = Socket::with_shared(&info, &umem)
            .map_err(|e| errno("cannot create the AF_XDP socket", e))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(|e| errno("cannot create the fill and completion rings", e))?;
        let user = umem
            .rx_tx(
                &socket,
                &SocketConfig {
                    rx_size: NonZeroU32::new(sizes.ring),
                    tx_size: None,
                    bind_flags: bind.flags() | SocketConfig::XDP_BIND_NEED_WAKEUP,
                },
            )
            .map_err(|e| errno("cannot create the receive ring", e))?;
        let rx = user
            .map_rx()
            .map_err(|e| errno("cannot map the receive ring", e))?;
        let mut q = QueueSocket {
            queue,
            rx,
            device,
            user,
            umem,
            free: FreeList::all(sizes.chunks, sizes.chunk_size),
            sizes,
            zero_copy: false,
            events: QueueEvents::default(),
            area,
        };
        // xdpilone opens the socket without SOCK_CLOEXEC: a process another
        // thread spawns would inherit it and keep the queue bound after this
        // socket closes (a later bind then finds the queue taken).
        // SAFETY: fcntl on a descriptor this socket owns.
        if unsafe { libc::fcntl(q.fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            let e = std::io::Error::last_os_error();
            bail!("cannot mark the AF_XDP socket close-on-exec: {e}");
        }
        // Chunks are in the fill ring before the first frame can arrive.
        q.refill();
        if let Err(e) = q.umem.bind(&q.user) {
            let code = e.get_raw().abs();
            return Err(bind_error(code, interface, queue, bind));
        }
        q.zero_copy = zero_copy(q.fd()).unwrap_or(false);
        if bind == BindMode::ZeroCopy && !q.zero_copy {
            bail!(
                "{interface} queue {queue} was bound without zero-copy although it was asked for"
            );
        }
        Ok(q)
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The socket's fd, for the program's socket map and for waiting.
    pub fn fd(&self) -> RawFd {
        self.user.as_raw_fd()
    }

    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    pub fn sizes(&self) -> RingSizes {
        self.sizes
    }

    pub fn events(&self) -> QueueEvents {
        self.events
    }

    /// Frames waiting in the receive ring (a relaxed read: a hint).
    pub fn waiting(&self) -> u32 {
        self.rx.available()
    }

    /// The kernel's statistics of this socket (`XDP_STATISTICS`).
    pub fn statistics(&self) -> Result<XdpStatisticsV2> {
        self.user.statistics_v2().map_err(|e| {
            anyhow::Error::new(std::io::Error::from_raw_os_error(e.get_raw().abs())).context(
                format!("cannot read the AF_XDP statistics of queue {}", self.queue),
            )
        })
    }

    /// Takes up to `max` frames from the receive ring, handing each to `f`
    /// (its bytes and its kernel timestamp, 0 when it has none), then gives
    /// their chunks back to the fill ring. Returns how many were taken.
    #[inline]
    pub fn receive(&mut self, max: u32, mut f: impl FnMut(&[u8], u64)) -> u32 {
        let mut n = 0;
        while n < max {
            // The ring may show fewer entries than are there (cached
            // producer): ask again until it has none.
            let mut batch = self.rx.receive(max - n);
            if batch.capacity() == 0 {
                break;
            }
            while let Some(desc) = batch.read() {
                n += 1;
                let chunk = self.area.chunk_of(desc.addr);
                match self.area.frame(desc.addr, desc.len) {
                    Some(frame) => {
                        let ts = self.area.take_timestamp(desc.addr);
                        f(frame, ts);
                    }
                    None => self.events.bad_descriptors += 1,
                }
                if (chunk as usize) < self.area.len() {
                    self.free.push(chunk);
                }
            }
            batch.release();
        }
        self.events.received += n as u64;
        if n > 0 {
            self.refill();
        }
        n
    }

    /// Moves free chunks into the fill ring until it is full or the free
    /// list empty, and wakes the driver when it asks for it (zero-copy).
    pub fn refill(&mut self) {
        if self.free.is_empty() && !self.device.needs_wakeup() {
            return;
        }
        if self.device.pending() == 0 && self.events.received > 0 {
            self.events.fill_empty += 1;
        }
        while !self.free.is_empty() {
            let device = &mut self.device;
            let taken = self.free.give(|chunks| {
                let mut writer = device.fill(u32::MAX);
                let n = writer.insert(chunks);
                writer.commit();
                n
            });
            if taken == 0 {
                break;
            }
        }
        if self.free.is_empty() && self.device.pending() < self.sizes.ring {
            self.events.umem_exhausted += 1;
        }
        if self.device.needs_wakeup() {
            self.device.wake();
        }
    }
}

/// `XDP_OPTIONS` getsockopt: whether the socket runs in zero-copy mode.
fn zero_copy(fd: RawFd) -> Result<bool> {
    const SOL_XDP: libc::c_int = 283;
    const XDP_OPTIONS: libc::c_int = 8;
    const XDP_OPTIONS_ZEROCOPY: u32 = 1;
    let mut flags: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `flags` is a writable u32 (struct xdp_options) of the size given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut flags as *mut u32).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context("cannot read the AF_XDP socket options");
    }
    Ok(flags & XDP_OPTIONS_ZEROCOPY != 0)
}

fn bind_error(code: i32, interface: &str, queue: u32, bind: BindMode) -> anyhow::Error {
    match code {
        libc::EOPNOTSUPP | libc::EPROTONOSUPPORT if bind == BindMode::ZeroCopy => anyhow::anyhow!(
            "{interface} does not support AF_XDP zero-copy: use --af-xdp-bind copy (or auto)"
        ),
        libc::EINVAL => anyhow::anyhow!(
            "cannot bind an AF_XDP socket to queue {queue} of {interface}: the interface has no such receive queue"
        ),
        libc::EBUSY => anyhow::anyhow!(
            "queue {queue} of {interface} already has an AF_XDP socket: stop the other capture first"
        ),
        _ => anyhow::Error::new(std::io::Error::from_raw_os_error(code))
            .context(format!("cannot bind an AF_XDP socket to queue {queue} of {interface}")),
    }
}
