//! The programs neon-perf has started and not yet ended, so that a cancel
//! (SIGINT, SIGTERM) ends every one of them, whichever thread started it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::tree::Tag;

struct Entry {
    id: u64,
    /// The process group it was started in, if it has its own.
    group: Option<u32>,
    tag: Tag,
}

static LIVE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// A started program's place in the list; dropping it takes it off.
#[must_use = "the program is taken off the list when this is dropped"]
pub struct Registration {
    id: u64,
}

/// Puts a started program on the list. If a cancel has already been asked
/// for, the program is ended at once (the cancel may have swept the list a
/// moment before it was on it).
pub fn register(group: Option<u32>, tag: &Tag) -> Registration {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let entry = Entry {
        id,
        group,
        tag: tag.clone(),
    };
    if super::cancel::requested().is_some() {
        end(&entry);
    }
    lock().push(entry);
    Registration { id }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock().retain(|e| e.id != self.id);
    }
}

/// Ends every program on the list, and their trees. Returns how many
/// programs were on it.
pub fn end_all() -> usize {
    let live = lock();
    for e in live.iter() {
        end(e);
    }
    live.len()
}

fn end(e: &Entry) {
    if let Some(g) = e.group {
        // SAFETY: kill(2) with a negative pid signals the group the
        // program was started in; ESRCH when it is gone is fine.
        unsafe { libc::kill(-(g as i32), libc::SIGKILL) };
    }
    e.tag.end();
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}
