//! Network namespaces and veth pairs that tests create, owned by RAII
//! guards that remove them on every path (also when the test panics).
//!
//! ```ignore
//! let capture = NetNs::new("cap")?;          // removed on drop
//! let peer = NetNs::new("peer")?;
//! let link = VethPair::new(&capture, &peer)?; // capture.if_a <-> peer.if_b
//! let mut cmd = capture.command("ml-sniffing"); // runs inside `capture`
//! let sock = peer.enter(|| raw::RawSocket::bind(&link.peer))?; // socket lives in `peer`
//! ```
//! Names are unique per process and call, so tests (and other people's
//! tests on the same machine) never collide.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call (`mls<pid><n><suffix>`,
/// within the 15 characters an interface name may have).
pub fn unique_name(suffix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("mls{:x}{n:x}{suffix}", std::process::id() & 0xfffff)
}

/// Runs a command to completion, failing with its stderr.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A network namespace (`ip netns add`), deleted on drop with everything
/// in it (its veth ends go with it).
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// A new namespace with loopback up and IPv6 autoconfiguration off (so
    /// the kernel sends nothing of its own on interfaces created in it).
    pub fn new(label: &str) -> Result<Self> {
        let name = format!("{}-{label}", unique_name(""));
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        for key in ["all", "default"] {
            ns.sysctl(&format!("net.ipv6.conf.{key}.disable_ipv6"), "1")?;
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Writes a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = value.to_owned();
        self.enter(move || {
            std::fs::write(&path, value).with_context(|| format!("cannot write {path}"))
        })
    }

    /// A command that runs inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `f` on a thread that has entered the namespace (sockets it
    /// opens stay in the namespace wherever they are used later).
    pub fn enter<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || -> Result<T> {
            let ns = File::open(&path).with_context(|| format!("cannot open {path}"))?;
            // SAFETY: a valid namespace fd; only this thread changes
            // namespace (CLONE_NEWNET is per thread), and it ends after `f`.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("cannot enter {path}: {}", std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread inside the namespace panicked"))?
    }

    /// The XDP attachment of `iface` as `ip -j link` reports it (the `xdp`
    /// object), `None` when nothing is attached.
    pub fn xdp_attachment(&self, iface: &str) -> Result<Option<serde_json::Value>> {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-j", "-d", "link", "show", "dev", iface])
            .output()
            .context("cannot run ip link show")?;
        if !out.status.success() {
            bail!(
                "ip link show dev {iface} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let links: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("ip -j link show printed invalid JSON")?;
        let link = links
            .get(0)
            .with_context(|| format!("ip knows no link {iface}"))?;
        Ok(link.get("xdp").cloned())
    }

    /// Waits until an XDP program is attached to `iface` (or `timeout`).
    pub fn wait_for_xdp(&self, iface: &str, timeout: Duration) -> Result<serde_json::Value> {
        let start = Instant::now();
        loop {
            if let Some(xdp) = self.xdp_attachment(iface)? {
                return Ok(xdp);
            }
            if start.elapsed() > timeout {
                bail!("no XDP program was attached to {iface} within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Interface statistics (`/sys/class/net/IF/statistics/NAME`) read
    /// inside the namespace.
    pub fn if_stat(&self, iface: &str, name: &str) -> Result<u64> {
        let path = format!("/sys/class/net/{iface}/statistics/{name}");
        // sysfs shows the namespace of whoever mounted it: read through a
        // process inside the namespace (`ip netns exec` mounts its own).
        let out = self
            .command("cat")
            .arg(&path)
            .output()
            .with_context(|| format!("cannot read {path}"))?;
        if !out.status.success() {
            bail!(
                "cannot read {path}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .with_context(|| format!("{path} does not hold a number"))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("warning: {e:#}");
        }
    }
}

/// One end of a veth pair.
#[derive(Clone, Debug)]
pub struct VethEnd {
    /// The namespace it lives in.
    pub netns: String,
    pub name: String,
}

/// A veth pair between two namespaces (`a` in the first, `b` in the
/// second), both ends up, no addresses. Deleted on drop (deleting one end
/// deletes both).
pub struct VethPair {
    pub a: VethEnd,
    pub b: VethEnd,
}

impl VethPair {
    pub fn new(a: &NetNs, b: &NetNs) -> Result<Self> {
        VethPair::with_queues(a, b, 1)
    }

    /// With `queues` receive and transmit queues on each end.
    pub fn with_queues(a: &NetNs, b: &NetNs, queues: u32) -> Result<Self> {
        let name_a = unique_name("a");
        let name_b = unique_name("b");
        let q = queues.to_string();
        run(Command::new("ip")
            .args(["link", "add", &name_a, "netns", a.name()])
            .args([
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                &name_b,
                "netns",
                b.name(),
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ]))?;
        let pair = VethPair {
            a: VethEnd {
                netns: a.name().to_owned(),
                name: name_a,
            },
            b: VethEnd {
                netns: b.name().to_owned(),
                name: name_b,
            },
        };
        a.ip(&["link", "set", &pair.a.name, "up"])?;
        b.ip(&["link", "set", &pair.b.name, "up"])?;
        Ok(pair)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Already gone when its namespace was deleted first: not an error.
        let _ = run(Command::new("ip").args(["-n", &self.a.netns, "link", "del", &self.a.name]));
    }
}
