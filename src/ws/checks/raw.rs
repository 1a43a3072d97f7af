//! A raw WebSocket client for the robustness checks: the handshake by hand,
//! then frames written byte by byte, so a check can send what no library
//! would (unmasked client frames, reserved opcodes, half a frame).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ws::protocol;
use crate::ws::server::{INPUT_DIM_HEADER, OUTPUT_DIM_HEADER};

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
/// The mask every check uses; servers must unmask whatever the key.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Host, port and path of a `ws://` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct WsUrl {
    /// `host:port`, for connecting and the Host header.
    pub authority: String,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<WsUrl, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("`{url}`: checks speak plain `ws://` only"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(WsUrl {
        authority,
        path: path.to_string(),
    })
}

/// An open connection after a successful handshake.
pub struct RawConn {
    pub tcp: TcpStream,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Bytes read past the end of the handshake response.
    pub leftover: Vec<u8>,
}

impl RawConn {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request this server answers: f32 features of the advertised width for
    /// the reference server, opaque bytes (echoed) for any other.
    pub fn request(&self, id: u64) -> Vec<u8> {
        match self.header(INPUT_DIM_HEADER).and_then(|v| v.parse().ok()) {
            Some(dim) => protocol::encode_features(id, &vec![0.5f32; dim]),
            None => {
                let mut m = vec![0x5a; 64];
                protocol::put_binary_id(&mut m, id);
                m
            }
        }
    }

    /// Length of the reply to [`RawConn::request`].
    pub fn reply_len(&self) -> usize {
        match self
            .header(OUTPUT_DIM_HEADER)
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(dim) => protocol::BINARY_ID_LEN + 4 * dim,
            None => 64,
        }
    }

    /// The reader for frames from the server, starting with the leftover bytes.
    pub fn into_parts(
        self,
    ) -> (
        FrameReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    ) {
        let (r, w) = self.tcp.into_split();
        (FrameReader::new(r, self.leftover), w)
    }
}

/// Opens a TCP connection and does the WebSocket handshake by hand, with
/// `headers` (a bearer token) besides its own.
pub async fn connect(url: &WsUrl, headers: &[(String, String)]) -> Result<RawConn, String> {
    let mut tcp = TcpStream::connect(&url.authority)
        .await
        .map_err(|e| format!("connect {}: {e}", url.authority))?;
    let _ = tcp.set_nodelay(true);
    tcp.write_all(handshake_request(url, headers).as_bytes())
        .await
        .map_err(|e| format!("handshake write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return Err("handshake response over 64 KiB".into());
        }
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| format!("handshake read: {e}"))?;
        if n == 0 {
            return Err("connection closed during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake refused: `{status}`"));
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(RawConn {
        tcp,
        headers,
        leftover: buf[end..].to_vec(),
    })
}

/// A handshake request with `headers` besides its own.
pub fn handshake_request(url: &WsUrl, headers: &[(String, String)]) -> String {
    let mut h = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        url.path, url.authority
    );
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// A frame header: FIN, `opcode`, payload length `len`, and the mask key
/// when given (a client must mask; the malformed check does not).
pub fn frame_header(opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut h = vec![0x80 | (opcode & 0x0f)];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        h.push(m | len as u8);
    } else if len <= u16::MAX as u64 {
        h.push(m | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(m | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(k) = mask {
        h.extend_from_slice(&k);
    }
    h
}

/// XORs `buf` with the mask, `offset` bytes into the payload.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// A whole client frame, masked with [`MASK`] unless `masked` is false.
pub fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask = masked.then_some(MASK);
    let mut f = frame_header(opcode, payload.len() as u64, mask);
    let start = f.len();
    f.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut f[start..], k, 0);
    }
    f
}

/// A close frame from the client with status `code`.
pub fn close_frame(code: u16) -> Vec<u8> {
    frame(OP_CLOSE, &code.to_be_bytes(), true)
}

/// One frame from the server (FIN ignored: checks look at opcodes and sizes).
#[derive(Debug)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Status code and reason of a close frame.
    pub fn close_code(&self) -> Option<(u16, String)> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2).then(|| {
            let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
            (
                code,
                String::from_utf8_lossy(&self.payload[2..]).to_string(),
            )
        })
    }
}

/// How reading frames ended.
#[derive(Debug)]
pub enum ReadEnd {
    Frame(Frame),
    Eof,
    Error(std::io::Error),
    Timeout,
}

/// Reads server frames from a byte stream.
pub struct FrameReader<R> {
    rd: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(rd: R, leftover: Vec<u8>) -> Self {
        FrameReader { rd, buf: leftover }
    }

