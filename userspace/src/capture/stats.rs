//! The XDP program's per-CPU counters and its configuration map.

use std::fmt;

use anyhow::{Context, Result};
use aya::maps::{Array, PerCpuArray};
use aya::Ebpf;
use ml_sniffing_common::maps::{self, Config, Counters};

/// `Counters` as a map value (aya needs its own `Pod` marker).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodCounters(Counters);
// SAFETY: `Counters` is `#[repr(C)]`, twelve u64 without padding (size
// asserted in common), so any bytes are a valid value.
unsafe impl aya::Pod for PodCounters {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodConfig(Config);
// SAFETY: `Config` is `#[repr(C)]`, two u32 without padding.
unsafe impl aya::Pod for PodConfig {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct PodProgram(ml_sniffing_common::filter::Program);
// SAFETY: `Program` is `#[repr(C)]` of integers and byte arrays with
// explicit padding fields (size asserted in common): any bytes are a value.
unsafe impl aya::Pod for PodProgram {}

/// Writes the filter program to its map.
pub fn set_filter(ebpf: &mut Ebpf, program: &ml_sniffing_common::filter::Program) -> Result<()> {
    let map = ebpf
        .map_mut(maps::FILTER)
        .with_context(|| format!("the XDP program has no {} map", maps::FILTER))?;
    let mut array: Array<_, PodProgram> = Array::try_from(map)
        .with_context(|| format!("the {} map has an unexpected type", maps::FILTER))?;
    array
        .set(0, PodProgram(*program), 0)
        .with_context(|| format!("cannot write the {} map", maps::FILTER))
}

/// The counters summed over CPUs.
pub fn read(ebpf: &Ebpf) -> Result<Counters> {
    let map = ebpf
        .map(maps::COUNTERS)
        .with_context(|| format!("the XDP program has no {} map", maps::COUNTERS))?;
    let array: PerCpuArray<_, PodCounters> = PerCpuArray::try_from(map)
        .with_context(|| format!("the {} map has an unexpected type", maps::COUNTERS))?;
    let per_cpu = array
        .get(&0, 0)
        .with_context(|| format!("cannot read the {} map", maps::COUNTERS))?;
    Ok(Counters::sum(per_cpu.iter().map(|c| &c.0)))
}

/// Writes the program's configuration (before attaching).
pub fn configure(ebpf: &mut Ebpf, config: Config) -> Result<()> {
    let map = ebpf
        .map_mut(maps::CONFIG)
        .with_context(|| format!("the XDP program has no {} map", maps::CONFIG))?;
    let mut array: Array<_, PodConfig> = Array::try_from(map)
        .with_context(|| format!("the {} map has an unexpected type", maps::CONFIG))?;
    array
        .set(0, PodConfig(config), 0)
        .with_context(|| format!("cannot write the {} map", maps::CONFIG))
}

/// The counters as the capture commands print them on exit.
pub struct Report<'a>(pub &'a Counters);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        writeln!(f, "Kernel counters:")?;
        writeln!(f, "  packets seen:                    {}", c.seen)?;
        writeln!(f, "  records emitted:                 {}", c.emitted)?;
        writeln!(f, "  records dropped (ring full):     {}", c.ring_full)?;
        writeln!(f, "  frames unparsed:                 {}", c.unparsed)?;
        writeln!(f, "  frames not IP:                   {}", c.not_ip)?;
        if c.filtered != 0 {
            writeln!(f, "  packets filtered out:            {}", c.filtered)?;
        }
        if c.sampled_out != 0 {
            writeln!(f, "  packets left out by sampling:    {}", c.sampled_out)?;
        }
        if c.flow_insert_failed != 0 {
            writeln!(
                f,
                "  flow-table insertions failed:    {}",
                c.flow_insert_failed
            )?;
        }
        if c.flow_recorded != 0 || c.flows_exported != 0 {
            writeln!(f, "  packets in kernel flow records:  {}", c.flow_recorded)?;
            writeln!(f, "  flows ended by FIN/RST there:    {}", c.flows_exported)?;
        }
        if c.flow_overflow != 0 {
            writeln!(
                f,
                "  packets of flows the kernel's flow map could not hold (counted in userspace): {}",
                c.flow_overflow
            )?;
        }
        if c.flow_ring_full != 0 {
            writeln!(
                f,
                "  FIN/RST flows the flow ring could not take (ended by timeout instead): {}",
                c.flow_ring_full
            )?;
        }
        Ok(())
    }
}
