//! `kind = "websocket_flood"`: many WebSocket connections send messages to a
//! server and time every reply. Keys are documented in docs/websocket.md.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::plan::{ParamPoint, ParamValue};
use crate::units::{ByteSize, HumanDuration, parse_size};
use crate::ws::checks::CheckKind;
use crate::ws::protocol::{BINARY_ID_LEN, TEXT_ID_LEN};
use crate::ws::server::ServeConfig;

/// Keys of a `websocket_flood` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketFloodSpec {
    /// `"builtin"`: the reference server, started in this process.
    #[serde(default)]
    pub target: Option<String>,
    /// `ws://host:port/path` of a server already running, or started by `server`.
    #[serde(default)]
    pub url: Option<String>,
    /// A server neon-perf starts before the flood and stops after it.
    #[serde(default)]
    pub server: Option<ServerSpec>,
    /// Settings of the builtin reference server.
    #[serde(default)]
    pub builtin: Option<BuiltinSpec>,
    /// Concurrent connections (default 1).
    #[serde(default)]
    pub connections: Option<u32>,
    /// Connection attempts are spread evenly over this time (default: as
    /// fast as the server accepts them); messages start once all are done.
    #[serde(default)]
    pub ramp_up: Option<HumanDuration>,
    /// Measured time (default: the `max_time` setting).
    #[serde(default)]
    pub duration: Option<HumanDuration>,
    /// Measured messages in total, instead of a duration.
    #[serde(default)]
    pub messages: Option<u64>,
    /// Closed loop: messages in flight per connection (default 1).
    #[serde(default)]
    pub in_flight: Option<u32>,
    /// Open loop: total send rate over all connections, e.g. "20000msg/s".
    #[serde(default)]
    pub rate: Option<Rate>,
    /// What each message carries (echo servers; the builtin server takes
    /// feature vectors of `builtin.input_dim`).
    #[serde(default)]
    pub payload: Option<PayloadSpec>,
    /// Robustness checks run after the flood, against the same server.
    #[serde(default)]
    pub checks: Vec<String>,
    /// The largest message the server accepts, when known (for `checks`).
    #[serde(default)]
    pub max_message: Option<ByteSize>,
    /// Errors tolerated before the flood's check fails (default 0).
    #[serde(default)]
    pub max_errors: Option<u64>,
    /// Worker threads of the client's runtime (default: half the cores for
    /// an external server, all of them for the builtin one).
    #[serde(default)]
    pub client_threads: Option<u32>,
}

/// `server = { command = [...], ready = "...", timeout = "30s" }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// argv; `{port}`, `{neon_perf}` and `{suite_dir}` are substituted.
    pub command: Vec<String>,
    /// `"tcp://host:port"` (accepts a connection) or `"log:<regex>"` (a line
    /// of its output matches). Default: tcp to the url's host and port.
    #[serde(default)]
    pub ready: Option<String>,
    /// How long the server may take to become ready (default 30s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Extra environment variables (placeholders substituted).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the suite file's folder.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// `builtin = { ... }`: the reference server's settings ([`ServeConfig`]).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSpec {
    #[serde(default)]
    pub max_batch: Option<u32>,
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    #[serde(default)]
    pub max_wait: Option<HumanDuration>,
    #[serde(default)]
    pub max_message: Option<ByteSize>,
    #[serde(default)]
    pub write_buffer: Option<ByteSize>,
    #[serde(default)]
    pub input_dim: Option<u32>,
    #[serde(default)]
    pub hidden: Option<Vec<u32>>,
    #[serde(default)]
    pub seed: Option<u64>,
}

impl BuiltinSpec {
    pub fn serve_config(&self) -> ServeConfig {
        let d = ServeConfig::default();
        ServeConfig {
            bind: d.bind,
            max_in_flight: self.max_in_flight.map_or(d.max_in_flight, |v| v as usize),
            max_batch: self.max_batch.map_or(d.max_batch, |v| v as usize),
            max_wait: self.max_wait.map_or(d.max_wait, |v| v.0),
            max_message: self.max_message.map_or(d.max_message, |v| v.0 as usize),
            write_buffer: self.write_buffer.map_or(d.write_buffer, |v| v.0 as usize),
            input_dim: self.input_dim.map_or(d.input_dim, |v| v as usize),
            hidden: self
                .hidden
                .as_ref()
                .map_or(d.hidden, |h| h.iter().map(|&v| v as usize).collect()),
            seed: self.seed.unwrap_or(d.seed),
        }
    }
}

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

