//! A child's stdout and stderr, read on their own threads to the end, with
//! a deadline: once the child has exited and its tree is ended, the pipes
//! close at once; if a process outside the tree still holds one open, the
//! reading stops after a grace period with what was read so far, so a run
//! always ends.

use std::io::{BufRead, BufReader, Read};
use std::process::{ChildStderr, ChildStdout};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::lines::{ProgramMetric, parse_check_line, parse_metric_line};
use crate::result::Check;

/// How much of stderr is kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// The most bytes of stderr kept while it is drained: whatever the program
/// prints, only this tail is held in memory.
pub(super) const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// The longest stdout line parsed; a longer one is drained and ignored.
const MAX_LINE: usize = 1 << 20;

/// What the program printed that neon-perf reads.
#[derive(Default)]
pub(super) struct Printed {
    pub metrics: Vec<ProgramMetric>,
    pub checks: Vec<Check>,
    /// The first broken metric or check line.
    pub error: Option<String>,
    /// The last lines of stderr.
    pub stderr_tail: String,
    /// Set when a pipe was still open at the deadline.
    pub held_open: bool,
}

enum Item {
    Metric(ProgramMetric),
    Check(Check),
    Error(String),
    StdoutDone,
    Stderr(String),
}

/// The two reader threads of one child.
pub(super) struct Readers {
    rx: mpsc::Receiver<Item>,
}

impl Readers {
    pub fn start(stdout: ChildStdout, stderr: ChildStderr) -> Readers {
        let (tx, rx) = mpsc::channel();
        let out_tx = tx.clone();
        thread::spawn(move || read_stdout(stdout, &out_tx));
        thread::spawn(move || {
            let tail = drain_tail(stderr, STDERR_TAIL_BYTES);
            let text = tail_lines(&String::from_utf8_lossy(&tail), STDERR_TAIL_LINES);
            let _ = tx.send(Item::Stderr(text));
        });
        Readers { rx }
    }

    /// Everything read until both pipes closed, or until `grace` has
    /// passed (then `held_open` is set and the threads are left to end
    /// when the pipe's last holder does).
    pub fn finish(self, grace: Duration) -> Printed {
        let deadline = Instant::now() + grace;
        let mut p = Printed::default();
        let (mut out_done, mut err_done) = (false, false);
        while !(out_done && err_done) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Item::Metric(m)) => p.metrics.push(m),
                Ok(Item::Check(c)) => p.checks.push(c),
                Ok(Item::Error(e)) => {
                    p.error.get_or_insert(e);
                }
                Ok(Item::StdoutDone) => out_done = true,
                Ok(Item::Stderr(t)) => {
                    p.stderr_tail = t;
                    err_done = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    p.held_open = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        p
    }
}

/// Reads stdout to the end as bytes, not text: a line that is not valid
/// UTF-8 is one more line that is not a metric, and reading goes on (stopping
/// would drop later metrics and leave the program writing into a closed
/// pipe).
fn read_stdout(stdout: ChildStdout, tx: &mpsc::Sender<Item>) {
    let mut lines = ByteLines::new(stdout);
    while let Some(bytes) = lines.next_line() {
        let Ok(line) = std::str::from_utf8(bytes) else {
            continue;
        };
        let item = match parse_metric_line(line) {
            Ok(Some(m)) => Item::Metric(m),
            Ok(None) => match parse_check_line(line) {
                Ok(Some(c)) => Item::Check(c),
                Ok(None) => continue,
                Err(e) => Item::Error(e),
            },
            Err(e) => Item::Error(e),
        };
        if tx.send(item).is_err() {
            return;
        }
    }
    let _ = tx.send(Item::StdoutDone);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_tail_keeps_the_last_bytes() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let tail = drain_tail(&data[..], 1000);
        assert_eq!(tail, &data[data.len() - 1000..]);
    }
}
