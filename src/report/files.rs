//! The one owner of report files: the CLI (`run`, `bless`, `merge`,
//! `compare`) and the `cargo test` harness say which files they want, and
//! this writes them. One file that cannot be written does not stop the
//! others; each failure is returned to be named.

use std::io;
use std::path::{Path, PathBuf};

use super::dashboards::{BenchDirection, github_benchmark};
use crate::outcome::RunReport;

/// The reports asked for, by format; `None` is not written.
#[derive(Clone, Debug, Default)]
pub struct ReportFiles {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub bmf: Option<PathBuf>,
    /// `FILE.json` becomes `FILE.smaller.json` and `FILE.bigger.json`.
    pub github_benchmark: Option<PathBuf>,
    /// Print GitHub annotations for the report's problems.
    pub annotations: bool,
    /// Append the Markdown summary to `$GITHUB_STEP_SUMMARY` when it is set.
    pub step_summary: bool,
}

impl ReportFiles {
    /// Every file these settings write, HTML first (the one people open).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = [
            &self.html,
            &self.json,
            &self.markdown,
            &self.junit,
            &self.bmf,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        if let Some(p) = &self.github_benchmark {
            out.extend([BenchDirection::Smaller, BenchDirection::Bigger].map(|d| d.path(p)));
        }
        out
    }
}

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The folder of `path` could not be created.
    #[error("creating {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        path: PathBuf,
        source: io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl WriteError {
    /// The report file it was for.
    pub fn path(&self) -> &Path {
        match self {
            WriteError::CreateDir { path, .. } | WriteError::Write { path, .. } => path,
        }
    }
}

/// What [`write_all`] did.
#[derive(Debug, Default)]
pub struct Written {
    /// The report files written, in [`ReportFiles::paths`] order.
    pub written: Vec<PathBuf>,
    /// The ones that could not be, in the order tried (the step summary too).
    pub failures: Vec<WriteError>,
}

/// Writes every report in `files` (creating missing folders), prints the
/// annotations and appends the step summary when asked. A file that cannot
/// be written does not stop the others.
pub fn write_all(report: &RunReport, files: &ReportFiles) -> Written {
    type Exporter = fn(&RunReport) -> Vec<u8>;
    let mut failures = Vec::new();
    let exporters: [(&Option<PathBuf>, Exporter); 5] = [
        (&files.json, super::json),
        (&files.junit, super::junit::junit),
        (&files.html, super::html::html),
        (&files.bmf, super::dashboards::bmf),
        (&files.markdown, super::markdown::markdown),
    ];
    for (path, export) in exporters {
        if let Some(p) = path {
            failures.extend(write(p, export(report)).err());
        }
    }
    if let Some(p) = &files.github_benchmark {
        for d in [BenchDirection::Smaller, BenchDirection::Bigger] {
            failures.extend(write(&d.path(p), github_benchmark(report, d)).err());
        }
    }
    if files.annotations {
        super::github::print_annotations(report);
    }
    if files.step_summary {
        failures
            .extend(super::github::append_step_summary(&super::markdown::markdown(report)).err());
    }
    let written = files
        .paths()
        .into_iter()
        .filter(|p| !failures.iter().any(|f: &WriteError| f.path() == p))
        .collect();
    Written { written, failures }
}

fn write(path: &Path, bytes: Vec<u8>) -> Result<(), WriteError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
            dir: dir.to_path_buf(),
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_report() -> RunReport {
        RunReport {
            format_version: crate::outcome::RESULTS_FORMAT_VERSION,
            tool_version: "0".into(),
            created: "now".into(),
            git_commit: None,
            mode: "gate".into(),
            hardware_key: crate::baseline::HardwareKey {
                cpu_model: "cpu".into(),
                cpu_cores: 1,
                gpus: Vec::new(),
            },
            hardware_dir: "cpu-1c".into(),
            scenarios: Vec::new(),
            checklist: Vec::new(),
            exit_code: 0,
            blessed: Vec::new(),
            partition: None,
            not_recorded: Vec::new(),
            cancelled: None,
        }
    }

    #[test]
    fn a_failed_report_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let files = ReportFiles {
            json: Some(d.join("r.json")),
            // A folder where a file should go.
            junit: Some(d.to_path_buf()),
            markdown: Some(d.join("md/r.md")),
            html: Some(d.join("r.html")),
            bmf: None,
            github_benchmark: Some(d.join("gb.json")),
            annotations: false,
            step_summary: false,
        };
        let Written { written, failures } = write_all(&empty_report(), &files);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0]
                .to_string()
                .starts_with(&format!("writing {}: ", d.display())),
            "{failures:?}"
        );
        assert_eq!(failures[0].path(), d);
        let names: Vec<_> = written
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "r.html",
                "r.json",
                "md/r.md",
                "gb.smaller.json",
                "gb.bigger.json"
            ]
        );
        for f in [
            "r.json",
            "md/r.md",
            "r.html",
            "gb.smaller.json",
            "gb.bigger.json",
        ] {
            assert!(d.join(f).is_file(), "{f} written");
        }
    }
}
