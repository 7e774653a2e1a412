//! Who holds an interface's XDP attachment, for the advice when attaching
//! fails because one is there: a program attached through a bpf_link (as
//! every ml-sniffing capture attaches) cannot be removed with `ip link set
//! dev IF xdp off`; it goes when the last process holding the link exits
//! (or its pin is removed). Processes holding XDP links are found in
//! `/proc/*/fdinfo` (`link_type: xdp`, `ifindex: N`), among those in this
//! network namespace (interface indexes are per namespace).

use std::os::unix::fs::MetadataExt;

/// A process holding an XDP link on the interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkHolder {
    pub pid: u32,
    pub command: String,
    pub link_id: u32,
    pub prog_id: u32,
}

/// The processes (in this network namespace) holding an XDP bpf_link on
/// interface `ifindex`.
pub fn xdp_link_holders(ifindex: u32) -> Vec<LinkHolder> {
    let ns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let ours = ns("self");
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if ours.is_none() || ns(pid) != ours {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let is_link =
                std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf_link");
            if !is_link {
                continue;
            }
            let info_path = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            let Some((link_id, prog_id)) = std::fs::read_to_string(info_path)
                .ok()
                .and_then(|info| xdp_link_on(&info, ifindex))
            else {
                continue;
            };
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().to_owned())
                .unwrap_or_default();
            found.push(LinkHolder {
                pid: pid.parse().unwrap_or(0),
                command,
                link_id,
                prog_id,
            });
        }
    }
    found.sort_by_key(|h| h.pid);
    found
}

/// The link and program ids of a bpf_link's fdinfo when it is an XDP link
/// on `ifindex`.
fn xdp_link_on(fdinfo: &str, ifindex: u32) -> Option<(u32, u32)> {
    let field = |name: &str| {
        fdinfo.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    if field("link_type")? != "xdp" || field("ifindex")?.parse::<u32>().ok()? != ifindex {
        return None;
    }
    Some((
        field("link_id")?.parse().ok()?,
        field("prog_id")?.parse().ok()?,
    ))
}

/// The error for an attach refused because `interface` already has an
/// XDP program, with advice that works for how it is held.
pub fn busy_advice(interface: &str, holders: &[LinkHolder]) -> String {
    match holders {
        [] => format!(
            "{interface} already has an XDP program attached, and no process here holds a \
             bpf_link to it: it was attached through netlink (detach it with `ip link set dev \
             {interface} xdp off`) or through a pinned link (`bpftool link show` lists it: \
             remove its pin under /sys/fs/bpf, or `bpftool link detach id ID`)"
        ),
        holders => {
            let who: Vec<String> = holders
                .iter()
                .map(|h| {
                    format!(
                        "process {} ({}, link {}, program {})",
                        h.pid, h.command, h.link_id, h.prog_id
                    )
                })
                .collect();
            let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
            format!(
                "{interface} already has an XDP program attached through a bpf_link held by {}: \
                 stop that process (e.g. `kill {}`; the kernel detaches the program when the \
                 link's holder exits; `ip link set dev {interface} xdp off` cannot remove a \
                 link)",
                who.join(", "),
                pids.join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FDINFO: &str = "pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1036\n\
                          link_type:\txdp\nlink_id:\t423\nprog_tag:\t2306afe858f96578\n\
                          prog_id:\t1516\nifindex:\t3\n";

    #[test]
    fn xdp_links_are_read_from_fdinfo() {
        assert_eq!(xdp_link_on(FDINFO, 3), Some((423, 1516)));
        assert_eq!(xdp_link_on(FDINFO, 4), None);
        let tc = FDINFO.replace("link_type:\txdp", "link_type:\ttcx");
        assert_eq!(xdp_link_on(&tc, 3), None);
        assert_eq!(xdp_link_on("pos:\t0\n", 3), None);
    }

    #[test]
    fn the_advice_names_the_holder_or_both_other_ways() {
        let holder = LinkHolder {
            pid: 4242,
            command: "ml-sniffing".into(),
            link_id: 7,
            prog_id: 9,
        };
        let e = busy_advice("eth0", &[holder]);
        assert!(
            e.starts_with(
                "eth0 already has an XDP program attached through a bpf_link held by process \
                 4242 (ml-sniffing, link 7, program 9): stop that process (e.g. `kill 4242`;"
            ),
            "{e}"
        );
        let e = busy_advice("eth0", &[]);
        assert!(e.contains("ip link set dev eth0 xdp off"), "{e}");
        assert!(e.contains("bpftool link detach id ID"), "{e}");
    }

    #[test]
    fn no_process_holds_an_xdp_link_on_an_unused_index() {
        assert!(xdp_link_holders(u32::MAX).is_empty());
    }
}
