//! One run of a child process: spawn it in its own process group with its
//! tree's tag, time it, read what it prints, take its rusage, and end its
//! whole tree when it exits or times out.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::Invocation;
use super::launch::{self, Report};
use super::lines::ProgramMetric;
use super::output::{Printed, Readers};
use crate::exec::ExecError;
use crate::monitor::tree_gpu::{NvmlProcesses, TreeGpuMemory, TreeGpuSampler};
use crate::process::{Straggler, TAG_VAR, Tag, cancel, live};
use crate::result::Check;

pub use super::lines::{RESERVED, parse_check_line, parse_metric_line};

/// How long after the child's exit (and the end of its tree) its output is
/// still read: a pipe held open longer than this, by a process outside the
/// tree, is given up on, so a run ends within its timeout plus this.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What one run of the child produced.
#[derive(Clone, Debug, Default)]
pub struct ChildRun {
    pub wall: Duration,
    /// User + system CPU time of the child and the descendants it waited for.
    pub cpu: Duration,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
    /// Whether `peak_rss` is the program's own (started through the
    /// launcher); otherwise it counts the pages of neon-perf it was forked
    /// from.
    pub rss_is_own: bool,
    pub metrics: Vec<ProgramMetric>,
    /// Checks it printed (`{"check": …, "passed": …}` lines).
    pub checks: Vec<Check>,
    /// Descendants still running when it exited; they were ended.
    pub stragglers: Vec<Straggler>,
    /// Its output was still held open [`OUTPUT_GRACE`] after it exited.
    pub output_held_open: bool,
    /// Its process tree's GPU memory through the run, when NVML is there
    /// (`Err` when sampling failed part way).
    pub gpu_memory: Option<Result<TreeGpuMemory, String>>,
}

/// How long the pipes may take to close once the tree is ended before it
/// is looked for once more.
const SETTLE: Duration = Duration::from_millis(50);

