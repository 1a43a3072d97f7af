//! Every CUDA source neon-perf runs — the `.cu` files under suites/ and the
//! built-in kernels — compiles to PTX with NVRTC. Needs no GPU.
//!
//! Without NVRTC the tests are ignored with the reason, unless
//! NEON_PERF_REQUIRE_NVRTC=1 (CI sets it after scripts/nvrtc.sh).

#[macro_use]
mod needs;

use std::path::{Path, PathBuf};

use neon_perf::device::{CompileOptions, builtin, compile_ptx};

fn cu_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            cu_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "cu") {
            out.push(p);
        }
    }
}

fn every_kernel_compiles_with_nvrtc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    cu_files(&root.join("suites"), &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no .cu files under {}",
        root.join("suites").display()
    );

    let mut sources: Vec<(String, String, Vec<PathBuf>)> = files
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{name}: {e}"));
            (
                name,
                text,
                p.parent()
                    .map(|d| vec![d.to_path_buf()])
                    .unwrap_or_default(),
            )
        })
        .collect();
    for (name, src) in builtin::sources() {
        sources.push((name.to_string(), src.to_string(), vec![]));
    }

    let cache = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut compiled = 0;
    // The CI default and the H100's architecture.
    for arch in ["compute_80", "compute_90"] {
        for (name, src, includes) in &sources {
            let opts = CompileOptions {
                arch: Some(arch.to_string()),
                options: vec![],
                include_paths: includes.clone(),
            };
            match compile_ptx(src, name, &opts, cache.path()) {
                Ok(ptx) => {
                    assert!(!ptx.from_cache, "{name}: a fresh cache must compile");
                    assert!(ptx.text.contains(".entry"), "{name}: PTX without kernels");
                    assert!(
                        ptx.text.contains(&format!(".target sm_{}", &arch[8..])),
                        "{name}: PTX not for {arch}"
                    );
                    compiled += 1;
                }
                Err(e) => failures.push(format!("{arch}: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "NVRTC failed:\n{}",
        failures.join("\n\n")
    );
    eprintln!("compiled {compiled} sources with NVRTC");

    // Same source and options again: served from the cache.
    let (name, src, includes) = &sources[0];
    let opts = CompileOptions {
        arch: Some("compute_90".into()),
        options: vec![],
        include_paths: includes.clone(),
    };
    let again = compile_ptx(src, name, &opts, cache.path()).unwrap();
    assert!(again.from_cache, "{name} was not cached");
}

fn a_compile_error_carries_the_file_name_and_the_nvrtc_log() {
    let cache = tempfile::tempdir().unwrap();
    let err = compile_ptx(
        "extern \"C\" __global__ void broken(float* x) { x[0] = undefined_thing; }",
        "kernels/broken.cu",
        &CompileOptions::default(),
        cache.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("kernels/broken.cu"), "{err}");
    assert!(err.contains("undefined_thing"), "{err}");
    assert!(err.contains("NVRTC compile failed"), "{err}");
}

trials! {
    every_kernel_compiles_with_nvrtc: needs::NVRTC;
    a_compile_error_carries_the_file_name_and_the_nvrtc_log: needs::NVRTC;
}
