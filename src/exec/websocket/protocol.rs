//! `[scenario.protocol]`, `headers` and `tls`, translated for the flood
//! engine: the request template compiled with the point's params, pointers
//! and bounds as the engine's types, header values read from the
//! environment, the trusted certificates read from their file.

use std::path::Path;

use crate::exec::ExecError;
use crate::plan::command::placeholders;
use crate::plan::websocket::{EndSpec, MatchSpec, ProtocolSpec, TEMPLATE_VARS, headers};
use crate::plan::websocket::{FloodPoint, Load};
use crate::plan::{ParamPoint, WebsocketFloodSpec};
use crate::ws::client::stream::{self, End, Goodput, Matching, Part, Protocol, Request};
use crate::ws::client::tls::Trust;
use crate::ws::client::{Frame, Headers, Payload};

/// The engine's protocol at one sweep point; a request file is read
/// (relative to `base_dir`) and its lines checked.
pub(super) fn protocol(
    p: &ProtocolSpec,
    point: &ParamPoint,
    seed: u64,
    base_dir: &Path,
) -> Result<Protocol, ExecError> {
    let vars: Vec<(String, String)> = point
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let r = &p.request;
    let request = match (&r.text, r.binary, &r.file) {
        (Some(t), _, _) => Request::Text(stream::request::compile(t, &vars)),
        (None, Some(b), _) => Request::Binary(Payload::random(
            Frame::Binary,
            b.min as usize,
            b.max as usize,
            seed,
        )),
        (None, None, Some(f)) => {
            let path = base_dir.join(f);
            let needs_id = matches!(p.matching(), MatchSpec::Json(_));
            let lines = request_file(&path, &vars, needs_id)
                .map_err(|e| ExecError::Failed(format!("request file {}: {e}", path.display())))?;
            Request::lines(lines)
        }
        (None, None, None) => Request::Text(Vec::new()), // refused by the plan's checks
    };
    let matching = match p.matching() {
        MatchSpec::Id => Matching::Id,
        MatchSpec::Order => Matching::Order,
        MatchSpec::Json(ptr) => Matching::Json(ptr),
    };
    Ok(Protocol {
        request,
        matching,
        end: end(p.end.as_ref()),
        skip_empty: p.skip_empty.clone(),
        error: p.error.as_ref().map(|e| (e.json.clone(), e.equals.clone())),
        units: p.units.as_ref().map(|u| u.json.clone()),
        goodput: Goodput {
            time_to_first_reply: p.goodput.and_then(|g| g.time_to_first_reply).map(|d| d.0),
            time_per_reply: p.goodput.and_then(|g| g.time_per_reply).map(|d| d.0),
        },
    })
}

/// The templates of a request file: one per non-blank line, each with
/// known placeholders only (and `{id}` when replies are matched by it).
fn request_file(
    path: &Path,
    vars: &[(String, String)],
    needs_id: bool,
) -> Result<Vec<Vec<Part>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let names: Vec<&str> = placeholders(line).into_iter().map(|(_, n)| n).collect();
        let known = |n: &&str| TEMPLATE_VARS.contains(n) || vars.iter().any(|(k, _)| k == n);
        if let Some(bad) = names.iter().find(|n| !known(n)) {
            return Err(format!("line {}: unknown placeholder `{{{bad}}}`", i + 1));
        }
        if needs_id && !names.contains(&"id") {
            return Err(format!(
                "line {}: `match.json` matches replies by `{{id}}`, which this line lacks",
                i + 1
            ));
        }
        out.push(stream::request::compile(line, vars));
    }
    if out.is_empty() {
        return Err("no request in it (every line is blank)".into());
    }
    Ok(out)
}

fn end(e: Option<&EndSpec>) -> End {
    match e {
        None => End::First,
        Some(EndSpec::Close) => End::Close,
        Some(EndSpec::Table(t)) => match (&t.json, &t.equals, t.count, t.idle) {
            (Some(p), Some(v), _, _) => End::Json(p.clone(), v.clone()),
            (_, _, Some(n), _) => End::Count(n.min(u32::MAX as u64) as u32),
            (_, _, _, Some(d)) => End::Idle(d.0),
            _ => End::First, // refused by the plan's checks
        },
    }
}

/// Which certificates a `wss://` flood trusts: `tls.ca` read (relative to
/// `base_dir`), `tls.insecure`, or the webpki roots.
pub(super) fn trust(spec: &WebsocketFloodSpec, base_dir: &Path) -> Result<Trust, ExecError> {
    let Some(tls) = &spec.tls else {
        return Ok(Trust::WebPki);
    };
    if tls.insecure == Some(true) {
        return Ok(Trust::Insecure);
    }
    match &tls.ca {
        Some(ca) => {
            let path = base_dir.join(ca);
            std::fs::read(&path).map(Trust::Pem).map_err(|e| {
                ExecError::Failed(format!("cannot read `tls.ca` {}: {e}", path.display()))
            })
        }
        None => Ok(Trust::WebPki),
    }
}

