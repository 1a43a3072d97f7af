//! Pure functions over monitor samples: summarising a window and deciding
//! whether it can be trusted. No I/O, no NVML: tested with synthetic samples.

use std::collections::BTreeSet;

use crate::result::{GpuSample, GpuSummary, MonitorSummary};

pub use crate::device::throttle::{INVALIDATING, reason, throttle_names};

/// SM utilisation (percent) from which a sample counts as busy.
pub const BUSY_SM_UTIL: f64 = 50.0;
/// Sustained SM clock under this fraction of the maximum → invalid.
pub const MIN_CLOCK_RATIO: f64 = 0.75;

/// Busy: kernels ran most of the sample period and NVML does not call it idle.
pub fn is_busy(s: &GpuSample) -> bool {
    s.sm_util >= BUSY_SM_UTIL && s.throttle_reasons & reason::GPU_IDLE == 0
}

/// What the NVML sampler collected for one GPU over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawGpu {
    pub index: u32,
    pub name: String,
    pub mem_total_bytes: u64,
    /// NVML's maximum SM clock, MHz (0 when unknown).
    pub sm_clock_max_mhz: f64,
    pub samples: Vec<GpuSample>,
    pub process_mem_peak_bytes: u64,
    /// "pid 4242 (python3)" for compute processes that are not ours.
    pub other_processes: BTreeSet<String>,
    /// The most processes of one sample that held GPU memory under PIDs
    /// this PID namespace does not have.
    pub foreign_pid_processes: usize,
    /// The most processes of ours in one sample that NVML listed without a
    /// figure for their memory.
    pub withheld_processes: usize,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Summarises one GPU's window. The clock ratio looks only at samples that
/// were busy and followed a busy sample, so the ramp up from idle clocks at
/// the start of a burst does not count; it is 1.0 when there were none.
pub fn summarise_gpu(raw: &RawGpu) -> GpuSummary {
    let s = &raw.samples;
    let max_f = |f: fn(&GpuSample) -> f64| s.iter().map(f).fold(0.0, f64::max);
    let sustained: Vec<&GpuSample> = s
        .windows(2)
        .filter(|w| is_busy(&w[0]) && is_busy(&w[1]))
        .map(|w| &w[1])
        .collect();
    let sm_clock_min_ratio = if raw.sm_clock_max_mhz > 0.0 && !sustained.is_empty() {
        sustained
            .iter()
            .map(|x| x.sm_clock_mhz / raw.sm_clock_max_mhz)
            .fold(f64::INFINITY, f64::min)
    } else {
        1.0
    };
    let mut reasons = BTreeSet::new();
    for x in s.iter().filter(|x| is_busy(x)) {
        for n in throttle_names(x.throttle_reasons) {
            if n != "gpu_idle" {
                reasons.insert(n.to_string());
            }
        }
    }
    GpuSummary {
        index: raw.index,
        name: raw.name.clone(),
        samples: s.len(),
        sm_util_mean: mean(s.iter().map(|x| x.sm_util)),
        sm_util_max: max_f(|x| x.sm_util),
        mem_util_mean: mean(s.iter().map(|x| x.mem_util)),
        mem_used_peak_bytes: s.iter().map(|x| x.mem_used_bytes).max().unwrap_or(0),
        process_mem_peak_bytes: raw.process_mem_peak_bytes,
        mem_total_bytes: raw.mem_total_bytes,
        power_mean_w: mean(s.iter().map(|x| x.power_w)),
        power_max_w: max_f(|x| x.power_w),
        temp_max_c: max_f(|x| x.temp_c),
        sm_clock_max_mhz: raw.sm_clock_max_mhz,
        sm_clock_min_ratio,
        throttle_reasons: reasons.into_iter().collect(),
        other_processes: raw.other_processes.iter().cloned().collect(),
        foreign_pid_processes: raw.foreign_pid_processes,
        withheld_processes: raw.withheld_processes,
        timeline: s.clone(),
    }
}

