//! The flood of each sweep point: payload, client settings, progress
//! events, and a watch on a started server that dies mid-flood.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::metrics::{flood_check, label_suffix, metrics, server_gpu_bound};
use super::server::{Running, Served};
use crate::exec::{ExecError, ExecEvent, ExecOutput, RunCtx};
use crate::plan::websocket::{FloodPoint, Load as PlanLoad, MessageType};
use crate::plan::{ParamPoint, ScenarioPlan, WebsocketFloodSpec, point_labels};
use crate::ws::client::ping::PingConfig;
use crate::ws::client::process::{MemoryReport, MemorySampler};
use crate::ws::client::{
    self, FloodConfig, FloodReport, Frame, Load, Payload, Progress, StopAfter,
};

fn build_payload(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    p: &FloodPoint,
) -> Result<Payload, ExecError> {
    let frame = match p.message {
        MessageType::Binary => Frame::Binary,
        MessageType::Text => Frame::Text,
    };
    let seed = spec.payload.as_ref().and_then(|p| p.seed).unwrap_or(0);
    if spec.is_builtin() {
        let dim = spec
            .builtin
            .clone()
            .unwrap_or_default()
            .serve_config()
            .input_dim;
        return Ok(Payload::features(dim, seed));
    }
    let size = p.size.map(|s| (s.min as usize, s.max as usize));
    match spec.payload.as_ref().and_then(|p| p.file.as_ref()) {
        Some(f) => {
            let path = plan.base_dir.join(f);
            let data = std::fs::read(&path).map_err(|e| {
                ExecError::Failed(format!("cannot read payload file {}: {e}", path.display()))
            })?;
            Payload::from_file(frame, data, size)
                .map_err(|e| ExecError::Failed(format!("{}: {e}", path.display())))
        }
        None => {
            let (min, max) = size.unwrap_or((64, 64));
            Ok(Payload::random(frame, min, max, seed))
        }
    }
}

/// CPU time of this process (all threads), seconds.
fn process_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The flood of point `index` (`fp`, resolved from `point`) against `url`.
pub(super) fn flood_config(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    (fp, point): (&FloodPoint, &ParamPoint),
    index: usize,
    url: &str,
    ctx: &RunCtx<'_>,
) -> Result<FloodConfig, ExecError> {
    let payload = match &spec.protocol {
        // The template replaces the payload; this one is never sent.
        Some(_) => Payload::random(Frame::Binary, 64, 64, 0),
        None => build_payload(plan, spec, fp)?,
    };
    let load = match fp.load {
        PlanLoad::Closed { in_flight } => Load::Closed {
            in_flight: in_flight as usize,
        },
        PlanLoad::Open { rate } => Load::Open { rate },
    };
    let mut cfg = FloodConfig::new(url.to_string(), fp.connections as usize, load, payload);
    cfg.ramp_up = spec.ramp_up();
    cfg.warmup = ctx.settings.warmup;
    cfg.stop = match spec.messages {
        Some(m) => StopAfter::Messages(m),
        None => StopAfter::Duration(spec.duration.map_or(ctx.settings.max_time, |d| d.0)),
    };
    cfg.time_limit = ctx.settings.timeout;
    cfg.spin = spec.client_spin();
    cfg.seed = spec.payload.as_ref().and_then(|p| p.seed).unwrap_or(0) ^ index as u64;
    cfg.headers = super::protocol::headers(spec)?;
    cfg.tls = super::protocol::trust(spec, &plan.base_dir)?;
    cfg.ping = spec.ping_settings().map(|p| PingConfig {
        interval: p.interval,
        timeout: p.timeout,
    });
    cfg.protocol = match &spec.protocol {
        Some(p) => Some(super::protocol::protocol(
            p,
            point,
            cfg.seed,
            &plan.base_dir,
        )?),
        None => None,
    };

    Ok(cfg)
}

pub(super) async fn flood_points(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    points: &[FloodPoint],
    served: &mut Served,
    ctx: &mut RunCtx<'_>,
    out: &mut ExecOutput,
) -> Result<(), ExecError> {
    let total = points.len();
    for (index, (fp, point)) in points.iter().zip(&plan.points).enumerate() {
        let label = point
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        ctx.event(ExecEvent::Point {
            index,
            total,
            label,
        });
        let cfg = flood_config(plan, spec, (fp, point), index, &served.url, ctx)?;
        let sampler = served.pid.map(|pid| {
            MemorySampler::start(
                pid,
                ctx.settings.monitor_interval.max(Duration::from_millis(20)),
            )
        });
        let cpu0 = process_cpu();
        let report = match drive(cfg, served, fp, ctx).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(s) = sampler {
                    s.stop();
                }
                return Err(e);
            }
        };
        let cpu = process_cpu() - cpu0;
        let memory = sampler.map(|s| s.stop());
        if report.connected == 0 {
            let first = report
                .totals
                .error_examples
                .first()
                .map_or("no error recorded", String::as_str);
            return Err(ExecError::Failed(format!(
                "no connection to {} succeeded: {first}{}",
                served.url,
                ready_too_early(spec, first)
            )));
        }
        let own_cpu = matches!(served.running, Running::Builtin(_));
        let client_cpu = (!own_cpu).then_some(cpu);
        record((plan, spec), fp, point, &report, (memory, client_cpu), out);
    }
    Ok(())
}

