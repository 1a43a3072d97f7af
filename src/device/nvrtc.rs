//! NVRTC: CUDA C++ → PTX at run time, with a content-addressed PTX cache.
//! Needs no GPU: without one, kernels are compiled for [`DEFAULT_ARCH`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::guarded;

/// The architecture used when no GPU is visible (CI compile checks).
pub const DEFAULT_ARCH: &str = "compute_80";

/// How to compile. Hashable: every field is part of the PTX cache key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    /// `--gpu-architecture`, e.g. `compute_90`. `None`: GPU 0's compute
    /// capability, or [`DEFAULT_ARCH`] when there is no GPU.
    pub arch: Option<String>,
    /// Extra NVRTC options, passed as given (e.g. `--use_fast_math`).
    pub options: Vec<String>,
    /// `--include-path` folders (a `.cu` file's own folder, typically).
    pub include_paths: Vec<PathBuf>,
}

/// Compiled PTX and where it came from.
#[derive(Clone, Debug)]
pub struct Ptx {
    pub text: String,
    /// The `--gpu-architecture` it was compiled for.
    pub arch: String,
    /// The cache file holding it.
    pub cache_path: PathBuf,
    /// Loaded from the cache rather than compiled now.
    pub from_cache: bool,
    /// NVRTC's log (warnings), empty when cached.
    pub log: String,
}

impl Ptx {
    /// The form `CudaContext::load_module` takes.
    pub fn to_cudarc(&self) -> cudarc::nvrtc::Ptx {
        cudarc::nvrtc::Ptx::from_src(self.text.clone())
    }
}

/// Why a kernel did not compile. Always names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileError {
    #[error("cannot compile {name}: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("{name}: NVRTC compile failed ({status}) with options {options:?}\n{log}")]
    Compile {
        name: String,
        status: String,
        options: Vec<String>,
        log: String,
    },
    #[error("{name}: {message}")]
    Other { name: String, message: String },
}

/// `None` when libnvrtc loads and answers `nvrtcVersion`; otherwise why not.
pub fn nvrtc_unavailable_reason() -> Option<String> {
    nvrtc_version().err()
}

/// NVRTC's `(major, minor)` version.
pub fn nvrtc_version() -> Result<(i32, i32), String> {
    static V: OnceLock<Result<(i32, i32), String>> = OnceLock::new();
    V.get_or_init(|| {
        // SAFETY: only tries to dlopen the candidate names.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(format!(
                "NVRTC not found (libnvrtc.so could not be loaded; tried {}). \
                 Install the CUDA toolkit or run scripts/nvrtc.sh and add its folder to LD_LIBRARY_PATH",
                cudarc::get_lib_name_candidates("nvrtc")
                    .iter()
                    .filter(|n| n.starts_with("libnvrtc.so"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        guarded("NVRTC unusable", || {
            let (mut major, mut minor) = (0, 0);
            // SAFETY: writes two ints.
            let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
            if r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
                Ok((major, minor))
            } else {
                Err(format!("nvrtcVersion failed: {r:?}"))
            }
        })?
    })
    .clone()
}

/// The architecture a compile targets when the options do not say.
pub fn default_arch() -> String {
    if super::cuda_unavailable_reason().is_none()
        && let Ok(ctx) = super::context(0)
        && let Ok(cc) = super::compute_capability(&ctx)
    {
        return super::arch_for(cc);
    }
    DEFAULT_ARCH.to_string()
}

/// The NVRTC argument list for `opts` and `arch`.
pub fn nvrtc_args(opts: &CompileOptions, arch: &str) -> Vec<String> {
    let mut args = vec![format!("--gpu-architecture={arch}")];
    for p in &opts.include_paths {
        args.push(format!("--include-path={}", p.display()));
    }
    args.extend(opts.options.iter().cloned());
    args
}

/// Local headers (`#include "x.h"`) found in the include paths: their text
/// is part of the cache key, so editing a header recompiles.
fn local_headers(src: &str, include_paths: &[PathBuf]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in src.lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix("#include") else {
            continue;
        };
        let rest = rest.trim();
        let Some(inner) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else {
            continue;
        };
        for dir in include_paths {
            if let Ok(text) = std::fs::read_to_string(dir.join(inner)) {
                out.push((inner.to_string(), text));
                break;
            }
        }
    }
    out
}

