//! Samplers attached to a scenario window: a host sampler (this process's
//! RSS, host CPU) always, and an NVML sampler (utilisation, memory, power,
//! temperature, clocks, throttle reasons, compute processes) when NVML
//! loads. Summaries and the validity verdict are pure (see [`summary`]).

pub mod summary;
pub mod tree_gpu;

use std::collections::BTreeSet;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nvml_wrapper::Device;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;

use crate::result::{GpuSample, HostSummary, MonitorSummary};
pub use summary::validity;
use summary::{
    RawGpu, count_cpus, cpu_percent, other_cores, parse_proc_stat, parse_self_ticks, parse_vmrss,
    summarise_gpu,
};

/// A running pair of samplers; [`Monitor::stop`] ends them and summarises.
pub struct Monitor {
    stop_tx: Vec<Sender<()>>,
    host: Option<JoinHandle<HostSummary>>,
    gpu: Option<JoinHandle<Vec<RawGpu>>>,
    gpu_unavailable: Option<String>,
}

/// Sleeps `d` unless told to stop; `true` means stop.
fn wait(rx: &mpsc::Receiver<()>, d: Duration) -> bool {
    !matches!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout))
}

impl Monitor {
    /// Starts sampling every `interval` (NVML sampling is clamped to ≥ 10 ms).
    /// `child_pids`, and every process of a tree this process started
    /// (`process::started_here`), are the processes whose GPU memory
    /// counts as ours.
    pub fn start(interval: Duration, child_pids: Arc<Mutex<Vec<u32>>>) -> Monitor {
        let interval = interval.max(Duration::from_millis(10));
        let mut stop_tx = Vec::new();

        let (tx, rx) = mpsc::channel();
        stop_tx.push(tx);
        let host = std::thread::Builder::new()
            .name("neon-perf-host-monitor".into())
            .spawn(move || host_loop(rx, interval))
            .ok();

        let (gpu, gpu_unavailable) = match crate::device::nvml() {
            Err(reason) => (None, Some(reason.to_string())),
            Ok(nvml) => match nvml.device_count() {
                Err(e) => (None, Some(format!("NVML: nvmlDeviceGetCount failed: {e}"))),
                Ok(0) => (None, Some("NVML loaded but reports no GPU".into())),
                Ok(count) => {
                    let (tx, rx) = mpsc::channel();
                    stop_tx.push(tx);
                    let spawned = std::thread::Builder::new()
                        .name("neon-perf-nvml-monitor".into())
                        .spawn(move || gpu_loop(nvml, count, rx, interval, child_pids));
                    match spawned {
                        Ok(h) => (Some(h), None),
                        Err(e) => (
                            None,
                            Some(format!("cannot start the NVML sampler thread: {e}")),
                        ),
                    }
                }
            },
        };
        Monitor {
            stop_tx,
            host,
            gpu,
            gpu_unavailable,
        }
    }