/// What every report says when certificates are not verified.
pub(super) fn insecure_warning(spec: &WebsocketFloodSpec) -> Option<String> {
    let insecure = spec.tls.as_ref().is_some_and(|t| t.insecure == Some(true));
    insecure.then(|| {
        format!(
            "TLS certificates were NOT verified (`tls.insecure = true`) for {}: anyone in the middle could have answered",
            spec.url.as_deref().unwrap_or("the url")
        )
    })
}

/// What every report says when replies are matched by order while a
/// connection may have several requests open (`in_flight` above 1, or an
/// open-loop `rate`): right for a server that answers a connection's
/// requests one after another, wrong for one that streams them at once.
pub(super) fn order_warning(spec: &WebsocketFloodSpec, points: &[FloodPoint]) -> Option<String> {
    let order = spec
        .protocol
        .as_ref()
        .is_some_and(|p| p.matching() == MatchSpec::Order);
    let open = points.iter().find_map(|p| match p.load {
        Load::Closed { in_flight } if in_flight > 1 => Some(format!("`in_flight = {in_flight}`")),
        Load::Open { .. } => Some("an open-loop `rate`".to_string()),
        Load::Closed { .. } => None,
    });
    let open = open.filter(|_| order)?;
    Some(format!(
        "replies are matched by order (`match = \"order\"`) with {open}, so a connection may have several requests open: each reply goes to the oldest, which is right only if the server answers a connection's requests one after another. A server that streams them at once has its replies counted to the wrong request (time_to_first_reply then reads about a whole stream too long): use `in_flight = 1`, or match replies by a JSON field"
    ))
}

/// The handshake headers with `{env:NAME}` read now.
pub(super) fn headers(spec: &WebsocketFloodSpec) -> Result<Headers, ExecError> {
    headers::resolve(&spec.headers)
        .map(Headers)
        .map_err(ExecError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ParamValue;

    #[test]
    fn translates_a_spec() {
        let p: ProtocolSpec = toml::from_str(
            "request = { text = '{\"id\":\"{id}\",\"p\":\"{prompt}\"}' }\nmatch = { json = \"/id\" }\nend = { count = 3 }\ngoodput = { time_to_first_reply = \"300ms\" }",
        )
        .unwrap();
        let mut pt = ParamPoint::new();
        pt.insert("prompt".into(), ParamValue::Str("hi".into()));
        let e = protocol(&p, &pt, 0, Path::new(".")).unwrap();
        assert_eq!(e.end, End::Count(3));
        assert_eq!(e.matching, Matching::Json("/id".into()));
        let Request::Text(parts) = &e.request else {
            panic!()
        };
        let mut s = String::new();
        stream::request::render(parts, 9, 0, 9, &mut s);
        assert_eq!(s, "{\"id\":\"9\",\"p\":\"hi\"}");
        assert!(e.goodput.met(300_000_000, None) && !e.goodput.met(300_000_001, None));
    }

    #[test]
    fn order_with_several_requests_open_per_connection_warns() {
        let spec = |m: &str| -> WebsocketFloodSpec {
            toml::from_str(&format!(
                "url = \"ws://x/\"\n[protocol]\nrequest = {{ text = 'x' }}\nmatch = {m}\nend = {{ count = 2 }}"
            ))
            .unwrap()
        };
        let point = |load| FloodPoint {
            connections: 8,
            load,
            message: crate::plan::websocket::MessageType::Text,
            size: None,
        };
        let one = point(Load::Closed { in_flight: 1 });
        let two = point(Load::Closed { in_flight: 2 });
        let open = point(Load::Open { rate: 20.0 });
        let order = spec("\"order\"");
        assert_eq!(order_warning(&order, std::slice::from_ref(&one)), None);
        let w = order_warning(&order, &[one.clone(), two]).unwrap();
        assert!(
            w.contains("with `in_flight = 2`") && w.contains("use `in_flight = 1`"),
            "{w}"
        );
        let w = order_warning(&order, std::slice::from_ref(&open)).unwrap();
        assert!(w.contains("with an open-loop `rate`"), "{w}");
        assert_eq!(order_warning(&spec("{ json = \"/id\" }"), &[open]), None);
    }

    #[test]
    fn request_files_are_checked_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.jsonl");
        let vars = [("prompt".to_string(), "hi".to_string())];
        std::fs::write(
            &f,
            "{\"id\":\"{id}\",\"p\":\"{prompt}\"}\n\n{\"id\":\"{id}\"}\n",
        )
        .unwrap();
        assert_eq!(request_file(&f, &vars, true).unwrap().len(), 2);
        std::fs::write(&f, "{\"id\":\"{id}\"}\n{\"x\":1}\n").unwrap();
        assert!(
            request_file(&f, &vars, true)
                .unwrap_err()
                .starts_with("line 2: ")
        );
        std::fs::write(&f, "{\"id\":\"{id}\",\"p\":\"{promt}\"}\n").unwrap();
        let e = request_file(&f, &vars, false).unwrap_err();
        assert!(e.contains("line 1: unknown placeholder `{promt}`"), "{e}");
        std::fs::write(&f, "\n \n").unwrap();
        assert!(
            request_file(&f, &vars, false)
                .unwrap_err()
                .contains("no request")
        );
    }
}