/// Why this process's GPU memory on `g` is unknown rather than its
/// figure (NVML withheld it, or its PIDs are of another namespace;
/// `tree_gpu::unknown`).
pub fn untold_here(g: &GpuSummary) -> Option<String> {
    crate::monitor::tree_gpu::unknown(
        g.process_mem_peak_bytes > 0,
        g.foreign_pid_processes,
        g.withheld_processes,
    )
}

/// `(invalid reasons, warnings)` for a monitored window:
/// - thermal or hardware slowdown while busy → invalid;
/// - sustained SM clock under 75% of the maximum while busy → invalid;
/// - software power capping (normal for a GPU at full load) → warning;
/// - another process computing on the GPU → warning.
pub fn validity(summary: &MonitorSummary) -> (Vec<String>, Vec<String>) {
    let mut invalid = Vec::new();
    let mut warnings = Vec::new();
    for g in &summary.gpus {
        let who = format!("GPU {} ({})", g.index, g.name);
        let bad: Vec<&str> = g
            .throttle_reasons
            .iter()
            .map(|s| s.as_str())
            .filter(|r| INVALIDATING.contains(r))
            .collect();
        if !bad.is_empty() {
            invalid.push(format!(
                "{who} was throttled while measuring: {}",
                bad.join(", ")
            ));
        }
        if g.sm_clock_min_ratio < MIN_CLOCK_RATIO {
            invalid.push(format!(
                "{who} SM clock fell to {:.0}% of its maximum ({:.0} of {:.0} MHz) while busy (limit {:.0}%)",
                g.sm_clock_min_ratio * 100.0,
                g.sm_clock_min_ratio * g.sm_clock_max_mhz,
                g.sm_clock_max_mhz,
                MIN_CLOCK_RATIO * 100.0
            ));
        }
        if g.throttle_reasons.iter().any(|r| r == "sw_power_cap") {
            warnings.push(format!(
                "{who} hit its software power cap while busy (peak {:.0} W); clocks stayed at or above {:.0}% of max",
                g.power_max_w,
                g.sm_clock_min_ratio * 100.0
            ));
        }
        if let Some(why) = untold_here(g) {
            warnings.push(format!(
                "{who}: this process's GPU memory is not reported: {why}"
            ));
        } else if !g.other_processes.is_empty() {
            warnings.push(format!(
                "{who} was shared with other processes: {} (in a container NVML reports host PIDs, so one of these may be neon-perf itself)",
                g.other_processes.join(", ")
            ));
        }
    }
    (invalid, warnings)
}

/// Resident set size in bytes from `/proc/<pid>/status` text.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// `(busy, total)` jiffies from the `cpu` line of `/proc/stat`.
pub fn parse_proc_stat(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// This process's CPU ticks: own `utime + stime` plus `cutime + cstime` of
/// the children it has waited for (fields 14–17 of `/proc/self/stat`).
pub fn parse_self_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces: split after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let v: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 4).then(|| v.iter().sum())
}

/// Number of CPUs `/proc/stat` accounts for (its `cpuN` lines).
pub fn count_cpus(stat: &str) -> u32 {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count() as u32
}

/// Cores' worth of CPU that processes other than this one (and its waited
/// children) used between two readings of `/proc/stat` and our own ticks.
pub fn other_cores(
    host_before: (u64, u64),
    host_after: (u64, u64),
    self_before: u64,
    self_after: u64,
    cores: u32,
) -> f64 {
    let busy = host_after.0.saturating_sub(host_before.0) as f64;
    let total = host_after.1.saturating_sub(host_before.1) as f64;
    let ours = self_after.saturating_sub(self_before) as f64;
    if total <= 0.0 {
        return 0.0;
    }
    ((busy - ours).max(0.0) / total) * cores.max(1) as f64
}

