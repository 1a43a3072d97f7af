//! The GPU memory of one started program's process tree, sampled through
//! its run: NVML's per-process used memory, summed over every GPU, of the
//! processes that carry the tree's tag (the program, its workers, whatever
//! it started). `process_gpu_memory{at=start|peak|end}` of a `command`.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

use crate::process::Tag;

/// Where the per-process figures come from: NVML on a machine with a GPU;
/// in tests, a test double (harness logic only).
pub trait ProcessGpuMemory: Send + Sync + 'static {
    /// Bytes of GPU memory the processes `ours` accepts are using now.
    fn used(&self, ours: &dyn Fn(u32) -> bool) -> Result<u64, String>;
}

/// NVML's per-process accounting, every GPU.
pub struct NvmlProcesses {
    nvml: &'static Nvml,
    count: u32,
}

impl NvmlProcesses {
    /// NVML with at least one GPU, or why not.
    pub fn open() -> Result<NvmlProcesses, String> {
        let nvml = crate::device::nvml().map_err(|e| e.to_string())?;
        match nvml.device_count() {
            Ok(0) => Err("NVML loaded but reports no GPU".into()),
            Ok(count) => Ok(NvmlProcesses { nvml, count }),
            Err(e) => Err(format!("NVML: nvmlDeviceGetCount failed: {e}")),
        }
    }
}

impl ProcessGpuMemory for NvmlProcesses {
    fn used(&self, ours: &dyn Fn(u32) -> bool) -> Result<u64, String> {
        let mut total = 0u64;
        for i in 0..self.count {
            let d = self
                .nvml
                .device_by_index(i)
                .map_err(|e| format!("NVML: device {i}: {e}"))?;
            let procs = d
                .running_compute_processes()
                .map_err(|e| format!("NVML: compute processes of GPU {i}: {e}"))?;
            for p in procs.into_iter().filter(|p| ours(p.pid)) {
                if let UsedGpuMemory::Used(b) = p.used_gpu_memory {
                    total += b;
                }
            }
        }
        Ok(total)
    }
}

/// A tree's GPU memory over one run: the first sample, the largest, the
/// last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeGpuMemory {
    pub start: u64,
    pub peak: u64,
    pub end: u64,
    pub samples: usize,
}

/// Samples a tree's GPU memory on its own thread until stopped.
pub struct TreeGpuSampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Result<TreeGpuMemory, String>>,
}

impl TreeGpuSampler {
    /// Starts sampling the processes that carry `tag`, every `interval`.
    pub fn start(source: impl ProcessGpuMemory, tag: Tag, interval: Duration) -> TreeGpuSampler {
        let (stop, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ours = |pid: u32| tag.carried_by(pid);
            let mut m = TreeGpuMemory::default();
            loop {
                let used = source.used(&ours)?;
                if m.samples == 0 {
                    m.start = used;
                }
                m.peak = m.peak.max(used);
                m.end = used;
                m.samples += 1;
                if !matches!(
                    rx.recv_timeout(interval),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return Ok(m);
                }
            }
        });
        TreeGpuSampler { stop, thread }
    }

    /// Stops sampling (call it just before the program is waited for to
    /// end, or right after it exits: `end` is the last sample before).
    pub fn stop(self) -> Result<TreeGpuMemory, String> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the GPU memory sampler panicked".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Test double (harness logic only): replays a script of per-pid
    /// figures, one step per call.
    struct ScriptedGpu {
        steps: Mutex<std::collections::VecDeque<Vec<(u32, u64)>>>,
    }

    impl ProcessGpuMemory for ScriptedGpu {
        fn used(&self, ours: &dyn Fn(u32) -> bool) -> Result<u64, String> {
            let mut steps = self.steps.lock().unwrap();
            let step = if steps.len() > 1 {
                steps.pop_front().unwrap()
            } else {
                steps.front().cloned().unwrap_or_default()
            };
            Ok(step.iter().filter(|(p, _)| ours(*p)).map(|(_, b)| b).sum())
        }
    }

    #[test]
    fn only_the_trees_processes_count_and_start_peak_end_are_kept() {
        let tag = Tag::new();
        let mut ours = std::process::Command::new("sleep")
            .arg("30")
            .env(crate::process::TAG_VAR, tag.value())
            .spawn()
            .unwrap();
        let (mine, other) = (ours.id(), std::process::id());
        let script = vec![
            vec![(mine, 100), (other, 7000)],
            vec![(mine, 900), (other, 7000)],
            vec![(mine, 300)],
        ];
        let src = ScriptedGpu {
            steps: Mutex::new(script.into()),
        };
        // Wait until the child's environment is in place.
        while !tag.carried_by(mine) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let s = TreeGpuSampler::start(src, tag, Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(60));
        let m = s.stop().unwrap();
        let _ = (ours.kill(), ours.wait());
        assert_eq!((m.start, m.peak, m.end), (100, 900, 300), "{m:?}");
        assert!(m.samples >= 3);
    }
}
