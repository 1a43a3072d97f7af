//! One `[[scenario]]` table → a [`ScenarioPlan`]: common keys, sweep params,
//! metric rules, settings, and the kind's own spec (deserialized by serde).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::error::{Diag, did_you_mean};
use super::metric_rule::read_rules;
use super::read::{self, Value, a_type, entries};
use super::settings::{Layer, SETTINGS_KEYS};
use super::spec::{Source, fields_of, read_spec};
use crate::metric::ChecklistItem;
use crate::plan::command::BUILTIN_PLACEHOLDERS;
use crate::plan::env_ref::EnvNeed;
use crate::plan::{
    CheckCtx, DeviceSel, Kind, MetricRule, ParamPoint, ParamValue, ScenarioPlan, SourceLocation,
};

/// Keys every scenario may have, whatever its kind (settings keys come on top).
pub(crate) const COMMON_KEYS: [&str; 6] =
    ["name", "kind", "device", "checklist", "params", "metric"];
/// More points than this is almost certainly a mistake in `params`.
const MAX_POINTS: usize = 100_000;

/// What a scenario needs from the suite around it.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    /// `text`'s line starts, for locations.
    pub lines: &'a super::error::Source<'a>,
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

    let common = common_keys(t, diags);
    diags.extend(common.layer.check_samples(Some(ctx.defaults)));
    let known_keys: Vec<&str> = COMMON_KEYS
        .iter()
        .chain(SETTINGS_KEYS.iter())
        .copied()
        .collect();
    let check_ctx = CheckCtx {
        device: common.device,
        points: &common.points,
        params: &common.param_names,
    };
    let src = Source {
        text: ctx.text,
        table: t,
        header: header.clone(),
    };
    let (spec, env) = kind
        .and_then(|kind| {
            read_spec(kind, common.rest, &src, &known_keys, &check_ctx)
                .map_err(|d| diags.push(other_kinds_key(d, kind)))
                .ok()
        })
        .map_or((None, Vec::new()), |(spec, env)| (Some(spec), env));
    if let Some(kind) = kind
        && !kind.takes_leak_rules()
        && let Some(span) = leak_rule_span(t)
    {
        diags.push(
            Diag::new(
                span,
                format!("`leak` checks the values a program prints once per iteration: a `{kind}` scenario has none"),
            )
            .hint(Some("use it on a `command` scenario's printed metric, e.g. `metric.gpu_allocated = { leak = true }`".into())),
        );
    }

    if diags.len() > before {
        return None;
    }
    Some(ScenarioPlan {
        suite: ctx.suite.to_string(),
        name: name?,
        location: location(ctx, &header),
        base_dir: super::base_dir(ctx.path),
        device: common.device,
        checklist: common.checklist,
        settings: common.layer.settings.or(&ctx.defaults.settings),
        metric_rules: common.rules,
        points: common.points,
        env: env
            .into_iter()
            .map(|(u, span)| EnvNeed {
                name: u.name,
                what: u.what,
                location: location(ctx, &span),
                span,
            })
            .collect(),
        spec: spec?,
    })
}

/// The keys every kind shares, read; the kind's own keys are left in `rest`.
struct Common<'de> {
    device: DeviceSel,
    checklist: Vec<ChecklistItem>,
    points: Vec<ParamPoint>,
    param_names: Vec<String>,
    rules: BTreeMap<String, MetricRule>,
    layer: Layer,
    rest: DeTable<'de>,
}

fn common_keys<'de>(t: &DeTable<'de>, diags: &mut Vec<Diag>) -> Common<'de> {
    let mut c = Common {
        device: DeviceSel::default(),
        checklist: Vec::new(),
        points: vec![ParamPoint::new()],
        param_names: Vec::new(),
        rules: BTreeMap::new(),
        layer: Layer::default(),
        rest: DeTable::new(),
    };
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        let r = match key {
            "name" | "kind" => Ok(()),
            "device" => read::string(v, key).and_then(|s| {
                DeviceSel::parse(s)
                    .map(|d| c.device = d)
                    .map_err(|e| Diag::new(v.span(), e))
            }),
            "checklist" => read_checklist(v).map(|list| c.checklist = list),
            "params" => read_params(v, diags).map(|(names, p)| {
                c.param_names = names;
                c.points = p;
            }),
            "metric" => {
                c.rules = read_rules(v, diags);
                Ok(())
            }
            _ => match c.layer.read(key, v) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    c.rest.insert(k.clone(), v.clone());
                    Ok(())
                }
                Err(d) => Err(d),
            },
        };
        if let Err(d) = r {
            diags.push(d);
        }
    }
    c
}

/// The scenario header's file:line:column (the column in characters).
fn location(ctx: &Ctx<'_>, header: &Range<usize>) -> SourceLocation {
    let (line, column) = ctx.lines.position(header.start);
    SourceLocation {
        file: ctx.path.to_path_buf(),
        line,
        column,
    }
}

/// The first `leak = true` under `metric`, if any.
fn leak_rule_span(t: &DeTable<'_>) -> Option<Range<usize>> {
    let DeValue::Table(rules) = t.get("metric")?.get_ref() else {
        return None;
    };
    entries(rules)
        .into_iter()
        .find_map(|(_, rule)| match rule.get_ref() {
            DeValue::Table(r) => r
                .get("leak")
                .filter(|v| matches!(v.get_ref(), DeValue::Boolean(true)))
                .map(|v| v.span()),
            _ => None,
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
    let owners: Vec<&str> = Kind::ALL
        .into_iter()
        .map(|k| (k, fields_of(k)))
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
