//! A server process neon-perf starts for a flood (`server.command`): started
//! in its own process group with its output captured (the last lines are
//! kept for error messages), waited for until ready (a TCP connection
//! succeeds, or a line of output matches a regex), watched while the flood
//! runs, and stopped with SIGTERM, then SIGKILL after a grace period. Also
//! the memory sampler for whichever process serves (RSS of the process
//! tree; GPU memory through NVML when it is there).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::monitor::tree_gpu::{NvmlProcesses, ProcessGpuMemory, Usage, unknown};
use crate::process::{TAG_VAR, Tag, live};

/// Lines of output kept for messages.
const TAIL_LINES: usize = 30;
/// Characters kept of one line.
const LINE_CHARS: usize = 300;
/// Between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// When a started server counts as ready.
#[derive(Clone, Debug)]
pub enum ReadyCheck {
    /// A TCP connection to this `host:port` succeeds.
    Tcp(String),
    /// A line of stdout or stderr matches.
    Log(regex::Regex),
}

impl std::fmt::Display for ReadyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadyCheck::Tcp(a) => write!(f, "tcp://{a}"),
            ReadyCheck::Log(r) => write!(f, "log:{}", r.as_str()),
        }
    }
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct ServerCommand {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub ready: ReadyCheck,
    pub timeout: Duration,
}

#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

/// A running server started by neon-perf. Dropping it kills its process group.
pub struct ServerProcess {
    child: Child,
    pid: u32,
    name: String,
    started: Instant,
    tail: Arc<Mutex<Tail>>,
    exited: Option<ExitStatus>,
    /// Its tree's tag: what it leaves behind is ended with it, and a cancel
    /// (SIGINT, SIGTERM) ends it through the list of live programs.
    tag: Tag,
    _live: live::Registration,
}

/// `exit code 1`, `signal 9 (SIGKILL)`.
pub fn describe_status(s: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => {
            let name = match sig {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGINT => " (SIGINT)",
                _ => "",
            };
            format!("signal {sig}{name}")
        }
        _ => "an unknown status".into(),
    }
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    tail: Arc<Mutex<Tail>>,
    pattern: Option<regex::Regex>,
    matched: Arc<(AtomicBool, Notify)>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if pattern.as_ref().is_some_and(|p| p.is_match(&line)) {
                matched.0.store(true, Ordering::Release);
                matched.1.notify_waiters();
            }
            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
            if t.lines.len() == TAIL_LINES {
                t.lines.pop_front();
            }
            t.lines.push_back(line.chars().take(LINE_CHARS).collect());
        }
    });
}