/// A hint when every connection was refused by a server started with a
/// `ready = "log:…"` line: the line came before the server listened.
fn ready_too_early(spec: &WebsocketFloodSpec, first_error: &str) -> String {
    match spec.server.as_ref().and_then(|s| s.ready.as_deref()) {
        // Refused by the socket, not by the server's answer (a 401 means
        // it listened).
        Some(r)
            if r.starts_with("log:")
                && (first_error.contains("Connection refused")
                    || first_error.contains("os error 111")) =>
        {
            format!(
                " (the server printed a line matching `ready = \"{r}\"`, but nothing listened on \
             the port yet: match a line it prints once it listens, such as uvicorn's \
             \"Uvicorn running on\", or leave `ready` out to wait until the port accepts)"
            )
        }
        _ => String::new(),
    }
}

/// Runs one point's flood to its end, with progress events, failing when
/// a started server dies during it (or just after: connections dropped
/// all at once may end the flood before the exit is seen).
async fn drive(
    cfg: FloodConfig,
    served: &mut Served,
    fp: &FloodPoint,
    ctx: &mut RunCtx<'_>,
) -> Result<FloodReport, ExecError> {
    let progress = Arc::new(Progress::default());
    let flood = client::flood(cfg, progress.clone());
    tokio::pin!(flood);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut reported = 0u64;
    let report = loop {
        let died = async {
            match &mut served.running {
                Running::Process(p) => Some(p.exited().await),
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut flood => break r.map_err(ExecError::Failed)?,
            Some(status) = died => {
                let Running::Process(p) = &mut served.running else { unreachable!() };
                let what = format!(
                    "during the flood ({} of {} connections up)",
                    progress.connected.load(Ordering::Relaxed),
                    fp.connections
                );
                return Err(ExecError::Failed(p.died(status, &what).await));
            }
            _ = tick.tick() => {
                let n = progress.slices.load(Ordering::Relaxed);
                if n > reported {
                    reported = n;
                    ctx.event(ExecEvent::Sample { count: n as usize });
                }
            }
        }
    };
    if let Running::Process(p) = &mut served.running {
        let dropped = report
            .totals
            .errors
            .contains_key(&client::ErrorKind::Closed)
            || report.totals.errors.contains_key(&client::ErrorKind::Lost);
        let status = match p.try_exited() {
            Some(s) => Some(s),
            None if dropped => tokio::time::timeout(Duration::from_millis(500), p.exited())
                .await
                .ok(),
            None => None,
        };
        if let Some(status) = status {
            let what = format!(
                "during the flood ({} of {} connections up)",
                report.connected, fp.connections
            );
            return Err(ExecError::Failed(p.died(status, &what).await));
        }
    }
    Ok(report)
}

/// A point's metrics and checks (flood, streams, pings, the server's GPU
/// memory bound).
fn record(
    (plan, spec): (&ScenarioPlan, &WebsocketFloodSpec),
    fp: &FloodPoint,
    point: &ParamPoint,
    report: &FloodReport,
    (memory, client_cpu): (Option<MemoryReport>, Option<f64>),
    out: &mut ExecOutput,
) {
    let labels = point_labels(point);
    out.checks
        .extend(server_gpu_bound(plan, &labels, memory.as_ref()));
    if let Some(why) = memory.as_ref().and_then(MemoryReport::gpu_unattributable) {
        let w = format!("server_gpu_memory not reported: {why}");
        if !out.warnings.contains(&w) {
            out.warnings.push(w);
        }
    }
    let streams = spec.protocol.is_some();
    metrics(report, (fp, streams), &labels, memory, client_cpu, out);
    let units = spec.protocol.as_ref().and_then(|p| p.units_name());
    super::stream_metrics::stream_metrics(report, units, &labels, &mut out.metrics);
    let goodput = spec.protocol.as_ref().and_then(|p| p.goodput);
    if let Some(w) = super::stream_metrics::goodput_misses(report, goodput, &labels) {
        out.warnings.push(w);
    }
    out.checks
        .push(flood_check(report, spec.max_errors(), &labels));
    if let Some(p) = &report.pings {
        super::ping::ping_metrics(p, &labels, &mut out.metrics);
        out.checks
            .push(crate::ws::checks::ping_check(p, &label_suffix(&labels)));
    }
}
