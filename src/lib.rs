//! neon-perf: a performance test harness and regression gate for GPU CI runners.
//!
//! Data flows one way: suites → plans → executors → results → compare → reports.
//! Modules are listed from the top of that flow to the bottom; nothing below
//! imports anything above it.

pub mod config;
pub mod exec;
pub mod compare;
pub mod baseline;
pub mod result;
pub mod plan;
pub mod stats;
pub mod metric;
pub mod units;
