//! One sweep point of a `websocket_flood` scenario: the spec's keys with
//! the point's `params` applied, checked.

use super::rate::parse_rate;
use super::{
    FloodPoint, Load, MAX_CONNECTIONS, MAX_SIZE, MessageType, SWEEPABLE, SizeSpec,
    WebsocketFloodSpec,
};
use crate::plan::{ParamPoint, ParamValue};
use crate::units::parse_size;

/// An error at a key (`params` for a bad param).
type PointError = (&'static str, String);

/// The keys a point may override, before they are checked.
struct Keys {
    connections: u64,
    in_flight: Option<u64>,
    rate: Option<f64>,
    message: Option<MessageType>,
    size: Option<SizeSpec>,
}

impl WebsocketFloodSpec {
    /// The settings at one sweep point: each param named after a sweepable
    /// key overrides it. Errors name the key (`params` for a bad param).
    pub fn point(&self, point: &ParamPoint) -> Result<FloodPoint, PointError> {
        let mut k = Keys {
            connections: self.connections.unwrap_or(1) as u64,
            in_flight: self.in_flight.map(u64::from),
            rate: self.rate.map(|r| r.0),
            message: self.payload.as_ref().and_then(|p| p.kind),
            size: self.payload.as_ref().and_then(|p| p.size),
        };
        for (name, v) in point {
            self.apply(&mut k, name, v)?;
        }
        if k.connections == 0 || k.connections > MAX_CONNECTIONS as u64 {
            return Err((
                "connections",
                format!(
                    "`connections` must be between 1 and {MAX_CONNECTIONS}, got {}",
                    k.connections
                ),
            ));
        }
        let load = load(k.in_flight, k.rate)?;
        let message = k.message.unwrap_or_default();
        let connections = k.connections as u32;
        if self.is_builtin() {
            if message == MessageType::Text || k.size.is_some() {
                return Err((
                    "payload",
                    "the builtin server takes binary f32 feature vectors: set their length with `builtin.input_dim` instead of `payload.type`/`payload.size`".into(),
                ));
            }
            return Ok(FloodPoint {
                connections,
                load,
                message,
                size: None,
            });
        }
        let has_file = self.payload.as_ref().is_some_and(|p| p.file.is_some());
        let size = match k.size {
            Some(s) => Some(s),
            None if has_file => None,
            None => Some(SizeSpec { min: 64, max: 64 }),
        };
        if let Some(s) = size {
            check_size(s, message)?;
        }
        Ok(FloodPoint {
            connections,
            load,
            message,
            size,
        })
    }

    /// Param `name` = `v` applied to the keys.
    fn apply(&self, k: &mut Keys, name: &str, v: &ParamValue) -> Result<(), PointError> {
        let bad = |what: &str| {
            (
                "params",
                format!("`params.{name}`: expected {what}, found `{v}`"),
            )
        };
        match name {
            "connections" => k.connections = whole(v).ok_or_else(|| bad("a whole number"))?,
            "in_flight" => k.in_flight = Some(whole(v).ok_or_else(|| bad("a whole number"))?),
            "rate" => {
                k.rate = Some(match v {
                    ParamValue::Str(s) => parse_rate(s).map_err(|e| ("params", e))?,
                    _ => v.as_f64().ok_or_else(|| bad("a rate"))?,
                })
            }
            "size" => {
                let n = match v {
                    ParamValue::Str(s) => parse_size(s).map_err(|e| ("params", e))?,
                    _ => whole(v).ok_or_else(|| bad("a size"))?,
                };
                k.size = Some(SizeSpec { min: n, max: n });
            }
            "message" => {
                k.message = Some(match v {
                    ParamValue::Str(s) if s == "binary" => MessageType::Binary,
                    ParamValue::Str(s) if s == "text" => MessageType::Text,
                    _ => return Err(bad("\"binary\" or \"text\"")),
                })
            }
            other
                if self
                    .protocol
                    .as_ref()
                    .is_some_and(|p| p.template_uses(other)) => {}
            other => {
                return Err((
                    "params",
                    format!(
                        "`params.{other}` is not a key a `websocket_flood` scenario can sweep (sweepable: {})",
                        SWEEPABLE.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Closed loop (`in_flight`, default 1) or open loop (`rate`), not both.
fn load(in_flight: Option<u64>, rate: Option<f64>) -> Result<Load, PointError> {
    Ok(match (in_flight, rate) {
        (Some(_), Some(_)) => {
            return Err((
                "rate",
                "give either `in_flight` (closed loop) or `rate` (open loop), not both".into(),
            ));
        }
        (_, Some(r)) if !(r.is_finite() && r > 0.0) => {
            return Err((
                "rate",
                format!("`rate` must be a positive number of messages per second, got {r}"),
            ));
        }
        (_, Some(r)) => Load::Open { rate: r },
        (Some(k), None) if k == 0 || k > 1 << 20 => {
            return Err((
                "in_flight",
                format!("`in_flight` must be between 1 and {}, got {k}", 1 << 20),
            ));
        }
        (k, None) => Load::Closed {
            in_flight: k.unwrap_or(1) as u32,
        },
    })
}

/// `payload.size`: min ≤ max, room for the id, at most [`MAX_SIZE`].
fn check_size(s: SizeSpec, message: MessageType) -> Result<(), PointError> {
    let id = message.id_len() as u64;
    if s.min > s.max {
        return Err((
            "payload",
            format!(
                "`payload.size`: min ({}) is greater than max ({})",
                s.min, s.max
            ),
        ));
    }
    if s.min < id {
        return Err((
            "payload",
            format!(
                "`payload.size` counts the whole message, id included: a {} message needs at least {id} bytes, got {}",
                message.id(),
                s.min
            ),
        ));
    }
    if s.max > MAX_SIZE {
        return Err((
            "payload",
            format!(
                "`payload.size` is at most {MAX_SIZE} bytes (64 MiB), got {}",
                s.max
            ),
        ));
    }
    Ok(())
}

fn whole(v: &ParamValue) -> Option<u64> {
    match v {
        ParamValue::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::websocket::parse_spec as spec;

    #[test]
    fn sizes_rates_and_defaults() {
        let s = spec(
            "url = \"ws://127.0.0.1:9/\"\nrate = \"2k/s\"\npayload = { size = { min = 16, max = \"1KiB\" } }",
        );
        s.validate(&[ParamPoint::new()]).unwrap();
        let p = s.point(&ParamPoint::new()).unwrap();
        assert_eq!(p.load, Load::Open { rate: 2000.0 });
        assert_eq!(p.size, Some(SizeSpec { min: 16, max: 1024 }));
        assert_eq!(p.connections, 1);
        let s = spec("target = \"builtin\"");
        let p = s.point(&ParamPoint::new()).unwrap();
        assert_eq!((p.load, p.size), (Load::Closed { in_flight: 1 }, None));
    }

    #[test]
    fn params_override_keys() {
        let s = spec("url = \"ws://127.0.0.1:9/\"\nconnections = 4");
        let mut pt = ParamPoint::new();
        pt.insert("connections".into(), ParamValue::Int(64));
        pt.insert("size".into(), ParamValue::Str("64KiB".into()));
        let p = s.point(&pt).unwrap();
        assert_eq!(p.connections, 64);
        assert_eq!(
            p.size,
            Some(SizeSpec {
                min: 65536,
                max: 65536
            })
        );
        pt.insert("batch".into(), ParamValue::Int(1));
        assert!(s.point(&pt).unwrap_err().1.contains("not a key"));
    }
}
