//! The GPU memory of one started program's process tree, sampled through
//! its run: NVML's per-process used memory, summed over every GPU, of the
//! processes that carry the tree's tag (the program, its workers, whatever
//! it started). `process_gpu_memory{at=start|peak|end}` of a `command`;
//! [`NvmlProcesses`] also gives a flood's `server_gpu_memory` and
//! `cancel`'s GPU half (`ws::client::process`). NVML names processes by
//! host PIDs: [`unattributable`] says so rather than report 0 bytes, and
//! a process listed without a figure (NVML_VALUE_NOT_AVAILABLE) makes the
//! tree's memory unknown too ([`withheld`]), not 0.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

use crate::process::Tag;

/// What NVML's process lists gave in one sample, over every GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes used by the processes accepted as ours.
    pub ours: u64,
    /// How many listed processes were accepted as ours.
    pub matched: usize,
    /// Listed processes holding GPU memory whose PIDs this PID namespace
    /// does not have (see [`unattributable`]).
    pub unseen: usize,
    /// Of the processes accepted as ours, how many NVML listed without a
    /// figure for their memory (see [`withheld`]).
    pub withheld: usize,
}

impl Usage {
    /// The bytes of ours, or why they cannot be told: none of ours listed
    /// while processes of another PID namespace were ([`unattributable`]).
    pub fn attributed(self) -> Result<u64, String> {
        if self.withheld > 0 {
            Err(withheld(self.withheld))
        } else if self.matched == 0 && self.unseen > 0 {
            Err(unattributable(self.unseen))
        } else {
            Ok(self.ours)
        }
    }
}

/// Why a tree's GPU memory cannot be told: NVML listed processes holding
/// GPU memory, none of them the tree's, and `unseen` of them with PIDs
/// that do not exist here. The NVIDIA driver reports host PIDs, so in a
/// container with its own PID namespace no process can be matched.
pub fn unattributable(unseen: usize) -> String {
    format!(
        "NVML lists {unseen} process(es) holding GPU memory whose PIDs do not exist in this PID \
         namespace, and none of the processes measured here: the NVIDIA driver reports host PIDs, \
         so in a container with its own PID namespace no process can be matched (run it with the \
         host's, e.g. `docker run --pid=host`); or they are other containers' processes on a \
         shared GPU and these held none"
    )
}

/// Why a tree's GPU memory cannot be told: NVML listed `n` of its
/// processes but gave no figure for their memory. Counting them as 0 bytes
/// would pass any bound and any `gpu:F` limit.
pub fn withheld(n: usize) -> String {
    format!(
        "NVML lists {n} of the processes measured here without a figure for their GPU memory \
         (NVML_VALUE_NOT_AVAILABLE: the driver withholds per-process memory on this host, e.g. \
         under vGPU, MIG without the privileges to read it, or Windows WDDM), so it is unknown, \
         not 0 bytes; `nvidia-smi --query-compute-apps=pid,used_memory --format=csv` shows \
         [N/A] there too"
    )
}

/// The whole rule over a window of samples: NVML withheld the figure of
/// one of ours ([`withheld`]), else [`untold`].
pub fn unknown(held: bool, unseen: usize, withheld_count: usize) -> Option<String> {
    if withheld_count > 0 {
        return Some(withheld(withheld_count));
    }
    untold(held, unseen)
}

/// The rule over a window of samples: none of ours held GPU memory
/// (`held` false) while `unseen` listed processes had PIDs that do not
/// exist here; then the figure is not 0 bytes but unknown, and why.
pub fn untold(held: bool, unseen: usize) -> Option<String> {
    (!held && unseen > 0).then(|| unattributable(unseen))
}

/// Whether a PID NVML listed exists in this PID namespace.
pub fn pid_here(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Where the per-process figures come from: NVML on a machine with a GPU;
/// in tests, a test double (harness logic only).
pub trait ProcessGpuMemory: Send + Sync + 'static {
    /// GPU memory of the processes `ours` accepts, now.
    fn used(&self, ours: &dyn Fn(u32) -> bool) -> Result<Usage, String>;
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
    fn used(&self, ours: &dyn Fn(u32) -> bool) -> Result<Usage, String> {
        let mut u = Usage::default();
        for i in 0..self.count {
            let d = self
                .nvml
                .device_by_index(i)
                .map_err(|e| format!("NVML: device {i}: {e}"))?;
            let procs = d
                .running_compute_processes()
                .map_err(|e| format!("NVML: compute processes of GPU {i}: {e}"))?;
            for p in procs {
                let bytes = match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                };
                if ours(p.pid) {
                    u.ours += bytes.unwrap_or(0);
                    u.matched += 1;
                    u.withheld += usize::from(bytes.is_none());
                } else if bytes.is_some_and(|b| b > 0) && !pid_here(p.pid) {
                    u.unseen += 1;
                }
            }
        }
        Ok(u)
    }
}

