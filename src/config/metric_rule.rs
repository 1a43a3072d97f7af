//! `metric."name{labels}" = { ... }` rules: tolerance, absolute bounds as
//! quantities in base units, direction, estimator, gate.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::DeValue;

use super::error::{Diag, did_you_mean};
use super::read::{self, Value, a_type, entries};
use crate::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use crate::plan::MetricRule;

/// Keys of a `metric."name{labels}"` rule.
pub(crate) const RULE_KEYS: [&str; 8] = [
    "tolerance",
    "max",
    "min",
    "direction",
    "estimator",
    "gate",
    "leak",
    "leak_tolerance",
];

/// A warning for each rule whose key matches none of the metric keys a
/// scenario reported: such a rule (a typo like `metric.wal_time`, a label
/// set the sweep does not have) is never enforced. A rule matches as the
/// gate looks rules up: the whole `name{labels}`, or the bare name.
pub fn unmatched_rules<'a>(
    rules: impl IntoIterator<Item = &'a String>,
    reported: &[MetricKey],
) -> Vec<String> {
    let full: Vec<String> = reported.iter().map(|k| k.to_string()).collect();
    let mut candidates: Vec<&str> = reported.iter().map(|k| k.name.as_str()).collect();
    candidates.extend(full.iter().map(String::as_str));
    candidates.sort_unstable();
    candidates.dedup();
    rules
        .into_iter()
        .filter(|r| !reported.iter().any(|k| rule_matches(r, k)))
        .map(|r| {
            let why = if reported.is_empty() {
                "it reported no metrics".to_string()
            } else {
                match did_you_mean(r, candidates.iter().copied()) {
                    Some(d) => d,
                    None => {
                        let mut names: Vec<&str> =
                            reported.iter().map(|k| k.name.as_str()).collect();
                        names.sort_unstable();
                        names.dedup();
                        format!("it reported: {}", names.join(", "))
                    }
                }
            };
            format!(
                "metric rule `{r}` matches no metric this scenario reported, so it is not enforced: {why}"
            )
        })
        .collect()
}

/// Whether the rule keyed `rule` applies to `key`, as the gate looks
/// rules up: the whole `name{labels}`, or the bare name.
fn rule_matches(rule: &str, key: &MetricKey) -> bool {
    key.name == rule || key.to_string() == rule
}

/// A warning for each rule that says `gate = true` without a `direction`
/// where every metric it matches is reported with direction `neither`
/// (one value per run, `connect_time` in a protocol flood, `ping_rtt`):
/// such a metric is never gated on change, so the rule would do nothing
/// and the suite would read as if it did.
pub fn ungated_rules(
    rules: &BTreeMap<String, MetricRule>,
    reported: &[MetricSeries],
) -> Vec<String> {
    rules
        .iter()
        .filter(|(_, rule)| rule.gate == Some(true) && rule.direction.is_none())
        .filter_map(|(r, _)| {
            let matched: Vec<&MetricSeries> = reported
                .iter()
                .filter(|m| rule_matches(r, &m.key))
                .collect();
            let neither = !matched.is_empty()
                && matched.iter().all(|m| m.direction == Direction::Neither);
            neither.then(|| {
                format!(
                    "metric rule `{r}` says `gate = true`, but `{r}` is reported with direction `neither`, so a change never fails it: add `direction = \"lower\"` or `direction = \"higher\"` to gate it"
                )
            })
        })
        .collect()
}

/// `metric."name{labels}" = { ... }`, keyed by the canonical metric key.
pub(crate) fn read_rules(v: &Value<'_>, diags: &mut Vec<Diag>) -> BTreeMap<String, MetricRule> {
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
            "leak" => read::boolean(v, key).map(|b| rule.leak = Some(b)),
            "leak_tolerance" => bound(v, key).and_then(|x| {
                if x >= 0.0 {
                    rule.leak_tolerance = Some(x);
                    Ok(())
                } else {
                    Err(Diag::new(v.span(), "`leak_tolerance` must not be negative"))
                }
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_that_match_no_reported_metric() {
        let reported: Vec<MetricKey> = ["wall_time{n=10}", "wall_time{n=20}", "peak_rss{n=10}"]
            .iter()
            .map(|k| k.parse().unwrap())
            .collect();
        let cases: &[(&str, Option<&str>)] = &[
            ("wall_time", None),
            ("wall_time{n=10}", None),
            ("peak_rss", None),
            ("wal_time", Some("did you mean `wall_time`?")),
            ("wall_time{n=30}", Some("did you mean `wall_time{n=")),
            ("latency", Some("it reported: peak_rss, wall_time")),
        ];
        for (rule, want) in cases {
            let rules = [rule.to_string()];
            let got = unmatched_rules(&rules, &reported);
            match want {
                None => assert!(got.is_empty(), "{rule}: {got:?}"),
                Some(w) => {
                    assert_eq!(got.len(), 1, "{rule}");
                    assert!(
                        got[0].starts_with(&format!(
                            "metric rule `{rule}` matches no metric this scenario reported, so it is not enforced: "
                        )),
                        "{}",
                        got[0]
                    );
                    assert!(got[0].contains(w), "{rule}: {}", got[0]);
                }
            }
        }
        let rules = ["m".to_string()];
        assert!(unmatched_rules(&rules, &[])[0].ends_with("it reported no metrics"));
    }

    #[test]
    fn gate_true_on_a_metric_only_reported_says_how_to_gate_it() {
        let series = |k: &str, d| MetricSeries::single(k.parse().unwrap(), Unit::Seconds, d, 1.0);
        let reported = [
            series("connect_time", Direction::Neither),
            series("rtt", Direction::LowerIsBetter),
            series("x{a=1}", Direction::Neither),
            series("x{a=2}", Direction::LowerIsBetter),
        ];
        let rule = |gate, direction| MetricRule {
            gate,
            direction,
            ..MetricRule::default()
        };
        let cases = [
            ("connect_time", rule(Some(true), None), true),
            (
                "connect_time",
                rule(Some(true), Some(Direction::LowerIsBetter)),
                false,
            ),
            ("connect_time", rule(Some(false), None), false),
            ("connect_time", rule(None, None), false),
            ("rtt", rule(Some(true), None), false),
            ("x{a=1}", rule(Some(true), None), true),
            // One of the metrics it matches is gated: the rule does something.
            ("x", rule(Some(true), None), false),
            ("absent", rule(Some(true), None), false),
        ];
        for (key, r, warns) in cases {
            let rules = BTreeMap::from([(key.to_string(), r)]);
            let got = ungated_rules(&rules, &reported);
            assert_eq!(got.len(), usize::from(warns), "{key}: {got:?}");
            if warns {
                assert!(got[0].contains("direction `neither`"), "{}", got[0]);
                assert!(got[0].contains("add `direction = \"lower\"`"), "{}", got[0]);
            }
        }
    }

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
}
