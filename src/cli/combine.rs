//! `neon-perf merge` and `neon-perf compare`: results files in, one report
//! out, written by the same code as `run`'s.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::commands::write_reports;
use super::{OutputArgs, exit};
use crate::combine::{self, CombineError, ResultsFile};
use crate::compare::Policy;
use crate::outcome::RunReport;
use crate::report::terminal;

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// JSON results files, one per shard (`run --partition k/n --json FILE`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Exit 3 when the only problems are inconclusive or invalid verdicts.
    #[arg(long)]
    pub fail_on_inconclusive: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The reference run's JSON results (e.g. the pull request's base).
    pub old: PathBuf,
    /// The run to judge (e.g. the pull request's head).
    pub new: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Exit 3 when the only problems are inconclusive or invalid verdicts.
    #[arg(long)]
    pub fail_on_inconclusive: bool,
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<ResultsFile>, CombineError> {
    paths.iter().map(|p| combine::read(p)).collect()
}

fn bad(e: CombineError) -> i32 {
    eprintln!("error: {e}");
    exit::BAD_INPUT
}

/// Prints and writes a combined report like `run` does; returns its exit code.
fn finish(report: &RunReport, output: &OutputArgs) -> i32 {
    let style = terminal::Style {
        color: !output.no_color && std::io::stdout().is_terminal(),
    };
    for s in &report.scenarios {
        println!("{}", terminal::scenario_line(s, style));
    }
    print!("{}", terminal::details(report, style));
    write_reports(report, output)
}

pub fn merge(a: MergeArgs) -> i32 {
    let files = match read_all(&a.files) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let report = match combine::merge(&files, a.fail_on_inconclusive) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    println!(
        "neon-perf merge · {} file(s) · {} scenario(s) · hardware {}",
        files.len(),
        report.scenarios.len(),
        report.hardware_dir
    );
    finish(&report, &a.output)
}

pub fn compare(a: CompareArgs) -> i32 {
    let files = match read_all(&[a.old.clone(), a.new.clone()]) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let (report, notes) = match combine::compare_files(
        &files[0],
        &files[1],
        &Policy::default(),
        a.fail_on_inconclusive,
    ) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    println!(
        "neon-perf compare · {} (old) → {} (new) · hardware {}",
        a.old.display(),
        a.new.display(),
        report.hardware_dir
    );
    for n in &notes.only_new {
        eprintln!("note: {n} has no run in {}: no-baseline", a.old.display());
    }
    // Scenarios only in OLD are failed scenarios of the report: their lines
    // below say so.
    finish(&report, &a.output)
}
