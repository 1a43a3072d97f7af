//! A refused WebSocket handshake in words: the status and the body the
//! server sent with it. tungstenite hands over only the body bytes that
//! arrived with the headers; servers that write the body separately
//! (uvicorn's ASGI denial response, for one) would read as "no body". So a
//! plain `ws://` connection keeps a second handle on its socket through the
//! handshake, and a refusal reads the rest of the body from it (its
//! `Content-Length`, else to the end; at most [`MAX_BODY`] bytes and
//! [`BODY_WAIT`]).

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::Response;
use tokio_tungstenite::tungstenite::http::header::CONTENT_LENGTH;

/// The most of a refusal's body that is read (the evidence quotes less).
pub const MAX_BODY: usize = 4096;
/// How long a refusal's body may take to arrive after its headers.
pub const BODY_WAIT: Duration = Duration::from_millis(300);

/// A second handle on a connection's socket, for the body of a refusal.
pub struct Spare(socket2::Socket);

impl Spare {
    /// A duplicate of `tcp`'s socket (`None` if the system refuses one).
    pub fn of(tcp: &tokio::net::TcpStream) -> Option<Spare> {
        socket2::SockRef::from(tcp).try_clone().ok().map(Spare)
    }

    /// Reads what is left of `resp`'s body (see the module's docs).
    async fn finish(self, resp: &mut Response<Option<Vec<u8>>>) {
        let want = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok())
            .unwrap_or(MAX_BODY)
            .min(MAX_BODY);
        let body = resp.body_mut().get_or_insert_with(Vec::new);
        let std: std::net::TcpStream = self.0.into();
        let Ok(mut sock) = std
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpStream::from_std(std))
        else {
            return;
        };
        let read = async {
            let mut buf = [0u8; 1024];
            while body.len() < want {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&buf[..n.min(want - body.len())]),
                }
            }
        };
        let _ = tokio::time::timeout(BODY_WAIT, read).await;
    }
}

/// A failed handshake in words; a refusal with its status and body (the
/// rest of it read through `spare` when there is one).
pub async fn handshake_error(url: &str, e: WsError, spare: Option<Spare>) -> String {
    let WsError::Http(mut resp) = e else {
        return format!("WebSocket handshake with {url}: {e}");
    };
    if let Some(spare) = spare {
        spare.finish(&mut resp).await;
    }
    let body = resp
        .body()
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|b| !b.is_empty())
        .map_or_else(|| "no body".to_string(), |b| super::stream::quote(&b));
    format!(
        "WebSocket handshake with {url} refused: HTTP {} ({body})",
        resp.status()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::ws::client::connect::{Connector, Headers};

    /// A server that reads the handshake and answers with `head`, then
    /// (after `pause`) `body`, then keeps the connection open for 2 s.
    async fn refuse(head: &'static str, body: &'static str, pause: u64) -> Connector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(head.as_bytes()).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            s.write_all(body.as_bytes()).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        });
        Connector {
            addr,
            url: format!("ws://{addr}/ws"),
            config: Default::default(),
            headers: Headers(vec![("Authorization".into(), "Bearer s3cr3t-token".into())]),
            tls: None,
        }
    }

    /// uvicorn's shape: the body in a second write after the headers.
    #[tokio::test]
    async fn a_body_written_after_the_headers_is_quoted() {
        let c = refuse(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: 41\r\n\r\n",
            "invalid credentials: Bearer s3cr3t-token\n",
            50,
        )
        .await;
        let e = c.connect().await.err().unwrap();
        assert!(
            e.ends_with("refused: HTTP 401 Unauthorized (\"invalid credentials: <redacted>\")"),
            "{e}"
        );
    }

    /// A body that never comes holds the connection up to BODY_WAIT, not
    /// until the server closes it (2 s here): a run always ends.
    #[tokio::test]
    async fn a_body_that_never_comes_costs_at_most_the_wait() {
        let c = refuse(
            "HTTP/1.1 403 Forbidden\r\ncontent-length: 100\r\n\r\n",
            "",
            0,
        )
        .await;
        let start = Instant::now();
        let e = c.connect().await.err().unwrap();
        let took = start.elapsed();
        assert!(e.ends_with("refused: HTTP 403 Forbidden (no body)"), "{e}");
        assert!(took < std::time::Duration::from_millis(1500), "{took:?}");
    }
}
