//! The XDP program's flow records (`Config::FLOW_RECORDS`): the flows a
//! FIN or RST ended, read from their ring, and the sweep that takes the
//! idle and too-old ones out of the map. Their statistics are
//! `ml_sniffing_common::flow_stats`, the code `flows` runs on captures.

use anyhow::{Context, Result};
use aya::maps::{MapData, RingBuf};
use ml_sniffing_common::flow_stats::{BiFlowKey, FlowStats};

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

/// Moves the flow records waiting in `ring` into `out`; returns how many
/// items were not a flow record (counted, skipped).
pub fn drain_flow_ring(ring: &mut RingBuf<MapData>, out: &mut Vec<FlowStats>) -> u64 {
    let mut malformed = 0;
    while let Some(item) = ring.next() {
        match bytemuck::try_pod_read_unaligned::<FlowStats>(&item) {
            Ok(stats) => out.push(stats),
            Err(_) => malformed += 1,
        }
    }
    malformed
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
