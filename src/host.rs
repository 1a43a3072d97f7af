//! Facts about this host: CPU model and cores (the CPU part of the hardware
//! key), the git commit of the working tree.

use std::path::Path;
use std::process::Command;

/// The CPU model name from /proc/cpuinfo, or "unknown-cpu".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| parse_cpu_model(&s))
        .unwrap_or_else(|| "unknown-cpu".to_string())
}

fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
}

/// Logical CPUs this process may use (respects affinity and cgroup quotas).
pub fn cpu_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// `git rev-parse HEAD` in `dir`, with `-dirty` when the tree has changes;
/// `NEON_PERF_COMMIT` when set (a copied tree without `.git`, e.g. a GPU
/// host that got the binary and suites only).
pub fn git_commit(dir: &Path) -> Option<String> {
    if let Ok(c) = std::env::var("NEON_PERF_COMMIT")
        && !c.is_empty()
    {
        return Some(c);
    }
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(dir)
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    Some(commit)
}

/// Memory available to a new allocation (`MemAvailable`), bytes.
pub fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_from_cpuinfo() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nflags\t: x\n";
        assert_eq!(
            parse_cpu_model(text).as_deref(),
            Some("AMD EPYC 7B13 64-Core Processor")
        );
        assert_eq!(parse_cpu_model("processor: 0\n"), None);
        assert!(cpu_cores() >= 1);
    }
}
