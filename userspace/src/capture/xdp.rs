//! Loading the XDP program, attaching it, running it on test frames.
//!
//! [`Loaded`] is the program and its maps in the kernel, not attached
//! (enough for `BPF_PROG_TEST_RUN`); [`Attached`] owns a `Loaded` attached to
//! an interface and detaches it when dropped, on every exit path. aya
//! attaches through a bpf_link, which the kernel also removes when the
//! process dies without running destructors (SIGKILL): nothing is pinned.

use std::ffi::CString;
use std::io;

use anyhow::{bail, Context, Result};
use aya::maps::{MapData, RingBuf};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{
    ProgramError, TestRun, TestRunOptions, TestRunResult, Xdp, XdpMode as AyaXdpMode,
};
use aya::{Ebpf, EbpfError, EbpfLoader};
use clap::ValueEnum;
use ml_sniffing_common::maps::{self, Config, Counters};

use super::stats;

/// How the program is attached (`--xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum XdpMode {
    /// Driver (native) mode when the driver supports it, else generic
    /// (also when the driver has XDP but refuses it in its present setup).
    #[default]
    Auto,
    /// Generic XDP in the kernel's network stack: works on any interface.
    Skb,
    /// Native XDP in the driver: fastest, needs driver support.
    Drv,
}

impl XdpMode {
    pub(crate) fn aya(self) -> AyaXdpMode {
        match self {
            XdpMode::Auto => AyaXdpMode::Default,
            XdpMode::Skb => AyaXdpMode::Skb,
            XdpMode::Drv => AyaXdpMode::Driver,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Skb => "skb",
            XdpMode::Drv => "drv",
        }
    }
}

/// The capture program loaded into the kernel with its maps, not attached.
pub struct Loaded {
    ebpf: Ebpf,
}

impl Loaded {
    /// Loads the program in `object` (see [`super::programs`]) and writes
    /// `config` to its configuration map. Fails with one sentence when the
    /// process lacks the privileges or the kernel refuses the program.
    pub fn new(object: &[u8], config: Config) -> Result<Self> {
        Loaded::with_ring_size(object, config, maps::EVENTS_BYTES)
    }

    /// As [`Loaded::new`], with a ring buffer of `ring_bytes` (a power of two
    /// multiple of the page size).
    pub fn with_ring_size(object: &[u8], config: Config, ring_bytes: u32) -> Result<Self> {
        let mut ebpf = load_object(object, maps::PROGRAM, |loader| {
            loader.map_max_entries(maps::EVENTS, ring_bytes);
        })?;
        stats::configure(&mut ebpf, config)?;
        Ok(Loaded { ebpf })
    }

    fn program(&mut self) -> Result<&mut Xdp> {
        program_mut(&mut self.ebpf, maps::PROGRAM)
    }

    /// Runs the program once per `repeat` on `frame` with BPF_PROG_TEST_RUN
    /// (records and counters go to the maps as for a real packet).
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<TestRunResult> {
        let program = self.program()?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        program
            .test_run(opts)
            .context("BPF_PROG_TEST_RUN of the XDP program failed")
    }

    /// The ring buffer of records (it can be taken once).
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .context("the ring buffer was already taken")?;
        RingBuf::try_from(map)
            .with_context(|| format!("the {} map is not a ring buffer", maps::EVENTS))
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        stats::read(&self.ebpf)
    }

    /// Changes the configuration (takes effect from the next packet).
    pub fn configure(&mut self, config: Config) -> Result<()> {
        stats::configure(&mut self.ebpf, config)
    }

    /// Attaches the program to `interface`.
    pub fn attach(mut self, interface: &str, mode: XdpMode) -> Result<Attached> {
        let program = self.program()?;
        let link = attach_program(program, interface, mode)?;
        Ok(Attached {
            loaded: self,
            link: Some(link),
            interface: interface.to_owned(),
        })
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}

/// The program attached to an interface; detached when dropped.
pub struct Attached {
    loaded: Loaded,
    link: Option<XdpLinkId>,
    interface: String,
}

impl Attached {
    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn loaded(&mut self) -> &mut Loaded {
        &mut self.loaded
    }

    pub fn counters(&self) -> Result<Counters> {
        self.loaded.counters()
    }

    /// Detaches now (dropping does it too); later calls do nothing.
    pub fn detach(&mut self) -> Result<()> {
        if let Some(link) = self.link.take() {
            let interface = self.interface.clone();
            self.loaded
                .program()?
                .detach(link)
                .with_context(|| format!("cannot detach the XDP program from {interface}"))?;
        }
        Ok(())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("Error: {e:#}");
        }
    }
}

/// Loads the XDP program `program` from `object` (checking privileges
/// first). `tune` may adjust the loader (map sizes).
pub fn load_object(
    object: &[u8],
    program: &str,
    tune: impl FnOnce(&mut EbpfLoader<'_>),
) -> Result<Ebpf> {
    check_privileges()?;
    raise_memlock_limit();
    let mut loader = EbpfLoader::new();
    tune(&mut loader);
    let mut ebpf = loader.load(object).map_err(load_error)?;
    program_mut(&mut ebpf, program)?
        .load()
        .map_err(|e| program_load_error(e, program))?;
    Ok(ebpf)
}

/// The XDP program `name` of a loaded object.
pub fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .with_context(|| format!("the eBPF object has no program named {name}"))?
        .try_into()
        .with_context(|| format!("the eBPF program {name} is not an XDP program"))
}

