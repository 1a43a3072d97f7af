//! Staying awake between replies. When the client's thread sleeps in
//! `epoll_wait` between two replies, the server pays for waking it on every
//! reply it sends (`sock_def_readable` → a cross-CPU wake-up, costly in a
//! VM). Against a single-threaded server that is the bottleneck, that cost
//! comes straight out of its throughput. The [`Spin::run`] task keeps the
//! client's runtime polling its I/O driver without blocking for `window`
//! after the last reply, so a server's burst of replies lands on a thread
//! that is already awake; after `window` with no reply it parks, and the
//! next reply wakes it again.
//!
//! Polling only pays while a core is free for it. Against a server that
//! needs every core (the reference server's forward passes), it took about
//! 28% of the throughput, so every [`CHECK_EVERY`] of polling the spinner reads
//! how many threads the machine has runnable (`/proc/loadavg`), and when
//! that is more than its CPUs [`WAITING_CHECKS`] times in a row (someone is
//! waiting for one) it stops polling for [`BACK_OFF`], longer while that
//! goes on. Even a busy thread at idle priority slowed that server by
//! 1–15% on this VM (the vCPUs share the host's cores), so backing off
//! is the only cure, not a lower priority.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// How often, while polling, the spinner checks for threads waiting for a CPU.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(1);
/// Consecutive checks that must find a thread waiting: a thread that wakes
/// for a moment (a monitor's sample) is not a server short of CPU.
pub const WAITING_CHECKS: u32 = 5;
/// How long it lets the thread sleep when one is waiting; twice as long
/// each time one is still waiting right after, up to 16 times as long.
pub const BACK_OFF: std::time::Duration = std::time::Duration::from_millis(20);
const MAX_DOUBLINGS: u32 = 4;

/// Whether more threads are runnable than the machine has CPUs: the 4th
/// field of `/proc/loadavg` is "runnable/total" (this thread included).
/// `false` when it cannot be read.
fn oversubscribed(cpus: u64) -> bool {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| runnable(&s))
        .is_some_and(|r| r > cpus)
}

fn runnable(loadavg: &str) -> Option<u64> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Online CPUs of the whole machine (what `/proc/loadavg` counts against).
fn online_cpus() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as u64 } else { 1 }
}

/// Shared between the spinner task and the connections.
pub struct Spin {
    t0: Instant,
    window_ns: u64,
    last_ns: AtomicU64,
    parked: AtomicBool,
    wake: Notify,
    done: AtomicBool,
    /// Times the spinner stopped polling because a thread waited for a CPU.
    backed_off: AtomicU64,
}

impl Spin {
    pub fn new(t0: Instant, window: std::time::Duration) -> Arc<Self> {
        Arc::new(Spin {
            t0,
            window_ns: window.as_nanos() as u64,
            last_ns: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            wake: Notify::new(),
            done: AtomicBool::new(false),
            backed_off: AtomicU64::new(0),
        })
    }

    /// A connection read a reply at `now_ns` (since `t0`). The shared
    /// time is only rewritten when it is an eighth of the window old, so
    /// connections on several threads do not fight over its cache line on
    /// every message.
    #[inline]
    pub fn active(&self, now_ns: u64) {
        if now_ns.saturating_sub(self.last_ns.load(Ordering::Relaxed)) > self.window_ns / 8 {
            self.last_ns.store(now_ns, Ordering::Relaxed);
        }
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Times it stopped polling for [`BACK_OFF`] because the machine's CPUs
    /// were all wanted.
    pub fn backed_off(&self) -> u64 {
        self.backed_off.load(Ordering::Relaxed)
    }

    /// Ends the spinner task.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The spinner task: yields (the runtime then polls its I/O driver with
    /// a zero timeout) while the last activity is within the window.
    pub async fn run(self: Arc<Self>) {
        let cpus = online_cpus();
        let check_ns = CHECK_EVERY.as_nanos() as u64;
        let mut next_check = 0;
        let mut streak = 0;
        let mut doublings = 0u32;
        let mut clean_since = true;
        while !self.done.load(Ordering::Acquire) {
            let now = self.t0.elapsed().as_nanos() as u64;
            if now.saturating_sub(self.last_ns.load(Ordering::Relaxed)) < self.window_ns {
                if now >= next_check {
                    next_check = now + check_ns;
                    if oversubscribed(cpus) {
                        streak += 1;
                    } else {
                        streak = 0;
                        clean_since = true;
                    }
                    if streak >= WAITING_CHECKS {
                        // Still wanted at once after the last back-off:
                        // back off twice as long (up to MAX_DOUBLINGS doublings).
                        doublings = if clean_since {
                            0
                        } else {
                            (doublings + 1).min(MAX_DOUBLINGS)
                        };
                        streak = 0;
                        clean_since = false;
                        self.backed_off.fetch_add(1, Ordering::Relaxed);
                        // `finish` ends the back-off early.
                        tokio::select! {
                            _ = tokio::time::sleep(BACK_OFF * (1 << doublings)) => {}
                            _ = self.wake.notified() => {}
                        }
                        continue;
                    }
                }
                tokio::task::yield_now().await;
            } else {
                let woken = self.wake.notified();
                self.parked.store(true, Ordering::Release);
                woken.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[test]
    fn runnable_threads_from_loadavg() {
        assert_eq!(runnable("0.58 1.52 1.59 3/345 12345\n"), Some(3));
        assert_eq!(runnable("0.58 1.52"), None);
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn parks_after_the_window_wakes_on_a_reply_and_finishes() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let spin = Spin::new(Instant::now(), Duration::from_millis(2));
            let task = tokio::spawn(spin.clone().run());
            until("parked with no reply", || {
                spin.parked.load(Ordering::Acquire)
            })
            .await;
            spin.active(spin.t0.elapsed().as_nanos() as u64);
            // Only the spinner sets `parked`, and `active` cleared it: seeing
            // it set again proves the reply woke the spinner, which then
            // polled through the window and parked. (Asserting `!parked`
            // right here raced with that: a 2 ms stall of this thread on a
            // busy CI machine let the spinner park again first.)
            until(
                "woken by the reply, then parked again after the window",
                || spin.parked.load(Ordering::Acquire),
            )
            .await;
            spin.finish();
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("finish ends the task")
                .unwrap();
        });
    }
}
