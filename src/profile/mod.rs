//! Why it regressed (issue #22): a sampling profile of a program with
//! `perf record`, folded by inferno, drawn as a flame graph, and the
//! differential of head against base with the functions that got hotter
//! listed first. This is the engine; the gate's `--profile` uses it.

pub mod folded;
pub mod ncu;
pub mod nsys;
pub mod perf;
pub mod report;
pub mod svg;

pub use folded::{Change, Folded, change_lines, top_changes};
pub use perf::{Perf, Target};
pub use report::{ProfileReport, Side};
