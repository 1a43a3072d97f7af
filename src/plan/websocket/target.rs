//! Where a flood goes: the builtin reference server, or a url, optionally
//! with a server neon-perf starts (`server`) and how it knows it is ready.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::wire::ServeConfig;
use crate::units::{ByteSize, HumanDuration};

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
    /// Extra environment variables (placeholders substituted; `{env:NAME}`
    /// reads neon-perf's environment).
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
    /// Streams of token frames for JSON `generate` requests.
    #[serde(default)]
    pub streaming: Option<bool>,
    /// Streaming: one forward pass per decode step over all streams.
    #[serde(default)]
    pub continuous_batching: Option<bool>,
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
            // The flood bounds its own connections (`connections`, plus
            // the checks'): in-process, the server takes them all.
            max_connections: super::MAX_CONNECTIONS as usize + 1024,
            streaming: self.streaming.unwrap_or(d.streaming),
            continuous_batching: self.continuous_batching.unwrap_or(d.continuous_batching),
        }
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

/// `host:port` of a `ws://` or `wss://` url (`{port}` allowed as the port).
pub fn host_port(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let hp = rest.split('/').next()?;
    Some(hp)
}

pub(super) fn check_url(url: &str, has_server: bool) -> Result<(), String> {
    let Some(hp) = host_port(url) else {
        return Err(format!(
            "invalid url `{url}`: expected \"ws://host:port/path\" (or \"wss://\")"
        ));
    };
    let scheme = if url.starts_with("wss://") {
        "wss"
    } else {
        "ws"
    };
    let Some((host, port)) = hp.rsplit_once(':') else {
        return Err(format!(
            "invalid url `{url}`: give the port, e.g. \"{scheme}://{hp}:8765/\""
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
    use crate::plan::websocket::parse_spec as spec;

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
