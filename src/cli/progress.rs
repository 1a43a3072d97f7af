//! A progress line on stderr for long runs; silent when stderr is not a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::ExecEvent;

pub struct Progress {
    bar: ProgressBar,
    scenario: String,
    point: String,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed:>4} {msg}")
                .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar,
            scenario: String::new(),
            point: String::new(),
        }
    }

    pub fn start(&mut self, scenario: &str) {
        self.scenario = scenario.to_string();
        self.point.clear();
        self.bar.set_message(self.scenario.clone());
    }

    pub fn event(&mut self, e: &ExecEvent) {
        match e {
            ExecEvent::Point {
                index,
                total,
                label,
            } => {
                self.point = if *total > 1 || !label.is_empty() {
                    format!(" · point {}/{total} {label}", index + 1)
                } else {
                    String::new()
                };
                self.bar
                    .set_message(format!("{}{}", self.scenario, self.point));
            }
            ExecEvent::Phase { label } => {
                self.bar
                    .set_message(format!("{}{} · {label}", self.scenario, self.point));
            }
            ExecEvent::Sample { count } => {
                self.bar
                    .set_message(format!("{}{} · {count} samples", self.scenario, self.point));
            }
        }
    }

    /// Prints a finished line above the progress line.
    pub fn line(&self, text: &str) {
        self.bar.suspend(|| println!("{text}"));
        self.bar.inc(1);
    }

    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}