/// The PTX cache key: SHA-256 over source, name, NVRTC arguments, local
/// headers and the NVRTC version. Pure.
pub fn cache_key(
    src: &str,
    name: &str,
    args: &[String],
    headers: &[(String, String)],
    nvrtc: (i32, i32),
) -> String {
    let mut h = Sha256::new();
    h.update(b"neon-perf-ptx-v1\0");
    h.update(format!("nvrtc {}.{}\0", nvrtc.0, nvrtc.1));
    h.update(name.as_bytes());
    h.update(b"\0");
    for a in args {
        h.update(a.as_bytes());
        h.update(b"\0");
    }
    for (n, t) in headers {
        h.update(n.as_bytes());
        h.update(b"\0");
        h.update(t.as_bytes());
        h.update(b"\0");
    }
    h.update(src.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles `src` (named `name` in messages, e.g. `kernels/saxpy.cu`) to PTX,
/// or loads it from `cache_dir/ptx/<key>.ptx` when it was compiled before.
pub fn compile_ptx(
    src: &str,
    name: &str,
    opts: &CompileOptions,
    cache_dir: &Path,
) -> Result<Ptx, CompileError> {
    let version = nvrtc_version().map_err(|reason| CompileError::Unavailable {
        name: name.to_string(),
        reason,
    })?;
    if src.contains('\0') || name.contains('\0') {
        return Err(CompileError::Other {
            name: name.into(),
            message: "source or name contains a NUL byte".into(),
        });
    }
    let arch = opts.arch.clone().unwrap_or_else(default_arch);
    let args = nvrtc_args(opts, &arch);
    let key = cache_key(
        src,
        name,
        &args,
        &local_headers(src, &opts.include_paths),
        version,
    );
    let dir = cache_dir.join("ptx");
    let cache_path = dir.join(format!("{key}.ptx"));
    if let Ok(text) = std::fs::read_to_string(&cache_path)
        && text.contains(".entry")
    {
        return Ok(Ptx {
            text,
            arch,
            cache_path,
            from_cache: true,
            log: String::new(),
        });
    }

    let cudarc_opts = cudarc::nvrtc::CompileOptions {
        options: args.clone(),
        name: Some(name.to_string()),
        ..Default::default()
    };
    let compiled = guarded("NVRTC panicked", || {
        cudarc::nvrtc::compile_ptx_with_opts(src, cudarc_opts)
    })
    .map_err(|message| CompileError::Other {
        name: name.into(),
        message,
    })?;
    let ptx = compiled.map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError {
            nvrtc,
            options,
            log,
        } => CompileError::Compile {
            name: name.into(),
            status: format!("{:?}", nvrtc.0),
            options,
            log: log.to_string_lossy().into_owned(),
        },
        other => CompileError::Other {
            name: name.into(),
            message: format!("NVRTC error: {other:?}"),
        },
    })?;
    let text = ptx.to_src();
    // Best effort: a read-only cache folder only costs a recompile next time.
    if std::fs::create_dir_all(&dir).is_ok() {
        let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, &text).is_ok() {
            let _ = std::fs::rename(&tmp, &cache_path);
        }
    }
    Ok(Ptx {
        text,
        arch,
        cache_path,
        from_cache: false,
        log: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_every_input() {
        let args = vec!["--gpu-architecture=compute_90".to_string()];
        let base = cache_key("src", "a.cu", &args, &[], (13, 0));
        assert_eq!(base.len(), 64);
        assert_eq!(base, cache_key("src", "a.cu", &args, &[], (13, 0)));
        let other_args = vec!["--gpu-architecture=compute_80".to_string()];
        for k in [
            cache_key("src2", "a.cu", &args, &[], (13, 0)),
            cache_key("src", "b.cu", &args, &[], (13, 0)),
            cache_key("src", "a.cu", &other_args, &[], (13, 0)),
            cache_key("src", "a.cu", &args, &[("h.h".into(), "x".into())], (13, 0)),
            cache_key("src", "a.cu", &args, &[], (12, 9)),
        ] {
            assert_ne!(k, base);
        }
    }

    #[test]
    fn args_put_arch_first_then_includes_then_user_options() {
        let opts = CompileOptions {
            arch: None,
            options: vec!["--use_fast_math".into()],
            include_paths: vec![PathBuf::from("/k")],
        };
        assert_eq!(
            nvrtc_args(&opts, "compute_90"),
            [
                "--gpu-architecture=compute_90",
                "--include-path=/k",
                "--use_fast_math"
            ]
        );
    }

    #[test]
    fn local_headers_are_found_in_include_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("common.h"), "#define X 1").unwrap();
        let src = "#include \"common.h\"\n#include <cuda_fp16.h>\n#include \"missing.h\"\n";
        let h = local_headers(src, &[dir.path().to_path_buf()]);
        assert_eq!(h, vec![("common.h".to_string(), "#define X 1".to_string())]);
    }

    #[test]
    fn compile_without_nvrtc_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = compile_ptx(
            "extern \"C\" __global__ void k() {}",
            "k.cu",
            &CompileOptions::default(),
            dir.path(),
        );
        match (nvrtc_unavailable_reason(), r) {
            (Some(reason), Err(e)) => {
                assert!(e.to_string().contains("k.cu"), "{e}");
                assert!(reason.contains("NVRTC"), "{reason}");
            }
            (None, Ok(ptx)) => assert!(ptx.text.contains(".entry k")),
            (a, b) => panic!("inconsistent: reason {a:?}, result {b:?}"),
        }
    }
}
