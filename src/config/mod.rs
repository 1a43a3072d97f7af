//! Suite files → validated [`Suite`] plans. Strict: unknown keys are errors
//! with a "did you mean" hint, and every error names file:line:col.
//!
//! The TOML is parsed into a spanned tree ([`toml::de::DeTable`]) and read by
//! hand, so that every mistake in a file is reported at once with its
//! location; only a kind's own keys go through serde (the spec structs in
//! `plan/` own their fields), and serde's first error is located too.

mod error;
mod metric_rule;
mod read;
mod scenario;
mod settings;
mod spec;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

pub use crate::plan::command::placeholders;
pub use error::{ConfigError, Diagnostic, Related};
pub use metric_rule::{parse_estimator, parse_quantity, ungated_rules, unmatched_rules};
pub use settings::limits;

use crate::plan::{ScenarioPlan, Suite};
use error::{Diag, did_you_mean};
use read::{Value, entries, lower_first};
use scenario::{COMMON_KEYS, Ctx, is_slug};
use settings::{Layer, SETTINGS_KEYS};

const TOP_LEVEL_KEYS: [&str; 3] = ["suite", "defaults", "scenario"];
const SUITE_KEYS: [&str; 2] = ["name", "description"];

/// Reads, parses and validates one suite file.
pub fn load_suite(path: &Path) -> Result<Suite, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::without_position(
            path,
            format!("could not read suite file: {}", lower_first(&e.to_string())),
        )
    })?;
    parse_suite(path, &text)
}

/// Parses and validates a suite's text; `path` names it in errors and
/// anchors relative paths (`base_dir` is its folder).
pub fn parse_suite(path: &Path, text: &str) -> Result<Suite, ConfigError> {
    let mut diags = Vec::new();
    let suite = parse_inner(path, text, &mut diags);
    match suite {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(ConfigError::from_diags(path, text, diags)),
    }
}

/// Suite files to load: files as given; a folder gives its `*.toml` files
/// (not recursive), sorted by name; a file reached twice comes once. A path
/// that does not exist is an error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let read = std::fs::read_dir(p).map_err(|e| {
                ConfigError::without_position(
                    p,
                    format!("could not list folder: {}", lower_first(&e.to_string())),
                )
            })?;
            let mut found: Vec<PathBuf> = read
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(ConfigError::without_position(
                p,
                "no such file or folder: expected a suite file or a folder of suite files",
            ));
        }
    }
    // A file reached twice (`suites suites/a.toml`) is loaded once.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok(out)
}

/// One error for each suite whose `[suite] name` (or file-name stem) an
/// earlier suite already has. Baselines are stored per suite name
/// (`baselines/<hardware>/<name>.toml`), so two suites with one name would
/// overwrite each other's baselines: refused as bad input.
pub fn duplicate_suite_names(suites: &[Suite]) -> Vec<ConfigError> {
    let mut first: BTreeMap<&str, &Path> = BTreeMap::new();
    let mut errors = Vec::new();
    for s in suites {
        let Some(earlier) = first.get(s.name.as_str()) else {
            first.insert(&s.name, &s.path);
            continue;
        };
        let text = std::fs::read_to_string(&s.path).unwrap_or_default();
        let (span, from) = match suite_name_span(&text) {
            Some(span) => (span, ""),
            None => (0..0, " (from the file name)"),
        };
        let d = Diag::new(
            span,
            format!(
                "suite name `{}`{from} is already used by {}",
                s.name,
                earlier.display()
            ),
        )
        .hint(Some(format!(
            "baselines are stored per suite name (baselines/<hardware>/{}.toml), so the two \
             suites would overwrite each other's: give one of them another `name` under [suite]",
            s.name
        )));
        errors.push(ConfigError::from_diags(&s.path, &text, vec![d]));
    }
    errors
}

/// One error for each `{env:NAME}` that `plans` read and that is unset
/// now, located at its text: said before `run` starts (which then fails
/// those scenarios and runs the others), and what stops `bless` and
/// `calibrate`. Loading leaves them be, so that `list`, `check` and the
/// other scenarios work without the secret.
pub fn unset_env(plans: &[&ScenarioPlan]) -> Vec<ConfigError> {
    let mut by_file: BTreeMap<&Path, Vec<Diag>> = BTreeMap::new();
    for p in plans {
        for e in p.unset_env() {
            let (message, hint) = crate::plan::env_ref::unset_text(&e.what, &e.name);
            by_file
                .entry(&p.location.file)
                .or_default()
                .push(Diag::new(e.span.clone(), message).hint(Some(hint)));
        }
    }
    // One error per use: each is whole on its own (the suite loaded, so
    // no "could not load" line).
    let mut errors = Vec::new();
    for (path, mut diags) in by_file {
        diags.dedup_by(|a, b| a.span == b.span);
        let text = std::fs::read_to_string(path).ok();
        for d in diags {
            errors.push(match &text {
                Some(text) => ConfigError::from_diags(path, text, vec![d]),
                None => ConfigError::without_position(path, d.message),
            });
        }
    }
    errors
}

