//! One `[[scenario]]` table → a [`ScenarioPlan`]: common keys, sweep params,
//! metric rules, settings, and the kind's own spec (deserialized by serde).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::error::{Diag, closest, did_you_mean};
use super::read::{self, Value, a_type, entries};
use super::settings::{Layer, SETTINGS_KEYS};
use crate::metric::{ChecklistItem, Direction, Estimator, MetricKey, Unit};
use crate::plan::{
    CommandSpec, DeviceSel, GpuKernelSpec, Kind, KindSpec, MetricRule, OomStressSpec, ParamPoint,
    ParamValue, ScenarioPlan, SourceLocation,
};

/// Keys every scenario may have, whatever its kind (settings keys come on top).
pub(crate) const COMMON_KEYS: [&str; 6] =
    ["name", "kind", "device", "checklist", "params", "metric"];
/// Keys of a `metric."name{labels}"` rule.
pub(crate) const RULE_KEYS: [&str; 6] =
    ["tolerance", "max", "min", "direction", "estimator", "gate"];
/// Placeholders a command may use besides the params.
pub(crate) const BUILTIN_PLACEHOLDERS: [&str; 2] = ["neon_perf", "suite_dir"];
/// Kinds this version runs; the others in `Kind::ALL` are refused by name.
const SUPPORTED_KINDS: [&str; 3] = ["command", "gpu_kernel", "oom_stress"];
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
                    .map(KindSpec::GpuKernel)
            }
            Kind::OomStress => {
                read::spec::<OomStressSpec>(rest, header.clone(), kind.id(), &known_keys)
                    .map(KindSpec::OomStress)
            }
            Kind::BatchSweep | Kind::WebsocketFlood => unreachable!("refused in `kind`"),
        };
        r.map_err(|d| diags.push(d)).ok()
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

/// `kind`: required, known, and supported by this version.
fn kind(t: &DeTable<'_>, header: &Range<usize>) -> Result<Kind, Diag> {
    let ids = || SUPPORTED_KINDS.join(", ");
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
        Some(k @ (Kind::BatchSweep | Kind::WebsocketFlood)) => Err(Diag::new(
            v.span(),
            format!("kind `{k}` is not supported yet by this version of neon-perf"),
        )
        .hint(Some(format!("supported kinds: {}", ids())))),
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

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

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

/// `metric."name{labels}" = { ... }`, keyed by the canonical metric key.
fn read_rules(v: &Value<'_>, diags: &mut Vec<Diag>) -> BTreeMap<String, MetricRule> {
    let mut rules = BTreeMap::new();
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    let t = match read::table(v, "metric") {
        Ok(t) => t,
        Err(d) => {
            diags.push(d.hint(Some(
                "write `metric.\"latency_p99{batch=1}\" = { max = \"5ms\" }`".into(),
            )));
            return rules;
        }
    };
    for (k, v) in entries(t) {
        let raw = k.get_ref().as_ref();
        let key = match raw.parse::<MetricKey>() {
            Ok(key) => key.to_string(),
            Err(e) => {
                diags.push(Diag::new(k.span(), e).hint(Some(
                    "a metric is `name` or `name{label=value,...}`; quote it: `metric.\"latency{batch=1}\"`"
                        .into(),
                )));
                continue;
            }
        };
        if let Some(first) = seen.get(&key) {
            diags.push(
                Diag::new(k.span(), format!("duplicate rule for metric `{key}`"))
                    .related(first.clone(), "first rule here"),
            );
            continue;
        }
        seen.insert(key.clone(), k.span());
        match read_rule(v, &key) {
            Ok(rule) => {
                rules.insert(key, rule);
            }
            Err(mut ds) => diags.append(&mut ds),
        }
    }
    rules
}

fn read_rule(v: &Value<'_>, metric: &str) -> Result<MetricRule, Vec<Diag>> {
    let t = read::table(v, "metric").map_err(|d| vec![d])?;
    let mut rule = MetricRule::default();
    let mut errs = Vec::new();
    let mut bound_spans = (None, None);
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        let r: Result<(), Diag> = match key {
            "tolerance" => super::settings::tolerance(v).map(|x| rule.tolerance = Some(x)),
            "max" => bound(v, "max").map(|x| {
                rule.max = Some(x);
                bound_spans.1 = Some((v.span(), as_written(v)));
            }),
            "min" => bound(v, "min").map(|x| {
                rule.min = Some(x);
                bound_spans.0 = Some((v.span(), as_written(v)));
            }),
            "direction" => read::string(v, key).and_then(|s| {
                let d = match s {
                    "lower" => Direction::LowerIsBetter,
                    "higher" => Direction::HigherIsBetter,
                    "neither" => Direction::Neither,
                    _ => {
                        return Err(Diag::new(
                            v.span(),
                            format!("invalid direction `{s}`: expected \"lower\", \"higher\" or \"neither\""),
                        )
                        .hint(did_you_mean(s, ["lower", "higher", "neither"])));
                    }
                };
                rule.direction = Some(d);
                Ok(())
            }),
            "estimator" => read::string(v, key).and_then(|s| {
                parse_estimator(s)
                    .map(|e| rule.estimator = Some(e))
                    .map_err(|e| Diag::new(v.span(), e))
            }),
            "gate" => read::boolean(v, key).map(|b| rule.gate = Some(b)),
            _ => Err(Diag::new(
                k.span(),
                format!("unknown key `{key}` in the rule for metric `{metric}`"),
            )
            .hint(did_you_mean(key, RULE_KEYS).or_else(|| {
                Some(format!("a metric rule takes: {}", RULE_KEYS.join(", ")))
            }))),
        };
        if let Err(d) = r {
            errs.push(d);
        }
    }
    if let (Some(min), Some(max), (Some((min_span, min_text)), Some((max_span, max_text)))) =
        (rule.min, rule.max, bound_spans)
    {
        if min > max {
            errs.push(
                Diag::new(
                    min_span,
                    format!("`min` ({min_text}) is greater than `max` ({max_text}) for metric `{metric}`"),
                )
                .related(max_span, "`max` set here"),
            );
        }
    }
    if errs.is_empty() { Ok(rule) } else { Err(errs) }
}

