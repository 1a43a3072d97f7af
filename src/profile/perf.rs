//! `perf record` of a program, when perf events are allowed here, and its
//! `perf script` folded. Containers often forbid perf events: then every
//! call says "profiling unavailable" with the setting that decides it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::folded::Folded;
use crate::process::{TAG_VAR, Tag};

/// Samples per second: enough for a differential of programs that run a
/// fraction of a second, little enough to cost under a few percent.
pub const FREQUENCY: u32 = 999;

/// Names the `perf` binary to use instead of the one on PATH (Ubuntu's
/// `/usr/lib/linux-tools/<version>/perf`, say).
pub const PERF_VAR: &str = "NEON_PERF_PERF";

/// A `perf` that can record here.
#[derive(Clone, Debug)]
pub struct Perf {
    bin: PathBuf,
}

/// What a program to profile is.
pub struct Target<'a> {
    pub argv: &'a [String],
    pub env: &'a std::collections::BTreeMap<String, String>,
    pub cwd: &'a Path,
    pub timeout: Duration,
}

impl Perf {
    /// `perf` (`$NEON_PERF_PERF`, else on PATH), if a trial recording
    /// works; otherwise why not.
    pub fn find() -> Result<Perf, String> {
        match std::env::var_os(PERF_VAR).filter(|v| !v.is_empty()) {
            Some(bin) => Perf::trial(PathBuf::from(bin)),
            None => Perf::find_on(std::env::var_os("PATH")),
        }
    }

    fn find_on(path: Option<std::ffi::OsString>) -> Result<Perf, String> {
        let bin = on_path(path, "perf").ok_or_else(|| {
            "profiling unavailable: `perf` is not installed (Debian: apt install linux-perf)"
                .to_string()
        })?;
        Perf::trial(bin)
    }

    fn trial(bin: PathBuf) -> Result<Perf, String> {
        if !bin.is_file() {
            return Err(format!(
                "profiling unavailable: {PERF_VAR}={} is not a file",
                bin.display()
            ));
        }
        let perf = Perf { bin };
        let dir = tempfile::tempdir().map_err(|e| format!("profiling unavailable: {e}"))?;
        let probe = perf.command_for(&dir.path().join("probe.data"), &["true".to_string()]);
        let out = run_tagged(probe, Duration::from_secs(20))?;
        if !out.0 {
            return Err(format!(
                "profiling unavailable: `perf record` cannot sample here ({}); kernel.perf_event_paranoid is {} (2 or less lets a user profile its own processes; in a container perf_event_open must also be allowed: CAP_PERFMON, or a seccomp profile that permits it)",
                last_line(&out.1),
                paranoid().unwrap_or_else(|| "unknown".into())
            ));
        }
        Ok(perf)
    }

    /// Records `t` once and folds the samples; `data` keeps the recording.
    pub fn profile(&self, t: &Target<'_>, data: &Path) -> Result<Folded, String> {
        let mut cmd = self.command_for(data, t.argv);
        cmd.envs(t.env).current_dir(t.cwd);
        let (ok, stderr) = run_tagged(cmd, t.timeout)?;
        if !ok {
            return Err(format!(
                "`perf record` of `{}` failed: {}",
                t.argv.join(" "),
                last_line(&stderr)
            ));
        }
        let script = Command::new(&self.bin)
            .arg("script")
            // Without the period, each sample counts once (inferno weighs a
            // stack by the period when it is printed).
            .args(["-F", "-period"])
            .arg("-i")
            .arg(data)
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `perf script`: {e}"))?;
        Folded::from_perf_script(&String::from_utf8_lossy(&script.stdout))
    }

    fn command_for(&self, data: &Path, argv: &[String]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(["record", "-q", "-g", "-F", &FREQUENCY.to_string(), "-o"])
            .arg(data)
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }
}

/// How much of a profiler's stderr (with the profiled program's, which
/// shares it) is kept: the end, where tools say why they failed.
const STDERR_TAIL: usize = 64 * 1024;

/// Runs `cmd` in its own group with a tree tag, up to `timeout`; whether
/// it exited 0, and the end of its stderr.
pub(super) fn run_tagged(mut cmd: Command, timeout: Duration) -> Result<(bool, String), String> {
    use std::os::unix::process::CommandExt;
    let tag = Tag::new();
    cmd.env(TAG_VAR, tag.value()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start `{}`: {e}",
            cmd.get_program().to_string_lossy()
        )
    })?;
    let _live = crate::process::live::register(Some(child.id()), &tag);
    let err = child.stderr.take();
    let reader =
        std::thread::spawn(move || err.map(|e| drain_tail(e, STDERR_TAIL)).unwrap_or_default());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(s);
        }
        if start.elapsed() > timeout {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: kill(2) on the group we created; ESRCH when empty is fine.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    tag.end();
    let _ = child.wait();
    let stderr = reader.join().unwrap_or_default();
    match status {
        None => Err(format!(
            "profiling timed out after {}",
            crate::units::format_duration(timeout)
        )),
        Some(s) => Ok((s.success(), stderr)),
    }
}

/// Reads `r` to its end (so that its writer never blocks on a full pipe)
/// and keeps the last `keep` bytes, as text.
fn drain_tail(mut r: impl std::io::Read, keep: usize) -> String {
    let (mut tail, mut buf) = (Vec::new(), [0u8; 8192]);
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * keep {
                    tail.drain(..tail.len() - keep);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let from = tail.len().saturating_sub(keep);
    String::from_utf8_lossy(&tail[from..]).into_owned()
}

pub(super) fn on_path(path: Option<std::ffi::OsString>, name: &str) -> Option<PathBuf> {
    path.and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

fn paranoid() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .map(|s| s.trim().to_string())
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without perf, profiling says so and how to get it, never fails a run.
    #[test]
    fn no_perf_on_path_is_a_clear_reason() {
        let empty = tempfile::tempdir().unwrap();
        let e = Perf::find_on(Some(empty.path().as_os_str().to_owned())).unwrap_err();
        assert!(
            e.starts_with("profiling unavailable: `perf` is not installed"),
            "{e}"
        );
        assert!(e.contains("apt install linux-perf"), "{e}");
    }

    /// A profiled program that writes a lot to stderr (which it shares
    /// with the profiler) runs to its end: the pipe is drained, and the
    /// end of what it wrote is kept. Before, reading stopped at 64 KiB and
    /// the program blocked on the full pipe until the timeout.
    #[test]
    fn a_chatty_stderr_neither_blocks_the_run_nor_loses_its_end() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 4000 ]; do echo 'a line of warnings, forty bytes long....' >&2; i=$((i+1)); done; echo 'the reason' >&2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let (ok, stderr) = run_tagged(cmd, Duration::from_secs(60)).unwrap();
        assert!(ok);
        assert!(
            stderr.ends_with("the reason\n"),
            "{}",
            &stderr[stderr.len() - 80..]
        );
        assert!(stderr.len() <= STDERR_TAIL, "{}", stderr.len());
        let e = run_tagged(Command::new("/nonexistent/nsys"), Duration::from_secs(1)).unwrap_err();
        assert!(e.starts_with("cannot start `/nonexistent/nsys`: "), "{e}");
    }
}