/// Where `[suite] name = "..."` is written, when it is.
fn suite_name_span(text: &str) -> Option<Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let suite = doc.get_ref().get("suite")?;
    let DeValue::Table(t) = suite.get_ref() else {
        return None;
    };
    t.get("name").map(|v| v.span())
}

/// The folder relative paths in a suite resolve against.
pub(crate) fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn parse_inner(path: &Path, text: &str, diags: &mut Vec<Diag>) -> Option<Suite> {
    if text.trim().is_empty() {
        diags.push(no_scenario());
        return None;
    }
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            diags.push(invalid_toml(text, &e));
            return None;
        }
    };
    let tables = top_level(doc.get_ref(), diags);
    let name = suite_name(path, tables.suite, diags);
    let defaults = read_defaults(tables.defaults, diags);
    if tables.scenarios.is_empty() {
        if !tables.has_scenario_key {
            diags.push(no_scenario());
        }
        return None;
    }
    let lines = error::Source::new(text);
    let ctx = Ctx {
        text,
        lines: &lines,
        path,
        suite: &name,
        defaults: &defaults,
    };
    let plans = read_scenarios(&ctx, tables.scenarios, diags);
    Some(Suite {
        name,
        path: path.to_path_buf(),
        scenarios: plans,
    })
}

fn no_scenario() -> Diag {
    Diag::new(0..0, "empty suite: no [[scenario]]").hint(Some(
        "add a scenario: `[[scenario]]`, then `name = \"...\"` and `kind = \"command\"`".into(),
    ))
}

fn invalid_toml(text: &str, e: &toml::de::Error) -> Diag {
    let span = e.span().unwrap_or(0..0);
    if e.message() == "duplicate key" {
        let key = text.get(span.clone()).unwrap_or("");
        Diag::new(span, format!("invalid toml: duplicate key `{key}`"))
            .hint(Some("a key may appear only once in a table".into()))
    } else {
        Diag::new(span, format!("invalid toml: {}", lower_first(e.message())))
    }
}

/// The tables of a suite file, before reading them.
struct Tables<'a, 'de> {
    suite: Option<&'a DeTable<'de>>,
    defaults: Option<&'a DeTable<'de>>,
    /// Each `[[scenario]]` with its header's span.
    scenarios: Vec<(Range<usize>, &'a DeTable<'de>)>,
    has_scenario_key: bool,
}

fn top_level<'a, 'de>(doc: &'a DeTable<'de>, diags: &mut Vec<Diag>) -> Tables<'a, 'de> {
    let mut tables = Tables {
        suite: None,
        defaults: None,
        scenarios: Vec::new(),
        has_scenario_key: false,
    };
    for (k, v) in entries(doc) {
        let key = k.get_ref().as_ref();
        match key {
            "suite" => match read::table(v, "suite") {
                Ok(t) => tables.suite = Some(t),
                Err(d) => diags.push(d),
            },
            "defaults" => match read::table(v, "defaults") {
                Ok(t) => tables.defaults = Some(t),
                Err(d) => diags.push(d),
            },
            "scenario" => {
                tables.has_scenario_key = true;
                scenario_tables(v, &mut tables.scenarios, diags);
            }
            _ => diags.push(unknown_top_level(key, k.span())),
        }
    }
    tables
}

/// `[[scenario]]`: an array of tables.
fn scenario_tables<'a, 'de>(
    v: &'a Value<'de>,
    out: &mut Vec<(Range<usize>, &'a DeTable<'de>)>,
    diags: &mut Vec<Diag>,
) {
    let DeValue::Array(a) = v.get_ref() else {
        diags.push(
            Diag::new(
                v.span(),
                format!(
                    "`scenario` must be an array of tables, found {}",
                    read::a_type(v.get_ref())
                ),
            )
            .hint(Some("write `[[scenario]]` (double brackets)".into())),
        );
        return;
    };
    for item in a.iter() {
        match item.get_ref() {
            DeValue::Table(t) => out.push((item.span(), t)),
            other => diags.push(Diag::new(
                item.span(),
                format!(
                    "expected a table in `scenario`, found {}",
                    read::a_type(other)
                ),
            )),
        }
    }
}

