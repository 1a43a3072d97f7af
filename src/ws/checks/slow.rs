//! `slow_consumer`: a client that sends requests but never reads the replies.
//! The server must keep its memory bounded and close the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::observe::{Server, mib, rss_change};
use super::peer::Peer;
use super::raw::{self, RawConn, ReadEnd};

/// How long the client keeps sending without reading.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Most bytes the client sends in that window.
pub const SEND_BUDGET: usize = 256 << 20;
/// Server memory growth that still counts as bounded.
pub const MEMORY_BOUND: u64 = 64 << 20;
/// Size of each message to an echo server (the reference server gets
/// requests of its advertised input width).
const ECHO_MESSAGE: usize = 64 << 10;

pub async fn run(peer: &Peer, server: Server) -> (bool, String) {
    let conn = match peer.connect().await {
        Ok(c) => c,
        Err(e) => return (false, format!("could not connect: {e}")),
    };
    let (next, (what, expected)) = requests(peer, &conn);
    let (mut rd, wr) = conn.into_parts();
    let rss_before = server.rss();
    let start = Instant::now();
    let w = write_without_reading(wr, next, (&server, rss_before), start).await;
    let elapsed = start.elapsed().as_secs_f64();
    let closed = match w.cut {
        Some(c) => Ok(c),
        // Now read: a server that closed earlier shows it after its queued data.
        None => match rd.until_close(Duration::from_secs(5)).await.0 {
            ReadEnd::Timeout => Err(start.elapsed().as_secs_f64()),
            end => Ok(format!(
                "had closed it ({}), seen when reading after sending",
                raw::describe(&end)
            )),
        },
    };
    let rss_peak = w.rss_peak.max(server.rss());
    drop(w.wr);
    let mut sent = format!(
        "sent {} {what} ({}) in {elapsed:.1} s without reading ({expected})",
        w.messages,
        mib(w.sent as f64),
    );
    if w.stopped_at_bound {
        sent.push_str(", then stopped: the server's memory had grown past the bound");
    }
    verdict(sent, closed, rss_before, rss_peak)
}

/// What the client sends: batches of frames (several per write: fewer
/// syscalls, same bytes), how the evidence names them and what they ask
/// for. Under a protocol, its requests, each with a new id: every one asks
/// for a stream the client never reads. Else the reference server's
/// requests of its advertised width, or 64 KiB messages to an echo server.
fn requests(peer: &Peer, conn: &RawConn) -> (Batches, (String, String)) {
    if peer.protocol.is_some() {
        let (p, mut id) = (peer.clone(), 0u64);
        let next = move || {
            let mut batch = Vec::with_capacity(256 << 10);
            let mut n = 0;
            while batch.len() < 256 << 10 {
                id += 1;
                batch.extend(p.protocol_request(id).expect("a protocol"));
                n += 1;
            }
            (Arc::new(batch), n)
        };
        let what = (
            "requests of the protocol".to_string(),
            "a stream expected for each".to_string(),
        );
        return (Box::new(next), what);
    }
    let mut msg = conn.request(0);
    if conn.header(crate::ws::server::INPUT_DIM_HEADER).is_none() {
        msg.resize(ECHO_MESSAGE, 0x5a);
    }
    let reply_len = if msg.len() == ECHO_MESSAGE {
        ECHO_MESSAGE
    } else {
        conn.reply_len()
    };
    let per_write = (256 << 10) / msg.len() + 1;
    let mut batch = Vec::new();
    for _ in 0..per_write {
        batch.extend(raw::frame(raw::OP_BINARY, &msg, true));
    }
    let what = (
        format!("messages of {} B", msg.len()),
        format!("{reply_len} B replies expected"),
    );
    let batch = Arc::new(batch);
    (Box::new(move || (batch.clone(), per_write)), what)
}

/// The next write: bytes of whole frames (shared, when every write is the
/// same), and how many frames.
type Batches = Box<dyn FnMut() -> (Arc<Vec<u8>>, usize) + Send>;

/// What writing without reading came to.
struct Written<W> {
    /// Bytes sent.
    sent: usize,
    /// Frames sent.
    messages: usize,
    /// Sending stopped early: the server had grown past the bound.
    stopped_at_bound: bool,
    /// How the server cut the connection off, if it did while writing.
    cut: Option<String>,
    /// The server's peak RSS seen while writing.
    rss_peak: Option<u64>,
    /// The write half, kept open until the verdict.
    wr: Arc<tokio::sync::Mutex<W>>,
}

/// Writes the batches `next` gives for [`WINDOW`] (or [`SEND_BUDGET`]
/// bytes), never reading, and watches the server's RSS (from `rss_before`
/// on). Once the server has grown past [`MEMORY_BOUND`] the verdict is in:
/// sending stops there, so a server that queues without limit is not
/// driven into the machine's memory.
async fn write_without_reading<W>(
    wr: W,
    mut next: Batches,
    (server, rss_before): (&Server, Option<u64>),
    start: Instant,
) -> Written<W>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let sent = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(AtomicUsize::new(0));
    let (counter, frames) = (sent.clone(), messages.clone());
    // Shared so that aborting the writer does not drop the write half: that
    // would send a FIN, and the server's reaction to it is not what is judged.
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let task_wr = wr.clone();
    // The writer never cancels a write half-way (that would corrupt the
    // stream); it is aborted only when the window is over.
    let mut writer = tokio::spawn(async move {
        let mut wr = task_wr.lock().await;
        while counter.load(Ordering::Relaxed) < SEND_BUDGET {
            let (batch, n) = next();
            if let Err(e) = wr.write_all(&batch).await {
                return Some(format!(
                    "cut it off after {:.1} s ({e})",
                    start.elapsed().as_secs_f64()
                ));
            }
            counter.fetch_add(batch.len(), Ordering::Relaxed);
            frames.fetch_add(n, Ordering::Relaxed);
        }
        None
    });
    let mut rss_peak = rss_before;
    let mut cut: Option<String> = None;
    let mut finished = false;
    let over = |peak: Option<u64>| {
        rss_before
            .zip(peak)
            .is_some_and(|(a, b)| b.saturating_sub(a) > MEMORY_BOUND)
    };
    while start.elapsed() < WINDOW && !over(rss_peak) {
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
        messages: messages.load(Ordering::Relaxed),
        stopped_at_bound: cut.is_none() && over(rss_peak),
        cut,
        rss_peak,
        wr,
    }
}

/// Passed when the server closed the connection (`closed`: how, else the
/// seconds it was seen open) and its memory stayed within
/// [`MEMORY_BOUND`]; the evidence says what was sent, how it ended and the
/// memory.
fn verdict(
    sent: String,
    closed: Result<String, f64>,
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
        Ok(c) => format!("server {c}"),
        Err(open) => format!("connection still open after {open:.0} s"),
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
    (closed.is_ok() && bounded, parts.join("; "))
}
