//! One `[[scenario]]` table → a [`ScenarioPlan`]: common keys, sweep params,
//! metric rules, settings, and the kind's own spec (deserialized by serde).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::command::{BUILTIN_PLACEHOLDERS, check_command};
use super::error::{Diag, did_you_mean};
use super::metric_rule::read_rules;
use super::read::{self, Value, a_type, entries};
use super::settings::{Layer, SETTINGS_KEYS};
use crate::metric::ChecklistItem;
use crate::plan::{
    BatchSweepSpec, CommandSpec, DeviceSel, GpuKernelSpec, Kind, KindSpec, OomStressSpec,
    ParamPoint, ParamValue, ScenarioPlan, SourceLocation, WebsocketFloodSpec,
};

/// Keys every scenario may have, whatever its kind (settings keys come on top).
pub(crate) const COMMON_KEYS: [&str; 6] =
    ["name", "kind", "device", "checklist", "params", "metric"];
/// More points than this is almost certainly a mistake in `params`.
const MAX_POINTS: usize = 100_000;

/// What a scenario needs from the suite around it.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    pub path: &'a Path,
    pub suite: &'a str,
    pub defaults: &'a Layer,
}

/// A letter or digit, `-` or `_`: safe in test names, file names and URLs.
pub(crate) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads the scenario's `name`, checking it is a slug.
pub(crate) fn name<'a>(
    t: &'a DeTable<'_>,
    header: &Range<usize>,
) -> Result<(&'a str, Range<usize>), Diag> {
    let Some(v) = t.get("name") else {
        return Err(
            Diag::new(header.clone(), "missing key `name` in [[scenario]]").hint(Some(
                "every scenario needs a `name`, unique in its suite, e.g. `name = \"saxpy\"`"
                    .into(),
            )),
        );
    };
    let s = read::string(v, "name")?;
    if !is_slug(s) {
        return Err(Diag::new(
            v.span(),
            format!("scenario name `{s}` is not a slug: use letters, digits, `-` and `_`"),
        ));
    }
    Ok((s, v.span()))
}

