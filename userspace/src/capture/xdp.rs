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
    /// The flow-record map and ring take their full sizes only when
    /// `config` asks for flow records (`Config::FLOW_RECORDS`).
    pub fn with_ring_size(object: &[u8], config: Config, ring_bytes: u32) -> Result<Self> {
        let flow_records = config.flags & Config::FLOW_RECORDS != 0;
        let mut ebpf = load_object(object, maps::PROGRAM, |loader| {
            loader.map_max_entries(maps::EVENTS, ring_bytes);
            if !flow_records {
                loader.map_max_entries(maps::FLOW_RECORDS, 1);
                loader.map_max_entries(maps::FLOW_EVENTS, 4096);
            }
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

    /// The ring buffer of flow records ended by FIN or RST (taken once).
    pub fn take_flow_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(maps::FLOW_EVENTS)
            .context("the flow-record ring was already taken")?;
        RingBuf::try_from(map)
            .with_context(|| format!("the {} map is not a ring buffer", maps::FLOW_EVENTS))
    }

    /// The program's flow-record map, untyped (taken once; see
    /// `kernel_flows::FlowRecordMap`).
    pub fn take_flow_records(&mut self) -> Result<aya::maps::Map> {
        self.ebpf
            .take_map(maps::FLOW_RECORDS)
            .context("the flow-record map was already taken")
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        stats::read(&self.ebpf)
    }

    /// Writes the filter program (run when the configuration's
    /// `Config::FILTER` bit is set).
    pub fn set_filter(&mut self, program: &ml_sniffing_common::filter::Program) -> Result<()> {
        stats::set_filter(&mut self.ebpf, program)
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
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What a capture engine needs from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Load and attach an XDP program: CAP_BPF, CAP_NET_ADMIN, and
    /// CAP_PERFMON, without which the verifier refuses the parser's packet
    /// pointer arithmetic (`pointer -= pointer prohibited`); CAP_SYS_ADMIN
    /// stands for both CAP_BPF and CAP_PERFMON.
    Xdp,
    /// The same, and CAP_NET_RAW for the AF_XDP sockets.
    AfXdp,
}

/// The capabilities `needs` asks for that `effective` (a CapEff mask)
/// lacks, by name; empty when it has them all.
pub fn missing_capabilities(effective: u64, needs: Needs) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_SYS_ADMIN) {
        if !has(CAP_BPF) {
            missing.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) {
            missing.push("CAP_PERFMON");
        }
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if needs == Needs::AfXdp && !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    missing
}

/// The one sentence for a process lacking `missing`.
pub fn privileges_advice(needs: Needs, missing: &[&str]) -> String {
    let (what, caps, setcap) = match needs {
        Needs::Xdp => (
            "capturing with XDP",
            "CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN",
            "cap_bpf,cap_perfmon,cap_net_admin",
        ),
        Needs::AfXdp => (
            "capturing with AF_XDP",
            "CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_NET_RAW",
            "cap_bpf,cap_perfmon,cap_net_admin,cap_net_raw",
        ),
    };
    let lacking = if missing.is_empty() {
        String::new()
    } else {
        format!(" (this process lacks {})", missing.join(", "))
    };
    format!(
        "{what} needs root, or the capabilities {caps}{lacking}: run it with sudo, or give the \
         binary those capabilities (sudo setcap {setcap}+ep BINARY)"
    )
}

/// Fails with one sentence unless the process may load and attach XDP
/// programs (see [`Needs::Xdp`]).
pub fn check_privileges() -> Result<()> {
    check_privileges_for(Needs::Xdp)
}

/// Fails with one sentence unless the process has what `needs` asks for.
pub fn check_privileges_for(needs: Needs) -> Result<()> {
    let missing = missing_capabilities(effective_capabilities().unwrap_or(0), needs);
    if missing.is_empty() {
        return Ok(());
    }
    bail!(privileges_advice(needs, &missing))
}

/// The advice for a kernel that said EPERM/EACCES although the capability
/// check passed (a user namespace, an LSM, a locked-down kernel).
fn refused_advice() -> String {
    let missing = missing_capabilities(effective_capabilities().unwrap_or(0), Needs::Xdp);
    privileges_advice(Needs::Xdp, &missing)
}

/// Set to see the verifier's whole log when it rejects a program.
pub const VERIFIER_LOG_ENV: &str = "ML_SNIFFING_VERIFIER_LOG";

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
        Some(libc::EPERM | libc::EACCES) => anyhow::anyhow!(refused_advice()),
        _ => anyhow::Error::new(e).context("the kernel refused the XDP program's maps"),
    }
}

fn program_load_error(e: ProgramError, name: &str) -> anyhow::Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let show_log = std::env::var_os(VERIFIER_LOG_ENV).is_some();
            verifier_error(name, &io_error, &verifier_log.to_string(), show_log)
        }
        other => anyhow::Error::new(other).context(format!("cannot load the XDP program {name}")),
    }
}