/// A tree's GPU memory over one run: the first sample, the largest, and
/// the last sample that still listed one of its processes (a program's
/// CUDA context goes away as it exits, so a sample taken while it exits
/// would read 0 in some runs and the held memory in others).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeGpuMemory {
    pub start: u64,
    pub peak: u64,
    pub end: u64,
    pub samples: usize,
    /// The most listed processes of one sample whose PIDs do not exist
    /// here ([`Usage::unseen`]).
    pub unseen: usize,
    /// The most of ours listed without a figure in one sample
    /// ([`Usage::withheld`]).
    pub withheld: usize,
    /// Samples NVML failed to give (skipped; the first error is kept).
    pub failed: usize,
}

impl TreeGpuMemory {
    /// Why the run's figures cannot be told: the tree held no GPU memory
    /// in any sample while processes NVML listed were not to be found here
    /// (a foreign PID namespace). Such a run is not 0 bytes.
    pub fn unattributable(&self) -> Option<String> {
        unknown(self.peak > 0, self.unseen, self.withheld)
    }

    fn add(&mut self, u: Usage) {
        self.unseen = self.unseen.max(u.unseen);
        self.withheld = self.withheld.max(u.withheld);
        if self.samples == 0 {
            self.start = u.ours;
        }
        self.peak = self.peak.max(u.ours);
        if u.matched > 0 {
            self.end = u.ours;
        }
        self.samples += 1;
    }
}

/// Samples a tree's GPU memory on its own thread until stopped.
pub struct TreeGpuSampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Result<TreeGpuMemory, String>>,
}

impl TreeGpuSampler {
    /// Starts sampling the processes that carry `tag`, every `interval`.
    /// A sample NVML fails to give is skipped; only a run with no sample
    /// at all is an error (the first one's).
    pub fn start(source: impl ProcessGpuMemory, tag: Tag, interval: Duration) -> TreeGpuSampler {
        let (stop, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ours = |pid: u32| tag.carried_by(pid);
            let mut m = TreeGpuMemory::default();
            let mut first_error = None;
            loop {
                match source.used(&ours) {
                    Ok(u) => m.add(u),
                    Err(e) => {
                        m.failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
                if !matches!(
                    rx.recv_timeout(interval),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return match first_error {
                        Some(e) if m.samples == 0 => Err(e),
                        _ => Ok(m),
                    };
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
        fn used(&self, ours: &dyn Fn(u32) -> bool) -> Result<Usage, String> {
            let mut steps = self.steps.lock().unwrap();
            let step = if steps.len() > 1 {
                steps.pop_front().unwrap()
            } else {
                steps.front().cloned().unwrap_or_default()
            };
            let mine: Vec<u64> = step
                .iter()
                .filter(|(p, _)| ours(*p))
                .map(|(_, b)| *b)
                .collect();
            Ok(Usage {
                ours: mine.iter().sum(),
                matched: mine.len(),
                unseen: step.len() - mine.len(),
                withheld: 0,
            })
        }
    }

    #[test]
    fn a_tree_that_never_matched_beside_foreign_pids_is_not_zero_bytes() {
        let none = TreeGpuMemory {
            samples: 5,
            unseen: 2,
            ..TreeGpuMemory::default()
        };
        let e = none.unattributable().unwrap();
        assert!(e.starts_with("NVML lists 2 process(es)"), "{e}");
        assert!(e.contains("`docker run --pid=host`"), "{e}");
        // Its own memory found, or nothing foreign: the figures stand.
        assert_eq!(TreeGpuMemory { peak: 1, ..none }.unattributable(), None);
        assert_eq!(TreeGpuMemory { unseen: 0, ..none }.unattributable(), None);
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
