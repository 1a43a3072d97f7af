//! Entry of `neon-perf oom-child`, the child process every out-of-memory
//! probe runs in: a host stress or model probe (`host`), or a model probe
//! on a GPU (`cuda`). Here, above both, so neither imports the other back.

use std::path::PathBuf;

use super::host::OomChildArgs;
use super::host::child::{LimitError, Unenforceable, limit_self, pattern_of, probe};
use super::host::stress;
use crate::plan::batch_sweep::ModelSpec;

/// Entry of `neon-perf oom-child`: prints one JSON line, returns the exit code.
pub fn child_main(args: &OomChildArgs) -> i32 {
    // One thread for candle inside the child: thread stacks and per-thread
    // malloc arenas would otherwise eat the limit.
    // SAFETY: single-threaded at this point (called first thing in the child).
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let spec = match &args.model {
        Some(json) => match serde_json::from_str::<ModelSpec>(json) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("oom-child: bad --model: {e}");
                return 2;
            }
        },
        None => None,
    };
    if let Some(dev) = &args.device {
        let Some(m) = spec else {
            eprintln!("oom-child: --device needs --model (only probes run on a GPU)");
            return 2;
        };
        return super::cuda::probe::child_main(dev, &m, args);
    }
    let limit = match limit_self(args.limit) {
        Ok(l) => l,
        Err(LimitError::Unenforceable(why)) => {
            let line = Unenforceable { unenforceable: why };
            println!("{}", serde_json::to_string(&line).unwrap_or_default());
            return 3;
        }
        Err(LimitError::Other(e)) => {
            eprintln!("oom-child: {e}");
            return 2;
        }
    };
    let line = match spec {
        Some(m) => {
            let base = args.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
            serde_json::to_string(&probe(&m, args.batch, &base))
        }
        None => match stress(args.limit, pattern_of(&args.pattern), args.chunk) {
            Ok(mut r) => {
                r.limit_bytes = limit;
                serde_json::to_string(&r)
            }
            Err(e) => {
                eprintln!("oom-child: {e}");
                return 1;
            }
        },
    };
    match line {
        Ok(l) => {
            println!("{l}");
            0
        }
        Err(e) => {
            eprintln!("oom-child: {e}");
            1
        }
    }
}
