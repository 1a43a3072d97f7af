//! What a flood message carries: the request id (see [`crate::ws::protocol`])
//! followed by a body cut from a pool of bytes. The pool is random (seeded)
//! bytes, random alphanumeric text, a file's contents, or f32 feature vectors
//! for the reference server. Sizes are whole-message sizes, id included,
//! fixed or drawn uniformly from a range per message.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::stats::Rng;
use crate::ws::protocol::{BINARY_ID_LEN, TEXT_ID_LEN, put_binary_id, put_text_id};

/// Binary or text frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    Binary,
    Text,
}

impl Frame {
    pub fn id_len(self) -> usize {
        match self {
            Frame::Binary => BINARY_ID_LEN,
            Frame::Text => TEXT_ID_LEN,
        }
    }
}

/// A message generator shared by every connection of a flood.
#[derive(Clone, Debug)]
pub struct Payload {
    frame: Frame,
    pool: Vec<u8>,
    /// Whole-message size range, id included.
    min: usize,
    max: usize,
    /// Bodies start at multiples of this in the pool.
    stride: usize,
}

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Extra pool beyond the largest body, so bodies start at different offsets.
const SLACK: usize = 4096;

impl Payload {
    /// Random bytes (binary) or alphanumeric text, sizes in `min..=max`.
    pub fn random(frame: Frame, min: usize, max: usize, seed: u64) -> Payload {
        let (min, max) = (min.max(frame.id_len()), max.max(min).max(frame.id_len()));
        let mut rng = Rng::new(seed ^ 0x7061_796c_6f61_6421);
        let len = max - frame.id_len() + SLACK;
        let pool = match frame {
            Frame::Binary => {
                let mut v = Vec::with_capacity(len + 8);
                while v.len() < len {
                    v.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
                v.truncate(len);
                v
            }
            Frame::Text => (0..len)
                .map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize])
                .collect(),
        };
        Payload {
            frame,
            pool,
            min,
            max,
            stride: 1,
        }
    }

    /// Bodies cut from `data`: consecutive slices of `size` when given
    /// (wrapping), else the whole of `data` in every message. Text needs
    /// UTF-8; slices then end on character boundaries.
    pub fn from_file(
        frame: Frame,
        data: Vec<u8>,
        size: Option<(usize, usize)>,
    ) -> Result<Payload, String> {
        if data.is_empty() {
            return Err("the payload file is empty".into());
        }
        if frame == Frame::Text && std::str::from_utf8(&data).is_err() {
            return Err("a text payload file must be UTF-8".into());
        }
        let id = frame.id_len();
        let (min, max) = match size {
            Some((a, b)) => (a.max(id), b.max(a).max(id)),
            None => (id + data.len(), id + data.len()),
        };
        // Repeat the file until every body fits once, wherever it starts.
        let mut pool = data.clone();
        while pool.len() < 2 * (max - id) {
            pool.extend_from_slice(&data);
        }
        Ok(Payload {
            frame,
            pool,
            min,
            max,
            stride: 1,
        })
    }

    /// Binary requests for the reference server: `dim` little-endian f32
    /// features in [-1, 1), 64 distinct vectors.
    pub fn features(dim: usize, seed: u64) -> Payload {
        let mut rng = Rng::new(seed ^ 0x6665_6174_7572_6573);
        let vectors = 64;
        let mut pool = Vec::with_capacity(vectors * dim * 4);
        for _ in 0..vectors * dim {
            let f = (rng.next_f64() * 2.0 - 1.0) as f32;
            pool.put_f32_le(f);
        }
        let size = BINARY_ID_LEN + 4 * dim;
        Payload {
            frame: Frame::Binary,
            pool,
            min: size,
            max: size,
            stride: 4 * dim,
        }
    }

    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Smallest and largest message, id included.
    pub fn size_range(&self) -> (usize, usize) {
        (self.min, self.max)
    }

    /// The message with request id `id`; `rng` picks its size and body.
    #[inline]
    pub fn message(&self, id: u64, rng: &mut Rng) -> (Message, usize) {
        let size = if self.min == self.max {
            self.min
        } else {
            self.min + rng.below((self.max - self.min + 1) as u64) as usize
        };
        let id_len = self.frame.id_len();
        let body = size - id_len;
        let starts = (self.pool.len() - body) / self.stride + 1;
        let mut start = if starts > 1 {
            rng.below(starts as u64) as usize * self.stride
        } else {
            0
        };
        let mut end = start + body;
        if self.frame == Frame::Text {
            // Whole characters only (pools from a file may hold multi-byte ones).
            while start > 0 && (self.pool[start] & 0xC0) == 0x80 {
                start -= 1;
            }
            end = start + body;
            while end < self.pool.len() && (self.pool[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            if end < start {
                end = start;
            }
        }
        let mut buf = BytesMut::with_capacity(id_len + (end - start));
        buf.put_bytes(0, id_len);
        match self.frame {
            Frame::Binary => put_binary_id(&mut buf[..id_len], id),
            Frame::Text => put_text_id(&mut buf[..id_len], id),
        }
        buf.extend_from_slice(&self.pool[start..end]);
        let len = buf.len();
        let bytes: Bytes = buf.freeze();
        let msg = match self.frame {
            Frame::Binary => Message::Binary(bytes),
            Frame::Text => Message::Text(
                Utf8Bytes::try_from(bytes).expect("ids are hex and bodies whole UTF-8 characters"),
            ),
        };
        (msg, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::protocol::{binary_id, decode_features, text_id};

    #[test]
    fn sizes_ids_and_seeds() {
        let p = Payload::random(Frame::Binary, 64, 64, 1);
        let mut rng = Rng::new(0);
        let (m, n) = p.message(42, &mut rng);
        assert_eq!(n, 64);
        let Message::Binary(b) = m else { panic!() };
        assert_eq!(binary_id(&b), Some(42));

        let p = Payload::random(Frame::Text, 16, 100, 1);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let (m, n) = p.message(i, &mut rng);
            assert!((16..=100).contains(&n));
            seen.insert(n);
            let Message::Text(t) = m else { panic!() };
            assert_eq!(text_id(&t), Some(i));
            assert!(t[16..].bytes().all(|c| c.is_ascii_alphanumeric()));
        }
        assert!(seen.len() > 20, "sizes vary: {seen:?}");
        // Same seed, same pool.
        assert_eq!(
            Payload::random(Frame::Binary, 8, 99, 7).pool,
            Payload::random(Frame::Binary, 8, 99, 7).pool
        );
    }

    #[test]
    fn file_bodies_and_features() {
        let p = Payload::from_file(
            Frame::Text,
            "héllo wörld ".repeat(10).into_bytes(),
            Some((20, 40)),
        )
        .unwrap();
        let mut rng = Rng::new(3);
        for i in 0..100 {
            let (m, _) = p.message(i, &mut rng);
            assert!(matches!(m, Message::Text(_)));
        }
        let p = Payload::from_file(Frame::Binary, vec![1, 2, 3], None).unwrap();
        let (m, n) = p.message(5, &mut rng);
        assert_eq!(n, 11);
        assert_eq!(&m.into_data()[8..], &[1, 2, 3]);
        assert!(Payload::from_file(Frame::Text, vec![0xff, 0xfe], None).is_err());

        let p = Payload::features(4, 0);
        let (m, n) = p.message(9, &mut rng);
        assert_eq!(n, 8 + 16);
        let (id, f) = decode_features(&m.into_data()).unwrap();
        assert_eq!(id, 9);
        assert!(f.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
