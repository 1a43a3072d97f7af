//! The wire format of a flood message: a request id, then the payload.
//!
//! A reply is matched to its request by the id it carries, so round-trip
//! times work against any echo server (which returns the message unchanged)
//! and against the reference server (which returns the id and its outputs).
//!
//! - Binary: 8-byte little-endian `u64` id, then the payload bytes. For the
//!   reference server the payload is the little-endian `f32` feature vector
//!   and the reply is the same id followed by the `f32` outputs.
//! - Text: 16 lowercase hex digits of the id, then the payload text.

pub use crate::plan::websocket::wire::{BINARY_ID_LEN, TEXT_ID_LEN};

/// Writes `id` into the first [`BINARY_ID_LEN`] bytes of `msg`.
/// `msg` must be at least that long.
pub fn put_binary_id(msg: &mut [u8], id: u64) {
    msg[..BINARY_ID_LEN].copy_from_slice(&id.to_le_bytes());
}

/// The id at the start of a binary message, if it is long enough.
pub fn binary_id(msg: &[u8]) -> Option<u64> {
    let head: [u8; BINARY_ID_LEN] = msg.get(..BINARY_ID_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

/// Writes `id` as 16 lowercase hex digits into the start of `msg`.
/// `msg` must be at least [`TEXT_ID_LEN`] bytes long.
pub fn put_text_id(msg: &mut [u8], id: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in msg[..TEXT_ID_LEN].iter_mut().enumerate() {
        *b = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// The id at the start of a text message, if it starts with 16 hex digits.
pub fn text_id(msg: &str) -> Option<u64> {
    let head = msg.get(..TEXT_ID_LEN)?;
    u64::from_str_radix(head, 16).ok()
}

/// Encodes `features` as little-endian `f32`s after an id: a request to the
/// reference server.
pub fn encode_features(id: u64, features: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BINARY_ID_LEN + 4 * features.len());
    out.extend_from_slice(&id.to_le_bytes());
    for f in features {
        out.extend_from_slice(&f.to_le_bytes());
    }
    out
}

/// Decodes a binary message into its id and `f32` values; `None` when it is
/// shorter than an id or the rest is not a whole number of `f32`s.
pub fn decode_features(msg: &[u8]) -> Option<(u64, Vec<f32>)> {
    let id = binary_id(msg)?;
    let body = &msg[BINARY_ID_LEN..];
    if body.len() % 4 != 0 {
        return None;
    }
    let values = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((id, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_ids_round_trip() {
        let mut m = vec![0u8; 64];
        for id in [0, 1, 255, u64::MAX, 0x0123_4567_89ab_cdef] {
            put_binary_id(&mut m, id);
            assert_eq!(binary_id(&m), Some(id));
        }
        assert_eq!(binary_id(&[1, 2, 3]), None);
    }

    #[test]
    fn text_ids_round_trip() {
        let mut m = vec![b'x'; 20];
        put_text_id(&mut m, 0x0123_4567_89ab_cdef);
        let s = std::str::from_utf8(&m).unwrap();
        assert_eq!(&s[..16], "0123456789abcdef");
        assert_eq!(text_id(s), Some(0x0123_4567_89ab_cdef));
        assert_eq!(text_id("short"), None);
        assert_eq!(text_id("zzzzzzzzzzzzzzzzrest"), None);
    }

    #[test]
    fn features_round_trip() {
        let m = encode_features(42, &[1.5, -2.0, 0.25]);
        assert_eq!(m.len(), 8 + 12);
        assert_eq!(decode_features(&m), Some((42, vec![1.5, -2.0, 0.25])));
        assert_eq!(decode_features(&m[..m.len() - 1]), None);
    }
}
