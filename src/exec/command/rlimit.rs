//! Whether a host `memory_limit` can be set on a child here: RLIMIT_DATA
//! may always be lowered, but raising it above this process's hard limit
//! (`ulimit -Hd`, a container's limits) needs CAP_SYS_RESOURCE. Told before
//! a search starts, so that a limit the platform cannot enforce is a
//! reason, not a program that "could not start: Operation not permitted".

use crate::units::format_byte_count;

/// CAP_SYS_RESOURCE's bit in the capability sets (linux/capability.h).
const CAP_SYS_RESOURCE: u32 = 24;

/// `Err(reason)` when RLIMIT_DATA cannot be set to `limit` bytes on a child
/// of this process.
pub fn check_data_limit(limit: u64) -> Result<(), String> {
    let hard = hard_data_limit();
    decide(limit, hard, has_cap_sys_resource())
}

/// The hard RLIMIT_DATA that setting `limit` bytes would have to exceed,
/// when this process may not raise it; `None` when `limit` can be set.
pub fn blocking_hard_limit(limit: u64) -> Option<u64> {
    blocks(limit, hard_data_limit(), has_cap_sys_resource())
}

/// The rule, apart from where its inputs come from: `hard` is `None` when
/// unlimited.
fn blocks(limit: u64, hard: Option<u64>, may_raise: bool) -> Option<u64> {
    hard.filter(|&hard| limit > hard && !may_raise)
}

fn decide(limit: u64, hard: Option<u64>, may_raise: bool) -> Result<(), String> {
    match blocks(limit, hard, may_raise) {
        Some(hard) => Err(format!(
            "memory_limit {} cannot be enforced here: this process's hard RLIMIT_DATA is {} \
             (`ulimit -Hd`, or the container's limits), and raising it needs CAP_SYS_RESOURCE; \
             lower `memory_limit` to at most {}, or run with a higher hard limit",
            format_byte_count(limit),
            format_byte_count(hard),
            format_byte_count(hard),
        )),
        _ => Ok(()),
    }
}

/// This process's hard RLIMIT_DATA in bytes; `None` when unlimited.
fn hard_data_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut r) } == 0;
    (ok && r.rlim_max != libc::RLIM_INFINITY).then_some(r.rlim_max)
}

/// From `CapEff` in /proc/self/status; `false` when it cannot be read.
pub fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_eff(&s))
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

fn cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_above_the_hard_limit_needs_the_capability() {
        let gib = 1u64 << 30;
        assert!(decide(2 * gib, None, false).is_ok());
        assert!(decide(gib, Some(2 * gib), false).is_ok());
        assert!(decide(2 * gib, Some(gib), true).is_ok());
        let why = decide(2 * gib, Some(gib), false).unwrap_err();
        assert!(
            why.starts_with("memory_limit 2.00 GiB cannot be enforced here: this process's hard RLIMIT_DATA is 1.00 GiB"),
            "{why}"
        );
        assert!(
            why.contains("lower `memory_limit` to at most 1.00 GiB"),
            "{why}"
        );
    }

    #[test]
    fn the_effective_capabilities_are_read_from_the_status_file() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let caps = cap_eff(status).unwrap();
        assert_eq!(caps & (1 << CAP_SYS_RESOURCE), 0);
        assert_eq!(cap_eff("CapEff:\t0000000001000000\n"), Some(1 << 24));
        assert_eq!(cap_eff("Name:\tx\n"), None);
    }
}
