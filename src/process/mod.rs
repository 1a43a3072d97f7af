//! The processes neon-perf starts: each one's whole tree, found by a tag in
//! its environment and ended when its time is over (`tree`), the list of
//! those running now (`live`), and cancel on SIGINT/SIGTERM (`cancel`).

pub mod cancel;
pub mod live;
pub mod tree;

pub use tree::{Straggler, TAG_VAR, Tag, started_here};
