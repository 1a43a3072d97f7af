//! One run of a child process: spawn in its own process group, time it,
//! read its JSON-line metrics, take its rusage, kill the group on timeout.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Invocation;
use crate::exec::ExecError;
use crate::metric::{ChecklistItem, Direction};
use crate::result::Check;

/// How much of stderr is kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// The most bytes of stderr kept while it is drained: whatever the program
/// prints, only this tail is held in memory.
const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// The longest stdout line parsed; a longer one is drained and ignored.
const MAX_LINE: usize = 1 << 20;

/// A metric line the program printed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ProgramMetric {
    pub metric: String,
    pub value: f64,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default, deserialize_with = "direction_word")]
    pub direction: Option<Direction>,
}

fn direction_word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Direction>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref() {
        None => Ok(None),
        Some("lower") | Some("lower_is_better") => Ok(Some(Direction::LowerIsBetter)),
        Some("higher") | Some("higher_is_better") => Ok(Some(Direction::HigherIsBetter)),
        Some("neither") => Ok(Some(Direction::Neither)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "unknown direction `{other}` (use \"lower\", \"higher\" or \"neither\")"
        ))),
    }
}

/// What one run of the child produced.
#[derive(Clone, Debug)]
pub struct ChildRun {
    pub wall: Duration,
    /// User + system CPU time of the child and the descendants it waited for.
    pub cpu: Duration,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
    pub metrics: Vec<ProgramMetric>,
    /// Checks it printed (`{"check": …, "passed": …}` lines).
    pub checks: Vec<Check>,
}

/// A check line the program printed, as the helper's `neon_perf.check` writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramCheck {
    check: String,
    passed: bool,
    #[serde(default)]
    evidence: String,
    #[serde(default)]
    item: Option<String>,
}

/// Parses one stdout line as a check: `Ok(None)` for lines that are not
/// check objects; an error for one that names a check and is broken.
pub fn parse_check_line(line: &str) -> Result<Option<Check>, String> {
    let t = line.trim();
    if !t.starts_with('{') || !t.contains("\"check\"") {
        return Ok(None);
    }
    let c: ProgramCheck =
        serde_json::from_str(t).map_err(|e| format!("bad check line `{t}`: {e}"))?;
    let item = match c.item.as_deref() {
        None => None,
        Some(id) => Some(ChecklistItem::from_id(id).ok_or_else(|| {
            let ids = ChecklistItem::ALL.map(|i| i.id()).join(", ");
            format!("bad check line `{t}`: unknown checklist item `{id}` (one of: {ids})")
        })?),
    };
    if c.check.trim().is_empty() {
        return Err(format!("bad check line `{t}`: the check has no name"));
    }
    Ok(Some(Check::new(c.check.trim(), c.passed, c.evidence, item)))
}

/// The metrics every `command` run reports from the OS; a program may not
/// print its own under these names (they would be mixed into one series).
pub const RESERVED: [&str; 3] = ["wall_time", "cpu_time", "peak_rss"];

/// Parses one stdout line: `Ok(None)` for lines that are not metric
/// objects; an error for one that names a metric and is broken.
pub fn parse_metric_line(line: &str) -> Result<Option<ProgramMetric>, String> {
    let t = line.trim();
    if !t.starts_with('{') {
        return Ok(None);
    }
    let value = match serde_json::from_str::<serde_json::Value>(t) {
        Ok(v) => v,
        // Braces in ordinary output are not metric lines; a line that names
        // a metric and is not valid JSON (cut short, `NaN`, `1e999`) is one
        // gone wrong, not one to drop in silence.
        Err(e) if t.contains("\"metric\"") => {
            return Err(format!("bad metric line `{t}`: not valid JSON ({e})"));
        }
        Err(_) => return Ok(None),
    };
    if value.get("metric").is_none() {
        return Ok(None);
    }
    let m: ProgramMetric =
        serde_json::from_value(value).map_err(|e| format!("bad metric line `{t}`: {e}"))?;
    if m.metric.parse::<crate::metric::MetricKey>().is_err() {
        return Err(format!(
            "bad metric line `{t}`: invalid metric name `{}`",
            m.metric
        ));
    }
    if RESERVED.contains(&m.metric.as_str()) {
        return Err(format!(
            "bad metric line `{t}`: `{}` is a metric neon-perf measures itself; print yours under another name",
            m.metric
        ));
    }
    if !m.value.is_finite() {
        return Err(format!(
            "bad metric line `{t}`: value is not a finite number"
        ));
    }
    let unit = crate::metric::Unit::parse_with_scale(m.unit.as_deref().unwrap_or("")).0;
    if m.value < 0.0 && !unit.may_be_negative() {
        return Err(format!(
            "bad metric line `{t}`: a value in `{}` cannot be negative",
            unit.symbol()
        ));
    }
    Ok(Some(m))
}

