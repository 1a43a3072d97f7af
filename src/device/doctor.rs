//! `neon-perf doctor`: which CUDA libraries load and from where, driver and
//! NVRTC versions, and every GPU's state (clocks, throttling, ECC/MIG,
//! power limit, hardware key). Says plainly what is missing.

use std::ffi::CString;
use std::fmt;

use cudarc::driver::sys;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use serde::Serialize;

use super::throttle::{INVALIDATING, throttle_names};
use crate::baseline::key::GpuKey;

/// One shared library neon-perf may load.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LibraryStatus {
    /// Short name: "libcuda", "libnvrtc", "libcublas", "libnvidia-ml".
    pub name: String,
    pub found: bool,
    /// The name that loaded, e.g. "libcuda.so.1".
    pub loaded_as: Option<String>,
    /// The file it resolved to, from /proc/self/maps.
    pub path: Option<String>,
    /// What it is for, and what to do when missing.
    pub note: String,
}

/// One GPU as the driver and NVML see it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: Option<u64>,
    pub compute_capability: Option<String>,
    pub sm_count: Option<u32>,
    pub l2_bytes: Option<u64>,
    pub sm_clock_mhz: Option<u32>,
    pub sm_clock_max_mhz: Option<u32>,
    pub mem_clock_mhz: Option<u32>,
    pub mem_clock_max_mhz: Option<u32>,
    pub temperature_c: Option<u32>,
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub throttle_reasons: Vec<String>,
    pub ecc: Option<bool>,
    pub mig: Option<bool>,
    pub key: Option<GpuKey>,
}

/// Everything `doctor` reports.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DoctorReport {
    pub libraries: Vec<LibraryStatus>,
    pub driver_version: Option<String>,
    /// CUDA driver API version, e.g. 13000.
    pub cuda_driver_version: Option<u32>,
    pub nvrtc_version: Option<String>,
    pub cuda_unavailable: Option<String>,
    pub nvrtc_unavailable: Option<String>,
    pub nvml_unavailable: Option<String>,
    pub gpus: Vec<GpuInfo>,
    /// Plain sentences about what is missing or wrong.
    pub problems: Vec<String>,
}

/// The path of a loaded library whose file name starts with `prefix`.
fn mapped_path(prefix: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            std::path::Path::new(p)
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(prefix))
        })
        .map(|p| p.to_string())
}