/// The index of `interface`, or one sentence saying it does not exist.
pub fn interface_index(interface: &str) -> Result<u32> {
    let name = CString::new(interface).ok();
    // SAFETY: a valid NUL-terminated string.
    let index = name.map_or(0, |n| unsafe { libc::if_nametoindex(n.as_ptr()) });
    if index == 0 {
        bail!("there is no network interface named {interface:?}");
    }
    Ok(index)
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

const NEEDS_PRIVILEGES: &str =
    "capturing with XDP needs root, or the CAP_BPF and CAP_NET_ADMIN capabilities: run it with sudo";

/// Fails with one sentence unless the process may load and attach XDP
/// programs (CAP_BPF or CAP_SYS_ADMIN, and CAP_NET_ADMIN).
pub fn check_privileges() -> Result<()> {
    let effective = effective_capabilities().unwrap_or(0);
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        return Ok(());
    }
    bail!(NEEDS_PRIVILEGES)
}

/// The effective capability set, from /proc/self/status (`CapEff:`).
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones do not
/// look at it. Best effort: a failure shows up as a load error.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit struct.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

pub(crate) fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        source = err.source();
    }
    None
}

fn load_error(e: EbpfError) -> anyhow::Error {
    match os_error(&e) {
        Some(libc::EPERM | libc::EACCES) => anyhow::anyhow!(NEEDS_PRIVILEGES),
        _ => anyhow::Error::new(e).context("the kernel refused the XDP program's maps"),
    }
}

fn program_load_error(e: ProgramError, name: &str) -> anyhow::Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            if matches!(io_error.raw_os_error(), Some(libc::EPERM))
                && verifier_log.to_string().trim().is_empty()
            {
                return anyhow::anyhow!(NEEDS_PRIVILEGES);
            }
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            anyhow::anyhow!(
                "the kernel's verifier rejected the XDP program {name} ({io_error}); its log ends with:\n{}",
                tail.join("\n")
            )
        }
        other => anyhow::Error::new(other).context(format!("cannot load the XDP program {name}")),
    }
}

/// Attaches `program` to `interface` in `mode`.
///
/// In `auto` mode the kernel picks driver mode whenever the driver has XDP
/// support, but some drivers that have it refuse it for their present
/// configuration (virtio_net without spare transmit queues or with
/// hardware GRO, veth with an MTU above a page): any such refusal is
/// retried in generic mode, which works on every interface, and said on
/// stderr. Errors are [`attach_error`]'s sentences.
pub fn attach_program(program: &mut Xdp, interface: &str, mode: XdpMode) -> Result<XdpLinkId> {
    let if_index = interface_index(interface)?;
    let e = match program.attach_to_if_index(if_index, mode.aya()) {
        Ok(link) => return Ok(link),
        Err(e) => e,
    };
    match driver_refusal(&e) {
        Some(refusal) if mode == XdpMode::Auto => {
            let link = program
                .attach_to_if_index(if_index, XdpMode::Skb.aya())
                .map_err(|e| attach_error(e, interface, XdpMode::Skb))?;
            eprintln!(
                "note: {interface}'s driver refused XDP in driver mode ({refusal}); \
                 attached in generic (skb) mode instead"
            );
            Ok(link)
        }
        _ => Err(attach_error(e, interface, mode)),
    }
}

/// The driver's refusal of driver mode, when that is why an attach failed:
/// not a program already there or missing privileges (which generic mode
/// would meet too).
pub(crate) fn driver_refusal(e: &ProgramError) -> Option<io::Error> {
    match os_error(e)? {
        libc::EBUSY | libc::EEXIST | libc::EPERM | libc::EACCES => None,
        code => Some(io::Error::from_raw_os_error(code)),
    }
}

/// The one-sentence error for a failed attach (another XDP program already
/// there, driver mode unsupported, no privileges), for every loader.
pub fn attach_error(e: ProgramError, interface: &str, mode: XdpMode) -> anyhow::Error {
    match os_error(&e) {
        Some(libc::EBUSY | libc::EEXIST) => anyhow::anyhow!(
            "{interface} already has an XDP program attached: detach it first (ip link set dev {interface} xdp off)"
        ),
        Some(libc::EOPNOTSUPP) if mode == XdpMode::Drv => {
            anyhow::anyhow!("{interface} does not support XDP in driver mode: use --xdp-mode skb or auto")
        }
        Some(libc::EPERM | libc::EACCES) => anyhow::anyhow!(NEEDS_PRIVILEGES),
        Some(code) if mode == XdpMode::Drv => anyhow::anyhow!(
            "{interface}'s driver refused XDP in driver mode ({}): use --xdp-mode skb or auto",
            io::Error::from_raw_os_error(code)
        ),
        _ => anyhow::Error::new(e).context(format!(
            "cannot attach the XDP program to {interface} in {} mode",
            mode.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_interface_is_one_sentence() {
        let e = interface_index("no-such-if0").unwrap_err().to_string();
        assert_eq!(e, "there is no network interface named \"no-such-if0\"");
        assert!(interface_index("bad\0name").is_err());
        assert!(interface_index("lo").unwrap() > 0);
    }

    #[test]
    fn privileges_follow_the_effective_capabilities() {
        let caps = effective_capabilities().expect("a CapEff line in /proc/self/status");
        let has = |cap: u32| caps & (1u64 << cap) != 0;
        let allowed = has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN));
        match check_privileges() {
            Ok(()) => assert!(allowed),
            Err(e) => {
                assert!(!allowed);
                assert_eq!(e.to_string(), NEEDS_PRIVILEGES);
            }
        }
    }
}
