//! Opening one client connection: TCP (no Nagle), then the WebSocket
//! handshake with the scenario's headers. Header values are secrets: they
//! never appear in `Debug` output or in an error, which quotes a refused
//! handshake's status and body with every value replaced by `<redacted>`.

use std::fmt;
use std::net::SocketAddr;

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector as TlsConnector, client_async_tls_with_config};

use super::Ws;
use super::refusal::{Spare, handshake_error};
use crate::plan::websocket::headers::REDACTED;

/// Handshake headers, name and value.
#[derive(Clone, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, _)| (k, REDACTED)))
            .finish()
    }
}

impl Headers {
    /// `s` with every header value (and its last word, so a bearer token
    /// is caught without its scheme) replaced by `<redacted>`.
    pub fn redact(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (_, v) in &self.0 {
            let words = std::iter::once(v.as_str()).chain(v.split_whitespace().last());
            for w in words.filter(|w| w.len() >= 4) {
                out = out.replace(w, REDACTED);
            }
        }
        out
    }
}

/// Everything needed to open one more connection to the flood's server.
#[derive(Clone, Debug)]
pub struct Connector {
    pub addr: SocketAddr,
    pub url: String,
    pub config: WebSocketConfig,
    pub headers: Headers,
    /// `wss://`: the TLS client configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connector {
    pub async fn connect(&self) -> Result<Ws, String> {
        let url = &self.url;
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("invalid url `{url}`: {e}"))?;
        for (k, v) in &self.headers.0 {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("header name `{k}`: {e}"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("header `{k}`: its value is not valid in HTTP"))?;
            req.headers_mut().insert(name, value);
        }
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("TCP connect to {}: {e}", self.addr))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let tls = match &self.tls {
            Some(c) => TlsConnector::Rustls(c.clone()),
            None => TlsConnector::Plain,
        };
        let spare = self.tls.is_none().then(|| Spare::of(&tcp)).flatten();
        match client_async_tls_with_config(req, tcp, Some(self.config), Some(tls)).await {
            Ok((ws, _)) => Ok(ws),
            Err(e) => Err(self.headers.redact(&handshake_error(url, e, spare).await)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_show() {
        let h = Headers(vec![("Authorization".into(), "Bearer s3cr3t-token".into())]);
        assert_eq!(format!("{h:?}"), "{\"Authorization\": \"<redacted>\"}");
        assert_eq!(
            h.redact("bad token s3cr3t-token for Bearer s3cr3t-token"),
            "bad token <redacted> for <redacted>"
        );
    }
}