/// Builds the plan; every problem found is pushed to `diags`.
pub(crate) fn scenario(
    ctx: &Ctx<'_>,
    header: Range<usize>,
    t: &DeTable<'_>,
    diags: &mut Vec<Diag>,
) -> Option<ScenarioPlan> {
    let before = diags.len();
    let name = match name(t, &header) {
        Ok((n, _)) => Some(n.to_string()),
        Err(d) => {
            diags.push(d);
            None
        }
    };
    let kind = kind(t, &header).map_err(|d| diags.push(d)).ok();

    let mut device = DeviceSel::default();
    let mut checklist = Vec::new();
    let mut points = vec![ParamPoint::new()];
    let mut param_names = Vec::new();
    let mut rules = BTreeMap::new();
    let mut layer = Layer::default();
    let mut rest = DeTable::new();
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        let r = match key {
            "name" | "kind" => Ok(()),
            "device" => read::string(v, key).and_then(|s| {
                DeviceSel::parse(s)
                    .map(|d| device = d)
                    .map_err(|e| Diag::new(v.span(), e))
            }),
            "checklist" => read_checklist(v).map(|c| checklist = c),
            "params" => read_params(v, diags).map(|(names, p)| {
                param_names = names;
                points = p;
            }),
            "metric" => {
                rules = read_rules(v, diags);
                Ok(())
            }
            _ => match layer.read(key, v) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    rest.insert(k.clone(), v.clone());
                    Ok(())
                }
                Err(d) => Err(d),
            },
        };
        if let Err(d) = r {
            diags.push(d);
        }
    }
    diags.extend(layer.check_samples(Some(ctx.defaults)));

    let known_keys: Vec<&str> = COMMON_KEYS
        .iter()
        .chain(SETTINGS_KEYS.iter())
        .copied()
        .collect();
    let spec = kind.and_then(|kind| {
        let r = match kind {
            Kind::Command => {
                read::spec::<CommandSpec>(rest, header.clone(), kind.id(), &known_keys)
                    .and_then(|spec| check_command(ctx.text, t, &spec, &param_names).map(|()| spec))
                    .map(KindSpec::Command)
            }
            Kind::GpuKernel => {
                read::spec::<GpuKernelSpec>(rest, header.clone(), kind.id(), &known_keys)
                    .and_then(|s| {
                        s.validate()
                            .and_then(|()| s.validate_device(device))
                            .map(|()| s)
                            .map_err(|m| Diag::new(header.clone(), m))
                    })
                    .map(KindSpec::GpuKernel)
            }
            Kind::OomStress => {
                read::spec::<OomStressSpec>(rest, header.clone(), kind.id(), &known_keys)
                    .and_then(|s| {
                        s.validate().map_err(|m| Diag::new(header.clone(), m))?;
                        s.check(device).map_err(|(key, m)| {
                            Diag::new(t.get(key).map(|v| v.span()).unwrap_or(header.clone()), m)
                        })?;
                        Ok(s)
                    })
                    .map(KindSpec::OomStress)
            }
            Kind::BatchSweep => {
                read::spec::<BatchSweepSpec>(rest, header.clone(), kind.id(), &known_keys)
                    .and_then(|spec| check_batch_sweep(t, &header, spec))
                    .map(KindSpec::BatchSweep)
            }
            Kind::WebsocketFlood => {
                read::spec::<WebsocketFloodSpec>(rest, header.clone(), kind.id(), &known_keys)
                    .and_then(|spec| check_websocket(ctx.text, t, &header, spec, &points))
                    .map(|s| KindSpec::WebsocketFlood(Box::new(s)))
            }
        };
        r.map_err(|d| diags.push(other_kinds_key(d, kind))).ok()
    });

    if diags.len() > before {
        return None;
    }
    let (line, column) = {
        let line = line_of(ctx.text, header.start);
        let start = ctx.text[..header.start].rfind('\n').map_or(0, |i| i + 1);
        (line, ctx.text[start..header.start].chars().count() + 1)
    };
    Some(ScenarioPlan {
        suite: ctx.suite.to_string(),
        name: name?,
        location: SourceLocation {
            file: ctx.path.to_path_buf(),
            line,
            column,
        },
        base_dir: super::base_dir(ctx.path),
        device,
        checklist,
        settings: layer.settings.or(&ctx.defaults.settings),
        metric_rules: rules,
        points,
        spec: spec?,
    })
}

/// An unknown key that another kind takes: say so, when no typo hint fits.
fn other_kinds_key(d: Diag, kind: Kind) -> Diag {
    let is_typo = d
        .hint
        .as_deref()
        .is_some_and(|h| h.starts_with("did you mean"));
    let key = match d.message.strip_prefix("unknown key `") {
        Some(rest) if !is_typo => rest.split('`').next().unwrap_or(""),
        _ => return d,
    };
    let owners: Vec<&str> = [
        (Kind::Command, read::spec_fields::<CommandSpec>()),
        (Kind::GpuKernel, read::spec_fields::<GpuKernelSpec>()),
        (Kind::OomStress, read::spec_fields::<OomStressSpec>()),
        (Kind::BatchSweep, read::spec_fields::<BatchSweepSpec>()),
        (
            Kind::WebsocketFlood,
            read::spec_fields::<WebsocketFloodSpec>(),
        ),
    ]
    .into_iter()
    .filter(|(k, fields)| *k != kind && fields.contains(&key))
    .map(|(k, _)| k.id())
    .collect();
    if owners.is_empty() {
        return d;
    }
    let hint = format!(
        "`{key}` is a key of `{}` scenarios; this one is `kind = \"{kind}\"`",
        owners.join("` and `")
    );
    d.hint(Some(hint))
}

