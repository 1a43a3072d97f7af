//! Cancel: the first SIGINT or SIGTERM ends every program neon-perf started
//! (and their trees) and asks the run to stop after writing the reports of
//! what finished; a second one ends them again and exits at once. The exit
//! code is the conventional 128 + the signal's number (130, 143).

use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signal that asked for a cancel, if one did.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::Acquire) {
        0 => None,
        s => Some(s),
    }
}

/// The exit code of a cancelled run: 128 + the signal's number.
pub fn exit_code() -> Option<i32> {
    requested().map(|s| 128 + s)
}

/// The signal's name, as a user reads it.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// What a scenario that was running when the cancel came reads.
pub fn reason() -> Option<String> {
    requested().map(|s| {
        format!(
            "cancelled: {} arrived while it ran; its programs were ended",
            signal_name(s)
        )
    })
}

/// Starts listening for SIGINT and SIGTERM (once per process; later calls
/// do nothing). Without it, the default action ends neon-perf and leaves
/// its programs running.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM])
        else {
            eprintln!(
                "warning: cannot listen for SIGINT/SIGTERM: a cancel will leave programs running"
            );
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("neon-perf-cancel".into())
            .spawn(move || {
                for sig in signals.forever() {
                    on_signal(sig);
                }
            });
        if spawned.is_err() {
            eprintln!(
                "warning: cannot listen for SIGINT/SIGTERM: a cancel will leave programs running"
            );
        }
    });
}

fn on_signal(sig: i32) {
    let first = SIGNAL
        .compare_exchange(0, sig, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    let name = signal_name(sig);
    if first {
        eprintln!(
            "\nneon-perf: {name}: ending the programs it started, then writing the reports of what finished (send it again to stop at once)"
        );
        super::live::end_all();
    } else {
        super::live::end_all();
        eprintln!("neon-perf: second {name}: stopped at once; no report written");
        std::process::exit(128 + sig);
    }
}