/// `median`, `mean`, `min`, `max`, or a percentile `pNN` (`p10`, `p99.9`).
pub fn parse_estimator(s: &str) -> Result<Estimator, String> {
    match s {
        "median" | "p50" => return Ok(Estimator::Median),
        "mean" => return Ok(Estimator::Mean),
        "min" => return Ok(Estimator::Min),
        "max" => return Ok(Estimator::Max),
        _ => {}
    }
    match s.strip_prefix('p').map(str::parse::<f64>) {
        Some(Ok(p)) if p > 0.0 && p < 100.0 => Ok(Estimator::Quantile(p / 100.0)),
        _ => Err(format!(
            "invalid estimator `{s}`: expected \"median\", \"mean\", \"min\", \"max\" or a percentile such as \"p10\""
        )),
    }
}

/// A bound as the user wrote it, for messages.
fn as_written(v: &Value<'_>) -> String {
    match v.get_ref() {
        DeValue::String(s) => format!("\"{s}\""),
        DeValue::Integer(i) => i.as_str().to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        other => a_type(other).to_string(),
    }
}

/// A bound: a bare number, or a quantity string converted to base units
/// ("5ms" → 0.005, "4GiB" → 4294967296, "10GB/s" → 1e10, "95%" → 95).
fn bound(v: &Value<'_>, key: &str) -> Result<f64, Diag> {
    match v.get_ref() {
        DeValue::String(s) => parse_quantity(s).map_err(|e| Diag::new(v.span(), e)),
        DeValue::Integer(_) | DeValue::Float(_) => read::number(v, key),
        other => Err(Diag::new(
            v.span(),
            format!(
                "expected a number or a quantity such as \"5ms\" for `{key}`, found {}",
                a_type(other)
            ),
        )),
    }
}

