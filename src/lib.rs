//! neon-perf: a performance test harness and regression gate for GPU CI runners.
//!
//! Data flows one way: suites (`config`) → plans (`plan`) → executors
//! (`exec`, with `monitor` and `device`) → results (`result`) → verdicts
//! (`compare`, on `stats` and `baseline`) → `outcome` (the results model and
//! the exit-code rule) → `checklist` and `report`.
//! `run` drives that pipeline for both front ends: `cli` and `harness`.

pub mod baseline;
pub mod calibrate;
pub mod checklist;
pub mod cli;
pub mod combine;
pub mod compare;
pub mod config;
pub mod device;
pub mod exec;
pub mod harness;
pub mod host;
pub mod metric;
pub mod model;
pub mod monitor;
pub mod outcome;
pub mod plan;
pub mod process;
pub mod profile;
pub mod report;
pub mod result;
pub mod run;
pub mod stats;
pub mod units;
pub mod workload;
pub mod ws;