/// `kind`: required and known.
fn kind(t: &DeTable<'_>, header: &Range<usize>) -> Result<Kind, Diag> {
    let ids = || Kind::ALL.map(|k| k.id()).join(", ");
    let Some(v) = t.get("kind") else {
        return Err(
            Diag::new(header.clone(), "missing key `kind` in [[scenario]]").hint(Some(format!(
                "add `kind = \"command\"` (one of: {})",
                ids()
            ))),
        );
    };
    let s = read::string(v, "kind")?;
    match Kind::from_id(s) {
        Some(k) => Ok(k),
        None => Err(Diag::new(v.span(), format!("unknown kind `{s}`")).hint(
            did_you_mean(s, Kind::ALL.iter().map(|k| k.id()))
                .or_else(|| Some(format!("expected one of: {}", ids()))),
        )),
    }
}

/// The checks of a `batch_sweep` spec that serde cannot do, located at the
/// offending key (or the scenario header when the key is absent).
fn check_batch_sweep(
    t: &DeTable<'_>,
    header: &Range<usize>,
    spec: BatchSweepSpec,
) -> Result<BatchSweepSpec, Diag> {
    match spec.validate() {
        Ok(()) => Ok(spec),
        Err((key, msg)) => {
            let span = t.get(key).map(|v| v.span()).unwrap_or(header.clone());
            Err(Diag::new(span, msg))
        }
    }
}

/// The checks of a `websocket_flood` spec that serde cannot do: the target,
/// sizes and rates at every sweep point, `checks` ids (with a hint), and
/// placeholders in `url` and `server` (`{port}`, `{neon_perf}`, `{suite_dir}`).
fn check_websocket(
    text: &str,
    t: &DeTable<'_>,
    header: &Range<usize>,
    spec: WebsocketFloodSpec,
    points: &[ParamPoint],
) -> Result<WebsocketFloodSpec, Diag> {
    let at = |key: &str| t.get(key).map(|v| v.span()).unwrap_or(header.clone());
    if let Some(DeValue::Array(items)) = t.get("checks").map(|v| v.get_ref()) {
        let ids = crate::plan::websocket::wire::CheckKind::ALL.map(|c| c.id());
        let mut seen = Vec::new();
        for item in items.iter() {
            let id = read::string(item, "checks")?;
            if crate::plan::websocket::wire::CheckKind::from_id(id).is_none() {
                return Err(
                    Diag::new(item.span(), format!("unknown check `{id}`")).hint(
                        did_you_mean(id, ids)
                            .or_else(|| Some(format!("expected one of: {}", ids.join(", ")))),
                    ),
                );
            }
            if seen.contains(&id) {
                return Err(Diag::new(
                    item.span(),
                    format!("check `{id}` is listed twice"),
                ));
            }
            seen.push(id);
        }
    }
    spec.validate(points).map_err(|(key, msg)| {
        Diag::new(
            if key.is_empty() {
                header.clone()
            } else {
                at(key)
            },
            msg,
        )
    })?;
    // Placeholders: `{port}` (a free port picked for `server`), `{neon_perf}`, `{suite_dir}`.
    let known = ["port", "neon_perf", "suite_dir"];
    let mut strings: Vec<&Value<'_>> = t.get("url").into_iter().collect();
    if let Some(DeValue::Table(server)) = t.get("server").map(|s| s.get_ref()) {
        for key in ["command", "ready", "cwd"] {
            match server.get(key).map(|v| (v, v.get_ref())) {
                Some((_, DeValue::Array(a))) => strings.extend(a.iter()),
                Some((v, _)) => strings.push(v),
                None => {}
            }
        }
        if let Some(DeValue::Table(env)) = server.get("env").map(|e| e.get_ref()) {
            strings.extend(entries(env).into_iter().map(|(_, v)| v));
        }
    }
    if let Some((span, name)) = super::command::first_unknown_placeholder(text, &strings, &known) {
        return Err(Diag::new(span, format!("unknown placeholder `{{{name}}}`")).hint(
            super::error::closest(&name, known)
                .map(|c| format!("did you mean `{{{c}}}`?"))
                .or_else(|| Some("a `websocket_flood` scenario knows `{port}`, `{neon_perf}` and `{suite_dir}`; `params` override keys instead".into())),
        ));
    }
    Ok(spec)
}

