//! The AF_XDP mode's programs in the kernel (object `ml-sniffing-xsk`):
//! the XDP program redirecting frames to the sockets, and the TC program
//! re-injecting frames written to the TAP device. [`XskPrograms`] detaches
//! both when dropped (both are attached through bpf_links, which the kernel
//! also removes when the process dies).

use anyhow::{Context, Result};
use aya::maps::{Array, PerCpuArray, XskMap};
use aya::programs::tc::SchedClassifierLinkId;
use aya::programs::xdp::XdpLinkId;
use aya::programs::{SchedClassifier, TcAttachType, TestRun, TestRunOptions, TestRunResult};
use aya::Ebpf;
use ml_sniffing_common::maps::{xsk, XskCounters};

use crate::capture::xdp::{
    attach_error, attach_program, driver_refusal, interface_index, load_object, os_error,
    program_mut, XdpMode,
};

#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodCounters(XskCounters);
// SAFETY: `XskCounters` is `#[repr(C)]`, eight u64 without padding (size
// asserted in common), so any bytes are a valid value.
unsafe impl aya::Pod for PodCounters {}

/// The loaded programs and their attachments.
pub struct XskPrograms {
    ebpf: Ebpf,
    xdp: Option<(XdpLinkId, String)>,
    tc: Option<SchedClassifierLinkId>,
}

impl XskPrograms {
    /// Loads the XDP program of `object` (checking privileges first).
    pub fn load(object: &[u8]) -> Result<Self> {
        let ebpf = load_object(object, xsk::PROGRAM, |_| {})?;
        Ok(XskPrograms {
            ebpf,
            xdp: None,
            tc: None,
        })
    }

    /// Puts the socket `fd` in the map for receive queue `queue`.
    pub fn set_socket(&mut self, queue: u32, fd: std::os::fd::RawFd) -> Result<()> {
        let map = self
            .ebpf
            .map_mut(xsk::SOCKETS)
            .with_context(|| format!("the AF_XDP program has no {} map", xsk::SOCKETS))?;
        let mut sockets = XskMap::try_from(map)
            .with_context(|| format!("the {} map is not an XskMap", xsk::SOCKETS))?;
        sockets
            .set(queue, BorrowedRaw(fd), 0)
            .with_context(|| format!("cannot put the AF_XDP socket of queue {queue} in the map"))
    }

    /// Attaches the XDP program to `interface`. `reinjecting`: driver mode
    /// was chosen because frames are re-injected (not asked for), which
    /// changes what to suggest when the driver has no XDP.
    pub fn attach(&mut self, interface: &str, mode: XdpMode, reinjecting: bool) -> Result<()> {
        let program = program_mut(&mut self.ebpf, xsk::PROGRAM)?;
        let link = if reinjecting {
            let if_index = interface_index(interface)?;
            program
                .attach_to_if_index(if_index, mode.aya())
                .map_err(|e| {
                    let advice = "which re-injecting frames into the host stack needs: add \
                                  --consume (frames are then kept from the host stack), or \
                                  capture records with --capture xdp";
                    match (os_error(&e), driver_refusal(&e)) {
                        (Some(libc::EOPNOTSUPP), _) => {
                            anyhow::anyhow!("{interface} has no XDP driver mode, {advice}")
                        }
                        (_, Some(refusal)) => anyhow::anyhow!(
                            "{interface} refused XDP in driver mode ({refusal}), {advice}"
                        ),
                        _ => attach_error(e, interface, mode),
                    }
                })?
        } else {
            attach_program(program, interface, mode)?
        };
        self.xdp = Some((link, interface.to_owned()));
        Ok(())
    }

    /// Loads the re-injection program and attaches it to the ingress of
    /// `tap`, redirecting to the interface `target`.
    pub fn attach_reinjection(&mut self, tap: &str, target: u32) -> Result<()> {
        {
            let map = self.ebpf.map_mut(xsk::REINJECT_TARGET).with_context(|| {
                format!("the AF_XDP program has no {} map", xsk::REINJECT_TARGET)
            })?;
            let mut array: Array<_, u32> = Array::try_from(map).with_context(|| {
                format!("the {} map has an unexpected type", xsk::REINJECT_TARGET)
            })?;
            array
                .set(0, target, 0)
                .with_context(|| format!("cannot write the {} map", xsk::REINJECT_TARGET))?;
        }
        let program: &mut SchedClassifier = self
            .ebpf
            .program_mut(xsk::REINJECT_PROGRAM)
            .with_context(|| {
                format!(
                    "the eBPF object has no program named {}",
                    xsk::REINJECT_PROGRAM
                )
            })?
            .try_into()
            .with_context(|| format!("{} is not a TC program", xsk::REINJECT_PROGRAM))?;
        program
            .load()
            .with_context(|| format!("cannot load the TC program {}", xsk::REINJECT_PROGRAM))?;
        let link = program
            .attach(tap, TcAttachType::Ingress)
            .with_context(|| format!("cannot attach the re-injection program to {tap}"))?;
        self.tc = Some(link);
        Ok(())
    }

    /// Detaches the XDP program: no frame is redirected any more (those
    /// already in the rings stay there). Later calls do nothing.
    pub fn detach_xdp(&mut self) -> Result<()> {
        if let Some((link, interface)) = self.xdp.take() {
            program_mut(&mut self.ebpf, xsk::PROGRAM)?
                .detach(link)
                .with_context(|| format!("cannot detach the XDP program from {interface}"))?;
        }
        Ok(())
    }

    /// Detaches the XDP program (frames stop coming) and then the
    /// re-injection program; later calls do nothing.
    pub fn detach(&mut self) -> Result<()> {
        let xdp = self.detach_xdp();
        let tc = self.detach_reinjection();
        xdp.and(tc)
    }

    fn detach_reinjection(&mut self) -> Result<()> {
        if let Some(link) = self.tc.take() {
            let program: &mut SchedClassifier = self
                .ebpf
                .program_mut(xsk::REINJECT_PROGRAM)
                .context("the re-injection program is gone")?
                .try_into()?;
            program
                .detach(link)
                .context("cannot detach the re-injection program")?;
        }
        Ok(())
    }

    /// Runs the XDP program `repeat` times on `frame` with
    /// BPF_PROG_TEST_RUN (a redirect is decided, not carried out).
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<TestRunResult> {
        let program = program_mut(&mut self.ebpf, xsk::PROGRAM)?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        program
            .test_run(opts)
            .context("BPF_PROG_TEST_RUN of the AF_XDP program failed")
    }

    /// The programs' counters, summed over CPUs.
    pub fn counters(&self) -> Result<XskCounters> {
        let map = self
            .ebpf
            .map(xsk::COUNTERS)
            .with_context(|| format!("the AF_XDP program has no {} map", xsk::COUNTERS))?;
        let array: PerCpuArray<_, PodCounters> = PerCpuArray::try_from(map)
            .with_context(|| format!("the {} map has an unexpected type", xsk::COUNTERS))?;
        let per_cpu = array
            .get(&0, 0)
            .with_context(|| format!("cannot read the {} map", xsk::COUNTERS))?;
        Ok(XskCounters::sum(per_cpu.iter().map(|c| &c.0)))
    }
}

impl Drop for XskPrograms {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("Error: {e:#}");
        }
    }
}

/// A raw fd for `XskMap::set` (which only reads the number).
struct BorrowedRaw(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for BorrowedRaw {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}