    async fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        let mut chunk = vec![0u8; 64 << 10];
        while self.buf.len() < n {
            let k = self.rd.read(&mut chunk).await?;
            if k == 0 {
                return Ok(false);
            }
            self.buf.extend_from_slice(&chunk[..k]);
        }
        Ok(true)
    }

    async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        if !self.fill(2).await? {
            return Ok(None);
        }
        let opcode = self.buf[0] & 0x0f;
        let masked = self.buf[1] & 0x80 != 0;
        let (len, mut at) = match self.buf[1] & 0x7f {
            126 => {
                if !self.fill(4).await? {
                    return Ok(None);
                }
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                if !self.fill(10).await? {
                    return Ok(None);
                }
                let b: [u8; 8] = self.buf[2..10].try_into().expect("8 bytes");
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        let key = if masked {
            if !self.fill(at + 4).await? {
                return Ok(None);
            }
            at += 4;
            Some(self.buf[at - 4..at].try_into().expect("4 bytes"))
        } else {
            None
        };
        if !self.fill(at + len).await? {
            return Ok(None);
        }
        let mut payload: Vec<u8> = self.buf.drain(..at + len).skip(at).collect();
        if let Some(k) = key {
            apply_mask(&mut payload, k, 0);
        }
        Ok(Some(Frame { opcode, payload }))
    }

    /// The next frame, or why there is none, within `limit`.
    pub async fn read(&mut self, limit: Duration) -> ReadEnd {
        match tokio::time::timeout(limit, self.next_frame()).await {
            Err(_) => ReadEnd::Timeout,
            Ok(Ok(Some(f))) => ReadEnd::Frame(f),
            Ok(Ok(None)) => ReadEnd::Eof,
            Ok(Err(e)) => ReadEnd::Error(e),
        }
    }

    /// Reads until a close frame, EOF, an error or `limit`; counts data
    /// frames (and their bytes) seen on the way.
    pub async fn until_close(&mut self, limit: Duration) -> (ReadEnd, usize, usize) {
        let deadline = tokio::time::Instant::now() + limit;
        let (mut frames, mut bytes) = (0, 0);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                ReadEnd::Frame(f) if f.opcode != OP_CLOSE => {
                    if f.opcode == OP_TEXT || f.opcode == OP_BINARY {
                        frames += 1;
                        bytes += f.payload.len();
                    }
                }
                end => return (end, frames, bytes),
            }
        }
    }
}

/// Says in words how a connection ended, e.g. "close 1009 (Message too long)".
pub fn describe(end: &ReadEnd) -> String {
    match end {
        ReadEnd::Frame(f) => match f.close_code() {
            Some((code, reason)) if reason.is_empty() => format!("close {code}"),
            Some((code, reason)) => format!("close {code} ({reason})"),
            None if f.opcode == OP_CLOSE => "close frame without a code".into(),
            None => format!("a frame with opcode {:#x}", f.opcode),
        },
        ReadEnd::Eof => "connection closed without a close frame".into(),
        ReadEnd::Error(e) => format!("connection error without a close frame ({e})"),
        ReadEnd::Timeout => "no answer".into(),
    }
}

/// The close code, when `end` is a close frame with one.
pub fn close_code(end: &ReadEnd) -> Option<u16> {
    match end {
        ReadEnd::Frame(f) => f.close_code().map(|(c, _)| c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("ws://127.0.0.1:9000/x/y").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("127.0.0.1:9000", "/x/y")
        );
        let u = parse_url("ws://example.org").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("example.org:80", "/")
        );
        assert!(parse_url("wss://x:1/").unwrap_err().contains("ws://"));
    }

    #[test]
    fn headers_by_length() {
        assert_eq!(frame_header(2, 5, None), vec![0x82, 5]);
        assert_eq!(frame_header(2, 300, None), vec![0x82, 126, 1, 44]);
        let h = frame_header(1, 1 << 20, Some([1, 2, 3, 4]));
        assert_eq!(h.len(), 2 + 8 + 4);
        assert_eq!(h[1], 0x80 | 127);
    }

    #[tokio::test]
    async fn reads_back_frames_it_writes() {
        // Unmasked server-style frames, split oddly, parse back whole.
        let mut bytes = frame(OP_BINARY, &[7u8; 300], false);
        bytes.extend(frame(OP_CLOSE, &[0x03, 0xf1, b'h', b'i'], false));
        let mut r = FrameReader::new(&bytes[5..], bytes[..5].to_vec());
        let ReadEnd::Frame(f) = r.read(Duration::from_secs(1)).await else {
            panic!()
        };
        assert_eq!((f.opcode, f.payload.len()), (OP_BINARY, 300));
        let end = r.read(Duration::from_secs(1)).await;
        assert_eq!(describe(&end), "close 1009 (hi)");
        assert!(matches!(r.read(Duration::from_secs(1)).await, ReadEnd::Eof));
        // a masked frame unmasks
        let m = frame(OP_BINARY, b"abcdef", true);
        let mut r = FrameReader::new(&m[..], Vec::new());
        let ReadEnd::Frame(f) = r.read(Duration::from_secs(1)).await else {
            panic!()
        };
        assert_eq!(f.payload, b"abcdef");
    }
}
