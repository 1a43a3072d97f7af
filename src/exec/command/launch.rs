//! The run launcher: a `command`'s runs are started through
//! `neon-perf-launch` (built from `launch/launch.c` by build.rs), which
//! forks the program itself and reports what `wait4` says of it. A
//! program's peak RSS (`ru_maxrss`) counts the pages of the process it was
//! forked from until its `exec`: forked from neon-perf, a 1 MiB program
//! reads as neon-perf's 8-9 MiB; forked from the launcher, as itself
//! (within 1% of `/usr/bin/time -v`, docs/reliability.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The launcher's bytes; empty when build.rs found no C compiler.
const LAUNCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/neon-perf-launch"));

/// What the launcher reported of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// It ran: its wait status and usage, and its time from fork to exit.
    Ran {
        status: i32,
        maxrss_kib: u64,
        cpu: Duration,
        wall: Duration,
    },
    /// It could not be started: the `exec` errno.
    NotStarted(i32),
}

/// The launcher in `dir` (written there once, named by its content's hash
/// so that versions never mix), or `None` when this build has none. Called
/// for every point: the hash is taken once, and a path already installed
/// by this process is returned as it is, as `python::helper_dir` does.
pub fn install(dir: &Path) -> Result<Option<PathBuf>, String> {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static INSTALLED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if LAUNCHER.is_empty() {
        return Ok(None);
    }
    // Absolute: the program is started in its own `cwd`.
    let dir = &std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = NAME.get_or_init(|| {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(LAUNCHER);
        let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("neon-perf-launch-{hex}")
    });
    let path = dir.join(name);
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if installed.contains(&path) {
        return Ok(Some(path));
    }
    if path.is_file() {
        installed.push(path.clone());
        return Ok(Some(path));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write the launcher in {}: {e}", dir.display()))?;
    tmp.write_all(LAUNCHER)
        .map_err(|e| format!("cannot write the launcher: {e}"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make the launcher executable: {e}"))?;
    // Closed before it is named: an executable open for writing cannot be
    // started ("Text file busy"), and another run may start it at once.
    let tmp = tmp.into_temp_path();
    tmp.persist(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    installed.push(path.clone());
    Ok(Some(path))
}

/// Reads (and removes) the report file; `None` when the launcher wrote
/// none (it was killed: a timeout or a cancel).
pub fn read_report(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    let _ = std::fs::remove_file(path);
    parse(&text)
}

fn parse(text: &str) -> Option<Report> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields.as_slice() {
        ["exec", errno] => Some(Report::NotStarted(errno.parse().ok()?)),
        [status, rss, utime, stime, wall] => Some(Report::Ran {
            status: status.parse().ok()?,
            maxrss_kib: rss.parse().ok()?,
            cpu: Duration::from_micros(utime.parse::<u64>().ok()? + stime.parse::<u64>().ok()?),
            wall: Duration::from_nanos(wall.parse().ok()?),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_back() {
        assert_eq!(
            parse("768 1552 678 12 742004\n"),
            Some(Report::Ran {
                status: 768,
                maxrss_kib: 1552,
                cpu: Duration::from_micros(690),
                wall: Duration::from_nanos(742_004),
            })
        );
        assert_eq!(parse("exec 2\n"), Some(Report::NotStarted(2)));
        assert_eq!(parse(""), None);
        assert_eq!(parse("1 2 3"), None);
    }

    #[test]
    fn this_build_has_a_launcher_and_it_installs_once() {
        assert!(!LAUNCHER.is_empty(), "build.rs built no launcher");
        let dir = tempfile::tempdir().unwrap();
        let a = install(dir.path()).unwrap().unwrap();
        assert!(a.is_absolute());
        let b = install(dir.path()).unwrap().unwrap();
        assert_eq!(a, b);
        let report = dir.path().join("r");
        let st = std::process::Command::new(&a)
            .arg(&report)
            .args(["sh", "-c", "exit 3"])
            .status()
            .unwrap();
        assert!(st.success());
        match read_report(&report) {
            Some(Report::Ran { status, .. }) => assert_eq!(status, 3 << 8),
            other => panic!("{other:?}"),
        }
        assert!(!report.exists(), "the report is removed once read");
    }
}