pub fn parse_quantity(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit() || c == '.' || c == '_' || (i == 0 && (c == '-' || c == '+')))
        })
        .map_or(t.len(), |(i, _)| i);
    let (num, unit) = t.split_at(end);
    let value: f64 = num.replace('_', "").parse().map_err(|_| {
        format!(
            "invalid quantity `{s}`: expected a number with a unit, such as \"5ms\" or \"4GiB\""
        )
    })?;
    match Unit::parse_with_scale(unit) {
        (Unit::Other(u), _) => Err(format!(
            "invalid quantity `{s}`: unknown unit `{u}` (use ns, us, ms, s, B, KiB, MiB, GiB, KB, MB, GB, B/s, MB/s, GB/s, GFLOP/s, /s or %)"
        )),
        (_, scale) => Ok(value * scale),
    }
}

/// `{name}` placeholders in `s`: byte range of each (braces included) and its name.
pub fn placeholders(s: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(open) = s[i..].find('{').map(|o| o + i) {
        match s[open + 1..].find('}').map(|c| c + open + 1) {
            Some(close) if is_ident(&s[open + 1..close]) => {
                out.push((open..close + 1, &s[open + 1..close]));
                i = close + 1;
            }
            _ => i = open + 1,
        }
    }
    out
}

/// `command` is non-empty, and its placeholders (and those of `env` values)
/// name a param or a built-in.
fn check_command(
    text: &str,
    t: &DeTable<'_>,
    spec: &CommandSpec,
    params: &[String],
) -> Result<(), Diag> {
    let cmd = t.get("command").expect("deserialized, so present");
    if spec.command.is_empty() {
        return Err(Diag::new(cmd.span(), "`command` must not be empty")
            .hint(Some("give the program and its arguments: `command = [\"python\", \"bench.py\", \"--n={n}\"]`".into())));
    }
    let mut strings: Vec<&Value<'_>> = match cmd.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        _ => Vec::new(),
    };
    if let Some(DeValue::Table(env)) = t.get("env").map(|e| e.get_ref()) {
        strings.extend(entries(env).into_iter().map(|(_, v)| v));
    }
    let known: Vec<&str> = params
        .iter()
        .map(String::as_str)
        .chain(BUILTIN_PLACEHOLDERS)
        .collect();
    for v in strings {
        let Some(s) = v.get_ref().as_str() else {
            continue;
        };
        for (_, name) in placeholders(s) {
            if known.contains(&name) {
                continue;
            }
            // Point at the placeholder itself when the source spells it out.
            let raw = &text[v.span()];
            let needle = format!("{{{name}}}");
            let span = raw
                .find(&needle)
                .map(|o| v.span().start + o..v.span().start + o + needle.len())
                .unwrap_or(v.span());
            let listed = known
                .iter()
                .map(|k| format!("`{{{k}}}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let hint = closest(name, known.iter().copied())
                .map(|c| format!("did you mean `{{{c}}}`?"))
                .unwrap_or_else(|| {
                    format!("placeholders are the params and the built-ins: {listed}")
                });
            return Err(Diag::new(
                span,
                format!(
                    "unknown placeholder `{{{name}}}`: no param or built-in is called `{name}`"
                ),
            )
            .hint(Some(hint)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimators() {
        let cases = [
            ("median", Estimator::Median),
            ("p50", Estimator::Median),
            ("mean", Estimator::Mean),
            ("min", Estimator::Min),
            ("max", Estimator::Max),
            ("p10", Estimator::Quantile(0.10)),
            ("p99.5", Estimator::Quantile(0.995)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_estimator(s), Ok(want), "{s}");
        }
        for bad in ["p0", "p100", "avg", "p", "px"] {
            assert!(parse_estimator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        let cases = [
            ("5ms", 0.005),
            ("4GiB", 4294967296.0),
            ("10GB/s", 1e10),
            ("95%", 95.0),
            ("250 us", 250e-6),
            ("12", 12.0),
            ("-5", -5.0),
            ("1_000msg/s", 1000.0),
        ];
        for (s, want) in cases {
            let got = parse_quantity(s).unwrap();
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{s}: {got} != {want}"
            );
        }
        for bad in ["5 parsecs", "fast", "", "ms"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placeholder_scan() {
        let got: Vec<_> = placeholders("--n={n} {suite_dir}/x {} {'a': 1} {{x}")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(got, ["n", "suite_dir", "x"]);
        assert!(placeholders("{9x}").is_empty());
    }

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
