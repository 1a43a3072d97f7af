//! Builds `neon-perf-launch` (src/exec/command/launch/launch.c), the small
//! static program a `command`'s runs are started through so that their
//! peak RSS is their own, not neon-perf's (see that file). Without a C
//! compiler the build goes on with an empty launcher: runs are then started
//! directly and `peak_rss` says it counts neon-perf's pages.

use std::path::{Path, PathBuf};

const SOURCE: &str = "src/exec/command/launch/launch.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("neon-perf-launch");
    if !build(&out) {
        std::fs::write(&out, b"").expect("OUT_DIR is writable");
        println!(
            "cargo:warning=neon-perf-launch was not built (no working C compiler): \
             a command's peak_rss will count neon-perf's own pages"
        );
    }
}

/// Static first (its footprint is a few pages, and it needs no loader),
/// then dynamic.
fn build(out: &Path) -> bool {
    let Ok(compiler) = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .debug(false)
        .opt_level_str("s")
        .try_get_compiler()
    else {
        return false;
    };
    [true, false].into_iter().any(|fully_static| {
        let mut cmd = compiler.to_command();
        if fully_static {
            cmd.arg("-static");
        }
        cmd.args(["-s", "-o"]).arg(out).arg(SOURCE);
        cmd.output().is_ok_and(|o| o.status.success())
    })
}
