//! Staying awake between replies. When the client's thread sleeps in
//! `epoll_wait` between two replies, the server pays for waking it on every
//! reply it sends (`sock_def_readable` → a cross-CPU wake-up, costly in a
//! VM). Against a single-threaded server that is the bottleneck, that cost
//! comes straight out of its throughput. A [`Spinner`] task keeps the
//! client's runtime polling its I/O driver without blocking for `window`
//! after the last reply, so a server's burst of replies lands on a thread
//! that is already awake; after `window` with no reply it parks, and the
//! next reply wakes it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// Shared between the spinner task and the connections.
pub struct Spin {
    t0: Instant,
    window_ns: u64,
    last_ns: AtomicU64,
    parked: AtomicBool,
    wake: Notify,
    done: AtomicBool,
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

    /// Ends the spinner task.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The spinner task: yields (the runtime then polls its I/O driver with
    /// a zero timeout) while the last activity is within the window.
    pub async fn run(self: Arc<Self>) {
        while !self.done.load(Ordering::Acquire) {
            let now = self.t0.elapsed().as_nanos() as u64;
            if now.saturating_sub(self.last_ns.load(Ordering::Relaxed)) < self.window_ns {
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
            assert!(!spin.parked.load(Ordering::Acquire), "a reply unparks it");
            until("parked again after the window", || {
                spin.parked.load(Ordering::Acquire)
            })
            .await;
            spin.finish();
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("finish ends the task")
                .unwrap();
        });
    }
}
