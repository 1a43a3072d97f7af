//! `[scenario.protocol]` and `headers`, translated for the flood engine:
//! the request template compiled with the point's params, pointers and
//! bounds as the engine's types, header values read from the environment.

use crate::exec::ExecError;
use crate::plan::websocket::{EndSpec, MatchSpec, ProtocolSpec, headers};
use crate::plan::{ParamPoint, WebsocketFloodSpec};
use crate::ws::client::stream::{self, End, Goodput, Matching, Protocol, Request};
use crate::ws::client::{Frame, Headers, Payload};

/// The engine's protocol at one sweep point.
pub(super) fn protocol(p: &ProtocolSpec, point: &ParamPoint, seed: u64) -> Protocol {
    let vars: Vec<(String, String)> = point
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let request = match (&p.request.text, p.request.binary) {
        (Some(t), _) => Request::Text(stream::request::compile(t, &vars)),
        (None, Some(b)) => Request::Binary(Payload::random(
            Frame::Binary,
            b.min as usize,
            b.max as usize,
            seed,
        )),
        (None, None) => Request::Text(Vec::new()), // refused by the plan's checks
    };
    let matching = match p.matching() {
        MatchSpec::Id => Matching::Id,
        MatchSpec::Order => Matching::Order,
        MatchSpec::Json(ptr) => Matching::Json(ptr),
    };
    Protocol {
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
    }
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
        let e = protocol(&p, &pt, 0);
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
}
