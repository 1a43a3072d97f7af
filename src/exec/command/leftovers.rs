//! Processes a program left behind: descendants still running when it
//! exited (ended, and named in a warning) and output held open past the
//! grace period. Counted over a point's runs so a warning says it once.

use std::collections::BTreeMap;

use super::child::{ChildRun, OUTPUT_GRACE};

/// The longest list of leftover commands a warning names.
const NAMED: usize = 3;

#[derive(Default)]
pub(super) struct Leftovers {
    runs: usize,
    /// Runs that left a process behind, and each command's count.
    runs_with: usize,
    commands: BTreeMap<String, usize>,
    held_open: usize,
    /// Runs whose `peak_rss` counts neon-perf's pages (no launcher).
    rss_not_own: usize,
}

impl Leftovers {
    pub fn record(&mut self, run: &ChildRun) {
        self.runs += 1;
        if !run.stragglers.is_empty() {
            self.runs_with += 1;
        }
        for s in &run.stragglers {
            *self.commands.entry(s.command.clone()).or_default() += 1;
        }
        if run.output_held_open {
            self.held_open += 1;
        }
        if !run.rss_is_own {
            self.rss_not_own += 1;
        }
    }

    /// One warning for the processes left behind, one for held output.
    pub fn warnings(&self, program: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.runs_with > 0 {
            let mut named: Vec<(&String, &usize)> = self.commands.iter().collect();
            named.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = named
                .iter()
                .take(NAMED)
                .map(|(c, n)| format!("`{c}` ×{n}"))
                .collect();
            let more = named.len().saturating_sub(NAMED);
            out.push(format!(
                "`{program}` left processes running after it exited in {} of {} run(s); they were ended: {}{}",
                self.runs_with,
                self.runs,
                list.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        if self.held_open > 0 {
            out.push(format!(
                "`{program}`'s output was still held open {} after it exited, in {} of {} run(s), by a process outside its tree (one that replaced its environment); reading stopped there",
                crate::units::format_duration(OUTPUT_GRACE),
                self.held_open,
                self.runs
            ));
        }
        if self.rss_not_own > 0 {
            out.push(
                "peak_rss counts neon-perf's own pages: this build has no run launcher (it was built without a C compiler), so the program was forked from neon-perf".into(),
            );
        }
        out
    }
}