/// Runs the invocation once. `on_spawn` gets the child's pid.
pub fn run_child(
    inv: &Invocation,
    timeout: Duration,
    mut on_spawn: impl FnMut(u32),
) -> Result<ChildRun, ExecError> {
    let mut cmd = Command::new(&inv.argv[0]);
    cmd.args(&inv.argv[1..])
        .envs(&inv.env)
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
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        ExecError::Failed(format!(
            "could not start `{}` (in {}): {e}",
            inv.argv[0],
            inv.cwd.display()
        ))
    })?;
    let pid = child.id();
    on_spawn(pid);
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut metrics = Vec::new();
        let mut checks = Vec::new();
        let mut first_error = None;
        // Bytes, not text: a line that is not valid UTF-8 is one more line
        // that is not a metric, and reading goes on to the end (stopping
        // would drop later metrics and leave the program writing into a
        // closed pipe).
        let mut lines = ByteLines::new(stdout);
        while let Some(bytes) = lines.next_line() {
            let Ok(line) = std::str::from_utf8(bytes) else {
                continue;
            };
            let parsed = parse_metric_line(line).and_then(|m| match m {
                Some(m) => {
                    metrics.push(m);
                    Ok(())
                }
                None => parse_check_line(line).map(|c| checks.extend(c)),
            });
            if let Err(e) = parsed {
                first_error.get_or_insert(e);
            }
        }
        (metrics, checks, first_error)
    });
    let err_reader = thread::spawn(move || {
        let tail = drain_tail(stderr, STDERR_TAIL_BYTES);
        tail_lines(&String::from_utf8_lossy(&tail), STDERR_TAIL_LINES)
    });

    // The watchdog kills the whole process group if the child outlives the timeout.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            true
        } else {
            false
        }
    });

    let (status, usage) =
        wait4(pid).map_err(|e| ExecError::Failed(format!("wait4 failed: {e}")))?;
    let wall = start.elapsed();
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    // Grandchildren may still hold the pipes open: make sure the group is gone.
    // SAFETY: as above; ESRCH when the group is already empty is fine.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    let (metrics, checks, metric_error) = out_reader.join().unwrap_or_default();
    let stderr_tail = err_reader.join().unwrap_or_default();
    drop(child);

    let program = &inv.argv.join(" ");
    if timed_out {
        return Err(ExecError::TimedOut(format!(
            "`{program}` timed out after {}; killed its process group{}",
            crate::units::format_duration(timeout),
            stderr_section(&stderr_tail)
        )));
    }
    if let Some(reason) = exit_failure(status) {
        return Err(ExecError::Failed(format!(
            "`{program}` {reason}{}",
            stderr_section(&stderr_tail)
        )));
    }
    if let Some(e) = metric_error {
        return Err(ExecError::Failed(format!("`{program}` printed a {e}")));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    Ok(ChildRun {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss: (usage.ru_maxrss as u64) * 1024,
        metrics,
        checks,
    })
}

fn stderr_section(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- last lines of its stderr ---\n{tail}")
    }
}

/// Reads `r` to the end, keeping only its last `keep` bytes.
fn drain_tail(mut r: impl Read, keep: usize) -> Vec<u8> {
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend(&buf[..n]);
                let over = tail.len().saturating_sub(keep);
                tail.drain(..over);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    tail.into()
}

/// Lines of bytes from a reader, read to the end: a line longer than
/// [`MAX_LINE`] is skipped whole (never held), invalid UTF-8 is the
/// caller's to judge.
struct ByteLines<R> {
    r: BufReader<R>,
    line: Vec<u8>,
}

