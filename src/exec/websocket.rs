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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::exec::command::substitute;
use crate::exec::{Availability, ExecError, ExecEvent, ExecOutput, Executor, RunCtx};
use crate::metric::{Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::plan::websocket::{FloodPoint, Load as PlanLoad, MessageType, Ready, Target};
use crate::plan::{Kind, KindSpec, ScenarioPlan, WebsocketFloodSpec, point_labels};
use crate::result::Check;
use crate::units::format_bytes;
use crate::ws::client::limits::{SPARE, ensure_open_files};
use crate::ws::client::process::{
    MemoryReport, MemorySampler, ReadyCheck, ServerCommand, ServerProcess, free_port,
};
use crate::ws::client::{
    self, FloodConfig, FloodReport, Frame, Load, Payload, Progress, StopAfter,
};

pub struct WebsocketFloodExecutor;

impl Executor for WebsocketFloodExecutor {
    fn kind(&self) -> Kind {
        Kind::WebsocketFlood
    }

    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        let KindSpec::WebsocketFlood(spec) = &plan.spec else {
            return Availability::Ready;
        };
        let Some(server) = &spec.server else {
            return Availability::Ready;
        };
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

/// The suite's folder as an absolute path, so paths built from it mean the
/// same whatever the server's working directory is.
fn suite_dir(plan: &ScenarioPlan) -> PathBuf {
    std::path::absolute(&plan.base_dir).unwrap_or_else(|_| plan.base_dir.clone())
}

/// Placeholders of `url` and `server`: `{port}`, `{neon_perf}`, `{suite_dir}`.
fn vars(plan: &ScenarioPlan, port: &str) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("port".to_string(), port.to_string());
    v.insert(
        "suite_dir".to_string(),
        suite_dir(plan).display().to_string(),
    );
    v.insert("neon_perf".to_string(), String::new());
    v
}

fn server_cwd(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    vars: &BTreeMap<String, String>,
) -> PathBuf {
    let dir = suite_dir(plan);
    match spec.server.as_ref().and_then(|s| s.cwd.as_ref()) {
        Some(c) => dir.join(substitute(&c.display().to_string(), vars).unwrap_or_default()),
        None => dir,
    }
}

fn find_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let p = cwd.join(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// A server of the flood: in-process, started, or already running.
enum Running {
    Builtin(crate::ws::server::ServerHandle),
    Process(Box<ServerProcess>),
    External,
}

struct Served {
    url: String,
    running: Running,
    /// Whose memory counts as the server's.
    pid: Option<u32>,
    describe: String,
    max_message: Option<usize>,
}

async fn start_server(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    ctx: &RunCtx<'_>,
) -> Result<Served, ExecError> {
    match spec.target() {
        Target::Builtin(cfg) => {
            let max_message = Some(cfg.max_message);
            let handle = crate::ws::server::start(cfg)
                .await
                .map_err(|e| ExecError::Failed(format!("cannot start the builtin server: {e}")))?;
            Ok(Served {
                url: format!("ws://{}/", handle.addr()),
                running: Running::Builtin(handle),
                pid: Some(std::process::id()),
                describe: "the builtin reference server (in this process)".into(),
                max_message,
            })
        }
        Target::Url { url, server: None } => Ok(Served {
            describe: url.clone(),
            url,
            running: Running::External,
            pid: None,
            max_message: spec.max_message.map(|m| m.0 as usize),
        }),
        Target::Url {
            url,
            server: Some(server),
        } => {
            let port = free_port()
                .map_err(|e| ExecError::Failed(format!("cannot find a free port: {e}")))?
                .to_string();
            let mut v = vars(plan, &port);
            v.insert(
                "neon_perf".into(),
                ctx.env.neon_perf_bin.display().to_string(),
            );
            let sub = |s: &str| substitute(s, &v).map_err(ExecError::Failed);
            let argv = server
                .command
                .iter()
                .map(|a| sub(a))
                .collect::<Result<Vec<_>, _>>()?;
            let env = server
                .env
                .iter()
                .map(|(k, val)| Ok((k.clone(), sub(val)?)))
                .collect::<Result<BTreeMap<_, _>, ExecError>>()?;
            let url = sub(&url)?;
            let ready = match spec.ready() {
                Some(Ready::Tcp(a)) => ReadyCheck::Tcp(sub(&a)?),
                Some(Ready::Log(r)) => ReadyCheck::Log(
                    regex::Regex::new(&r).map_err(|e| ExecError::Failed(e.to_string()))?,
                ),
                None => ReadyCheck::Tcp(
                    crate::plan::websocket::host_port(&url)
                        .unwrap_or_default()
                        .to_string(),
                ),
            };
            let cmd = ServerCommand {
                argv,
                env,
                cwd: server_cwd(plan, spec, &v),
                ready,
                timeout: spec.server_timeout(),
            };
            let p = ServerProcess::start(&cmd)
                .await
                .map_err(ExecError::Failed)?;
            if let Ok(mut pids) = ctx.child_pids.lock() {
                pids.push(p.pid());
            }
            Ok(Served {
                describe: format!("`{}` at {url}", p.name()),
                url,
                pid: Some(p.pid()),
                running: Running::Process(Box::new(p)),
                max_message: spec.max_message.map(|m| m.0 as usize),
            })
        }
    }
}

impl Served {
    async fn stop(self) -> Vec<String> {
        match self.running {
            Running::Builtin(h) => {
                h.shutdown().await;
                Vec::new()
            }
            Running::Process(mut p) => {
                let (_, killed) = p.stop().await;
                if killed {
                    vec![format!(
                        "server `{}` ignored SIGTERM for {:?} and was killed",
                        p.name(),
                        crate::ws::client::process::STOP_GRACE
                    )]
                } else {
                    Vec::new()
                }
            }
            Running::External => Vec::new(),
        }
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
    let result = flood_points(plan, spec, points, &mut served, ctx, &mut out).await;
    let result = match result {
        Ok(()) => run_checks(spec, &served, &mut out).await,
        Err(e) => Err(e),
    };
    out.warnings.extend(served.stop().await);
    result.map(|()| out)
}

/// The robustness checks, one [`Check`] each, after the flood.
async fn run_checks(
    spec: &WebsocketFloodSpec,
    served: &Served,
    out: &mut ExecOutput,
) -> Result<(), ExecError> {
    let target = crate::ws::checks::CheckTarget {
        url: served.url.clone(),
        server_pid: served.pid,
        max_message: served.max_message,
    };
    for kind in spec.check_kinds() {
        out.checks
            .push(crate::ws::checks::run_check(kind, &target).await);
    }
    Ok(())
}

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

async fn flood_points(
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
        let payload = build_payload(plan, spec, fp)?;
        let load = match fp.load {
            PlanLoad::Closed { in_flight } => Load::Closed {
                in_flight: in_flight as usize,
            },
            PlanLoad::Open { rate } => Load::Open { rate },
        };
        let mut cfg = FloodConfig::new(served.url.clone(), fp.connections as usize, load, payload);
        cfg.ramp_up = spec.ramp_up();
        cfg.warmup = ctx.settings.warmup;
        cfg.stop = match spec.messages {
            Some(m) => StopAfter::Messages(m),
            None => StopAfter::Duration(spec.duration.map_or(ctx.settings.max_time, |d| d.0)),
        };
        cfg.time_limit = ctx.settings.timeout;
        cfg.seed = spec.payload.as_ref().and_then(|p| p.seed).unwrap_or(0) ^ index as u64;

        let sampler = served.pid.map(|pid| {
            MemorySampler::start(
                pid,
                ctx.settings.monitor_interval.max(Duration::from_millis(20)),
            )
        });
        let progress = Arc::new(Progress::default());
        let cpu0 = process_cpu();
        let t0 = Instant::now();
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
                    if let Some(s) = sampler {
                        s.stop();
                    }
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
        // Connections dropped all at once may end the flood before the exit
        // is seen: a server that died is the failure to report.
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
                if let Some(s) = sampler {
                    s.stop();
                }
                let what = format!(
                    "during the flood ({} of {} connections up)",
                    report.connected, fp.connections
                );
                return Err(ExecError::Failed(p.died(status, &what).await));
            }
        }
        let cpu = process_cpu() - cpu0;
        let _wall = t0.elapsed();
        let memory = sampler.map(|s| s.stop());
        if report.connected == 0 {
            return Err(ExecError::Failed(format!(
                "no connection to {} succeeded: {}",
                served.url,
                report
                    .totals
                    .error_examples
                    .first()
                    .map_or("no error recorded", String::as_str)
            )));
        }
        let labels = point_labels(point);
        let own_cpu = matches!(served.running, Running::Builtin(_)).then_some(());
        metrics(
            &report,
            fp,
            &labels,
            memory,
            (own_cpu.is_none()).then_some(cpu),
            out,
        );
        out.checks
            .push(flood_check(&report, spec.max_errors(), &labels));
    }
    Ok(())
}

