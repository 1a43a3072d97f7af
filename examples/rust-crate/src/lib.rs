//! An example crate whose `cargo test --test perf` runs `suites/` with
//! neon-perf (see tests/perf.rs and Cargo.toml).
