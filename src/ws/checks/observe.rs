//! What a check can see of the server process from outside: resident memory
//! and open file descriptors, read from `/proc/PID` (Linux).

use std::time::Duration;

/// The server process, when known.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    pub pid: Option<u32>,
}

impl Server {
    /// Resident set, bytes.
    pub fn rss(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Open file descriptors.
    pub fn fds(&self) -> Option<usize> {
        Some(
            std::fs::read_dir(format!("/proc/{}/fd", self.pid?))
                .ok()?
                .count(),
        )
    }

    /// Whether the process is still running (`None` when unknown).
    pub fn alive(&self) -> Option<bool> {
        let pid = self.pid?;
        Some(match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // the state letter follows the parenthesised command name
            Ok(s) => s.rsplit_once(')').is_some_and(|(_, rest)| {
                !matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))
            }),
            Err(_) => false,
        })
    }

    /// Polls until the fd count is at most `target` or `limit` passes;
    /// returns the last count seen.
    pub async fn fds_settle(&self, target: usize, limit: Duration) -> Option<usize> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let n = self.fds()?;
            if n <= target || tokio::time::Instant::now() >= deadline {
                return Some(n);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// "12.3 MiB".
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1u64 << 20) as f64)
}

/// "VmRSS 41.0 → 43.2 MiB (+2.2)", or that memory was not observed.
pub fn rss_change(before: Option<u64>, after: Option<u64>) -> String {
    match (before, after) {
        (Some(a), Some(b)) => format!(
            "server VmRSS {} → {} ({:+.1} MiB)",
            mib(a as f64),
            mib(b as f64),
            (b as f64 - a as f64) / (1u64 << 20) as f64
        ),
        _ => "server memory not observed (pid unknown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_this_process() {
        let me = Server {
            pid: Some(std::process::id()),
        };
        assert!(me.rss().unwrap() > 0);
        assert!(me.fds().unwrap() >= 3);
        assert_eq!(me.alive(), Some(true));
        let nobody = Server { pid: None };
        assert_eq!(
            (nobody.rss(), nobody.fds(), nobody.alive()),
            (None, None, None)
        );
        assert!(rss_change(None, Some(1)).contains("not observed"));
        assert_eq!(
            rss_change(Some(1 << 20), Some(3 << 20)),
            "server VmRSS 1.0 MiB → 3.0 MiB (+2.0 MiB)"
        );
    }
}