fn flood_check(r: &FloodReport, max_errors: u64, labels: &BTreeMap<String, String>) -> Check {
    let errors = r.errors();
    let at = if labels.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let t = &r.totals;
    let mut evidence = format!(
        "{} of {} connections up; {} requests sent, {} replies ({} in the {:.2} s window, {:.0} msg/s); {errors} error(s), at most {max_errors} allowed",
        r.connected,
        r.connections,
        t.sent_total,
        t.received_total,
        t.received_in_window,
        r.window.as_secs_f64(),
        r.msg_rate()
    );
    if errors > 0 {
        let kinds: Vec<String> = t
            .errors
            .iter()
            .map(|(k, n)| format!("{} {n}", k.id()))
            .collect();
        evidence.push_str(&format!(" ({})", kinds.join(", ")));
        if !t.closes.is_empty() {
            let codes: Vec<String> = t.closes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            evidence.push_str(&format!("; close codes {}", codes.join(", ")));
        }
        if let Some(e) = t.error_examples.first() {
            evidence.push_str(&format!("; first: {e}"));
        }
    }
    Check::new(
        format!("flood{at}: requests answered"),
        errors <= max_errors,
        evidence,
        None,
    )
}

fn metrics(
    r: &FloodReport,
    fp: &FloodPoint,
    labels: &BTreeMap<String, String>,
    memory: Option<MemoryReport>,
    client_cpu: Option<f64>,
    out: &mut ExecOutput,
) {
    let key = |name: &str| MetricKey::new(name).with_labels(labels);
    let series = |name: &str, unit: Unit, dir: Direction, samples: Vec<f64>| MetricSeries {
        key: key(name),
        estimator: default_estimator(&unit, dir),
        unit,
        direction: dir,
        samples,
    };
    let single =
        |k: MetricKey, unit: Unit, v: f64| MetricSeries::single(k, unit, Direction::Neither, v);
    let t = &r.totals;
    let rates = r.slice_rates();
    let m = &mut out.metrics;
    m.push(series(
        "msg_rate",
        Unit::PerSecond,
        Direction::HigherIsBetter,
        rates.iter().map(|x| x.0).collect(),
    ));
    m.push(series(
        "byte_rate",
        Unit::BytesPerSecond,
        Direction::HigherIsBetter,
        rates.iter().map(|x| x.1).collect(),
    ));
    m.push(single(
        key("msg_rate_overall"),
        Unit::PerSecond,
        r.msg_rate(),
    ));
    let w = r.window.as_secs_f64().max(1e-9);
    m.push(single(
        key("byte_rate_overall").with("dir", "received"),
        Unit::BytesPerSecond,
        t.received_bytes_in_window as f64 / w,
    ));
    m.push(single(
        key("byte_rate_overall").with("dir", "sent"),
        Unit::BytesPerSecond,
        t.sent_bytes_in_window as f64 / w,
    ));
    if !t.rtt_sample.items().is_empty() {
        m.push(series(
            "rtt",
            Unit::Seconds,
            Direction::LowerIsBetter,
            t.rtt_sample.items().to_vec(),
        ));
        for (name, q) in [
            ("rtt_p50", 0.5),
            ("rtt_p90", 0.9),
            ("rtt_p99", 0.99),
            ("rtt_p999", 0.999),
        ] {
            m.push(single(
                key(name),
                Unit::Seconds,
                t.rtt.value_at_quantile(q) as f64 * 1e-9,
            ));
        }
        m.push(single(
            key("rtt_max"),
            Unit::Seconds,
            t.rtt.max() as f64 * 1e-9,
        ));
    }
    if !t.connect_s.is_empty() {
        m.push(series(
            "connect_time",
            Unit::Seconds,
            Direction::LowerIsBetter,
            t.connect_s.clone(),
        ));
        for (name, q) in [("connect_time_p50", 0.5), ("connect_time_p99", 0.99)] {
            m.push(single(
                key(name),
                Unit::Seconds,
                t.connect.value_at_quantile(q) as f64 * 1e-9,
            ));
        }
    }
    if matches!(fp.load, PlanLoad::Open { .. }) && !t.send_lag.is_empty() {
        m.push(single(
            key("send_lag_p99"),
            Unit::Seconds,
            t.send_lag.value_at_quantile(0.99) as f64 * 1e-9,
        ));
        m.push(single(
            key("send_lag_max"),
            Unit::Seconds,
            t.send_lag.max() as f64 * 1e-9,
        ));
    }
    m.push(single(
        key("messages").with("dir", "sent"),
        Unit::Count,
        t.sent_in_window as f64,
    ));
    m.push(single(
        key("messages").with("dir", "received"),
        Unit::Count,
        t.received_in_window as f64,
    ));
    for k in client::ErrorKind::ALL {
        let n = t.errors.get(&k).copied().unwrap_or(0);
        m.push(single(
            key("errors").with("type", k.id()),
            Unit::Count,
            n as f64,
        ));
    }
    for (code, n) in &t.closes {
        m.push(single(
            key("unexpected_closes").with("code", code),
            Unit::Count,
            *n as f64,
        ));
    }
    if let Some(mem) = memory.filter(|m| m.samples > 0) {
        for (at, v) in [
            ("start", mem.rss_start),
            ("peak", mem.rss_peak),
            ("end", mem.rss_end),
        ] {
            m.push(single(
                key("server_rss").with("at", at),
                Unit::Bytes,
                v as f64,
            ));
        }
        if let Some(g) = mem.gpu_peak {
            m.push(single(
                key("server_gpu_memory").with("at", "peak"),
                Unit::Bytes,
                g as f64,
            ));
        }
        let _ = format_bytes;
    }
    if let Some(cpu) = client_cpu {
        let msgs = (t.sent_total + t.received_total).max(1) as f64;
        m.push(single(key("client_cpu_per_msg"), Unit::Seconds, cpu / msgs));
    }
}