fn read_checklist(v: &Value<'_>) -> Result<Vec<ChecklistItem>, Diag> {
    let DeValue::Array(items) = v.get_ref() else {
        return Err(Diag::new(
            v.span(),
            format!(
                "expected an array of checklist ids for `checklist`, found {}",
                a_type(v.get_ref())
            ),
        ));
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let id = read::string(item, "checklist")?;
        let Some(c) = ChecklistItem::from_id(id) else {
            let ids = ChecklistItem::ALL.map(|c| c.id());
            return Err(
                Diag::new(item.span(), format!("unknown checklist item `{id}`")).hint(
                    did_you_mean(id, ids)
                        .or_else(|| Some(format!("expected one of: {}", ids.join(", ")))),
                ),
            );
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

pub(crate) use crate::plan::command::is_ident;

fn param_value(v: &Value<'_>, name: &str) -> Result<ParamValue, Diag> {
    Ok(match v.get_ref() {
        DeValue::String(s) => ParamValue::Str(s.to_string()),
        DeValue::Boolean(b) => ParamValue::Bool(*b),
        DeValue::Integer(_) => {
            ParamValue::Int(read::as_int(v.get_ref()).ok_or_else(|| {
                Diag::new(v.span(), format!("`params.{name}`: integer too large"))
            })?)
        }
        DeValue::Float(_) => ParamValue::Float(read::number(v, name)?),
        other => {
            return Err(Diag::new(
                v.span(),
                format!(
                    "expected a string, number or boolean in `params.{name}`, found {}",
                    a_type(other)
                ),
            ));
        }
    })
}

/// `params = { n = [1, 2], dtype = "f32" }` → the cartesian product, the first
/// param varying slowest. Returns the param names in declaration order.
fn read_params(
    v: &Value<'_>,
    diags: &mut Vec<Diag>,
) -> Result<(Vec<String>, Vec<ParamPoint>), Diag> {
    let t = read::table(v, "params")?;
    let mut names = Vec::new();
    let mut points = vec![ParamPoint::new()];
    for (k, v) in entries(t) {
        let name = k.get_ref().as_ref();
        if !is_ident(name) || BUILTIN_PLACEHOLDERS.contains(&name) {
            let why = if is_ident(name) {
                format!("param name `{name}` is reserved for the built-in `{{{name}}}` placeholder")
            } else {
                format!("param name `{name}` must be an identifier: letters, digits and `_`")
            };
            diags.push(Diag::new(k.span(), why));
            continue;
        }
        let values: Result<Vec<ParamValue>, Diag> = match v.get_ref() {
            DeValue::Array(a) if a.is_empty() => Err(Diag::new(
                v.span(),
                format!("`params.{name}` is an empty list: give at least one value"),
            )),
            DeValue::Array(a) => a.iter().map(|x| param_value(x, name)).collect(),
            _ => param_value(v, name).map(|x| vec![x]),
        };
        match values {
            Ok(values) => {
                if points.len().saturating_mul(values.len()) > MAX_POINTS {
                    diags.push(Diag::new(
                        v.span(),
                        format!("`params` expand to more than {MAX_POINTS} points"),
                    ));
                    continue;
                }
                points = points
                    .iter()
                    .flat_map(|p| {
                        values.iter().map(move |x| {
                            let mut p = p.clone();
                            p.insert(name.to_string(), x.clone());
                            p
                        })
                    })
                    .collect();
                names.push(name.to_string());
            }
            // Pushed here so every bad param is reported; the caller drops the
            // plan. The name still counts, so `{n}` is not reported as unknown.
            Err(d) => {
                diags.push(d);
                names.push(name.to_string());
            }
        }
    }
    Ok((names, points))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["saxpy", "mlp-sweep", "a_1"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["", "has space", "dot.ted", "ünï"] {
            assert!(!is_slug(bad), "{bad}");
        }
    }
}
