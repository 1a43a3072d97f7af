//! neon-perf: a performance test harness and regression gate for GPU CI runners.
//!
//! Data flows one way: suites → plans → executors → results → compare → reports.
//! Modules are listed from the top of that flow to the bottom; nothing below
//! imports anything above it.

pub mod baseline;
pub mod config;
pub mod device;
pub mod exec;
pub mod metric;
pub mod monitor;
pub mod plan;
pub mod result;
pub mod stats;
pub mod units;