/// Mean CPU percent between two `/proc/stat` readings.
pub fn cpu_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1) as f64;
    if total <= 0.0 {
        0.0
    } else {
        100.0 * busy / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_processes_cpu() {
        let stat = "1234 (neon perf) S 1 2 3 4 5 6 7 8 9 10 100 20 30 4 20 0";
        assert_eq!(parse_self_ticks(stat), Some(154));
        assert_eq!(parse_self_ticks("garbage"), None);
        // 2 cores, 200 ticks elapsed in all, 150 busy, 50 of them ours: 1 core of others.
        let c = other_cores((0, 0), (150, 200), 0, 50, 2);
        assert!((c - 1.0).abs() < 1e-9, "{c}");
        assert_eq!(other_cores((5, 5), (5, 5), 0, 0, 2), 0.0);
        assert_eq!(
            count_cpus("cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\nintr 5\n"),
            2
        );
    }

    fn sample(t: f64, util: f64, clock: f64, reasons: u64) -> GpuSample {
        GpuSample {
            t,
            sm_util: util,
            mem_util: util / 2.0,
            mem_used_bytes: (t * 1000.0) as u64,
            power_w: 300.0 + util,
            temp_c: 50.0 + t,
            sm_clock_mhz: clock,
            mem_clock_mhz: 2619.0,
            throttle_reasons: reasons,
        }
    }

    fn raw(samples: Vec<GpuSample>) -> RawGpu {
        RawGpu {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            mem_total_bytes: 80 << 30,
            sm_clock_max_mhz: 1980.0,
            samples,
            process_mem_peak_bytes: 1 << 30,
            other_processes: BTreeSet::new(),
            foreign_pid_processes: 0,
            withheld_processes: 0,
        }
    }

    /// In a container with its own PID namespace, NVML's processes are
    /// nobody here: this process's figure is said to be unknown, not 0 B,
    /// and they are not called other processes sharing the GPU.
    #[test]
    fn processes_of_another_pid_namespace_are_not_zero_bytes_of_ours() {
        let mut r = raw(vec![sample(0.0, 50.0, 1980.0, 0)]);
        r.process_mem_peak_bytes = 0;
        r.foreign_pid_processes = 1;
        r.other_processes
            .insert("pid 91234 (not in this PID namespace)".into());
        let (_, warnings) = validity(&window(summarise_gpu(&r)));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "GPU 0 (NVIDIA H100 80GB HBM3): this process's GPU memory is not reported: NVML lists 1 process(es)"
            ),
            "{warnings:?}"
        );
    }

    /// NVML lists our process without a figure (vGPU, MIG, WDDM): the
    /// summary says unknown, never "this process 0 B".
    #[test]
    fn a_withheld_figure_is_unknown_not_zero_bytes() {
        let mut r = raw(vec![sample(0.0, 50.0, 1980.0, 0)]);
        r.process_mem_peak_bytes = 0;
        r.withheld_processes = 1;
        let g = summarise_gpu(&r);
        assert_eq!(g.withheld_processes, 1);
        let (_, warnings) = validity(&window(g));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("this process's GPU memory is not reported: NVML lists 1 of the processes measured here without a figure"),
            "{warnings:?}"
        );
    }

    fn window(g: GpuSummary) -> MonitorSummary {
        MonitorSummary {
            gpus: vec![g],
            ..Default::default()
        }
    }

    #[test]
    fn synthetic_healthy_window_is_valid() {
        let g = summarise_gpu(&raw(vec![
            sample(0.0, 0.0, 345.0, reason::GPU_IDLE),
            sample(0.05, 100.0, 900.0, 0), // ramping up: ignored
            sample(0.10, 100.0, 1980.0, 0),
            sample(0.15, 98.0, 1755.0, 0),
        ]));
        assert_eq!(g.samples, 4);
        assert_eq!(g.sm_util_max, 100.0);
        assert!((g.sm_util_mean - 74.5).abs() < 1e-9);
        assert!((g.sm_clock_min_ratio - 1755.0 / 1980.0).abs() < 1e-9);
        assert_eq!(g.mem_used_peak_bytes, 150);
        assert_eq!(g.temp_max_c, 50.15);
        assert!(g.throttle_reasons.is_empty(), "{:?}", g.throttle_reasons);
        assert_eq!(g.timeline.len(), 4);
        let (invalid, warnings) = validity(&window(g));
        assert!(
            invalid.is_empty() && warnings.is_empty(),
            "{invalid:?} {warnings:?}"
        );
    }

    #[test]
    fn synthetic_thermal_throttling_is_invalid() {
        let g = summarise_gpu(&raw(vec![
            sample(0.0, 100.0, 1980.0, 0),
            sample(0.05, 100.0, 1900.0, reason::HW_THERMAL_SLOWDOWN),
        ]));
        assert_eq!(g.throttle_reasons, vec!["hw_thermal_slowdown"]);
        let (invalid, _) = validity(&window(g));
        assert_eq!(invalid.len(), 1);
        assert!(
            invalid[0].contains("throttled while measuring: hw_thermal_slowdown"),
            "{invalid:?}"
        );
    }

    #[test]
    fn synthetic_low_clocks_while_busy_are_invalid() {
        let g = summarise_gpu(&raw(vec![
            sample(0.0, 100.0, 1980.0, 0),
            sample(0.05, 100.0, 1200.0, reason::SW_POWER_CAP),
            sample(0.10, 100.0, 1300.0, reason::SW_POWER_CAP),
        ]));
        let (invalid, warnings) = validity(&window(g));
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert!(
            invalid[0].contains("SM clock fell to 61% of its maximum (1200 of 1980 MHz)"),
            "{invalid:?}"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("software power cap"));
    }

    #[test]
    fn synthetic_idle_low_clocks_and_idle_throttle_do_not_count() {
        let g = summarise_gpu(&raw(vec![
            sample(0.0, 0.0, 345.0, reason::GPU_IDLE | reason::HW_SLOWDOWN),
            sample(0.05, 10.0, 345.0, reason::GPU_IDLE),
        ]));
        assert_eq!(g.sm_clock_min_ratio, 1.0);
        assert!(g.throttle_reasons.is_empty());
        assert_eq!(validity(&window(g)), (vec![], vec![]));
    }

    #[test]
    fn synthetic_other_process_is_a_warning() {
        let mut r = raw(vec![sample(0.0, 100.0, 1980.0, 0)]);
        r.other_processes.insert("pid 4242 (python3)".into());
        let (invalid, warnings) = validity(&window(summarise_gpu(&r)));
        assert!(invalid.is_empty());
        assert!(warnings[0].contains("pid 4242 (python3)"), "{warnings:?}");
    }

    #[test]
    fn empty_window() {
        let g = summarise_gpu(&raw(vec![]));
        assert_eq!(
            (g.samples, g.sm_util_mean, g.sm_clock_min_ratio),
            (0, 0.0, 1.0)
        );
        assert_eq!(validity(&MonitorSummary::default()), (vec![], vec![]));
    }

    #[test]
    fn throttle_bits_to_names() {
        assert_eq!(throttle_names(0), Vec::<&str>::new());
        assert_eq!(
            throttle_names(reason::SW_POWER_CAP | reason::HW_THERMAL_SLOWDOWN | 0x10000),
            vec!["sw_power_cap", "hw_thermal_slowdown", "other"]
        );
    }

    #[test]
    fn proc_parsers() {
        let status = "Name:\tneon-perf\nVmHWM:\t  9000 kB\nVmRSS:\t  2048 kB\n";
        assert_eq!(parse_vmrss(status), Some(2048 * 1024));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        let a = parse_proc_stat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(a, (200, 1000));
        let b = parse_proc_stat("cpu  200 0 200 800 100 0 0 0 0 0\n").unwrap();
        assert!((cpu_percent(a, b) - 200.0 / 300.0 * 100.0).abs() < 1e-9);
        assert_eq!(cpu_percent(a, a), 0.0);
        assert_eq!(parse_proc_stat("intr 1 2"), None);
    }
}