impl ServerProcess {
    /// Starts the server and waits until it is ready. On failure the error
    /// names the command and shows the end of its output.
    pub async fn start(cmd: &ServerCommand) -> Result<ServerProcess, String> {
        let name = cmd.argv.join(" ");
        let tag = Tag::new();
        let mut c = Command::new(&cmd.argv[0]);
        c.args(&cmd.argv[1..])
            .envs(&cmd.env)
            .env(TAG_VAR, tag.value())
            .current_dir(&cmd.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = c.spawn().map_err(|e| {
            format!(
                "cannot start server `{name}` (in {}): {e}",
                cmd.cwd.display()
            )
        })?;
        let pid = child.id().unwrap_or(0);
        let live = live::register((pid > 0).then_some(pid), &tag);
        let tail = Arc::new(Mutex::new(Tail::default()));
        let matched = Arc::new((AtomicBool::new(false), Notify::new()));
        let pattern = match &cmd.ready {
            ReadyCheck::Log(r) => Some(r.clone()),
            ReadyCheck::Tcp(_) => None,
        };
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, tail.clone(), pattern.clone(), matched.clone());
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, tail.clone(), pattern, matched.clone());
        }
        let mut server = ServerProcess {
            child,
            pid,
            name,
            started: Instant::now(),
            tail,
            exited: None,
            tag,
            _live: live,
        };
        let ready = async {
            match &cmd.ready {
                ReadyCheck::Tcp(addr) => loop {
                    if tokio::net::TcpStream::connect(addr.as_str()).await.is_ok() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                },
                ReadyCheck::Log(_) => loop {
                    let n = matched.1.notified();
                    if matched.0.load(Ordering::Acquire) {
                        return;
                    }
                    n.await;
                },
            }
        };
        tokio::select! {
            () = ready => Ok(server),
            st = server.child.wait() => {
                let st = st.map(|s| describe_status(&s)).unwrap_or_else(|e| e.to_string());
                // Let the readers catch the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(format!(
                    "server `{}` exited with {st} before it was ready ({}){}",
                    server.name, cmd.ready, server.tail_text()
                ))
            }
            () = tokio::time::sleep(cmd.timeout) => {
                let msg = format!(
                    "server `{}` was not ready within {:?} (waiting for {}){}",
                    server.name, cmd.timeout, cmd.ready, server.tail_text()
                );
                server.stop().await;
                Err(msg)
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The end of its output, as an indented block (empty when it said nothing).
    pub fn tail_text(&self) -> String {
        let t = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.lines.is_empty() {
            return "; it printed nothing".into();
        }
        let mut s = format!("; the last {} line(s) of its output:", t.lines.len());
        for l in &t.lines {
            s.push_str("\n  | ");
            s.push_str(l);
        }
        s
    }

    /// Resolves when the process exits (cancel-safe).
    pub async fn exited(&mut self) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        match self.child.wait().await {
            Ok(s) => {
                self.exited = Some(s);
                s
            }
            Err(_) => std::future::pending().await,
        }
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// The failure message for a server that exited while it was needed.
    pub async fn died(&mut self, status: ExitStatus, during: &str) -> String {
        tokio::time::sleep(Duration::from_millis(50)).await;
        format!(
            "server `{}` (pid {}) exited with {} {during}, {:.1} s after it started{}",
            self.name,
            self.pid,
            describe_status(&status),
            self.started.elapsed().as_secs_f64(),
            self.tail_text()
        )
    }

    fn signal_group(&self, sig: libc::c_int) {
        if self.pid > 0 {
            // SAFETY: kill(2) on our own child's process group.
            unsafe {
                libc::kill(-(self.pid as libc::pid_t), sig);
            }
        }
        if sig == libc::SIGKILL {
            // What it started in other groups or sessions goes too.
            self.tag.end();
        }
    }

    /// SIGTERM to its process group, SIGKILL after [`STOP_GRACE`]. Returns
    /// how it ended and whether SIGKILL was needed.
    pub async fn stop(&mut self) -> (Option<ExitStatus>, bool) {
        if let Some(s) = self.exited {
            self.signal_group(libc::SIGKILL); // anything it left behind
            return (Some(s), false);
        }
        self.signal_group(libc::SIGTERM);
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(r) => {
                self.exited = r.ok();
                self.signal_group(libc::SIGKILL);
                (self.exited, false)
            }
            Err(_) => {
                self.signal_group(libc::SIGKILL);
                self.exited = self.child.wait().await.ok();
                (self.exited, true)
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.signal_group(libc::SIGKILL);
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, read and released; the server
/// started next binds it).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

fn vm_rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// `root` and every process below it.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parens.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// RSS of a process and its descendants, bytes.
pub fn tree_rss(root: u32) -> Option<u64> {
    let pids = if root == std::process::id() {
        vec![root] // this process: its own threads, not the test runner's children
    } else {
        process_tree(root)
    };
    let mut total = None;
    for p in pids {
        if let Some(r) = vm_rss(p) {
            *total.get_or_insert(0) += r;
        }
    }
    total
}

/// GPU memory NVML attributes to a process and its descendants, summed
/// over devices: `None` without NVML; an error when it cannot be told
/// ([`crate::monitor::tree_gpu::unattributable`]).
pub fn tree_gpu_memory(root: u32) -> Option<Result<u64, String>> {
    Some(gpu_memory_of(&process_tree(root))?.and_then(Usage::attributed))
}

fn gpu_memory_of(pids: &[u32]) -> Option<Result<Usage, String>> {
    let src = NvmlProcesses::open().ok()?;
    Some(src.used(&|p| pids.contains(&p)))
}

/// What [`MemorySampler`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    pub rss_start: u64,
    pub rss_peak: u64,
    pub rss_end: u64,
    /// The server tree's GPU memory at its largest; `None` when NVML never
    /// listed one of its processes (a server on the CPU, or no NVML).
    pub gpu_peak: Option<u64>,
    /// Its GPU memory in the first and the last NVML sample (0 while NVML
    /// listed none of its processes); meaningful with `gpu_peak`.
    pub gpu_start: u64,
    pub gpu_end: u64,
    pub gpu_samples: usize,
    /// The most processes of one sample that NVML listed holding GPU
    /// memory with PIDs not to be found here (`tree_gpu::Usage::unseen`).
    pub gpu_unseen: usize,
    /// The most of its processes NVML listed in one sample without a
    /// figure for their memory (`tree_gpu::Usage::withheld`).
    pub gpu_withheld: usize,
    pub samples: usize,
}

impl MemoryReport {
    /// Why the server's GPU memory is not reported: NVML listed only
    /// processes of a PID namespace that is not this one, or listed the
    /// server's without a figure.
    pub fn gpu_unattributable(&self) -> Option<String> {
        unknown(self.gpu_peak.is_some(), self.gpu_unseen, self.gpu_withheld)
    }
}

/// Samples a process tree's RSS (and GPU memory) on its own thread.
pub struct MemorySampler {
    stop: mpsc::Sender<()>,
    handle: Option<JoinHandle<MemoryReport>>,
}

impl MemorySampler {
    pub fn start(root: u32, interval: Duration) -> MemorySampler {
        let (tx, rx) = mpsc::channel();
        let gpu = crate::device::nvml().is_ok();
        let handle = std::thread::Builder::new()
            .name("neon-perf-server-memory".into())
            .spawn(move || {
                let mut r = MemoryReport::default();
                // Finding the descendants scans /proc: do it every tenth sample.
                let mut tree = Vec::new();
                let mut sample = |r: &mut MemoryReport| {
                    if r.samples % 10 == 0 {
                        tree = if root == std::process::id() {
                            vec![root]
                        } else {
                            process_tree(root)
                        };
                    }
                    let rss = tree.iter().filter_map(|&p| vm_rss(p)).reduce(|a, b| a + b);
                    if let Some(rss) = rss {
                        if r.samples == 0 {
                            r.rss_start = rss;
                        }
                        r.rss_peak = r.rss_peak.max(rss);
                        r.rss_end = rss;
                        r.samples += 1;
                    }
                    if gpu {
                        if let Some(Ok(u)) = gpu_memory_of(&tree) {
                            if r.gpu_samples == 0 {
                                r.gpu_start = u.ours;
                            }
                            r.gpu_end = u.ours;
                            r.gpu_samples += 1;
                            if u.matched > 0 {
                                r.gpu_peak = Some(r.gpu_peak.unwrap_or(0).max(u.ours));
                            }
                            r.gpu_unseen = r.gpu_unseen.max(u.unseen);
                            r.gpu_withheld = r.gpu_withheld.max(u.withheld);
                        }
                    }
                };
                loop {
                    sample(&mut r);
                    match rx.recv_timeout(interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                sample(&mut r);
                r
            })
            .ok();
        MemorySampler { stop: tx, handle }
    }

    pub fn stop(mut self) -> MemoryReport {
        let _ = self.stop.send(());
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_rss_and_a_tree() {
        let me = std::process::id();
        assert!(tree_rss(me).unwrap() > 1 << 20);
        assert_eq!(process_tree(me)[0], me);
        let s = MemorySampler::start(me, Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(20));
        let r = s.stop();
        assert!(
            r.samples >= 2 && r.rss_peak >= r.rss_start.min(r.rss_end),
            "{r:?}"
        );
    }

    #[test]
    fn statuses_read_well() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_status(&ExitStatus::from_raw(1 << 8)),
            "exit code 1"
        );
        assert_eq!(
            describe_status(&ExitStatus::from_raw(9)),
            "signal 9 (SIGKILL)"
        );
    }
}
