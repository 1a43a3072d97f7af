//! neon-perf: a performance test harness and regression gate for GPU CI runners.
//!
//! Data flows one way: suites → plans → executors → results → compare → reports.
//! Modules are listed from the top of that flow to the bottom; nothing below
//! imports anything above it.

pub mod baseline;
pub mod checklist;
pub mod cli;
pub mod compare;
pub mod config;
pub mod device;
pub mod exec;
pub mod harness;
pub mod host;
pub mod metric;
pub mod model;
pub mod monitor;
pub mod plan;
pub mod report;
pub mod result;
pub mod run;
pub mod stats;
pub mod units;
pub mod workload;
