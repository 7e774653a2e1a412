//! The XDP program's flow records (`Config::FLOW_RECORDS`): the flows a
//! FIN or RST ended, read from their ring, and the sweep that takes the
//! idle and too-old ones out of the map. Their statistics are
//! `ml_sniffing_common::flow_stats`, the code `flows` runs on captures.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aya::maps::{MapData, RingBuf};
use ml_sniffing_common::flow_stats::{BiFlowKey, FlowStats};

use super::clock::{monotonic_ns, KernelClock};
use super::flow_records::Expiration;
use super::xdp::Loaded;

/// `BiFlowKey` as a map key (aya needs its own `Pod` marker).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PodKey(pub BiFlowKey);
// SAFETY: `BiFlowKey` is `#[repr(C)]` integers and byte arrays with an
// explicit padding byte (size asserted in common): any bytes are a value.
unsafe impl aya::Pod for PodKey {}

#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PodStats(pub FlowStats);
// SAFETY: `FlowStats` is `#[repr(C)]` integers and byte arrays without
// implicit padding (size asserted in common): any bytes are a value.
unsafe impl aya::Pod for PodStats {}

/// The program's flow-record map.
pub type FlowRecordMap = aya::maps::HashMap<MapData, PodKey, PodStats>;

/// The program's flow-record map (taken once).
pub fn take_map(loaded: &mut Loaded) -> Result<FlowRecordMap> {
    FlowRecordMap::try_from(loaded.take_flow_records()?).with_context(|| {
        format!(
            "the {} map is not a hash map",
            ml_sniffing_common::maps::FLOW_RECORDS
        )
    })
}

/// Moves the flow records waiting in `ring` into `out`. An item of another
/// size means the program and this binary disagree: an error, not a skip.
pub fn drain_flow_ring(ring: &mut RingBuf<MapData>, out: &mut Vec<FlowStats>) -> Result<()> {
    while let Some(item) = ring.next() {
        let stats = bytemuck::try_pod_read_unaligned::<FlowStats>(&item).map_err(|_| {
            anyhow::anyhow!(
                "the flow-record ring held an item of {} bytes, not a {}-byte flow record",
                item.len(),
                std::mem::size_of::<FlowStats>()
            )
        })?;
        out.push(stats);
    }
    Ok(())
}

/// Every flow record in the map (key and statistics).
pub fn records(map: &FlowRecordMap) -> Result<Vec<(BiFlowKey, FlowStats)>> {
    map.iter()
        .map(|r| r.map(|(k, v)| (k.0, v.0)))
        .collect::<Result<_, _>>()
        .context("cannot read the kernel's flow records")
}

/// Takes out of `map` the records that have timed out at `now_ms` (kernel
/// clock, ms): idle for `idle_ms` or older than `active_ms`. Returns them
/// with whether each was idle (else too old).
pub fn sweep(
    map: &mut FlowRecordMap,
    now_ms: u64,
    idle_ms: u64,
    active_ms: u64,
) -> Result<Vec<(FlowStats, bool)>> {
    let mut ended = Vec::new();
    for (key, stats) in records(map)? {
        let idle = now_ms.saturating_sub(stats.both.last_ms) >= idle_ms;
        let old = now_ms.saturating_sub(stats.both.first_ms) >= active_ms;
        if !(idle || old) {
            continue;
        }
        // Read again right before removing: a packet may have come since.
        let Ok(latest) = map.get(&PodKey(key), 0) else {
            continue;
        };
        if map.remove(&PodKey(key)).is_ok() {
            ended.push((latest.0, idle));
        }
    }
    Ok(ended)
}

/// A flow the kernel ended or userspace swept out, times in epoch ms.
#[derive(Debug, Clone, Copy)]
pub struct EndedFlow {
    pub stats: FlowStats,
    pub expiration: Expiration,
}

/// A live session's flow records: their ring and map, and the timeouts.
pub struct KernelFlows {
    ring: RingBuf<MapData>,
    map: FlowRecordMap,
    idle_ms: u64,
    active_ms: u64,
    last_sweep: Instant,
    buf: Vec<FlowStats>,
}

/// How often the map is swept for idle and too-old flows.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl KernelFlows {
    /// The flow-record ring and map of `loaded` (loaded with
    /// `Config::FLOW_RECORDS`).
    pub fn take(loaded: &mut Loaded, idle: Duration, active: Duration) -> Result<Self> {
        Ok(KernelFlows {
            ring: loaded.take_flow_ring()?,
            map: take_map(loaded)?,
            idle_ms: idle.as_millis() as u64,
            active_ms: active.as_millis() as u64,
            last_sweep: Instant::now(),
            buf: Vec::new(),
        })
    }

    /// The flows a FIN or RST ended, from the ring.
    fn closed(&mut self, clock: &KernelClock, out: &mut Vec<EndedFlow>) -> Result<()> {
        drain_flow_ring(&mut self.ring, &mut self.buf)?;
        out.extend(
            self.buf
                .drain(..)
                .map(|s| ended(s, Expiration::Closed, clock)),
        );
        Ok(())
    }

    /// The flows ended since the last call: by a FIN or RST (from the
    /// ring) and, once a second, by a timeout (swept from the map).
    pub fn poll(&mut self, clock: &KernelClock, out: &mut Vec<EndedFlow>) -> Result<()> {
        self.closed(clock, out)?;
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.last_sweep = Instant::now();
            let now_ms = monotonic_ns() / 1_000_000;
            for (s, idle) in sweep(&mut self.map, now_ms, self.idle_ms, self.active_ms)? {
                let why = if idle {
                    Expiration::Idle
                } else {
                    Expiration::Active
                };
                out.push(ended(s, why, clock));
            }
        }
        Ok(())
    }

    /// Once the program is detached: what the ring still holds, then every
    /// flow left in the map (ended by the end of the capture).
    pub fn finish(&mut self, clock: &KernelClock, out: &mut Vec<EndedFlow>) -> Result<()> {
        self.closed(clock, out)?;
        let mut rest = records(&self.map)?;
        rest.sort_by_key(|(_, s)| s.both.first_ms);
        out.extend(
            rest.into_iter()
                .map(|(_, s)| ended(s, Expiration::End, clock)),
        );
        Ok(())
    }
}

/// `stats` with its kernel-clock times moved to the epoch.
fn ended(mut stats: FlowStats, expiration: Expiration, clock: &KernelClock) -> EndedFlow {
    let epoch_ms = |ms: u64| clock.to_epoch_ns(ms * 1_000_000) / 1_000_000;
    for side in [&mut stats.both, &mut stats.src2dst, &mut stats.dst2src] {
        if side.packets > 0 {
            side.first_ms = epoch_ms(side.first_ms);
            side.last_ms = epoch_ms(side.last_ms);
        }
    }
    EndedFlow { stats, expiration }
}