/// Messages per second: a number or a string with a rate unit ("20000msg/s").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let v: f64 = num.replace('_', "").parse().map_err(|_| {
        format!(
            "invalid rate `{s}`: expected a number of messages per second, such as \"20000msg/s\""
        )
    })?;
    match unit.trim() {
        "" | "/s" | "msg/s" | "1/s" => Ok(v),
        "k/s" | "kmsg/s" => Ok(v * 1e3),
        other => Err(format!(
            "invalid rate `{s}`: unknown unit `{other}` (use msg/s, /s or k/s)"
        )),
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate such as \"20000msg/s\" or a number of messages per second")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rate, E> {
                parse_rate(s).map(Rate).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Ok(Rate(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where the flood goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The reference server in this process, on an ephemeral port.
    Builtin(ServeConfig),
    /// A server at `url`, started by neon-perf when `server` is set.
    Url {
        url: String,
        server: Option<ServerSpec>,
    },
}

/// How `server.ready` is detected.
#[derive(Clone, Debug, PartialEq)]
pub enum Ready {
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
    /// A line of the server's stdout or stderr matches.
    Log(String),
}

impl Ready {
    pub fn parse(s: &str) -> Result<Ready, String> {
        if let Some(addr) = s.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && (p == "{port}" || p.parse::<u16>().is_ok()));
            if !ok {
                return Err(format!(
                    "invalid `ready` address `{s}`: expected \"tcp://host:port\""
                ));
            }
            Ok(Ready::Tcp(addr.to_string()))
        } else if let Some(re) = s.strip_prefix("log:") {
            regex::Regex::new(re).map_err(|e| format!("invalid `ready` regex `{re}`: {e}"))?;
            Ok(Ready::Log(re.to_string()))
        } else {
            Err(format!(
                "invalid `ready` `{s}`: expected \"tcp://host:port\" or \"log:<regex>\""
            ))
        }
    }
}

/// Closed loop (a fixed number in flight per connection) or open loop (a
/// fixed total rate, latency measured from each message's intended send time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    Closed { in_flight: u32 },
    Open { rate: f64 },
}

/// The settings of one sweep point, `params` applied.
#[derive(Clone, Debug, PartialEq)]
pub struct FloodPoint {
    pub connections: u32,
    pub load: Load,
    pub message: MessageType,
    /// `None` with the builtin target: feature vectors of `input_dim`.
    pub size: Option<SizeSpec>,
}

/// Keys `params` may sweep in a `websocket_flood` scenario.
pub const SWEEPABLE: [&str; 5] = ["connections", "in_flight", "rate", "size", "message"];

/// Most connections one scenario may open.
pub const MAX_CONNECTIONS: u32 = 1_000_000;
/// Largest message a flood sends.
pub const MAX_SIZE: u64 = 64 << 20;

impl WebsocketFloodSpec {
    pub fn is_builtin(&self) -> bool {
        self.target.as_deref() == Some("builtin")
    }

    pub fn target(&self) -> Target {
        match (&self.target, &self.url) {
            (_, Some(url)) => Target::Url {
                url: url.clone(),
                server: self.server.clone(),
            },
            _ => Target::Builtin(self.builtin.clone().unwrap_or_default().serve_config()),
        }
    }

    pub fn ramp_up(&self) -> Duration {
        self.ramp_up.map_or(Duration::ZERO, |d| d.0)
    }

    pub fn max_errors(&self) -> u64 {
        self.max_errors.unwrap_or(0)
    }

    pub fn check_kinds(&self) -> Vec<CheckKind> {
        self.checks
            .iter()
            .filter_map(|c| CheckKind::from_id(c))
            .collect()
    }

    pub fn ready(&self) -> Option<Ready> {
        let server = self.server.as_ref()?;
        match &server.ready {
            Some(r) => Ready::parse(r).ok(),
            None => {
                let url = self.url.as_deref()?;
                Some(Ready::Tcp(host_port(url)?.to_string()))
            }
        }
    }

    pub fn server_timeout(&self) -> Duration {
        self.server
            .as_ref()
            .and_then(|s| s.timeout)
            .map_or(Duration::from_secs(30), |d| d.0)
    }

