//! Thin entry point: everything lives in the library so `cargo test` and the
//! CLI share one code path.

fn main() {
    // Die quietly on a closed pipe (`neon-perf list | head`), as Unix tools do.
    // SAFETY: restoring the default disposition of SIGPIPE before any threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(neon_perf::cli::main());
}
