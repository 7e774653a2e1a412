//! The capture-engine flags shared by the live commands (`sniff`, `run`):
//! `--capture xdp|af-xdp` and the AF_XDP settings. Flatten [`EngineArgs`]
//! into a command's arguments and call [`EngineArgs::apply`] on its
//! `CaptureOptions`; `live::capture` then runs the engine chosen:
//!
//! ```text
//! #[command(flatten)]
//! pub engine: EngineArgs,
//! // ...
//! args.engine.apply(&mut options)?;
//! ```
//!
//! A command that writes frames (`--write-pcap`) needs `--capture af-xdp`:
//! its sink gets every frame through `RecordSink::frame` right before the
//! frame's record, keeps the ones it may want in a
//! `capture::frame_stash::FrameStash` (alongside its pending records), and
//! writes the chosen ones with `capture::pcap::writer::PcapNgWriter`
//! (`finish` with the session's `AfXdpSummary` counts at the end).

use anyhow::{bail, Result};
use clap::Args;

use crate::capture::afxdp::{BindMode, Queues};
use crate::capture::live::{CaptureMode, CaptureOptions};

#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Live capture engine: `xdp` (the XDP program parses packets and
    /// hands records over; traffic is untouched) or `af-xdp` (whole frames
    /// reach userspace through AF_XDP sockets and are parsed there with the
    /// same parser; needed for --write-pcap). See README "AF_XDP mode".
    #[arg(long, value_enum, default_value_t = CaptureMode::Xdp)]
    pub capture: CaptureMode,
    /// AF_XDP: the receive queues to capture, `all` or a list such as
    /// `0,2-3` (one socket per queue; frames on other queues pass untouched
    /// and are counted). Default: all.
    #[arg(long, value_name = "all|LIST")]
    pub queues: Option<Queues>,
    /// AF_XDP: how the sockets are bound: `auto` (zero-copy when the driver
    /// supports it, else copy), `copy` or `zero-copy`.
    #[arg(long, value_enum, value_name = "MODE")]
    pub af_xdp_bind: Option<BindMode>,
    /// AF_XDP: keep the captured frames from the host stack. Without it
    /// every frame is re-injected into the interface's receive path (at a
    /// cost; see README), so the host keeps working.
    #[arg(long)]
    pub consume: bool,
    /// AF_XDP: entries of each socket's receive and fill rings (a power of
    /// two; as many 2 KiB frames, 4 KiB above MTU 1770, are reserved per
    /// queue, plus 1,024). Default: 32,768 shared by the queues.
    #[arg(long, value_name = "ENTRIES")]
    pub af_xdp_ring: Option<u32>,
}

impl EngineArgs {
    /// Sets the engine and its settings in `options`; one sentence when an
    /// AF_XDP flag is given without `--capture af-xdp`.
    pub fn apply(&self, options: &mut CaptureOptions) -> Result<()> {
        if self.capture != CaptureMode::AfXdp {
            for (given, flag) in [
                (self.queues.is_some(), "--queues"),
                (self.af_xdp_bind.is_some(), "--af-xdp-bind"),
                (self.consume, "--consume"),
                (self.af_xdp_ring.is_some(), "--af-xdp-ring"),
            ] {
                if given {
                    bail!("{flag} applies to AF_XDP capture only: add --capture af-xdp");
                }
            }
        }
        options.capture = self.capture;
        let af = &mut options.af_xdp;
        if let Some(q) = &self.queues {
            af.queues = q.clone();
        }
        if let Some(b) = self.af_xdp_bind {
            af.bind = b;
        }
        af.consume = self.consume;
        if let Some(ring) = self.af_xdp_ring {
            if !ring.is_power_of_two() || !(64..=65_536).contains(&ring) {
                bail!("--af-xdp-ring must be a power of two from 64 to 65536, not {ring}");
            }
            af.ring = Some(ring);
        }
        Ok(())
    }

    /// Whether any engine flag was given (for commands that refuse them
    /// with `--read`).
    pub fn any_given(&self) -> bool {
        self.capture != CaptureMode::Xdp
            || self.queues.is_some()
            || self.af_xdp_bind.is_some()
            || self.consume
            || self.af_xdp_ring.is_some()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        engine: EngineArgs,
    }

    fn apply(args: &[&str]) -> Result<CaptureOptions> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        let mut options = CaptureOptions::new("eth0");
        cli.engine.apply(&mut options)?;
        Ok(options)
    }

    #[test]
    fn af_xdp_flags_need_af_xdp() {
        let o = apply(&[]).unwrap();
        assert_eq!(o.capture, CaptureMode::Xdp);
        let o = apply(&[
            "--capture",
            "af-xdp",
            "--queues",
            "1,0",
            "--af-xdp-bind",
            "copy",
            "--consume",
            "--af-xdp-ring",
            "1024",
        ])
        .unwrap();
        assert_eq!(o.capture, CaptureMode::AfXdp);
        assert_eq!(o.af_xdp.queues, Queues::List(vec![0, 1]));
        assert_eq!(o.af_xdp.bind, BindMode::Copy);
        assert!(o.af_xdp.consume);
        assert_eq!(o.af_xdp.ring, Some(1024));
        let defaults = apply(&["--capture", "af-xdp"]).unwrap().af_xdp;
        assert_eq!(defaults, Default::default());

        for flag in [
            &["--consume"][..],
            &["--queues", "0"],
            &["--af-xdp-bind", "copy"],
            &["--af-xdp-ring", "1024"],
        ] {
            let e = apply(flag).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "{} applies to AF_XDP capture only: add --capture af-xdp",
                    flag[0]
                )
            );
        }
        assert!(apply(&["--capture", "af-xdp", "--af-xdp-ring", "1000"])
            .unwrap_err()
            .to_string()
            .contains("power of two"));
        assert!(apply(&["--capture", "af-xdp", "--queues", "x"]).is_err());
    }
}
