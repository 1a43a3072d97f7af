//! Open-file limit: a flood holds one descriptor per connection (two when
//! the builtin server runs in the same process), so 10,000 connections need
//! the soft RLIMIT_NOFILE raised. It is raised up to the hard limit; beyond
//! that only the administrator can help, and the message says how.

/// Descriptors kept free for everything else (files, pipes, epoll, NVML).
pub const SPARE: u64 = 256;

/// The (soft, hard) open-file limits of this process.
pub fn open_files() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some((r.rlim_cur, r.rlim_max))
}

/// What [`ensure_open_files`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raised {
    /// The soft limit was already high enough.
    Enough { soft: u64 },
    /// The soft limit was raised from `from` to `to`.
    Raised { from: u64, to: u64 },
}

/// Makes sure `needed` descriptors can be open at once, raising the soft
/// limit towards the hard one. An error names both limits and what to do.
pub fn ensure_open_files(needed: u64, why: &str) -> Result<Raised, String> {
    let (soft, hard) = open_files().ok_or("cannot read RLIMIT_NOFILE")?;
    if soft >= needed {
        return Ok(Raised::Enough { soft });
    }
    if hard < needed {
        return Err(format!(
            "{why} needs about {needed} open files, but the hard limit (RLIMIT_NOFILE) is {hard} (soft {soft}): \
             raise it (`ulimit -Hn {needed}` as root, `LimitNOFILE=` in a systemd unit, `--ulimit nofile={needed}` for docker) \
             or use fewer connections"
        ));
    }
    let target = needed.max(soft).min(hard);
    let r = libc::rlimit {
        rlim_cur: target as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    if rc != 0 {
        return Err(format!(
            "{why} needs about {needed} open files; raising the soft limit from {soft} to {target} failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(Raised::Raised {
        from: soft,
        to: target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_and_the_impossible_is_explained() {
        let (soft, hard) = open_files().unwrap();
        assert!(soft <= hard);
        assert!(matches!(
            ensure_open_files(8, "x"),
            Ok(Raised::Enough { .. })
        ));
        if hard < u64::MAX / 2 {
            let e = ensure_open_files(hard + 1, "a flood of 99 connections").unwrap_err();
            assert!(e.contains("hard limit (RLIMIT_NOFILE)"), "{e}");
            assert!(
                e.starts_with("a flood of 99 connections needs about"),
                "{e}"
            );
        }
    }
}
