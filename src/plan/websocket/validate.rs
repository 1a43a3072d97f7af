//! The checks of a `websocket_flood` scenario that serde cannot do.

use super::WebsocketFloodSpec;
use super::target::{Ready, check_url};
use super::wire::CheckKind;
use crate::plan::ParamPoint;
use crate::plan::command::first_unknown_placeholder;
use crate::plan::env_ref;
use crate::plan::hint::{closest, did_you_mean};
use crate::plan::kinds::{At, CheckCtx, KindRules, SpecError};

/// Placeholders of `url` and `server`.
const PLACEHOLDERS: [&str; 3] = ["port", "neon_perf", "suite_dir"];

impl KindRules for WebsocketFloodSpec {
    /// Round-trip times of a flood are wide by nature.
    const BLESS_CAN_TELL: bool = false;
    const FRESH_PROCESSES: bool = false;
    const LEAK_RULES: bool = false;

    /// `checks` ids, the target, sizes and rates at every sweep point, and
    /// placeholders in `url` and `server` (`{port}`, `{neon_perf}`,
    /// `{suite_dir}`).
    fn check(&self, ctx: &CheckCtx<'_>) -> Result<(), SpecError> {
        self.check_ids()?;
        // Placeholders first: a `{prot}` in `url` is a typo of `{port}`,
        // not "not a port number".
        self.check_placeholders()?;
        self.validate(ctx.points)?;
        self.check_port_passed()?;
        super::headers::check(&self.headers)?;
        super::tls::check(self.tls.as_ref(), self.url.as_deref())?;
        if self.url.as_deref().is_some_and(|u| u.starts_with("wss://")) {
            if let Some(i) = self.plain_ws_check() {
                return Err(SpecError::new(
                    At::Item("checks", i),
                    format!(
                        "the `{}` check speaks plain `ws://`: run it against the server's `ws://` port (`ping` and `cancel` work over `wss://`)",
                        self.checks[i]
                    ),
                ));
            }
        }
        self.check_health()?;
        self.check_protocol(ctx.points)
    }

    /// `{env:NAME}` in `headers` and `server.env`.
    fn env_uses(&self) -> Vec<env_ref::EnvUse> {
        let mut uses = env_ref::uses("headers", &self.headers, |k| format!("header `{k}`"));
        if let Some(server) = &self.server {
            uses.extend(env_ref::uses("server.env", &server.env, |k| {
                format!("`server.env.{k}`")
            }));
        }
        uses
    }
}

impl WebsocketFloodSpec {
    /// `{port}` in `url` is the free port neon-perf picks for the server it
    /// starts; the server learns it only from its command line or its
    /// environment. Without either, it listens elsewhere and every
    /// connection is refused after the ready wait.
    fn check_port_passed(&self) -> Result<(), SpecError> {
        let (Some(url), Some(server)) = (&self.url, &self.server) else {
            return Ok(());
        };
        let passed = server
            .command
            .iter()
            .chain(server.env.values())
            .any(|s| s.contains("{port}"));
        if !url.contains("{port}") && passed {
            return Err(SpecError::new(
                At::Key("url"),
                "`server.command` (or `server.env`) tells the server to listen on `{port}`, the free port neon-perf picks, but `url` connects elsewhere",
            )
            .hint(Some(
                "write the port as `{port}` in `url` too, e.g. `url = \"ws://127.0.0.1:{port}/ws\"`".into(),
            )));
        }
        if !url.contains("{port}") || passed {
            return Ok(());
        }
        Err(SpecError::new(
            At::Key("server.command"),
            "`url` connects to `{port}`, the free port neon-perf picks, but neither `server.command` nor `server.env` passes `{port}` to the server",
        )
        .hint(Some(
            "tell the server where to listen: `\"--port\", \"{port}\"` in `server.command`, or `PORT = \"{port}\"` in `server.env`; a server on a fixed port wants that port in `url`".into(),
        )))
    }

