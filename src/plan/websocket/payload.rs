//! What each flood message carries: binary or text frames, of a fixed or
//! random size, with random bodies or cut from a file.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::wire::{BINARY_ID_LEN, TEXT_ID_LEN};
use crate::units::{ByteSize, parse_size};

/// `payload = { type = "binary", size = "64B", file = "...", seed = 0 }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadSpec {
    /// `"binary"` (default) or `"text"`.
    #[serde(default, rename = "type")]
    pub kind: Option<MessageType>,
    /// Whole message size, id included: `"64B"` or `{ min = "64B", max = "4KiB" }`.
    #[serde(default)]
    pub size: Option<SizeSpec>,
    /// Message bodies are cut from this file (relative to the suite file).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Seed of the random bodies and sizes (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    #[default]
    Binary,
    Text,
}

impl MessageType {
    pub fn id(self) -> &'static str {
        match self {
            MessageType::Binary => "binary",
            MessageType::Text => "text",
        }
    }

    /// Bytes the request id takes at the start of a message.
    pub fn id_len(self) -> usize {
        match self {
            MessageType::Binary => BINARY_ID_LEN,
            MessageType::Text => TEXT_ID_LEN,
        }
    }
}

/// A message size: fixed, or drawn uniformly from `min..=max` per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeSpec {
    pub min: u64,
    pub max: u64,
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64B\" or a table `{ min = \"64B\", max = \"4KiB\" }`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SizeSpec, E> {
                let n = parse_size(s).map_err(E::custom)?;
                Ok(SizeSpec { min: n, max: n })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeSpec, E> {
                let n = u64::try_from(v)
                    .map_err(|_| E::custom(format!("invalid size `{v}`: must not be negative")))?;
                Ok(SizeSpec { min: n, max: n })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeSpec, E> {
                Ok(SizeSpec { min: v, max: v })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SizeSpec, A::Error> {
                let (mut min, mut max) = (None, None);
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "min" => min = Some(map.next_value::<ByteSize>()?.0),
                        "max" => max = Some(map.next_value::<ByteSize>()?.0),
                        other => {
                            return Err(de::Error::unknown_field(other, &["min", "max"]));
                        }
                    }
                }
                match (min, max) {
                    (Some(min), Some(max)) => Ok(SizeSpec { min, max }),
                    (None, _) => Err(de::Error::missing_field("min")),
                    (_, None) => Err(de::Error::missing_field("max")),
                }
            }
        }
        d.deserialize_any(V)
    }
}