impl<R: Read> ByteLines<R> {
    fn new(r: R) -> Self {
        ByteLines {
            r: BufReader::new(r),
            line: Vec::new(),
        }
    }

    fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            self.line.clear();
            let mut too_long = false;
            loop {
                let buf = match self.r.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return None,
                };
                if buf.is_empty() {
                    if self.line.is_empty() && !too_long {
                        return None;
                    }
                    break;
                }
                let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], Some(i + 1)),
                    None => (buf, None),
                };
                if !too_long && self.line.len() + chunk.len() <= MAX_LINE {
                    self.line.extend_from_slice(chunk);
                } else {
                    too_long = true;
                    self.line.clear();
                }
                let used = done.unwrap_or(buf.len());
                self.r.consume(used);
                if done.is_some() {
                    break;
                }
            }
            if !too_long {
                return Some(&self.line);
            }
        }
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
    fn metric_lines() {
        let m = parse_metric_line(r#"{"metric": "latency", "value": 12.5, "unit": "ms"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.metric, "latency");
        assert_eq!(m.value, 12.5);
        assert_eq!(m.unit.as_deref(), Some("ms"));
        let c = parse_check_line(
            r#"{"check": "unsynchronized timing: step", "passed": false, "evidence": "early", "item": "cuda-sync"}"#,
        )
        .unwrap()
        .unwrap();
        assert!(
            !c.passed && c.item == Some(ChecklistItem::CudaSync),
            "{c:?}"
        );
        assert_eq!(
            parse_check_line(r#"{"metric": "x", "value": 1}"#).unwrap(),
            None
        );
        assert!(parse_check_line(r#"{"check": "x", "passed": true, "item": "gpu"}"#).is_err());
        assert!(parse_check_line(r#"{"check": "x", "passed": "yes"}"#).is_err());
        assert_eq!(parse_metric_line("hello").unwrap(), None);
        assert_eq!(parse_metric_line(r#"{"other": 1}"#).unwrap(), None);
        let d = parse_metric_line(r#"{"metric": "tput", "value": 3, "direction": "higher"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(d.direction, Some(Direction::HigherIsBetter));
        assert!(parse_metric_line(r#"{"metric": "x", "value": "fast"}"#).is_err());
        assert!(parse_metric_line(r#"{"metric": "bad name!", "value": 1}"#).is_err());
        // Broken lines that name a metric are errors, not dropped.
        for bad in [
            r#"{"metric": "w", "value": 1.0, "unit": "ms""#,
            r#"{"metric": "w", "value": NaN}"#,
            r#"{"metric": "w", "value": 1e999}"#,
            r#"{"metric": "wall_time", "value": 1.0, "unit": "s"}"#,
            r#"{"metric": "w", "value": -5, "unit": "ms"}"#,
        ] {
            let e = parse_metric_line(bad).unwrap_err();
            assert!(e.contains("bad metric line"), "{bad}: {e}");
        }
        // Braces in other output, and negative values where they can be.
        assert_eq!(parse_metric_line("{ not json }").unwrap(), None);
        assert_eq!(parse_metric_line(r#"{"value": 1.0}"#).unwrap(), None);
        let t = parse_metric_line(r#"{"metric": "t", "value": -3, "unit": "°C"}"#).unwrap();
        assert_eq!(t.unwrap().value, -3.0);
    }

    fn inv(argv: &[&str]) -> Invocation {
        Invocation {
            mem_limit: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: Default::default(),
            cwd: std::env::temp_dir(),
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
        assert!(
            e.len() < 2 * STDERR_TAIL_BYTES,
            "{} bytes of error",
            e.len()
        );
    }

    #[test]
    fn drain_tail_keeps_the_last_bytes() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let tail = drain_tail(&data[..], 1000);
        assert_eq!(tail, &data[data.len() - 1000..]);
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

    #[test]
    fn missing_program_is_a_clear_error() {
        let err = run_child(&inv(&["/no/such/program"]), Duration::from_secs(5), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not start `/no/such/program`"), "{err}");
    }
}
