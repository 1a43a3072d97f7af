//! Tests that need a piece this machine may lack — a GPU, NVRTC, the
//! third-party WebSocket peers, python3 — run under libtest-mimic
//! (`harness = false`), so that a missing piece is reported by `cargo test`
//! as **ignored, with the reason**: never a silent pass, never a failure.
//! CI sets `NEON_PERF_REQUIRE_<PIECE>=1` to make a missing piece a failure.
//!
//! A test file lists its tests once, each with what it needs:
//!
//! ```ignore
//! #[macro_use]
//! mod needs;
//! trials! {
//!     runs_anywhere;
//!     talks_to_node: needs::WS_PEERS;
//! }
//! ```

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// One piece a test needs. `probe` says why it is missing (`None`: present).
pub struct Need {
    /// `NEON_PERF_REQUIRE_<PIECE>`: set to 1, a missing piece fails the test.
    pub require: Option<&'static str>,
    pub probe: fn() -> Option<String>,
}

/// Python `websockets` and Node `ws` echo servers, from `scripts/ws/setup.sh`.
pub const WS_PEERS: Need = Need {
    require: Some("NEON_PERF_REQUIRE_WS_PEERS"),
    probe: ws_peers_missing,
};
/// The NVRTC library (CI installs the PyPI wheel with `scripts/nvrtc.sh`).
pub const NVRTC: Need = Need {
    require: Some("NEON_PERF_REQUIRE_NVRTC"),
    probe: neon_perf::device::nvrtc_unavailable_reason,
};
/// A CUDA driver with at least one GPU.
pub const GPU: Need = Need {
    require: Some("NEON_PERF_REQUIRE_GPU"),
    probe: neon_perf::device::cuda_unavailable_reason,
};
/// `python3` on PATH.
pub const PYTHON: Need = Need {
    require: Some("NEON_PERF_REQUIRE_PYTHON"),
    probe: python_missing,
};

/// ONNX Runtime, onnx and numpy in target/onnx-venv (`scripts/onnx-setup.sh`).
pub const ONNX: Need = Need {
    require: Some("NEON_PERF_REQUIRE_ONNX"),
    probe: onnx_missing,
};

fn onnx_missing() -> Option<String> {
    let python = root().join("target/onnx-venv/bin/python");
    if !python.is_file() {
        return Some(
            "ONNX Runtime not installed (target/onnx-venv missing): run `bash scripts/onnx-setup.sh`"
                .into(),
        );
    }
    runs(
        python.to_str().unwrap_or("python"),
        &["-c", "import onnxruntime, onnx, numpy"],
    )
    .err()
    .map(|e| format!("target/onnx-venv cannot import onnxruntime, onnx and numpy ({e}): run `bash scripts/onnx-setup.sh`"))
}

/// `python3` that can import PyTorch (the GPU machines have it).
pub const TORCH: Need = Need {
    require: Some("NEON_PERF_REQUIRE_TORCH"),
    probe: torch_missing,
};

/// The NVML test double (tests/nvml_double/libnvidia-ml.c), built with
/// `cc`: harness logic of the NVML paths on a machine without a GPU.
pub const NVML_DOUBLE: Need = Need {
    require: Some("NEON_PERF_REQUIRE_CC"),
    probe: nvml_double_missing,
};

fn nvml_double_missing() -> Option<String> {
    nvml_double().err()
}

/// The folder holding the NVML test double as `libnvidia-ml.so.1`, built
/// once per test binary under the target's tmp folder; put it first on a
/// child's `LD_LIBRARY_PATH` to make its NVML the double.
pub fn nvml_double() -> Result<std::path::PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = root().join("tests/nvml_double/libnvidia-ml.c");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nvml-double");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // Built beside, then renamed into place: test binaries running at
            // once each build it, and none loads a half-written file.
            let part = dir.join(format!("libnvidia-ml.so.1.{}", std::process::id()));
            let out = Command::new("cc")
                .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
                .arg(&part)
                .arg(&src)
                .output()
                .map_err(|e| format!("no C compiler to build the NVML test double (`cc`: {e})"))?;
            if !out.status.success() {
                return Err(format!(
                    "`cc` could not build the NVML test double: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::rename(&part, dir.join("libnvidia-ml.so.1"))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(dir)
        })
        .clone()
}

/// `perf record` allowed here (Debian's linux-perf, perf events permitted).
pub const PERF: Need = Need {
    require: Some("NEON_PERF_REQUIRE_PERF"),
    probe: perf_missing,
};

