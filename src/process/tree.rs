//! A started program's whole tree of processes, found by a tag in their
//! environment: a descendant that moves to another process group or
//! session (`setsid`, a daemon's double fork) keeps the environment it was
//! started with, so it is still found and ended when its sample is over.
//! (One that replaces its whole environment, `env -i`, escapes the tag; the
//! deadline on reading its output still ends the run.)

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that carries the tag.
pub const TAG_VAR: &str = "NEON_PERF_TREE";

/// How many stop-and-look rounds [`Tag::end`] makes before it kills what
/// it found: a tree that forks faster than it is stopped is still ended.
const ROUNDS: usize = 50;

/// The mark every process of one started program carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag(String);

/// A process of the tree that was still running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Straggler {
    pub pid: u32,
    /// Its command line, cut to 120 characters.
    pub command: String,
}

impl std::fmt::Display for Straggler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` (pid {})", self.command, self.pid)
    }
}

impl Tag {
    /// A tag no other program started by this process carries.
    pub fn new() -> Tag {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Tag(format!("{}.{n}", std::process::id()))
    }

    /// The value to set as [`TAG_VAR`] in the program's environment.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// The environment entry that carries it, `NEON_PERF_TREE=<value>`.
    fn entry(&self) -> Vec<u8> {
        format!("{TAG_VAR}={}", self.0).into_bytes()
    }

    /// Whether process `pid` carries the tag.
    pub fn carried_by(&self, pid: u32) -> bool {
        let needle = self.entry();
        std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| carries(&env, &needle))
    }

    /// Every live process that carries the tag (this process aside).
    pub fn find(&self) -> Vec<Straggler> {
        self.scan(None).0
    }

    /// What [`Tag::find`] finds, and whether some process could not be
    /// told: one in the middle of `execve` reads as an empty environment
    /// for a moment, like a zombie or a kernel thread does for good.
    ///
    /// With `first`, the pid of the tree's first process, only pids given
    /// out since are read: its descendants were all started after it, and
    /// pids are handed out in rising order (wrapping at `pid_max`), so the
    /// look costs what the tree's own processes cost, not every process on
    /// the machine.
    fn scan(&self, first: Option<u32>) -> (Vec<Straggler>, bool) {
        let needle = self.entry();
        let me = std::process::id();
        let since = first.and_then(|f| Some((f, last_pid()?)));
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return (Vec::new(), false);
        };
        let mut found = Vec::new();
        let mut unsure = false;
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me || since.is_some_and(|(f, last)| !given_since(pid, f, last)) {
                continue;
            }
            // A zombie's or another user's environment reads as empty or
            // refused: neither is a live process of ours.
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if carries(&env, &needle) {
                found.push(Straggler {
                    pid,
                    command: command_line(pid),
                });
            } else if env.is_empty() && maybe_in_exec(pid) {
                unsure = true;
            }
        }
        (found, unsure)
    }

    /// Ends every process that carries the tag: stops them all first (so
    /// none forks a new one unseen), looks again until nothing new turns
    /// up, then kills them. Returns the ones it found.
    pub fn end(&self) -> Vec<Straggler> {
        self.end_from(None)
    }

    /// [`Tag::end`] for a tree whose first process had pid `first`: only
    /// the pids given out since are looked at.
    pub fn end_since(&self, first: u32) -> Vec<Straggler> {
        self.end_from(Some(first))
    }

    fn end_from(&self, first: Option<u32>) -> Vec<Straggler> {
        let mut seen: Vec<Straggler> = Vec::new();
        for _ in 0..ROUNDS {
            let (found, unsure) = self.scan(first);
            let fresh: Vec<Straggler> = found
                .into_iter()
                .filter(|s| !seen.iter().any(|o| o.pid == s.pid))
                .collect();
            if fresh.is_empty() && !unsure {
                break;
            }
            if fresh.is_empty() {
                // Look again once a process in `execve` has its new
                // environment in place.
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            for s in &fresh {
                signal(s.pid, libc::SIGSTOP);
            }
            seen.extend(fresh);
        }
        for s in &seen {
            signal(s.pid, libc::SIGKILL);
        }
        seen
    }
}

impl Default for Tag {
    fn default() -> Self {
        Tag::new()
    }
}

/// Whether `pid` belongs to the tree of a program this process started
/// (it carries one of our tags): its GPU memory, say, is the workload's,
/// however deep below the program it runs (a launcher, `sh -c`, workers).
pub fn started_here(pid: u32) -> bool {
    let prefix = format!("{TAG_VAR}={}.", std::process::id()).into_bytes();
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|&b| b == 0)
            .any(|e| e.starts_with(&prefix) && e[prefix.len()..].iter().all(u8::is_ascii_digit))
    })
}

/// The pid most recently handed out in this pid namespace.
fn last_pid() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` was handed out after `first`, up to `last`, the pid
/// counter having maybe wrapped round in between.
fn given_since(pid: u32, first: u32, last: u32) -> bool {
    if last >= first {
        pid > first && pid <= last
    } else {
        pid > first || pid <= last
    }
}