/// The error for a program the kernel would not load: the privileges
/// advice for EPERM/EACCES (the verifier answers EACCES when unprivileged
/// code does what only CAP_PERFMON allows), else one sentence; the
/// verifier's log (kilobytes) only when asked for with
/// [`VERIFIER_LOG_ENV`].
fn verifier_error(name: &str, io_error: &io::Error, log: &str, show_log: bool) -> anyhow::Error {
    let mut message = match io_error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => format!(
            "the kernel refused to load the XDP program {name} ({io_error}): {}",
            refused_advice()
        ),
        _ => format!("the kernel's verifier rejected the XDP program {name} ({io_error})"),
    };
    if log.trim().is_empty() {
        return anyhow::anyhow!(message);
    }
    if show_log {
        message.push_str("; its log:\n");
        message.push_str(log.trim_end());
    } else {
        message.push_str(&format!(
            "; set {VERIFIER_LOG_ENV}=1 to see the verifier's log"
        ));
    }
    anyhow::anyhow!(message)
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
        Some(libc::EBUSY | libc::EEXIST) => {
            let holders = interface_index(interface)
                .map(super::holder::xdp_link_holders)
                .unwrap_or_default();
            anyhow::anyhow!(super::holder::busy_advice(interface, &holders))
        }
        Some(libc::EOPNOTSUPP) if mode == XdpMode::Drv => {
            anyhow::anyhow!(
                "{interface} does not support XDP in driver mode: use --xdp-mode skb or auto"
            )
        }
        Some(libc::EPERM | libc::EACCES) => anyhow::anyhow!(refused_advice()),
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
        match check_privileges() {
            Ok(()) => assert!(missing_capabilities(caps, Needs::Xdp).is_empty()),
            Err(e) => assert_eq!(
                e.to_string(),
                privileges_advice(Needs::Xdp, &missing_capabilities(caps, Needs::Xdp))
            ),
        }
    }

    fn mask(caps: &[u32]) -> u64 {
        caps.iter().fold(0, |m, c| m | 1 << c)
    }

    /// CAP_BPF and CAP_NET_ADMIN are not enough: the verifier wants
    /// CAP_PERFMON for the parser's pointer arithmetic (CAP_SYS_ADMIN
    /// stands for both); AF_XDP sockets want CAP_NET_RAW.
    #[test]
    fn the_capabilities_asked_for_are_the_ones_the_kernel_checks() {
        let all = mask(&[CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_RAW]);
        assert!(missing_capabilities(all, Needs::AfXdp).is_empty());
        assert_eq!(
            missing_capabilities(mask(&[CAP_BPF, CAP_NET_ADMIN]), Needs::Xdp),
            ["CAP_PERFMON"]
        );
        assert!(missing_capabilities(mask(&[CAP_SYS_ADMIN, CAP_NET_ADMIN]), Needs::Xdp).is_empty());
        assert_eq!(
            missing_capabilities(mask(&[CAP_SYS_ADMIN, CAP_NET_ADMIN]), Needs::AfXdp),
            ["CAP_NET_RAW"]
        );
        assert_eq!(
            missing_capabilities(0, Needs::Xdp),
            ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]
        );
        assert_eq!(
            privileges_advice(Needs::Xdp, &["CAP_PERFMON"]),
            "capturing with XDP needs root, or the capabilities CAP_BPF, CAP_PERFMON and \
             CAP_NET_ADMIN (this process lacks CAP_PERFMON): run it with sudo, or give the \
             binary those capabilities (sudo setcap cap_bpf,cap_perfmon,cap_net_admin+ep BINARY)"
        );
    }

    #[test]
    fn the_verifier_log_is_shown_only_when_asked_for() {
        let log = "0: (b7) r0 = 2\n62: (1f) r1 -= r2\nR1 pointer -= pointer prohibited\n";
        let invalid = io::Error::from_raw_os_error(libc::EINVAL);
        let e = verifier_error("p", &invalid, log, false).to_string();
        assert_eq!(
            e,
            "the kernel's verifier rejected the XDP program p (Invalid argument (os error 22)); \
             set ML_SNIFFING_VERIFIER_LOG=1 to see the verifier's log"
        );
        let e = verifier_error("p", &invalid, log, true).to_string();
        assert!(e.ends_with(
            "its log:\n0: (b7) r0 = 2\n62: (1f) r1 -= r2\nR1 pointer -= pointer prohibited"
        ));
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let e = verifier_error("p", &denied, log, false).to_string();
        assert!(e.contains("needs root, or the capabilities"), "{e}");
        assert!(!e.contains("prohibited"), "{e}");
    }
}
