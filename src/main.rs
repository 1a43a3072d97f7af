//! Thin entry point: everything lives in the library so `cargo test` and the
//! CLI share one code path.

fn main() {
    std::process::exit(neon_perf::cli::main());
}
