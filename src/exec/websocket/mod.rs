//! `websocket_flood`: floods a WebSocket server (the builtin reference
//! server, a url, or a server started from `server.command`) with the engine
//! in [`crate::ws::client`], then runs the scenario's robustness `checks`
//! against the same server, and stops what it started.
//!
//! Sampling: a flood is one long measurement, not repeated runs, so the
//! adaptive sampler is not used. Its samples are: every RTT (a seeded
//! reservoir of them, for the `rtt` metric; the percentiles come from an
//! HdrHistogram of all of them), and the reply rate of each time slice of
//! the window (for `msg_rate` and `byte_rate`), so the gate compares
//! distributions, not single numbers. The window is `duration` (default: the
//! `max_time` setting) after `warmup`.
//!
//! `server` starts and stops the server, `flood` runs the flood of each
//! sweep point, `metrics` turns a flood's report into metrics and a check.

mod flood;
mod metrics;
mod ping;
mod protocol;
mod push;
mod server;
mod stream_metrics;

use crate::exec::command::substitute;
use crate::exec::{Availability, ExecError, ExecEvent, ExecOutput, Executes, Executor, RunCtx};
use crate::plan::websocket::FloodPoint;
use crate::plan::{KindSpec, ScenarioPlan, WebsocketFloodSpec};
use crate::ws::client::limits::{SPARE, ensure_open_files};
use flood::flood_points;
use server::{Served, find_program, server_cwd, start_server, vars};

pub struct WebsocketFloodExecutor;

impl Executes for crate::plan::WebsocketFloodSpec {
    const EXECUTOR: &'static dyn Executor = &WebsocketFloodExecutor;
}

impl Executor for WebsocketFloodExecutor {
    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        let KindSpec::WebsocketFlood(spec) = &plan.spec else {
            return Availability::Ready;
        };
        let Some(server) = &spec.server else {
            return Availability::Ready;
        };
        // neon-perf itself is there (its path is known only to the run).
        if server.command[0].contains("{neon_perf}") {
            return Availability::Ready;
        }
        // Placeholders other than `{port}` are known before the run.
        let vars = vars(plan, "0");
        let Ok(program) = substitute(&server.command[0], &vars) else {
            return Availability::Ready;
        };
        let cwd = server_cwd(plan, spec, &vars);
        match find_program(&program, &cwd) {
            Some(_) => Availability::Ready,
            None => Availability::Missing(format!(
                "the server program `{program}` was not found{}",
                if program.contains("target/ws-") {
                    " (run `bash scripts/ws/setup.sh` to install the third-party servers)"
                } else {
                    ""
                }
            )),
        }
    }

    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        let KindSpec::WebsocketFlood(spec) = &plan.spec else {
            return Err(ExecError::Failed("websocket_flood: wrong spec".into()));
        };
        let points = plan
            .points
            .iter()
            .map(|p| spec.point(p).map_err(|(_, m)| ExecError::Failed(m)))
            .collect::<Result<Vec<_>, _>>()?;
        let builtin = spec.is_builtin();
        let cores = crate::host::cpu_cores().max(1) as usize;
        let threads = spec
            .client_threads
            .map(|t| t as usize)
            .unwrap_or(if builtin { cores } else { (cores / 2).max(1) });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("neon-perf-flood")
            .enable_all()
            .build()
            .map_err(|e| ExecError::Failed(format!("cannot start the client runtime: {e}")))?;
        // Descriptors: one per connection, twice that with the server in-process.
        let most = points
            .iter()
            .map(|p| p.connections as u64)
            .max()
            .unwrap_or(1);
        let needed = most * if builtin { 2 } else { 1 } + SPARE;
        let why = if builtin {
            format!("{most} connections to the builtin server (both ends in this process)")
        } else {
            format!("{most} connections")
        };
        ensure_open_files(needed, &why).map_err(ExecError::Failed)?;
        rt.block_on(run_all(plan, spec, &points, threads, ctx))
    }
}
async fn run_all(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    points: &[FloodPoint],
    threads: usize,
    ctx: &mut RunCtx<'_>,
) -> Result<ExecOutput, ExecError> {
    let mut served = start_server(plan, spec, ctx).await?;
    let mut out = ExecOutput {
        device: format!("websocket client ({threads} threads) → {}", served.describe),
        ..Default::default()
    };
    out.warnings.extend(protocol::insecure_warning(spec));
    out.warnings.extend(protocol::order_warning(spec, points));
    let result = flood_points(plan, spec, points, &mut served, ctx, &mut out).await;
    let result = match result {
        Ok(()) => run_checks(plan, spec, points, &served, ctx, &mut out).await,
        Err(e) => Err(e),
    };
    out.warnings.extend(served.stop().await);
    result.map(|()| out)
}

/// The robustness checks, one [`Check`] each, after the flood (`ping`
/// was measured during it). They speak with the last point's client
/// settings: its headers, and its protocol where they send requests.
async fn run_checks(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    points: &[FloodPoint],
    served: &Served,
    ctx: &mut RunCtx<'_>,
    out: &mut ExecOutput,
) -> Result<(), ExecError> {
    use crate::ws::checks::{CheckKind, CheckTarget, run_cancel, run_check};
    let kinds: Vec<CheckKind> = spec
        .check_kinds()
        .into_iter()
        .filter(|k| !k.during_flood())
        .collect();
    let Some(fp) = points.last().filter(|_| !kinds.is_empty()) else {
        return Ok(());
    };
    let last = (fp, &plan.points[points.len() - 1]);
    let flood = flood::flood_config(plan, spec, last, 0, &served.url, ctx)?;
    let target = CheckTarget {
        url: served.url.clone(),
        server_pid: served.pid,
        max_message: served.max_message,
        headers: flood.headers.clone(),
        protocol: flood.protocol.clone(),
    };
    for kind in kinds {
        ctx.event(ExecEvent::Phase {
            label: format!("`{}` check", kind.id()),
        });
        let check = match (kind, spec.cancel_settings()) {
            (CheckKind::Cancel, Some(c)) => {
                let connector = crate::ws::client::connector(&flood)
                    .await
                    .map_err(ExecError::Failed)?;
                let setup = crate::ws::checks::CancelSetup {
                    flood: flood.clone(),
                    connector,
                    streams: c.streams,
                    tolerance: c.tolerance,
                };
                run_cancel(&target, &setup).await
            }
            _ => run_check(kind, &target).await,
        };
        out.checks.push(check);
    }
    Ok(())
}
