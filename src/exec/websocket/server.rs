//! The server of a flood: the builtin reference server in this process, a
//! server started from `server.command` (placeholders substituted, readiness
//! awaited), or one already running at `url`; and how each is stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::exec::command::substitute;
use crate::exec::{ExecError, RunCtx};
use crate::plan::env_ref;
use crate::plan::websocket::{Ready, Target};
use crate::plan::{ScenarioPlan, WebsocketFloodSpec};
use crate::ws::client::process::{ReadyCheck, ServerCommand, ServerProcess, free_port};

/// The suite's folder as an absolute path, so paths built from it mean the
/// same whatever the server's working directory is.
pub(super) fn suite_dir(plan: &ScenarioPlan) -> PathBuf {
    std::path::absolute(&plan.base_dir).unwrap_or_else(|_| plan.base_dir.clone())
}

/// Placeholders of `url` and `server`: `{port}`, `{neon_perf}`, `{suite_dir}`.
pub(super) fn vars(plan: &ScenarioPlan, port: &str) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("port".to_string(), port.to_string());
    v.insert(
        "suite_dir".to_string(),
        suite_dir(plan).display().to_string(),
    );
    v.insert("neon_perf".to_string(), String::new());
    v
}

pub(super) fn server_cwd(
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

pub(super) fn find_program(program: &str, cwd: &Path) -> Option<PathBuf> {
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
pub(super) enum Running {
    Builtin(crate::ws::server::ServerHandle),
    Process(Box<ServerProcess>),
    External,
}

pub(super) struct Served {
    pub(super) url: String,
    pub(super) running: Running,
    /// Whose memory counts as the server's.
    pub(super) pid: Option<u32>,
    pub(super) describe: String,
    pub(super) max_message: Option<usize>,
}

pub(super) async fn start_server(
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
        } => start_process_on_a_free_port(plan, spec, &server, &url, ctx).await,
    }
}

/// How many ports a started server may be given: another process can take
/// the free port found for it before it binds.
const PORT_TRIES: usize = 3;

/// Starts the suite's server on a free port, on another one when it
/// exited saying its port was taken.
async fn start_process_on_a_free_port(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    server: &crate::plan::websocket::ServerSpec,
    url: &str,
    ctx: &RunCtx<'_>,
) -> Result<Served, ExecError> {
    let mut tries = 1;
    loop {
        match start_process(plan, spec, server, url, ctx).await {
            Err(ExecError::Failed(e)) if tries < PORT_TRIES && port_taken(&e) => tries += 1,
            other => return other,
        }
    }
}

/// Whether a server's failure to start says its address was in use.
fn port_taken(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("address already in use") || e.contains("eaddrinuse")
}

async fn start_process(
    plan: &ScenarioPlan,
    spec: &WebsocketFloodSpec,
    server: &crate::plan::websocket::ServerSpec,
    url: &str,
    ctx: &RunCtx<'_>,
) -> Result<Served, ExecError> {
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
        .map(|(k, val)| {
            let val = env_ref::expand_now(&format!("`server.env.{k}`"), &sub(val)?);
            Ok((k.clone(), val.map_err(ExecError::Failed)?))
        })
        .collect::<Result<BTreeMap<_, _>, ExecError>>()?;
    let url = sub(url)?;
    let ready = match spec.ready() {
        Some(Ready::Tcp(a)) => ReadyCheck::Tcp(sub(&a)?),
        Some(Ready::Log(r)) => {
            ReadyCheck::Log(regex::Regex::new(&r).map_err(|e| ExecError::Failed(e.to_string()))?)
        }
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

impl Served {
    pub(super) async fn stop(self) -> Vec<String> {
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