/// How often a run's GPU memory is sampled.
pub const GPU_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// Runs the invocation once. `on_spawn` gets the child's pid.
pub fn run_child(
    inv: &Invocation,
    timeout: Duration,
    mut on_spawn: impl FnMut(u32),
) -> Result<ChildRun, ExecError> {
    if let Some(why) = cancel::reason() {
        return Err(ExecError::Cancelled(why));
    }
    let tag = Tag::new();
    let report = inv.launcher.as_deref().map(|l| report_path(l, &tag));
    let start = Instant::now();
    let mut child =
        spawn(command(inv, &tag, report.as_deref())).map_err(|e| not_started(inv, e))?;
    let pid = child.id();
    let _live = live::register(Some(pid), &tag);
    on_spawn(pid);
    let mut readers = Readers::start(
        child.stdout.take().expect("piped stdout"),
        child.stderr.take().expect("piped stderr"),
        inv.output_tail,
    );
    let gpu = NvmlProcesses::open()
        .ok()
        .map(|src| TreeGpuSampler::start(src, tag.clone(), GPU_SAMPLE_INTERVAL));
    let watchdog = Watchdog::start(pid, timeout);
    let (status, usage) =
        wait4(pid).map_err(|e| ExecError::Failed(format!("wait4 failed: {e}")))?;
    let wall = start.elapsed();
    let gpu_memory = gpu.map(TreeGpuSampler::stop);
    let timed_out = watchdog.stop();
    let mut stragglers = end_tree(pid, &tag);
    if !readers.wait(SETTLE) {
        // A descendant caught in the middle of `exec` reads as no tree's
        // for a moment: look once more before waiting out the grace.
        stragglers.extend(end_tree(pid, &tag));
        readers.wait(OUTPUT_GRACE.saturating_sub(SETTLE));
    }
    let printed = readers.finish();
    drop(child);
    if let Some(why) = cancel::reason() {
        return Err(ExecError::Cancelled(why));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    let mut own = Usage {
        status,
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss: (usage.ru_maxrss as u64) * 1024,
        launched: false,
    };
    match report.as_deref().and_then(launch::read_report) {
        Some(Report::NotStarted(errno)) => {
            return Err(not_started(inv, std::io::Error::from_raw_os_error(errno)));
        }
        Some(Report::Ran {
            status,
            maxrss_kib,
            cpu,
            wall,
        }) => {
            own = Usage {
                status,
                wall,
                cpu,
                peak_rss: maxrss_kib * 1024,
                launched: true,
            };
        }
        // Started directly, or the launcher was killed (a timeout).
        None => {}
    }
    judge(inv, timeout, timed_out, own.status, printed).map(|p| ChildRun {
        wall: own.wall,
        cpu: own.cpu,
        peak_rss: own.peak_rss,
        rss_is_own: own.launched,
        metrics: p.metrics,
        checks: p.checks,
        stragglers,
        output_held_open: p.held_open,
        gpu_memory,
    })
}

/// What `wait4` said of the program: through the launcher, of the program
/// itself; started directly, of the process neon-perf forked.
struct Usage {
    status: i32,
    wall: Duration,
    cpu: Duration,
    peak_rss: u64,
    launched: bool,
}

/// Spawns, retrying while the program reads as "Text file busy": an
/// executable just written (the launcher, installed by a run beside this
/// one) stays busy while any process still holds a descriptor that was
/// open for writing, such as a child forked by another thread in the
/// moment before its `exec` closed it (golang/go#22315).
fn spawn(mut cmd: std::process::Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn not_started(inv: &Invocation, e: std::io::Error) -> ExecError {
    ExecError::Failed(format!(
        "could not start `{}` (in {}): {e}",
        inv.argv[0],
        inv.cwd.display()
    ))
}

/// Where the launcher writes its report for one run, named by the run's
/// tag: in memory (`/dev/shm`) where there is one, else beside the
/// launcher (a file on disk costs about 0.3 ms more a run).
fn report_path(launcher: &std::path::Path, tag: &Tag) -> std::path::PathBuf {
    static SHM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let shm = *SHM.get_or_init(|| {
        let probe =
            std::path::Path::new("/dev/shm").join(format!("neon-perf-{}", std::process::id()));
        let ok = std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    });
    let dir = if shm {
        std::path::Path::new("/dev/shm")
    } else {
        launcher.parent().unwrap_or(std::path::Path::new("."))
    };
    dir.join(format!("neon-perf-run-{}.wait", tag.value()))
}

/// The child's command: through the launcher when there is one (writing
/// its report to `report`), in its own process group, the tree's tag in
/// its environment, and its memory limit if it has one.
fn command(inv: &Invocation, tag: &Tag, report: Option<&std::path::Path>) -> Command {
    let mut cmd = match (&inv.launcher, report) {
        (Some(launcher), Some(report)) => {
            let mut c = Command::new(launcher);
            c.arg(report).args(&inv.argv);
            c
        }
        _ => {
            let mut c = Command::new(&inv.argv[0]);
            c.args(&inv.argv[1..]);
            c
        }
    };
    cmd.envs(&inv.env)
        .env(TAG_VAR, tag.value())
        .current_dir(&inv.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(limit) = inv.mem_limit {
        let r = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: setrlimit(2) is async-signal-safe; runs in the child
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_DATA, &r) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd
}

/// Ends what is left of the child's tree once it has exited: every process
/// that carries its tag, wherever it moved, then its process group (for one
/// that dropped the tag but stayed in the group). Returns the ones found.
fn end_tree(pid: u32, tag: &Tag) -> Vec<Straggler> {
    let found = tag.end_since(pid);
    // SAFETY: kill(2) with a negative pid signals the process group we
    // created; ESRCH when it is already empty is fine.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    found
}

/// Kills the child's process group if it outlives its timeout.
struct Watchdog {
    done: mpsc::Sender<()>,
    thread: thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: u32, timeout: Duration) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                // SAFETY: kill(2) with a negative pid signals the process group we created.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                true
            } else {
                false
            }
        });
        Watchdog { done, thread }
    }

    /// Whether it fired.
    fn stop(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap_or(false)
    }
}

/// The run's failure, if it failed: a timeout, a bad exit, a broken line.
fn judge(
    inv: &Invocation,
    timeout: Duration,
    timed_out: bool,
    status: i32,
    printed: Printed,
) -> Result<Printed, ExecError> {
    let program = &inv.argv.join(" ");
    if timed_out {
        return Err(ExecError::TimedOut(format!(
            "`{program}` timed out after {}; its whole process tree was killed{}",
            crate::units::format_duration(timeout),
            stderr_section(&printed.stderr_tail)
        )));
    }
    if let Some(reason) = exit_failure(status) {
        return Err(ExecError::Failed(format!(
            "`{program}` {reason}{}",
            stderr_section(&printed.stderr_tail)
        )));
    }
    if let Some(e) = &printed.error {
        return Err(ExecError::Failed(format!("`{program}` printed a {e}")));
    }
    Ok(printed)
}

