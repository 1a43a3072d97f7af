//! One flood from start to end: the connections opened over `ramp_up` (at
//! most `max_connecting` handshakes at a time), started together once
//! every attempt finished, the window set, progress reported, the drain
//! deadline enforced, and the recorders turned into a [`FloodReport`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use super::conn_core::{self, ConnLoad, ConnPlan, Shared, UNSET};
use super::record::Recorder;
use super::{
    Connector, ErrorKind, FloodConfig, FloodReport, Load, Progress, StopAfter, conn, connector_to,
    ping, resolve, spin, stream,
};

/// Runs the flood to its end. Dropping the future aborts every connection.
pub async fn flood(cfg: FloodConfig, progress: Arc<Progress>) -> Result<FloodReport, String> {
    let addr = resolve(&cfg.url).await?;
    let n = cfg.connections.max(1);
    let t0 = Instant::now();
    let spin = (!cfg.spin.is_zero()).then(|| spin::Spin::new(t0, cfg.spin));
    let sh = shared(&cfg, t0, spin.clone());
    let opener = Opener {
        sh: sh.clone(),
        connector: connector_to(&cfg, addr)?,
        sem: Arc::new(Semaphore::new(cfg.max_connecting.max(1))),
        left: Arc::new(AtomicUsize::new(n)),
        all_attempted: Arc::new(Notify::new()),
        progress: progress.clone(),
        go: Arc::new((AtomicBool::new(false), Notify::new())),
        url: cfg.url.clone(),
        timeout: cfg.connect_timeout,
    };
    let mut set = JoinSet::new();
    for i in 0..n {
        let plan = conn_plan(&cfg, i, n);
        if plan.quota == Some(0) {
            opener.left.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let start_at = sh.t0 + cfg.ramp_up.mul_f64(i as f64 / n as f64);
        set.spawn(opener.clone().open_and_run(plan, start_at));
    }
    if opener.left.load(Ordering::Acquire) > 0 {
        opener.all_attempted.notified().await;
    }
    let ramp_time = sh.t0.elapsed();
    let connected = progress.connected.load(Ordering::Relaxed);
    let (start, deadline) = open_window(&cfg, &sh);
    opener.go.0.store(true, Ordering::Release);
    opener.go.1.notify_waiters();
    drop(opener);
    let spinner = spin.as_ref().map(|s| tokio::spawn(s.clone().run()));
    wait_all(&mut set, &sh, &progress, start, deadline).await;
    drop(set);
    if let (Some(s), Some(task)) = (&spin, spinner) {
        s.finish();
        let _ = task.await;
    }
    let sh = Arc::try_unwrap(sh).map_err(|_| "a connection outlived the flood".to_string())?;
    let totals = sh.recorder.into_totals();
    let window = match cfg.stop {
        StopAfter::Duration(d) => d,
        StopAfter::Messages(_) => {
            Duration::from_nanos(totals.last_reply_ns.saturating_sub(start).max(1))
        }
    };
    Ok(FloodReport {
        window,
        slice: cfg.slice(),
        connections: n,
        connected,
        ramp_time,
        totals,
        spin_back_offs: spin.map(|s| s.backed_off()),
        streams: sh.streams.map(stream::StreamRecorder::into_totals),
        pings: sh.pings.map(ping::PingRecorder::into_totals),
    })
}

/// What every connection of the flood reads.
fn shared(cfg: &FloodConfig, t0: Instant, spin: Option<Arc<spin::Spin>>) -> Arc<Shared> {
    Arc::new(Shared {
        t0,
        start_ns: AtomicU64::new(UNSET),
        end_ns: AtomicU64::new(UNSET),
        slice_ns: cfg.slice().as_nanos().max(1) as u64,
        stop: AtomicBool::new(false),
        stop_notify: Arc::new(Notify::new()),
        recorder: Recorder::new(cfg.reservoir, cfg.seed ^ 0x7274_7473),
        payload: cfg.payload.clone(),
        spin,
        protocol: cfg.protocol.clone(),
        streams: cfg
            .protocol
            .as_ref()
            .map(|_| stream::StreamRecorder::new(cfg.reservoir, cfg.seed ^ 0x7374_7265)),
        ping: cfg.ping,
        pings: cfg.ping.as_ref().map(ping::PingRecorder::new),
    })
}

/// Connection `i` of `n`: its share of the load (open loop: its phase in
/// the schedule), of a `messages` quota, and its seed.
fn conn_plan(cfg: &FloodConfig, i: usize, n: usize) -> ConnPlan {
    let load = match cfg.load {
        Load::Closed { in_flight } => ConnLoad::Closed {
            k: in_flight.max(1),
        },
        Load::Open { rate } => {
            let interval_ns = n as f64 * 1e9 / rate;
            ConnLoad::Open {
                interval_ns,
                phase_ns: interval_ns * i as f64 / n as f64,
            }
        }
    };
    let quota = match cfg.stop {
        StopAfter::Messages(m) => Some(m / n as u64 + u64::from((i as u64) < m % n as u64)),
        StopAfter::Duration(_) => None,
    };
    ConnPlan {
        index: i as u32,
        load,
        quota,
        seed: crate::stats::rng::splitmix64(&mut (cfg.seed ^ i as u64)),
    }
}

/// What opening one connection needs; cloned into each connection's task.
#[derive(Clone)]
struct Opener {
    sh: Arc<Shared>,
    connector: Connector,
    sem: Arc<Semaphore>,
    /// Attempts not yet finished; the last one notifies `all_attempted`.
    left: Arc<AtomicUsize>,
    all_attempted: Arc<Notify>,
    progress: Arc<Progress>,
    /// Connections wait here until every handshake is done: a server busy
    /// with messages would starve the handshakes still queued.
    go: Arc<(AtomicBool, Notify)>,
    url: String,
    timeout: Duration,
}

impl Opener {
    /// At `start_at`: the handshake (under the semaphore), then, once every
    /// connection may go, the connection's run.
    async fn open_and_run(self, plan: ConnPlan, start_at: Instant) {
        tokio::time::sleep_until(start_at.into()).await;
        let permit = self.sem.acquire_owned().await.expect("never closed");
        let t = Instant::now();
        let r = tokio::time::timeout(self.timeout, self.connector.connect()).await;
        drop(permit);
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no handshake with {} within {:?}",
                self.url, self.timeout
            )),
        };
        if r.is_ok() {
            self.sh.recorder.connected(t.elapsed().as_nanos() as u64);
            self.progress.connected.fetch_add(1, Ordering::Relaxed);
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_attempted.notify_one();
        }
        let sh = self.sh;
        match r {
            Ok(ws) => {
                let started = self.go.1.notified();
                if !self.go.0.load(Ordering::Acquire) {
                    started.await;
                }
                if sh.protocol.is_some() {
                    stream::conn::run(ws, sh, plan, self.connector).await
                } else {
                    conn::run(ws, sh, plan).await
                }
            }
            Err(e) => sh.recorder.error(ErrorKind::Connect, 1, || e),
        }
    }
}