/// Whether a process whose environment reads empty may be one in the
/// middle of `execve`: not a zombie, not a kernel thread (whose parent is
/// kthreadd, pid 2, or none).
fn maybe_in_exec(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("Z");
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    state != "Z" && state != "X" && ppid > 2
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid read from /proc a moment ago; ESRCH (it has
    // already gone) is fine.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Whether a NUL-separated environment block holds `needle` (`NAME=value`)
/// as one whole entry.
fn carries(env: &[u8], needle: &[u8]) -> bool {
    env.split(|&b| b == 0).any(|entry| entry == needle)
}

fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: String = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let text = if text.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    } else {
        text
    };
    let mut cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn pids_given_since_wrap_round() {
        assert!(given_since(120, 100, 150));
        assert!(!given_since(100, 100, 150));
        assert!(!given_since(90, 100, 150));
        assert!(!given_since(151, 100, 150));
        // Wrapped at pid_max: from 4,000,000 round to 300.
        assert!(given_since(4_000_100, 4_000_000, 400));
        assert!(given_since(350, 4_000_000, 400));
        assert!(!given_since(500, 4_000_000, 400));
    }

    #[test]
    fn an_entry_matches_only_whole() {
        let needle = b"NEON_PERF_TREE=1.2";
        assert!(carries(b"A=b\0NEON_PERF_TREE=1.2\0C=d\0", needle));
        assert!(carries(b"NEON_PERF_TREE=1.2\0", needle));
        assert!(carries(b"A=b\0NEON_PERF_TREE=1.2", needle));
        assert!(!carries(b"A=b\0NEON_PERF_TREE=1.23\0", needle));
        assert!(!carries(b"XNEON_PERF_TREE=1.2\0", needle));
        assert!(!carries(b"", needle));
    }

    fn alive(pid: u32) -> bool {
        // A zombie has no environment left: count it as gone.
        std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| !e.is_empty())
    }

    /// A descendant in its own session, its parent gone: still found by the
    /// tag and ended.
    #[test]
    fn a_detached_descendant_is_found_and_ended() {
        let tag = Tag::new();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!(
            "setsid sh -c 'echo $$ > {p}; exec sleep 300' </dev/null >/dev/null 2>&1 &",
            p = pidfile.display()
        );
        let st = Command::new("sh")
            .args(["-c", &script])
            .env(TAG_VAR, tag.value())
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let t0 = Instant::now();
        let pid = loop {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break p;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no pid written");
            std::thread::sleep(Duration::from_millis(10));
        };
        let found = tag.find();
        assert!(found.iter().any(|s| s.pid == pid), "{found:?}");
        assert!(
            found.iter().any(|s| s.command.contains("sleep 300")),
            "{found:?}"
        );
        let ended = tag.end();
        assert!(ended.iter().any(|s| s.pid == pid), "{ended:?}");
        let t0 = Instant::now();
        while alive(pid) {
            assert!(t0.elapsed() < Duration::from_secs(5), "pid {pid} lives on");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(tag.find().is_empty());
    }

    #[test]
    fn a_tagged_process_was_started_here() {
        let tag = Tag::new();
        let mut ours = Command::new("sleep")
            .arg("30")
            .env(TAG_VAR, tag.value())
            .spawn()
            .unwrap();
        let mut theirs = Command::new("sleep")
            .arg("30")
            .env(TAG_VAR, "1.1")
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !started_here(ours.id()) {
            assert!(t0.elapsed() < Duration::from_secs(5), "never seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!started_here(theirs.id()));
        assert!(!started_here(std::process::id()));
        let _ = (ours.kill(), theirs.kill(), ours.wait(), theirs.wait());
    }

    #[test]
    fn another_tag_is_left_alone() {
        let mine = Tag::new();
        let theirs = Tag::new();
        let mut child = Command::new("sleep")
            .arg("300")
            .env(TAG_VAR, theirs.value())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while theirs.find().is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(mine.end().is_empty());
        assert!(
            child.try_wait().unwrap().is_none(),
            "the other tree was touched"
        );
        assert_eq!(theirs.end().len(), 1);
        let _ = child.wait();
    }
}