    /// The settings at one sweep point: each param named after a sweepable
    /// key overrides it. Errors name the key (`params` for a bad param).
    pub fn point(&self, point: &ParamPoint) -> Result<FloodPoint, (&'static str, String)> {
        let mut connections = self.connections.unwrap_or(1) as u64;
        let mut in_flight = self.in_flight.map(u64::from);
        let mut rate = self.rate.map(|r| r.0);
        let mut message = self.payload.as_ref().and_then(|p| p.kind);
        let mut size = self.payload.as_ref().and_then(|p| p.size);
        for (name, v) in point {
            let bad = |what: &str| {
                (
                    "params",
                    format!("`params.{name}`: expected {what}, found `{v}`"),
                )
            };
            match name.as_str() {
                "connections" => connections = whole(v).ok_or_else(|| bad("a whole number"))?,
                "in_flight" => in_flight = Some(whole(v).ok_or_else(|| bad("a whole number"))?),
                "rate" => {
                    rate = Some(match v {
                        ParamValue::Str(s) => parse_rate(s).map_err(|e| ("params", e))?,
                        _ => v.as_f64().ok_or_else(|| bad("a rate"))?,
                    })
                }
                "size" => {
                    let n = match v {
                        ParamValue::Str(s) => parse_size(s).map_err(|e| ("params", e))?,
                        _ => whole(v).ok_or_else(|| bad("a size"))?,
                    };
                    size = Some(SizeSpec { min: n, max: n });
                }
                "message" => {
                    message = Some(match v {
                        ParamValue::Str(s) if s == "binary" => MessageType::Binary,
                        ParamValue::Str(s) if s == "text" => MessageType::Text,
                        _ => return Err(bad("\"binary\" or \"text\"")),
                    })
                }
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
        }
        if connections == 0 || connections > MAX_CONNECTIONS as u64 {
            return Err((
                "connections",
                format!("`connections` must be between 1 and {MAX_CONNECTIONS}, got {connections}"),
            ));
        }
        let load = match (in_flight, rate) {
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
        };
        let message = message.unwrap_or_default();
        if self.is_builtin() {
            if message == MessageType::Text || size.is_some() {
                return Err((
                    "payload",
                    "the builtin server takes binary f32 feature vectors: set their length with `builtin.input_dim` instead of `payload.type`/`payload.size`".into(),
                ));
            }
            return Ok(FloodPoint {
                connections: connections as u32,
                load,
                message,
                size: None,
            });
        }
        let has_file = self.payload.as_ref().is_some_and(|p| p.file.is_some());
        let size = match size {
            Some(s) => Some(s),
            None if has_file => None,
            None => Some(SizeSpec { min: 64, max: 64 }),
        };
        if let Some(s) = size {
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
        }
        Ok(FloodPoint {
            connections: connections as u32,
            load,
            message,
            size,
        })
    }

    /// The checks serde cannot do. Returns the offending key (empty: the
    /// scenario) and why.
    pub fn validate(&self, points: &[ParamPoint]) -> Result<(), (&'static str, String)> {
        match (&self.target, &self.url) {
            (Some(_), Some(_)) => {
                return Err((
                    "url",
                    "give either `target = \"builtin\"` or `url`, not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    "",
                    "missing `target = \"builtin\"` (the reference server, started in-process) or `url = \"ws://host:port/\"`".into(),
                ));
            }
            (Some(t), None) if t != "builtin" => {
                let hint = if t.starts_with("ws://") || t.starts_with("wss://") {
                    format!(": to flood `{t}`, write `url = \"{t}\"`")
                } else {
                    String::new()
                };
                return Err((
                    "target",
                    format!("unknown target `{t}`: the only named target is \"builtin\"{hint}"),
                ));
            }
            _ => {}
        }
        if self.is_builtin() {
            if self.server.is_some() {
                return Err(("server", "`server` starts a server for a `url` target; the builtin target is started by neon-perf itself".into()));
            }
            if self.payload.as_ref().is_some_and(|p| p.file.is_some()) {
                return Err(("payload", "the builtin server takes f32 feature vectors: `payload.file` is for `url` targets".into()));
            }
            if self.max_message.is_some() {
                return Err((
                    "max_message",
                    "the builtin server's limit is `builtin.max_message`".into(),
                ));
            }
            if let Some(b) = &self.builtin {
                if b.max_batch == Some(0) || b.input_dim == Some(0) {
                    return Err((
                        "builtin",
                        "`builtin.max_batch` and `builtin.input_dim` must be at least 1".into(),
                    ));
                }
                if b.hidden.as_ref().is_some_and(|h| h.contains(&0)) {
                    return Err(("builtin", "`builtin.hidden` widths must be positive".into()));
                }
            }
        } else {
            if self.builtin.is_some() {
                return Err(("builtin", "`builtin` configures the reference server of `target = \"builtin\"`; this scenario floods `url`".into()));
            }
            let url = self.url.as_deref().unwrap_or("");
            check_url(url, self.server.is_some()).map_err(|m| ("url", m))?;
            if let Some(s) = &self.server {
                if s.command.is_empty() {
                    return Err(("server", "`server.command` must not be empty".into()));
                }
                if let Some(r) = &s.ready {
                    Ready::parse(r).map_err(|m| ("server", m))?;
                }
                if s.timeout.is_some_and(|t| t.0.is_zero()) {
                    return Err(("server", "`server.timeout` must be positive".into()));
                }
            }
        }
        if self.duration.is_some() && self.messages.is_some() {
            return Err((
                "messages",
                "give either `duration` or `messages`, not both".into(),
            ));
        }
        if self.duration.is_some_and(|d| d.0.is_zero()) {
            return Err(("duration", "`duration` must be positive".into()));
        }
        if self.messages == Some(0) {
            return Err(("messages", "`messages` must be at least 1".into()));
        }
        if self.client_threads == Some(0) {
            return Err((
                "client_threads",
                "`client_threads` must be at least 1".into(),
            ));
        }
        for p in points {
            self.point(p)?;
        }
        Ok(())
    }
}

fn whole(v: &ParamValue) -> Option<u64> {
    match v {
        ParamValue::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

/// `host:port` of a `ws://` url (`{port}` allowed as the port).
pub fn host_port(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("ws://")?;
    let hp = rest.split('/').next()?;
    Some(hp)
}

fn check_url(url: &str, has_server: bool) -> Result<(), String> {
    if url.starts_with("wss://") {
        return Err(format!(
            "`{url}`: TLS (`wss://`) is not supported by this build: flood the server's plain `ws://` port"
        ));
    }
    let Some(hp) = host_port(url) else {
        return Err(format!(
            "invalid url `{url}`: expected \"ws://host:port/path\""
        ));
    };
    let Some((host, port)) = hp.rsplit_once(':') else {
        return Err(format!(
            "invalid url `{url}`: give the port, e.g. \"ws://{hp}:8765/\""
        ));
    };
    if host.is_empty() {
        return Err(format!("invalid url `{url}`: missing host"));
    }
    if port == "{port}" {
        if !has_server {
            return Err(format!(
                "`{{port}}` in `{url}` is a free port neon-perf picks for the server it starts: it needs `server = {{ command = [...] }}`"
            ));
        }
    } else if port.parse::<u16>().is_err() {
        return Err(format!(
            "invalid url `{url}`: `{port}` is not a port number"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &str) -> WebsocketFloodSpec {
        toml::from_str(src).unwrap()
    }

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

    #[test]
    fn refusals() {
        let cases = [
            ("", "missing `target"),
            ("target = \"builtin\"\nurl = \"ws://a:1/\"", "not both"),
            ("target = \"ws://a:1/\"", "write `url = \"ws://a:1/\"`"),
            ("url = \"wss://a:1/\"", "TLS"),
            ("url = \"ws://a/\"", "give the port"),
            ("url = \"ws://a:{port}/\"", "needs `server"),
            ("url = \"ws://a:1/\"\nin_flight = 2\nrate = 5", "not both"),
            (
                "url = \"ws://a:1/\"\npayload = { size = 4 }",
                "at least 8 bytes",
            ),
            (
                "url = \"ws://a:1/\"\npayload = { type = \"text\", size = 8 }",
                "at least 16 bytes",
            ),
            ("target = \"builtin\"\npayload = { size = 64 }", "input_dim"),
            (
                "url = \"ws://a:1/\"\nserver = { command = [] }",
                "must not be empty",
            ),
            (
                "url = \"ws://a:1/\"\nserver = { command = [\"x\"], ready = \"log:(\" }",
                "invalid `ready` regex",
            ),
            ("url = \"ws://a:1/\"\nconnections = 0", "between 1 and"),
        ];
        for (src, want) in cases {
            let e = spec(src).validate(&[ParamPoint::new()]).unwrap_err();
            assert!(e.1.contains(want), "{src}: {e:?}");
        }
    }

    #[test]
    fn ready_forms() {
        assert_eq!(
            Ready::parse("tcp://127.0.0.1:8765"),
            Ok(Ready::Tcp("127.0.0.1:8765".into()))
        );
        assert_eq!(
            Ready::parse("log:listening on \\d+"),
            Ok(Ready::Log("listening on \\d+".into()))
        );
        assert!(Ready::parse("http://x").is_err());
        let s = spec("url = \"ws://127.0.0.1:{port}/x\"\nserver = { command = [\"x\"] }");
        assert_eq!(s.ready(), Some(Ready::Tcp("127.0.0.1:{port}".into())));
    }
}
