//! The alert options `run` and `detect --alerts` share.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::monitor::alerts::{AlertOptions, Allow};

#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// The share of ordinary packets that may alert: the alert threshold is
    /// the score below which this share of packets fell among packets the
    /// model did not train on (`run`: the last fifth of the warm-up window,
    /// or with --model the whole window; `detect`: the input's own scores).
    /// A packet also alerts when one of its features lies beyond the
    /// training range by more than that range's width (and at least two
    /// doublings), where the forest cannot tell.
    #[arg(long, default_value_t = 1e-4, value_name = "RATE")]
    pub alert_rate: f64,
    /// Alerts and stats as Suricata EVE JSON lines, appended to this file
    /// (as `run --json` prints them on stdout).
    #[arg(long, value_name = "FILE")]
    pub eve: Option<PathBuf>,
    /// An alert closes after this long without a reported packet (traffic
    /// time); packets of the same victim or source within it join it.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub alert_idle: Duration,
    /// Once an alert closed, its victim or source opens no new one for this
    /// long (its packets are counted as suppressed).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub suppress: Duration,
    /// At most this many new alerts a second; the packets that would open
    /// more are counted.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_alerts_per_second: u32,
    /// Never alert on traffic from or to this network, on this port when
    /// given (`10.0.0.0/8`, `192.0.2.7:53`, `[2001:db8::]/32:443`); repeat
    /// for several.
    #[arg(long, value_name = "CIDR[:PORT]")]
    pub allow: Vec<Allow>,
}

impl AlertArgs {
    /// Checks the values.
    pub fn check(&self) -> Result<()> {
        if !(self.alert_rate > 0.0 && self.alert_rate < 1.0) {
            bail!(
                "--alert-rate must be above 0 and below 1 (e.g. 1e-4: one ordinary packet in \
                 10,000)"
            );
        }
        if self.max_alerts_per_second == 0 {
            bail!("--max-alerts-per-second must be at least 1");
        }
        if self.alert_idle.is_zero() {
            bail!("--alert-idle must be longer than 0s");
        }
        Ok(())
    }

    pub fn options(&self) -> AlertOptions {
        AlertOptions {
            idle: self.alert_idle,
            update_every: AlertOptions::default().update_every,
            suppress: self.suppress,
            max_per_second: self.max_alerts_per_second,
            allow: self.allow.clone(),
        }
    }
}