/// Sets the measurement window after warm-up: its start (ns since `t0`)
/// and the drain deadline (its end plus `drain_timeout`, or `time_limit`
/// after its start in `messages` mode).
fn open_window(cfg: &FloodConfig, sh: &Shared) -> (u64, Instant) {
    let start = sh.now_ns() + cfg.warmup.as_nanos() as u64;
    sh.start_ns.store(start, Ordering::Relaxed);
    let deadline = match cfg.stop {
        StopAfter::Duration(d) => {
            let end = start + d.as_nanos() as u64;
            sh.end_ns.store(end, Ordering::Relaxed);
            sh.t0 + Duration::from_nanos(end) + cfg.drain_timeout
        }
        StopAfter::Messages(_) => sh.t0 + Duration::from_nanos(start) + cfg.time_limit,
    };
    (start, deadline)
}

/// Waits for every connection to finish, reporting progress; at the drain
/// deadline, tells them to give up on outstanding replies and close, and
/// aborts those still open after the close timeout.
async fn wait_all(
    set: &mut JoinSet<()>,
    sh: &Shared,
    progress: &Progress,
    start: u64,
    deadline: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            r = set.join_next() => {
                if r.is_none() {
                    return;
                }
            }
            _ = tick.tick() => {
                let now = sh.now_ns();
                if now > start {
                    progress.slices.store((now - start) / sh.slice_ns, Ordering::Relaxed);
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                sh.stop.store(true, Ordering::Relaxed);
                sh.stop_notify.notify_waiters();
                let grace = tokio::time::sleep(conn_core::CLOSE_TIMEOUT + Duration::from_millis(500));
                tokio::pin!(grace);
                loop {
                    tokio::select! {
                        r = set.join_next() => if r.is_none() { break },
                        _ = &mut grace => { set.abort_all(); break }
                    }
                }
                while set.join_next().await.is_some() {}
                return;
            }
        }
    }
}