fn perf_missing() -> Option<String> {
    neon_perf::profile::Perf::find().err()
}

/// A real Nsight Systems CLI: `$NEON_PERF_NSYS`, else Debian's nsys
/// 2022.4 under target/nsys (`scripts/nsys-setup.sh`). It runs without a
/// GPU; its reports then hold no kernels.
pub const NSYS: Need = Need {
    require: Some("NEON_PERF_REQUIRE_NSYS"),
    probe: nsys_missing,
};

/// The `nsys` the NSYS need found.
pub fn nsys() -> Result<neon_perf::profile::nsys::Nsys, String> {
    let bin = std::env::var_os(neon_perf::profile::nsys::NSYS_VAR)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target/nsys/nsys"));
    if !bin.exists() {
        return Err(format!(
            "no nsys at {} (bash scripts/nsys-setup.sh puts Debian's there; or set {})",
            bin.display(),
            neon_perf::profile::nsys::NSYS_VAR
        ));
    }
    neon_perf::profile::nsys::Nsys::at(bin)
}

fn nsys_missing() -> Option<String> {
    nsys().err()
}

fn torch_missing() -> Option<String> {
    runs("python3", &["-c", "import torch"])
        .err()
        .map(|_| "PyTorch not importable by python3 (it is on the GPU machines; here: bash scripts/torch-setup.sh, then PATH=target/torch-venv/bin:$PATH)".into())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ws_peers_missing() -> Option<String> {
    let r = root();
    let venv = r.join("target/ws-venv/bin/python");
    let ws = r.join("target/ws-node/node_modules/ws/package.json");
    let missing: Vec<String> = [&venv, &ws]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.strip_prefix(r).unwrap_or(p).display().to_string())
        .collect();
    if missing.is_empty() {
        return runs("node", &["--version"])
            .err()
            .map(|e| format!("node does not run ({e})"));
    }
    Some(format!(
        "third-party WebSocket peers not installed ({} missing): run `bash scripts/ws/setup.sh`",
        missing.join(", ")
    ))
}

fn python_missing() -> Option<String> {
    runs("python3", &["--version"])
        .err()
        .map(|e| format!("python3 does not run ({e})"))
}

/// Whether `cmd args` starts and exits 0.
pub fn runs(cmd: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} exited with {status}"))
    }
}

/// A need probed at run time, with its own reason (no REQUIRE variable):
/// e.g. a host limit the test cannot exceed.
pub fn condition(why_not: Option<String>) -> Result<(), Completion> {
    match why_not {
        Some(reason) => Err(Completion::ignored_with(reason)),
        None => Ok(()),
    }
}

fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

/// The trial for `test`: ignored with the reason of the first missing need,
/// or failed when that need is required.
pub fn trial(name: &'static str, test: fn(), needs: &'static [Need]) -> Trial {
    Trial::ignorable_test(name, move || {
        for need in needs {
            let Some(reason) = (need.probe)() else {
                continue;
            };
            return match need.require.filter(|v| required(v)) {
                Some(var) => Err(Failed::from(format!("{var}=1 but {reason}"))),
                None => Ok(Completion::ignored_with(reason)),
            };
        }
        test();
        Ok(Completion::Completed)
    })
}

/// A trial whose body decides at run time that it cannot run here
/// (returns `Err(Completion::Ignored{..})` through [`condition`]).
pub fn conditional_trial(name: &'static str, test: fn() -> Result<(), Completion>) -> Trial {
    Trial::ignorable_test(name, move || {
        Ok(test().err().unwrap_or(Completion::Completed))
    })
}

/// Runs the file's trials with libtest's command line (filters, `--list`, …).
pub fn run(trials: Vec<Trial>) -> ExitCode {
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

/// `fn main` listing the file's tests: `name;` or `name: NEED, NEED;`,
/// and `?name;` for a test returning `Result<(), Completion>` (see
/// [`conditional_trial`]).
macro_rules! trials {
    ($($(?$cname:ident)? $($name:ident $(: $($need:expr),+)?)?;)*) => {
        fn main() -> std::process::ExitCode {
            needs::run(vec![$(
                $(needs::conditional_trial(stringify!($cname), $cname),)?
                $(needs::trial(stringify!($name), $name, &[$($($need),+)?]),)?
            )*])
        }
    };
}
