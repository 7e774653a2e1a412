//! tcpdump filter expressions on captures (`sniff OUT -r CAPTURE 'tcp
//! port 80'`): the whole pcap-filter syntax, compiled by libpcap for each
//! link type the capture uses and matched with libpcap's own BPF
//! interpreter (`pcap_offline_filter`), so that the counts are tcpdump's.
//! libpcap is loaded when a filter is given, not linked: ml-sniffing builds
//! and runs without it otherwise.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

use anyhow::{bail, Context, Result};
use libloading::Library;
use ml_sniffing_common::parser::Link;

/// Frames are compiled for at most this many bytes (libpcap's default).
const SNAPLEN: c_int = 262_144;

/// `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

/// `struct pcap_pkthdr`.
#[repr(C)]
struct PktHdr {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile =
    unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type OfflineFilter = unsafe extern "C" fn(*const BpfProgram, *const PktHdr, *const u8) -> c_int;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type Close = unsafe extern "C" fn(*mut c_void);

/// The libpcap functions used, resolved once.
struct Pcap {
    open_dead: OpenDead,
    compile: Compile,
    geterr: GetErr,
    offline_filter: OfflineFilter,
    freecode: FreeCode,
    close: Close,
    /// Keeps the functions above loaded.
    _library: Library,
}

impl Pcap {
    fn load() -> Result<Pcap> {
        let mut last = None;
        for name in ["libpcap.so.1", "libpcap.so.0.8", "libpcap.so"] {
            // SAFETY: loading libpcap runs its initializers only, which
            // have no preconditions.
            match unsafe { Library::new(name) } {
                Ok(library) => {
                    // SAFETY: the symbols have these C signatures in every
                    // libpcap since 1.0 (pcap/pcap.h); the library stays
                    // loaded as long as the pointers (`_library`).
                    unsafe {
                        return Ok(Pcap {
                            open_dead: *library.get::<OpenDead>(b"pcap_open_dead\0")?,
                            compile: *library.get::<Compile>(b"pcap_compile\0")?,
                            geterr: *library.get::<GetErr>(b"pcap_geterr\0")?,
                            offline_filter: *library
                                .get::<OfflineFilter>(b"pcap_offline_filter\0")?,
                            freecode: *library.get::<FreeCode>(b"pcap_freecode\0")?,
                            close: *library.get::<Close>(b"pcap_close\0")?,
                            _library: library,
                        });
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        bail!(
            "filter expressions need libpcap, which is not installed ({}): install it \
             (Debian, Ubuntu: `apt install libpcap0.8`; Fedora: `dnf install libpcap`)",
            last.map_or_else(String::new, |e| e.to_string())
        )
    }
}

/// A compiled program for one link type.
struct Program {
    program: BpfProgram,
}

/// A filter expression, compiled for each link type as it is met.
pub struct Filter {
    pcap: Pcap,
    expression: CString,
    programs: HashMap<c_int, Program>,
    pub shown: String,
}

/// The DLT number libpcap compiles for, for each framing the parser
/// reads (raw IP is `DLT_RAW`, whichever of its link types a file named).
fn dlt(link: Link) -> c_int {
    match link {
        Link::Ethernet => 1,
        Link::LinuxSll => 113,
        Link::LinuxSll2 => 276,
        Link::RawIp => 12,
    }
}

impl Filter {
    /// Loads libpcap and compiles `expression` for Ethernet, so that a
    /// mistake is told before anything is read.
    pub fn new(expression: &str) -> Result<Filter> {
        let pcap = Pcap::load()?;
        let mut filter = Filter {
            pcap,
            expression: CString::new(expression)
                .context("a filter expression cannot hold a NUL byte")?,
            programs: HashMap::new(),
            shown: expression.to_string(),
        };
        filter.program(Link::Ethernet)?;
        Ok(filter)
    }

    fn program(&mut self, link: Link) -> Result<&Program> {
        let link_type = dlt(link);
        if !self.programs.contains_key(&link_type) {
            let mut program = BpfProgram {
                bf_len: 0,
                bf_insns: std::ptr::null_mut(),
            };
            // SAFETY: pcap_open_dead returns a handle (or NULL) that is
            // closed below; pcap_compile writes `program` and reads the
            // NUL-terminated expression; pcap_geterr's string lives until
            // the handle is closed, and is copied before.
            let failed = unsafe {
                let handle = (self.pcap.open_dead)(link_type, SNAPLEN);
                if handle.is_null() {
                    bail!("libpcap cannot compile filters for link type {link_type}");
                }
                let status = (self.pcap.compile)(
                    handle,
                    &mut program,
                    self.expression.as_ptr(),
                    1,
                    u32::MAX,
                );
                let failed = (status != 0).then(|| {
                    CStr::from_ptr((self.pcap.geterr)(handle))
                        .to_string_lossy()
                        .into_owned()
                });
                (self.pcap.close)(handle);
                failed
            };
            if let Some(why) = failed {
                bail!("the filter `{}` is not valid: {why}", self.shown);
            }
            self.programs.insert(link_type, Program { program });
        }
        Ok(&self.programs[&link_type])
    }

    /// Whether a frame of this framing (`data` as captured, `wire_len`
    /// bytes on the wire) matches.
    pub fn matches(&mut self, link: Link, data: &[u8], wire_len: u32) -> Result<bool> {
        let offline_filter = self.pcap.offline_filter;
        let program = self.program(link)?;
        let header = PktHdr {
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            caplen: data.len() as u32,
            len: wire_len.max(data.len() as u32),
        };
        // SAFETY: the program was compiled by pcap_compile and not freed;
        // the interpreter reads at most `caplen` bytes of `data`.
        Ok(unsafe { offline_filter(&program.program, &header, data.as_ptr()) } != 0)
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        for p in self.programs.values_mut() {
            // SAFETY: each program came from pcap_compile and is freed once.
            unsafe { (self.pcap.freecode)(&mut p.program) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};

    fn tcp(dst: u16) -> Vec<u8> {
        FrameSpec::new(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            Transport::Tcp {
                src: 40000,
                dst,
                flags: tcp_flags::SYN,
            },
        )
        .build()
    }

    /// libpcap's compiler and interpreter against frames whose answer is
    /// known (skipped, saying so, where libpcap is not installed).
    #[test]
    fn expressions_match_as_tcpdump_would() {
        if Pcap::load().is_err() {
            eprintln!("skipped: libpcap is not installed");
            return;
        }
        let mut f = Filter::new("tcp port 80 and not host 10.9.9.9").unwrap();
        let (web, ssh) = (tcp(80), tcp(22));
        assert!(f.matches(Link::Ethernet, &web, web.len() as u32).unwrap());
        assert!(!f.matches(Link::Ethernet, &ssh, ssh.len() as u32).unwrap());
        // Raw IP: the same packet without its Ethernet header.
        assert!(f
            .matches(Link::RawIp, &web[14..], web.len() as u32 - 14)
            .unwrap());
        let err = Filter::new("tcp port eighty").err().unwrap().to_string();
        assert!(
            err.starts_with("the filter `tcp port eighty` is not valid: "),
            "{err}"
        );
    }
}