    /// `[scenario.protocol]`: its own checks, and that it floods a `url`
    /// with no `payload` (the request template replaces it).
    fn check_protocol(&self, points: &[ParamPoint]) -> Result<(), SpecError> {
        let Some(p) = &self.protocol else {
            return Ok(());
        };
        let streams = self.builtin.as_ref().and_then(|b| b.streaming) == Some(true);
        if self.is_builtin() && !streams {
            return Err(SpecError::new(
                At::Key("protocol"),
                "`protocol` describes a server's own protocol: the builtin server speaks neon-perf's format unless `builtin.streaming = true`",
            )
            .hint(Some("set `builtin = { streaming = true }` for its JSON token streams, or flood a `url`".into())));
        }
        if self.payload.is_some() {
            return Err(SpecError::new(
                At::Key("payload"),
                "with `protocol`, requests come from `protocol.request`: remove `payload`",
            ));
        }
        if points
            .iter()
            .any(|pt| pt.contains_key("size") || pt.contains_key("message"))
        {
            return Err(SpecError::new(
                At::Key("params"),
                "with `protocol`, `params` cannot sweep `size` or `message` (the request is `protocol.request`)",
            ));
        }
        p.check(points)
    }

    /// The first of `checks` that speaks only plain `ws://`.
    fn plain_ws_check(&self) -> Option<usize> {
        self.checks
            .iter()
            .position(|c| CheckKind::from_id(c).is_some_and(|k| !k.over_tls()))
    }

    /// Every `checks` id is known and listed once.
    fn check_ids(&self) -> Result<(), SpecError> {
        let ids = CheckKind::ALL.map(|c| c.id());
        for (i, id) in self.checks.iter().enumerate() {
            if CheckKind::from_id(id).is_none() {
                return Err(
                    SpecError::new(At::Item("checks", i), format!("unknown check `{id}`")).hint(
                        did_you_mean(id, ids)
                            .or_else(|| Some(format!("expected one of: {}", ids.join(", ")))),
                    ),
                );
            }
            if self.checks[..i].contains(id) {
                return Err(SpecError::new(
                    At::Item("checks", i),
                    format!("check `{id}` is listed twice"),
                ));
            }
        }
        Ok(())
    }

    fn check_placeholders(&self) -> Result<(), SpecError> {
        let mut strings: Vec<String> = self.url.iter().cloned().collect();
        if let Some(server) = &self.server {
            strings.extend(server.command.iter().cloned());
            strings.extend(server.ready.iter().cloned());
            strings.extend(server.cwd.iter().map(|c| c.to_string_lossy().into_owned()));
            strings.extend(server.env.values().cloned());
        }
        let Some(name) = first_unknown_placeholder(&strings, &PLACEHOLDERS) else {
            return Ok(());
        };
        Err(SpecError::new(
            At::Placeholder {
                within: &["url", "server.command", "server.ready", "server.cwd", "server.env"],
                name: name.to_string(),
            },
            format!("unknown placeholder `{{{name}}}`"),
        )
        .hint(
            closest(name, PLACEHOLDERS)
                .map(|c| format!("did you mean `{{{c}}}`?"))
                .or_else(|| Some("a `websocket_flood` scenario knows `{port}`, `{neon_perf}` and `{suite_dir}`; `params` override keys instead".into())),
        ))
    }

    /// The checks serde cannot do. Returns the offending key (empty: the
    /// scenario) and why.
    pub fn validate(&self, points: &[ParamPoint]) -> Result<(), (&'static str, String)> {
        self.check_target()?;
        if self.is_builtin() {
            self.check_builtin()?;
        } else {
            self.check_url_target()?;
        }
        self.check_amounts()?;
        for p in points {
            self.point(p)?;
        }
        Ok(())
    }