/// dlopens the first candidate that loads (and keeps it loaded, as cudarc will).
fn find_library(short: &str, candidates: &[String], note: &str) -> LibraryStatus {
    for c in candidates {
        let Ok(cname) = CString::new(c.as_str()) else {
            continue;
        };
        // SAFETY: dlopen with a valid C string; the handle is deliberately kept.
        let h = unsafe { libc::dlopen(cname.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        if !h.is_null() {
            return LibraryStatus {
                name: short.into(),
                found: true,
                loaded_as: Some(c.clone()),
                path: mapped_path(&format!("{short}.so")),
                note: note.into(),
            };
        }
    }
    LibraryStatus {
        name: short.into(),
        found: false,
        loaded_as: None,
        path: None,
        note: note.into(),
    }
}

fn so_names(lib: &str) -> Vec<String> {
    cudarc::get_lib_name_candidates(lib)
        .into_iter()
        .filter(|n| n.starts_with(&format!("lib{lib}.so")))
        .collect()
}

/// Probes this machine. Never panics, whatever is missing.
pub fn probe() -> DoctorReport {
    let mut r = DoctorReport {
        libraries: libraries(),
        ..Default::default()
    };
    r.cuda_unavailable = super::cuda_unavailable_reason();
    r.nvrtc_unavailable = super::nvrtc_unavailable_reason();
    r.cuda_driver_version = super::cuda_driver_version();
    r.nvrtc_version = super::nvrtc::nvrtc_version()
        .ok()
        .map(|(a, b)| format!("{a}.{b}"));
    let nvml = super::nvml();
    r.nvml_unavailable = nvml.as_ref().err().map(ToString::to_string);
    if let Ok(n) = nvml {
        r.driver_version = n.sys_driver_version().ok();
    }
    let keys = super::gpu_keys().ok();
    // GPUs: NVML for clocks and state, the driver for architecture facts.
    let count = match (&nvml, r.cuda_unavailable.is_none()) {
        (Ok(n), _) => n.device_count().unwrap_or(0) as usize,
        (Err(_), true) => cudarc::driver::CudaContext::device_count()
            .unwrap_or(0)
            .max(0) as usize,
        _ => 0,
    };
    for i in 0..count {
        let mut g = GpuInfo {
            index: i as u32,
            key: keys.as_ref().and_then(|k| k.get(i).cloned()),
            ..Default::default()
        };
        if let Ok(n) = &nvml
            && let Ok(d) = n.device_by_index(i as u32)
        {
            nvml_facts(&mut g, &d);
        }
        if r.cuda_unavailable.is_none() {
            driver_facts(&mut g, i);
        }
        r.gpus.push(g);
    }
    r.problems = problems(&r);
    r
}

/// The libraries neon-perf loads at run time, found or not.
fn libraries() -> Vec<LibraryStatus> {
    vec![
        find_library(
            "libcuda",
            &so_names("cuda"),
            "CUDA driver: needed for every GPU scenario (comes with the NVIDIA driver)",
        ),
        find_library(
            "libnvrtc",
            &so_names("nvrtc"),
            "NVRTC: compiles kernels; install the CUDA toolkit or run scripts/nvrtc.sh",
        ),
        find_library(
            "libcublas",
            &so_names("cublas"),
            "cuBLAS: GEMM built-ins and the FLOP/s peak (CUDA toolkit or the nvidia-cublas wheel)",
        ),
        find_library(
            "libnvidia-ml",
            &[
                "libnvidia-ml.so.1".to_string(),
                "libnvidia-ml.so".to_string(),
            ],
            "NVML: GPU monitoring and the hardware key (comes with the NVIDIA driver)",
        ),
    ]
}

/// Name, memory, clocks, temperature, power, throttling, ECC and MIG from NVML.
fn nvml_facts(g: &mut GpuInfo, d: &nvml_wrapper::Device<'_>) {
    g.name = d.name().unwrap_or_default();
    if let Ok(m) = d.memory_info() {
        g.memory_total_bytes = m.total;
        g.memory_free_bytes = Some(m.free);
    }
    g.sm_clock_mhz = d.clock_info(Clock::SM).ok();
    g.sm_clock_max_mhz = d.max_clock_info(Clock::SM).ok();
    g.mem_clock_mhz = d.clock_info(Clock::Memory).ok();
    g.mem_clock_max_mhz = d.max_clock_info(Clock::Memory).ok();
    g.temperature_c = d.temperature(TemperatureSensor::Gpu).ok();
    g.power_w = d.power_usage().ok().map(|mw| mw as f64 / 1000.0);
    g.power_limit_w = d.power_management_limit().ok().map(|mw| mw as f64 / 1000.0);
    g.throttle_reasons = d
        .current_throttle_reasons()
        .map(|t| {
            throttle_names(t.bits())
                .into_iter()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    g.ecc = d.is_ecc_enabled().ok().map(|e| e.currently_enabled);
    g.mig = d.mig_mode().ok().map(|m| m.current == 1);
}

/// Compute capability, SM count and L2 size from the driver (and the name
/// and memory when NVML gave none).
fn driver_facts(g: &mut GpuInfo, i: usize) {
    let Ok(ctx) = super::context(i) else {
        return;
    };
    if g.name.is_empty() {
        g.name = ctx.name().unwrap_or_default();
        g.memory_total_bytes = ctx.total_mem().unwrap_or(0) as u64;
    }
    let attr = |a| super::attribute(&ctx, a).ok();
    g.compute_capability = super::compute_capability(&ctx)
        .ok()
        .map(|(a, b)| format!("{a}.{b}"));
    g.sm_count =
        attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).map(|v| v as u32);
    g.l2_bytes = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).map(|v| v as u64);
}

/// Everything that stops a GPU scenario here, or spoils its measurement.
fn problems(r: &DoctorReport) -> Vec<String> {
    let mut problems = Vec::new();
    for l in &r.libraries {
        if !l.found {
            problems.push(format!("{} not found — {}", l.name, l.note));
        }
    }
    for reason in [
        &r.cuda_unavailable,
        &r.nvrtc_unavailable,
        &r.nvml_unavailable,
    ]
    .into_iter()
    .flatten()
    {
        if !problems.iter().any(|p| p == reason) {
            problems.push(reason.clone());
        }
    }
    problems.extend(version_problems(r.cuda_driver_version));
    for g in &r.gpus {
        let bad: Vec<&str> = g
            .throttle_reasons
            .iter()
            .map(String::as_str)
            .filter(|t| INVALIDATING.contains(t))
            .collect();
        if !bad.is_empty() {
            problems.push(format!(
                "GPU {} is throttled right now: {}",
                g.index,
                bad.join(", ")
            ));
        }
    }
    problems
}

/// An NVRTC newer than the driver, or a driver older than CUDA 13.0.
fn version_problems(driver: Option<u32>) -> Vec<String> {
    let mut problems = Vec::new();
    if let (Some(drv), Some((maj, _))) = (driver, super::nvrtc::nvrtc_version().ok())
        && (maj as u32) * 1000 > drv
    {
        problems.push(format!(
            "NVRTC {maj}.x is newer than the driver's CUDA {}.{}: its PTX will not load (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)",
            drv / 1000,
            drv % 1000 / 10
        ));
    }
    if let Some(drv) = driver
        && drv < 13000
    {
        problems.push(format!(
            "the driver supports CUDA {}.{}; neon-perf is built against the CUDA 13.0 driver API, so a call missing from this driver fails with a \"Missing symbol\" error",
            drv / 1000,
            drv % 1000 / 10
        ));
    }
    problems
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "?".into())
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "libraries:")?;
        for l in &self.libraries {
            match (&l.loaded_as, &l.path) {
                (Some(n), Some(p)) => writeln!(f, "  {:<13} found   {n} → {p}", l.name)?,
                (Some(n), None) => writeln!(f, "  {:<13} found   {n}", l.name)?,
                _ => writeln!(f, "  {:<13} MISSING ({})", l.name, l.note)?,
            }
        }
        writeln!(
            f,
            "driver: {}   CUDA driver API: {}   NVRTC: {}",
            opt(&self.driver_version),
            self.cuda_driver_version
                .map(|v| format!("{}.{}", v / 1000, v % 1000 / 10))
                .unwrap_or_else(|| "?".into()),
            opt(&self.nvrtc_version)
        )?;
        if self.gpus.is_empty() {
            writeln!(f, "GPUs: none")?;
        }
        for g in &self.gpus {
            writeln!(
                f,
                "GPU {}: {} — {} total{}, compute {}, {} SMs, L2 {}",
                g.index,
                g.name,
                crate::units::format_bytes(g.memory_total_bytes as f64),
                g.memory_free_bytes
                    .map(|b| format!(" ({} free)", crate::units::format_bytes(b as f64)))
                    .unwrap_or_default(),
                opt(&g.compute_capability),
                opt(&g.sm_count),
                g.l2_bytes
                    .map(|b| crate::units::format_bytes(b as f64))
                    .unwrap_or_else(|| "?".into()),
            )?;
            writeln!(
                f,
                "  clocks: SM {}/{} MHz, memory {}/{} MHz   temp {} °C   power {} / {} W",
                opt(&g.sm_clock_mhz),
                opt(&g.sm_clock_max_mhz),
                opt(&g.mem_clock_mhz),
                opt(&g.mem_clock_max_mhz),
                opt(&g.temperature_c),
                g.power_w
                    .map(|w| format!("{w:.0}"))
                    .unwrap_or_else(|| "?".into()),
                g.power_limit_w
                    .map(|w| format!("{w:.0}"))
                    .unwrap_or_else(|| "?".into()),
            )?;
            writeln!(
                f,
                "  throttle: {}   ECC: {}   MIG: {}",
                if g.throttle_reasons.is_empty() {
                    "none".to_string()
                } else {
                    g.throttle_reasons.join(", ")
                },
                g.ecc.map(|e| if e { "on" } else { "off" }).unwrap_or("?"),
                g.mig.map(|e| if e { "on" } else { "off" }).unwrap_or("?"),
            )?;
            if let Some(k) = &g.key {
                let hk = crate::baseline::key::HardwareKey {
                    cpu_model: String::new(),
                    cpu_cores: 0,
                    gpus: vec![k.clone()],
                };
                writeln!(f, "  hardware key: {}", hk.dirname())?;
            }
        }
        if self.problems.is_empty() {
            writeln!(f, "ok: CUDA, NVRTC, cuBLAS and NVML are all usable")?;
        } else {
            writeln!(f, "problems:")?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_never_panics_and_names_what_is_missing() {
        let r = probe();
        assert_eq!(r.libraries.len(), 4);
        let text = r.to_string();
        assert!(text.contains("libraries:"), "{text}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"libraries\""));
        if r.cuda_unavailable.is_some() {
            assert!(r.gpus.is_empty());
            assert!(text.contains("problems:"), "{text}");
            assert!(text.contains("libcuda"), "{text}");
        }
    }

    #[test]
    fn display_of_a_synthetic_gpu_report() {
        let r = DoctorReport {
            libraries: vec![LibraryStatus {
                name: "libcuda".into(),
                found: true,
                loaded_as: Some("libcuda.so.1".into()),
                path: Some("/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06".into()),
                note: "CUDA driver".into(),
            }],
            driver_version: Some("580.65.06".into()),
            cuda_driver_version: Some(13000),
            nvrtc_version: Some("13.0".into()),
            gpus: vec![GpuInfo {
                index: 0,
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_total_bytes: 80 << 30,
                compute_capability: Some("9.0".into()),
                sm_count: Some(132),
                l2_bytes: Some(50 << 20),
                sm_clock_mhz: Some(1980),
                sm_clock_max_mhz: Some(1980),
                throttle_reasons: vec!["gpu_idle".into()],
                ecc: Some(true),
                mig: Some(false),
                key: Some(GpuKey {
                    name: "NVIDIA H100 80GB HBM3".into(),
                    memory_bytes: 80 << 30,
                    driver_major: 580,
                    cuda_version: 13000,
                    mig: false,
                    ecc: true,
                    power_limit_w: 700,
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = r.to_string();
        for want in [
            "libcuda       found   libcuda.so.1 → /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06",
            "driver: 580.65.06   CUDA driver API: 13.0   NVRTC: 13.0",
            "GPU 0: NVIDIA H100 80GB HBM3 — 80.0 GiB total, compute 9.0, 132 SMs, L2 50.0 MiB",
            "throttle: gpu_idle   ECC: on   MIG: off",
            "hardware key: nvidia-h100-80gb-hbm3-80gib-drv580-cuda13-ecc-700w",
            "ok: CUDA, NVRTC, cuBLAS and NVML are all usable",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
    }
}
