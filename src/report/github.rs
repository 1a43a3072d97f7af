//! What the reports give the GitHub Actions environment: annotations on
//! the suite lines of problems, and the Markdown appended to
//! `$GITHUB_STEP_SUMMARY`. Both front ends (CLI and harness) reach it
//! through [`super::files::write_all`].

use std::path::PathBuf;

use crate::outcome::RunReport;

/// Prints GitHub annotations for the report's problems, paths relative to
/// `$GITHUB_WORKSPACE` (else the current folder): the one place both front
/// ends (CLI and harness) do it.
pub fn print_annotations(report: &RunReport) {
    let root = std::env::var_os("GITHUB_WORKSPACE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    print!(
        "{}",
        String::from_utf8_lossy(&super::annotations::github(report, &root))
    );
}

/// Appends the Markdown summary to `$GITHUB_STEP_SUMMARY` when it is set:
/// the one place both front ends (CLI and harness) do it.
pub fn append_step_summary(md: &[u8]) -> Result<(), super::files::WriteError> {
    use std::io::Write;
    let Some(p) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let p = PathBuf::from(p);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .and_then(|mut f| f.write_all(md))
        .map_err(|source| super::files::WriteError::Write { path: p, source })
}