    /// Either `target = "builtin"` or `url`.
    fn check_target(&self) -> Result<(), (&'static str, String)> {
        match (&self.target, &self.url) {
            (Some(_), Some(_)) => {
                Err((
                    "url",
                    "give either `target = \"builtin\"` or `url`, not both".into(),
                ))
            }
            (None, None) => {
                Err((
                    "",
                    "missing `target = \"builtin\"` (the reference server, started in-process) or `url = \"ws://host:port/\"`".into(),
                ))
            }
            (Some(t), None) if t != "builtin" => {
                let hint = if t.starts_with("ws://") || t.starts_with("wss://") {
                    format!(": to flood `{t}`, write `url = \"{t}\"`")
                } else {
                    String::new()
                };
                Err((
                    "target",
                    format!("unknown target `{t}`: the only named target is \"builtin\"{hint}"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The keys of the builtin target, and none of a `url` target's.
    fn check_builtin(&self) -> Result<(), (&'static str, String)> {
        if self.server.is_some() {
            return Err(("server", "`server` starts a server for a `url` target; the builtin target is started by neon-perf itself".into()));
        }
        if self.payload.as_ref().is_some_and(|p| p.file.is_some()) {
            return Err((
                "payload",
                "the builtin server takes f32 feature vectors: `payload.file` is for `url` targets"
                    .into(),
            ));
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
            if b.continuous_batching.is_some() && b.streaming != Some(true) {
                return Err((
                    "builtin.continuous_batching",
                    "`continuous_batching` is a setting of the streaming mode: add `streaming = true`".into(),
                ));
            }
        }
        Ok(())
    }

    /// A `url` target: the url, and the `server` that starts it.
    fn check_url_target(&self) -> Result<(), (&'static str, String)> {
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
        Ok(())
    }

    /// How long, how many, and the client's threads and spin.
    fn check_amounts(&self) -> Result<(), (&'static str, String)> {
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
        if self
            .client_spin
            .is_some_and(|d| d.0 > super::MAX_CLIENT_SPIN)
        {
            return Err((
                "client_spin",
                format!(
                    "`client_spin` is at most {:?}: it is how long the client polls \
                     between replies, and it keeps a core busy meanwhile",
                    super::MAX_CLIENT_SPIN
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::websocket::parse_spec as spec;

    #[test]
    fn refusals() {
        let cases = [
            ("", "missing `target"),
            ("target = \"builtin\"\nurl = \"ws://a:1/\"", "not both"),
            ("target = \"ws://a:1/\"", "write `url = \"ws://a:1/\"`"),
            ("url = \"wss://a/\"", "e.g. \"wss://a:8765/\""),
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
            ("url = \"ws://a:1/\"\nclient_spin = \"2s\"", "at most 1s"),
        ];
        for (src, want) in cases {
            let e = spec(src).validate(&[ParamPoint::new()]).unwrap_err();
            assert!(e.1.contains(want), "{src}: {e:?}");
        }
    }

    #[test]
    fn streaming_settings_need_the_streaming_mode() {
        let off = spec("target = \"builtin\"\nbuiltin = { continuous_batching = false }");
        let e = off.validate(&[ParamPoint::new()]).unwrap_err();
        assert_eq!(e.0, "builtin.continuous_batching");
        let on = spec(
            "target = \"builtin\"\nbuiltin = { streaming = true, continuous_batching = false }",
        );
        assert!(on.validate(&[ParamPoint::new()]).is_ok());
    }

    #[test]
    fn client_spin_defaults_by_target() {
        use std::time::Duration;
        let ext = spec("url = \"ws://a:1/\"");
        assert_eq!(ext.client_spin(), super::super::DEFAULT_CLIENT_SPIN);
        assert_eq!(spec("target = \"builtin\"").client_spin(), Duration::ZERO);
        let off = spec("url = \"ws://a:1/\"\nclient_spin = \"0s\"");
        assert_eq!(off.client_spin(), Duration::ZERO);
        let set = spec("target = \"builtin\"\nclient_spin = \"200us\"");
        assert_eq!(set.client_spin(), Duration::from_micros(200));
        assert!(set.validate(&[ParamPoint::new()]).is_ok());
    }
}