/// `[suite]`'s `name`, else the file's stem.
fn suite_name(path: &Path, table: Option<&DeTable<'_>>, diags: &mut Vec<Diag>) -> String {
    let mut name = None;
    for (k, v) in table.map(entries).unwrap_or_default() {
        let key = k.get_ref().as_ref();
        let r = match key {
            "name" => read::string(v, key).and_then(|s| {
                if is_slug(s) {
                    name = Some(s.to_string());
                    Ok(())
                } else {
                    Err(Diag::new(
                        v.span(),
                        format!("suite name `{s}` is not a slug: use letters, digits, `-` and `_`"),
                    ))
                }
            }),
            "description" => read::string(v, key).map(|_| ()),
            _ => Err(
                Diag::new(k.span(), format!("unknown key `{key}` in [suite]")).hint(
                    did_you_mean(key, SUITE_KEYS)
                        .or_else(|| Some("[suite] takes `name` and `description`".into())),
                ),
            ),
        };
        if let Err(d) = r {
            diags.push(d);
        }
    }
    if let Some(n) = name {
        return n;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_slug(&stem) && !diags.iter().any(|d| d.message.starts_with("suite name")) {
        diags.push(
            Diag::new(
                0..0,
                format!("suite name `{stem}` (from the file name) is not a slug"),
            )
            .hint(Some(
                "rename the file, or set `name` under [suite]: letters, digits, `-` and `_`".into(),
            )),
        );
    }
    stem
}

/// `[defaults]`: settings every scenario of the file starts from.
fn read_defaults(table: Option<&DeTable<'_>>, diags: &mut Vec<Diag>) -> Layer {
    let mut defaults = Layer::default();
    let Some(t) = table else {
        return defaults;
    };
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        match defaults.read(key, v) {
            Ok(true) => {}
            Ok(false) => {
                let hint = did_you_mean(key, SETTINGS_KEYS).or_else(|| {
                    Some(if COMMON_KEYS.contains(&key) {
                        format!("`{key}` is set per scenario, under [[scenario]]")
                    } else {
                        format!("[defaults] takes: {}", SETTINGS_KEYS.join(", "))
                    })
                });
                diags.push(
                    Diag::new(k.span(), format!("unknown key `{key}` in [defaults]")).hint(hint),
                );
            }
            Err(d) => diags.push(d),
        }
    }
    diags.extend(defaults.check_samples(None));
    defaults
}

/// Every `[[scenario]]`, names unique within the suite.
fn read_scenarios(
    ctx: &Ctx<'_>,
    scenarios: Vec<(Range<usize>, &DeTable<'_>)>,
    diags: &mut Vec<Diag>,
) -> Vec<ScenarioPlan> {
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    let mut plans = Vec::new();
    for (header, t) in scenarios {
        if let Ok((n, span)) = scenario::name(t, &header) {
            if let Some(first) = seen.get(n) {
                let (line, _) = ctx.lines.position(first.start);
                diags.push(
                    Diag::new(
                        span.clone(),
                        format!("duplicate scenario name `{n}` (first used on line {line})"),
                    )
                    .related(first.clone(), "first used here")
                    .hint(Some("scenario names must be unique within a suite".into())),
                );
            } else {
                seen.insert(n.to_string(), span);
            }
        }
        if let Some(plan) = scenario::scenario(ctx, header, t, diags) {
            plans.push(plan);
        }
    }
    plans
}

fn unknown_top_level(key: &str, span: Range<usize>) -> Diag {
    let hint = did_you_mean(key, TOP_LEVEL_KEYS).or_else(|| {
        Some(if SETTINGS_KEYS.contains(&key) {
            format!("settings go under [defaults] or in a [[scenario]]: move `{key}` there")
        } else if COMMON_KEYS.contains(&key) {
            format!("`{key}` belongs to a scenario: put it under [[scenario]]")
        } else {
            "a suite file has [suite], [defaults] and [[scenario]] tables".into()
        })
    });
    Diag::new(span, format!("unknown top-level key `{key}`")).hint(hint)
}

#[cfg(test)]
mod tests;
