//! Issue #22, the profiling engine on a real program: tests/fixtures/
//! profile/work.c built here, recorded with `perf record` as the base
//! (`work 1`) and the head (`work 2`, `slow_part` doing twice the work);
//! the differential names `slow_part` first and both flame graphs draw.
//! Where perf events are not allowed the trial is ignored with the reason
//! (`NEON_PERF_REQUIRE_PERF=1` makes that a failure); the folding and the
//! diff are covered on stored `perf script` output either way
//! (`profile::folded` unit tests).

#[macro_use]
mod needs;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use neon_perf::profile::{Perf, Target, change_lines, svg, top_changes};

fn the_doubled_function_is_named_first() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("work");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profile/work.c");
    let st = Command::new("cc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(st.success());
    let perf = Perf::find().unwrap();
    let env = BTreeMap::new();
    let profile = |factor: &str| {
        let argv = vec![bin.display().to_string(), factor.to_string()];
        let t = Target {
            argv: &argv,
            env: &env,
            cwd: dir.path(),
            timeout: Duration::from_secs(60),
        };
        perf.profile(&t, &dir.path().join(format!("{factor}.data")))
            .unwrap()
    };
    let (base, head) = (profile("1"), profile("2"));
    let top = top_changes(&base, &head, 5);
    println!("{}", change_lines(&top).join("\n"));
    assert_eq!(top[0].function, "slow_part", "{top:?}");
    assert!(top[0].delta() > 0.03, "{top:?}");
    let diff = svg::differential(&base, &head, "work: head vs base").unwrap();
    assert!(diff.contains("slow_part"));
    assert!(
        svg::flame_graph(&head, "work")
            .unwrap()
            .contains("steady_part")
    );
}

trials! {
    the_doubled_function_is_named_first: needs::PERF;
}
