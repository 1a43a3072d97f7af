//! `slow_consumer`: a client that sends requests but never reads the replies.
//! The server must keep its memory bounded and close the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::observe::{Server, mib, rss_change};
use super::raw::{self, ReadEnd, WsUrl};

/// How long the client keeps sending without reading.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Most bytes the client sends in that window.
pub const SEND_BUDGET: usize = 256 << 20;
/// Server memory growth that still counts as bounded.
pub const MEMORY_BOUND: u64 = 64 << 20;
/// Size of each message to an echo server (the reference server gets
/// requests of its advertised input width).
const ECHO_MESSAGE: usize = 64 << 10;

pub async fn run(url: &WsUrl, server: Server) -> (bool, String) {
    let conn = match raw::connect(url).await {
        Ok(c) => c,
        Err(e) => return (false, format!("could not connect: {e}")),
    };
    let mut msg = conn.request(0);
    if conn.header(crate::ws::server::INPUT_DIM_HEADER).is_none() {
        msg.resize(ECHO_MESSAGE, 0x5a);
    }
    let reply_len = if msg.len() == ECHO_MESSAGE {
        ECHO_MESSAGE
    } else {
        conn.reply_len()
    };
    // Several frames per write: fewer syscalls, same bytes.
    let per_write = (256 << 10) / msg.len() + 1;
    let mut batch = Vec::new();
    for _ in 0..per_write {
        batch.extend(raw::frame(raw::OP_BINARY, &msg, true));
    }
    let frame_len = batch.len() / per_write;
    let (mut rd, wr) = conn.into_parts();
    let rss_before = server.rss();
    let start = Instant::now();
    let w = write_without_reading(wr, batch, (&server, rss_before), start).await;
    let elapsed = start.elapsed().as_secs_f64();
    let closed = match w.cut {
        Some(c) => Some(c),
        // Now read: a server that closed earlier shows it after its queued data.
        None => match rd.until_close(Duration::from_secs(5)).await.0 {
            ReadEnd::Timeout => None,
            end => Some(format!(
                "had closed it ({}), seen when reading after the window",
                raw::describe(&end)
            )),
        },
    };
    let rss_peak = w.rss_peak.max(server.rss());
    drop(w.wr);
    let sent = format!(
        "sent {} messages of {} B ({}) in {elapsed:.1} s without reading \
         ({reply_len} B replies expected)",
        w.sent / frame_len,
        msg.len(),
        mib(w.sent as f64),
    );
    verdict(sent, closed, rss_before, rss_peak)
}

/// What writing without reading came to.
struct Written<W> {
    /// Bytes sent.
    sent: usize,
    /// How the server cut the connection off, if it did while writing.
    cut: Option<String>,
    /// The server's peak RSS seen while writing.
    rss_peak: Option<u64>,
    /// The write half, kept open until the verdict.
    wr: Arc<tokio::sync::Mutex<W>>,
}

/// Writes `batch` over and over for [`WINDOW`] (or [`SEND_BUDGET`] bytes),
/// never reading, and watches the server's RSS (from `rss_before` on).
async fn write_without_reading<W>(
    wr: W,
    batch: Vec<u8>,
    (server, rss_before): (&Server, Option<u64>),
    start: Instant,
) -> Written<W>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    // Shared so that aborting the writer does not drop the write half: that
    // would send a FIN, and the server's reaction to it is not what is judged.
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let task_wr = wr.clone();
    // The writer never cancels a write half-way (that would corrupt the
    // stream); it is aborted only when the window is over.
    let mut writer = tokio::spawn(async move {
        let mut wr = task_wr.lock().await;
        while counter.load(Ordering::Relaxed) < SEND_BUDGET {
            if let Err(e) = wr.write_all(&batch).await {
                return Some(format!(
                    "cut it off after {:.1} s ({e})",
                    start.elapsed().as_secs_f64()
                ));
            }
            counter.fetch_add(batch.len(), Ordering::Relaxed);
        }
        None
    });
    let mut rss_peak = rss_before;
    let mut cut: Option<String> = None;
    let mut finished = false;
    while start.elapsed() < WINDOW {
        tokio::select! {
            r = &mut writer, if !finished => {
                finished = true;
                cut = r.ok().flatten();
                if cut.is_some() {
                    break;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        rss_peak = rss_peak.max(server.rss());
    }
    writer.abort();
    Written {
        sent: sent.load(Ordering::Relaxed),
        cut,
        rss_peak,
        wr,
    }
}

/// Passed when the server closed the connection and its memory stayed
/// within [`MEMORY_BOUND`]; the evidence says what was sent, how it ended
/// and the memory.
fn verdict(
    sent: String,
    closed: Option<String>,
    rss_before: Option<u64>,
    rss_peak: Option<u64>,
) -> (bool, String) {
    let growth = match (rss_before, rss_peak) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let bounded = growth.is_none_or(|g| g <= MEMORY_BOUND);
    let mut parts = vec![sent];
    parts.push(match &closed {
        Some(c) => format!("server {c}"),
        None => format!("connection still open after {:.0} s", WINDOW.as_secs_f64()),
    });
    parts.push(format!(
        "peak {}{}",
        rss_change(rss_before, rss_peak),
        if bounded {
            ""
        } else {
            ": over the 64 MiB bound"
        }
    ));
    if growth.is_none() {
        parts.push("judged on behaviour only".into());
    }
    (closed.is_some() && bounded, parts.join("; "))
}
