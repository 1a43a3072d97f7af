fn main() -> std::process::ExitCode {
    neon_perf::harness::main_in(env!("CARGO_MANIFEST_DIR"))
}