fn stderr_section(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- last lines of its stderr ---\n{tail}")
    }
}

/// `None` for a clean exit, otherwise how the process ended.
fn exit_failure(status: i32) -> Option<String> {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => None,
            code => Some(format!("exited with status {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        Some(format!("was killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Some(format!("ended with wait status {status}"))
    }
}

fn wait4(pid: u32) -> std::io::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child.
        let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
        if r == pid as i32 {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_busy_for_a_moment_is_started_once_it_is_free() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prog");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Still open for writing: starting it now is "Text file busy".
        let busy = Command::new(&path).spawn().unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(libc::ETXTBSY), "{busy}");
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(40));
            drop(f);
        });
        let mut child = spawn(Command::new(&path)).expect("started once closed");
        assert!(child.wait().unwrap().success());
        closer.join().unwrap();
    }

    fn inv(argv: &[&str]) -> Invocation {
        Invocation {
            mem_limit: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: Default::default(),
            cwd: std::env::temp_dir(),
            launcher: None,
            output_tail: 64 * 1024,
        }
    }

    #[test]
    fn runs_a_real_child_and_reads_its_metrics() {
        let run = run_child(
            &inv(&[
                "sh",
                "-c",
                r#"echo '{"metric":"lat","value":2,"unit":"ms"}'; echo noise"#,
            ]),
            Duration::from_secs(30),
            |_| {},
        )
        .unwrap();
        assert_eq!(run.metrics.len(), 1);
        assert_eq!(run.metrics[0].value, 2.0);
        assert!(run.peak_rss > 0);
        assert!(run.wall > Duration::ZERO);
    }

    /// #21 finding 4: a line that is not UTF-8, and a line longer than
    /// any metric line, are ignored; the metric lines after them count.
    #[test]
    fn bytes_that_are_not_text_do_not_stop_the_reading() {
        let run = run_child(
            &inv(&[
                "sh",
                "-c",
                "printf '\\377\\376 not text\\n'; \
                 head -c 3000000 /dev/zero | tr '\\0' x; echo; \
                 seq 1 20000; \
                 echo '{\"metric\":\"lat\",\"value\":2,\"unit\":\"ms\"}'",
            ]),
            Duration::from_secs(30),
            |_| {},
        )
        .unwrap();
        assert_eq!(run.metrics.len(), 1, "{:?}", run.metrics);
        assert_eq!(run.metrics[0].metric, "lat");
    }

    /// #21 finding 6: stderr is drained to the end but only its tail is
    /// kept, whatever the program prints.
    #[test]
    fn a_flood_of_stderr_keeps_only_a_tail() {
        let e = run_child(
            &inv(&[
                "sh",
                "-c",
                "head -c 50000000 /dev/zero | tr '\\0' e >&2; echo; echo the last line >&2; exit 3",
            ]),
            Duration::from_secs(60),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("the last line"),
            "{}",
            &e[e.len().saturating_sub(200)..]
        );
        assert!(e.len() < 2 * 64 * 1024, "{} bytes of error", e.len());
    }

    #[test]
    fn failing_child_reports_status_and_stderr_tail() {
        let err = run_child(
            &inv(&["sh", "-c", "echo first >&2; echo 'it broke' >&2; exit 3"]),
            Duration::from_secs(30),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exited with status 3"), "{err}");
        assert!(err.contains("it broke"), "{err}");
    }

    #[test]
    fn timeout_kills_the_process_tree() {
        // The grandchild would keep stdout open for 30 s if the group were not killed.
        let start = Instant::now();
        let err = run_child(
            &inv(&["sh", "-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(200),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("timed out"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tree was not killed"
        );
    }

    fn gone(pid: u32) -> bool {
        // A zombie has no environment left: it is gone too.
        std::fs::read(format!("/proc/{pid}/environ")).map_or(true, |e| e.is_empty())
    }

    fn pid_in(file: &std::path::Path) -> u32 {
        let t0 = Instant::now();
        loop {
            if let Some(p) = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return p;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no pid in {file:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// #21 finding 1: a descendant in a new session that keeps stdout open
    /// used to make the run wait for ever (killpg cannot reach it). Now it is
    /// found by its tag, ended and named; the run ends with its metric.
    #[test]
    fn a_detached_descendant_holding_stdout_is_ended_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!(
            "setsid sh -c 'echo $$ > {p}; exec sleep 300' & \
             while [ ! -s {p} ]; do sleep 0.01; done; \
             echo '{{\"metric\":\"lat\",\"value\":2,\"unit\":\"ms\"}}'",
            p = pidfile.display()
        );
        let start = Instant::now();
        let run = run_child(
            &inv(&["sh", "-c", &script]),
            Duration::from_secs(60),
            |_| {},
        )
        .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(run.metrics.len(), 1);
        let pid = pid_in(&pidfile);
        assert!(
            run.stragglers
                .iter()
                .any(|s| s.pid == pid && s.command.contains("sleep 300")),
            "{:?}",
            run.stragglers
        );
        assert!(!run.output_held_open);
        let t0 = Instant::now();
        while !gone(pid) {
            assert!(t0.elapsed() < Duration::from_secs(5), "pid {pid} lives on");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A descendant that dropped the tag and left the group, holding stdout:
    /// reading gives up after the grace period, so the run still ends.
    #[test]
    fn output_held_by_an_escaped_process_is_given_up_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!(
            "env -u {TAG_VAR} setsid sh -c 'echo $$ > {p}; exec sleep 300' & \
             while [ ! -s {p} ]; do sleep 0.01; done; echo '{{\"metric\":\"lat\",\"value\":2}}'",
            p = pidfile.display()
        );
        let start = Instant::now();
        let run = run_child(
            &inv(&["sh", "-c", &script]),
            Duration::from_secs(60),
            |_| {},
        )
        .unwrap();
        let took = start.elapsed();
        let pid = pid_in(&pidfile);
        // SAFETY: ends the test's own escaped sleep.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        assert!(took >= OUTPUT_GRACE && took < OUTPUT_GRACE * 5, "{took:?}");
        assert!(run.output_held_open);
        assert_eq!(
            run.metrics.len(),
            1,
            "what was read before the grace is kept"
        );
    }

    /// #21 finding 9: through the launcher, `peak_rss` is the program's own;
    /// started directly from this (much larger) process, it counts this
    /// process's pages.
    #[test]
    fn peak_rss_is_the_programs_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut launched = inv(&["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1"]);
        launched.launcher = super::launch::install(dir.path()).unwrap();
        assert!(launched.launcher.is_some(), "this build has a launcher");
        let own = run_child(&launched, Duration::from_secs(30), |_| {}).unwrap();
        assert!(own.rss_is_own);
        assert!(
            own.peak_rss > 1 << 20 && own.peak_rss < 4 << 20,
            "{}",
            own.peak_rss
        );
        // The same program started directly reads as this test process.
        launched.launcher = None;
        let forked = run_child(&launched, Duration::from_secs(30), |_| {}).unwrap();
        assert!(!forked.rss_is_own);
        let me = std::fs::read_to_string("/proc/self/status").unwrap();
        let me_kib: u64 = me
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        if me_kib * 1024 > 2 * own.peak_rss {
            assert!(
                forked.peak_rss > own.peak_rss,
                "{} vs {}",
                forked.peak_rss,
                own.peak_rss
            );
        }
        // 64 MiB touched: within 5% (and the program's few pages).
        let mut big = inv(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
        big.launcher = super::launch::install(dir.path()).unwrap();
        let run = run_child(&big, Duration::from_secs(30), |_| {}).unwrap();
        let want = 64u64 << 20;
        assert!(
            run.peak_rss >= want && run.peak_rss < want + want / 20 + (2 << 20),
            "{}",
            run.peak_rss
        );
    }

    #[test]
    fn through_the_launcher_a_missing_program_is_the_same_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut i = inv(&["/no/such/program"]);
        i.launcher = super::launch::install(dir.path()).unwrap();
        let err = run_child(&i, Duration::from_secs(5), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not start `/no/such/program`"), "{err}");
        assert!(err.contains("No such file"), "{err}");
        let mut i = inv(&["sh", "-c", "exit 3"]);
        i.launcher = super::launch::install(dir.path()).unwrap();
        let err = run_child(&i, Duration::from_secs(5), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("exited with status 3"), "{err}");
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let err = run_child(&inv(&["/no/such/program"]), Duration::from_secs(5), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not start `/no/such/program`"), "{err}");
    }
}