    /// Stops both samplers and summarises the window.
    pub fn stop(self) -> MonitorSummary {
        for tx in &self.stop_tx {
            let _ = tx.send(());
        }
        let host = self.host.and_then(|h| h.join().ok()).unwrap_or_default();
        let mut gpu_unavailable = self.gpu_unavailable;
        let gpus = match self.gpu.map(|h| h.join()) {
            Some(Ok(raw)) => raw.iter().map(summarise_gpu).collect(),
            Some(Err(_)) => {
                gpu_unavailable = Some("the NVML sampler thread panicked".into());
                Vec::new()
            }
            None => Vec::new(),
        };
        MonitorSummary {
            host,
            gpus,
            gpu_unavailable,
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn host_loop(rx: mpsc::Receiver<()>, interval: Duration) -> HostSummary {
    let stat_start = read("/proc/stat");
    let cpus = stat_start.as_deref().map(count_cpus).unwrap_or(1);
    let cpu_start = stat_start.and_then(|s| parse_proc_stat(&s));
    let self_start = read("/proc/self/stat").and_then(|s| parse_self_ticks(&s));
    let mut out = HostSummary::default();
    loop {
        if let Some(rss) = read("/proc/self/status").and_then(|s| parse_vmrss(&s)) {
            out.peak_rss_bytes = out.peak_rss_bytes.max(rss);
            out.samples += 1;
        }
        if wait(&rx, interval) {
            break;
        }
    }
    if let Some(rss) = read("/proc/self/status").and_then(|s| parse_vmrss(&s)) {
        out.peak_rss_bytes = out.peak_rss_bytes.max(rss);
        out.samples += 1;
    }
    let cpu_end = read("/proc/stat").and_then(|s| parse_proc_stat(&s));
    let self_end = read("/proc/self/stat").and_then(|s| parse_self_ticks(&s));
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        out.cpu_percent_mean = cpu_percent(a, b);
        if let (Some(sa), Some(sb)) = (self_start, self_end) {
            out.other_cpu_cores = Some(other_cores(a, b, sa, sb, cpus));
        }
    }
    out
}

/// CPU cores that other processes used over `window` (this process
/// asleep meanwhile): how busy the machine is before a run is tried again.
pub fn other_cpu_over(window: Duration) -> Option<f64> {
    let stat_a = read("/proc/stat")?;
    let cpus = count_cpus(&stat_a);
    let a = parse_proc_stat(&stat_a)?;
    let sa = read("/proc/self/stat").and_then(|s| parse_self_ticks(&s))?;
    std::thread::sleep(window);
    let b = read("/proc/stat").and_then(|s| parse_proc_stat(&s))?;
    let sb = read("/proc/self/stat").and_then(|s| parse_self_ticks(&s))?;
    Some(other_cores(a, b, sa, sb, cpus))
}

fn process_name(pid: u32) -> String {
    read(&format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn sample_device(d: &Device<'_>, t: f64) -> GpuSample {
    let util = d.utilization_rates().ok();
    GpuSample {
        t,
        sm_util: util.as_ref().map(|u| u.gpu as f64).unwrap_or(0.0),
        mem_util: util.as_ref().map(|u| u.memory as f64).unwrap_or(0.0),
        mem_used_bytes: d.memory_info().map(|m| m.used).unwrap_or(0),
        power_w: d.power_usage().map(|mw| mw as f64 / 1000.0).unwrap_or(0.0),
        temp_c: d
            .temperature(TemperatureSensor::Gpu)
            .map(|c| c as f64)
            .unwrap_or(0.0),
        sm_clock_mhz: d.clock_info(Clock::SM).map(|c| c as f64).unwrap_or(0.0),
        mem_clock_mhz: d.clock_info(Clock::Memory).map(|c| c as f64).unwrap_or(0.0),
        throttle_reasons: d.current_throttle_reasons().map(|r| r.bits()).unwrap_or(0),
    }
}

fn gpu_loop(
    nvml: &'static nvml_wrapper::Nvml,
    count: u32,
    rx: mpsc::Receiver<()>,
    interval: Duration,
    child_pids: Arc<Mutex<Vec<u32>>>,
) -> Vec<RawGpu> {
    let me = std::process::id();
    let mut devices = Vec::new();
    let mut raws = Vec::new();
    for i in 0..count {
        let Ok(d) = nvml.device_by_index(i) else {
            continue;
        };
        raws.push(RawGpu {
            index: i,
            name: d.name().unwrap_or_else(|_| format!("GPU {i}")),
            mem_total_bytes: d.memory_info().map(|m| m.total).unwrap_or(0),
            sm_clock_max_mhz: d.max_clock_info(Clock::SM).map(|c| c as f64).unwrap_or(0.0),
            samples: Vec::new(),
            process_mem_peak_bytes: 0,
            other_processes: BTreeSet::new(),
            foreign_pid_processes: 0,
            withheld_processes: 0,
        });
        devices.push(d);
    }
    let start = Instant::now();
    loop {
        let t = start.elapsed().as_secs_f64();
        let ours: Vec<u32> = {
            let kids = child_pids.lock().unwrap_or_else(|p| p.into_inner());
            std::iter::once(me).chain(kids.iter().copied()).collect()
        };
        for (d, raw) in devices.iter().zip(raws.iter_mut()) {
            raw.samples.push(sample_device(d, t));
            if let Ok(procs) = d.running_compute_processes() {
                let (mut mine, mut foreign, mut withheld) = (0u64, 0usize, 0usize);
                for p in procs {
                    // The programs a scenario started count however deep
                    // their process runs below them (the launcher, a
                    // shell, a framework's workers): they carry our tag.
                    if ours.contains(&p.pid) || crate::process::started_here(p.pid) {
                        match p.used_gpu_memory {
                            UsedGpuMemory::Used(b) => mine += b,
                            UsedGpuMemory::Unavailable => withheld += 1,
                        }
                    } else {
                        let here = tree_gpu::pid_here(p.pid);
                        let holds = matches!(p.used_gpu_memory, UsedGpuMemory::Used(b) if b > 0);
                        foreign += usize::from(!here && holds);
                        raw.other_processes.insert(format!(
                            "pid {} ({})",
                            p.pid,
                            if here {
                                process_name(p.pid)
                            } else {
                                "not in this PID namespace".into()
                            }
                        ));
                    }
                }
                raw.process_mem_peak_bytes = raw.process_mem_peak_bytes.max(mine);
                raw.foreign_pid_processes = raw.foreign_pid_processes.max(foreign);
                raw.withheld_processes = raw.withheld_processes.max(withheld);
            }
        }
        if wait(&rx, interval) {
            break;
        }
    }
    raws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_samples_the_host_and_explains_missing_gpu() {
        let m = Monitor::start(Duration::from_millis(10), Arc::new(Mutex::new(vec![])));
        // Allocate and touch memory so the RSS is visibly non-zero.
        let v = vec![1u8; 8 << 20];
        std::thread::sleep(Duration::from_millis(60));
        let s = m.stop();
        assert!(v.iter().all(|b| *b == 1));
        assert!(s.host.samples >= 2, "{s:?}");
        assert!(s.host.peak_rss_bytes > 8 << 20, "{s:?}");
        assert!((0.0..=100.0).contains(&s.host.cpu_percent_mean));
        match crate::device::nvml() {
            Ok(_) => assert!(s.gpu_unavailable.is_none() || s.gpus.is_empty()),
            Err(reason) => {
                assert!(s.gpus.is_empty());
                assert_eq!(s.gpu_unavailable, Some(reason.to_string()));
            }
        }
    }
}
