//! The baseline files: load with clear errors, bless atomically.
//!
//! A bless rewrites only the scenarios that ran and keeps the others as they
//! were. The new file is written to a temporary file in the same folder,
//! synced, renamed over the old one, and the folder is synced: a killed
//! bless leaves either the old file or the new one, never half of either.
//! Temporary files start with a dot and end in `.tmp`; nothing reads them,
//! and the next write of the same file removes those a killed bless left
//! behind (once they are [`STALE_TEMP`] old, so a concurrent writer's file
//! is never touched).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    BaselineFile, BaselineMetric, BaselineScenario, FORMAT_VERSION, HardwareKey, Provenance,
};
use crate::metric::{Direction, MetricSeries, Unit};
use crate::result::{Outcome, ScenarioResult};
use crate::stats::rng::hash_str;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    #[error(
        "corrupt baseline {}:{line}:{column}: {message}\n  hint: fix the file by hand, or delete it and bless again",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "baseline {} has format_version {found}, but this neon-perf reads version {supported}\n  hint: {hint}",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: i64,
        supported: u32,
        hint: &'static str,
    },
    #[error(
        "baseline {} records hardware `{found}` but lives in the folder for `{expected}`\n  hint: a baseline is only valid on the hardware it was recorded on; move it or bless again",
        path.display()
    )]
    HardwareMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("invalid baseline {}: {what}\n  hint: fix the file by hand, or delete it and bless again", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("cannot write baseline {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot serialize baseline {}: {message}", path.display())]
    Serialize { path: PathBuf, message: String },
}

/// How a bless treats the metrics already stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlessMode {
    /// Add this run's estimate to the last [`RUNS_KEPT`](super::RUNS_KEPT) runs (the default):
    /// several blessed runs make the between-run spread measurable.
    #[default]
    Append,
    /// Forget earlier runs: after an intended performance change.
    Replace,
}

/// Where a scenario stands after a bless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioStatus {
    /// Not in the file before.
    Added,
    /// Ran, and some metric's estimate or the metric set changed.
    Changed,
    /// Ran, and every estimate came out the same.
    Unchanged,
    /// Did not run; kept as it was.
    Kept,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    pub key: String,
    pub unit: Unit,
    pub old: Option<f64>,
    /// `None`: the metric is no longer reported and was dropped.
    pub new: Option<f64>,
    /// Blessed runs now kept for it.
    pub runs: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioChange {
    pub scenario: String,
    pub status: ScenarioStatus,
    pub metrics: Vec<MetricChange>,
}

/// What a bless did, for a reviewable message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlessSummary {
    pub path: PathBuf,
    pub mode: BlessMode,
    pub scenarios: Vec<ScenarioChange>,
    /// Metrics of scenarios that ran but had no finite samples (not blessed).
    pub skipped: Vec<String>,
    /// Scenarios whose run was not appended: it diverged from the recorded
    /// runs (see [`DIVERGENCE_FLOOR`]); they are kept as they were.
    #[serde(default)]
    pub refused: Vec<String>,
    /// Scenarios whose recorded runs were dropped for this one: it was
    /// better beyond the limit, so they were the slow ones.
    #[serde(default)]
    pub superseded: Vec<String>,
}

/// An appended run must be a repeat of the recorded ones: a gated metric
/// whose estimate lies further than this (relative), or than 4 times the
/// recorded runs' own spread, from their centre is refused. Measured: a
/// bless while another job used the cores came out 22–28% slower, and a
/// baseline of such runs then called every quiet run "improved".
pub const DIVERGENCE_FLOOR: f64 = 0.10;

impl std::fmt::Display for BlessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.mode {
            BlessMode::Append => "runs added to the recorded ones",
            BlessMode::Replace => "recorded afresh, --replace",
        };
        writeln!(f, "blessed {} ({how})", self.path.display())?;
        for s in &self.scenarios {
            let status = match s.status {
                ScenarioStatus::Added => "added",
                ScenarioStatus::Changed => "changed",
                ScenarioStatus::Unchanged => "unchanged",
                ScenarioStatus::Kept => "kept",
            };
            writeln!(f, "  {status:<9} {}", s.scenario)?;
            for m in &s.metrics {
                let fmt = |v: Option<f64>| v.map(|x| m.unit.format(x)).unwrap_or("-".into());
                let pct = match (m.old, m.new) {
                    (Some(o), Some(n)) if o != 0.0 => format!(" ({:+.1}%)", (n / o - 1.0) * 100.0),
                    _ => String::new(),
                };
                writeln!(
                    f,
                    "            {}: {} -> {}{pct}, {} run(s)",
                    m.key,
                    fmt(m.old),
                    fmt(m.new),
                    m.runs
                )?;
            }
        }
        for s in &self.skipped {
            writeln!(f, "  skipped   {s}: no finite samples")?;
        }
        // Replacing comes first in a bless (a fast run replaces slow
        // recorded ones; slow runs after it are refused).
        for s in &self.superseded {
            writeln!(f, "  replaced  {s}")?;
        }
        for s in &self.refused {
            writeln!(f, "  refused   {s}")?;
        }
        if !self.refused.is_empty() {
            writeln!(
                f,
                "  hint: appended runs must repeat the recorded ones. Bless again on a quiet machine, or use --replace after an intended change"
            )?;
        }
        Ok(())
    }
}

/// `baselines/` (or wherever `root` points).
#[derive(Clone, Debug)]
pub struct BaselineStore {
    pub root: PathBuf,
}

impl BaselineStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BaselineStore { root: root.into() }
    }

    pub fn dir(&self, key: &HardwareKey) -> PathBuf {
        self.root.join(key.dirname())
    }

    pub fn path(&self, key: &HardwareKey, suite: &str) -> PathBuf {
        self.dir(key).join(format!("{suite}.toml"))
    }

    /// The suites with a baseline for this hardware (temporary files of an
    /// interrupted bless are not baselines and are not listed).
    pub fn suites(&self, key: &HardwareKey) -> Result<Vec<String>, BaselineError> {
        let dir = self.dir(key);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(BaselineError::Unreadable { path: dir, source }),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|source| BaselineError::Unreadable {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".toml") {
                Some(stem) if !name.starts_with('.') => out.push(stem.to_string()),
                _ => {}
            }
        }
        out.sort();
        Ok(out)
    }

    /// The baseline of `suite` on this hardware; `Ok(None)` when none exists.
    pub fn load(
        &self,
        key: &HardwareKey,
        suite: &str,
    ) -> Result<Option<BaselineFile>, BaselineError> {
        let path = self.path(key, suite);
        let text = match read_bounded(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return match fs::read_link(&path) {
                    // A link to nowhere is a broken checkout, not "no baseline".
                    Ok(target) => Err(BaselineError::Invalid {
                        path,
                        what: format!(
                            "it is a symbolic link to {}, which does not exist",
                            target.display()
                        ),
                    }),
                    Err(_) => Ok(None),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                return Err(BaselineError::Invalid {
                    path,
                    what: e.to_string(),
                });
            }
            Err(source) => return Err(BaselineError::Unreadable { path, source }),
        };
        let file = parse(&path, &text)?;
        let expected = key.dirname();
        let found = file.hardware.dirname();
        if found != expected {
            return Err(BaselineError::HardwareMismatch {
                path,
                found,
                expected,
            });
        }
        Ok(Some(file))
    }

    /// Records the scenarios of `suite` that ran in `results` (others in the
    /// file are kept as they were) and writes the file atomically.
    pub fn bless(
        &self,
        key: &HardwareKey,
        suite: &str,
        results: &[ScenarioResult],
        provenance: Provenance,
        mode: BlessMode,
    ) -> Result<BlessSummary, BaselineError> {
        self.bless_gated(key, suite, results, provenance, mode, &|_, _| true)
    }

    /// [`bless`](Self::bless), where only the metrics `gated` accepts (the
    /// suite's `gate = false` ones are not) can make a run diverge from
    /// the recorded ones: a metric the gate ignores must not refuse a run,
    /// or replace the recorded ones.
    pub fn bless_gated(
        &self,
        key: &HardwareKey,
        suite: &str,
        results: &[ScenarioResult],
        provenance: Provenance,
        mode: BlessMode,
        gated: &dyn Fn(&ScenarioResult, &MetricSeries) -> bool,
    ) -> Result<BlessSummary, BaselineError> {
        let path = self.path(key, suite);
        let old = self.load(key, suite)?;
        let mut scenarios: BTreeMap<String, BaselineScenario> =
            old.as_ref().map(|f| f.scenario.clone()).unwrap_or_default();
        let mut changes: BTreeMap<String, ScenarioChange> = BTreeMap::new();
        let mut skipped = Vec::new();
        let mut refused = Vec::new();
        let mut superseded = Vec::new();
        for r in results
            .iter()
            .filter(|r| r.suite == suite && r.outcome == Outcome::Ran)
        {
            let old_s = scenarios.get(&r.scenario);
            let mut append = mode == BlessMode::Append;
            if append {
                match old_s.and_then(|o| divergence(o, r, gated)) {
                    Some(Divergence::Worse(why)) => {
                        refused.push(format!("{}: {why}", r.scenario));
                        continue;
                    }
                    Some(Divergence::Better(why)) => {
                        superseded.push(format!("{}: {why}", r.scenario));
                        append = false;
                    }
                    None => {}
                }
            }
            let (recorded, change) = record_scenario(r, old_s, append, &provenance, &mut skipped);
            changes.insert(r.scenario.clone(), change);
            scenarios.insert(r.scenario.clone(), recorded);
        }
        for name in scenarios.keys() {
            changes
                .entry(name.clone())
                .or_insert_with(|| ScenarioChange {
                    scenario: name.clone(),
                    status: ScenarioStatus::Kept,
                    metrics: Vec::new(),
                });
        }
        let file = BaselineFile {
            format_version: FORMAT_VERSION,
            provenance,
            hardware: key.clone(),
            scenario: scenarios,
        };
        validate(&path, &file)?;
        let text = toml::to_string(&file).map_err(|e| BaselineError::Serialize {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&path, text.as_bytes())?;
        Ok(BlessSummary {
            path,
            mode,
            scenarios: changes.into_values().collect(),
            skipped,
            refused,
            superseded,
        })
    }
}

/// One scenario's run recorded over its old baseline (its runs kept when
/// `append`): the new baseline and what changed. A metric with nothing to
/// record is named in `skipped`.
fn record_scenario(
    r: &ScenarioResult,
    old_s: Option<&BaselineScenario>,
    append: bool,
    provenance: &Provenance,
    skipped: &mut Vec<String>,
) -> (BaselineScenario, ScenarioChange) {
    let mut metric = BTreeMap::new();
    let mut metric_changes = Vec::new();
    for m in &r.metrics {
        let key_text = m.key.to_string();
        let old_m = old_s.and_then(|s| s.metric.get(&key_text));
        let prev = old_m.filter(|_| append);
        let seed = hash_str(&format!("{}/{}", r.scenario, key_text));
        let Some(bm) = BaselineMetric::record(prev, m, seed) else {
            skipped.push(format!("{}::{}", r.scenario, key_text));
            continue;
        };
        metric_changes.push(MetricChange {
            key: key_text.clone(),
            unit: m.unit.clone(),
            old: old_m.map(|o| o.estimate),
            new: Some(bm.estimate),
            runs: bm.runs.len(),
        });
        metric.insert(key_text, bm);
    }
    if let Some(o) = old_s {
        for (k, om) in &o.metric {
            if !metric.contains_key(k) {
                metric_changes.push(MetricChange {
                    key: k.clone(),
                    unit: om.unit.clone(),
                    old: Some(om.estimate),
                    new: None,
                    runs: 0,
                });
            }
        }
    }
    let status = match old_s {
        None => ScenarioStatus::Added,
        Some(_) if metric_changes.iter().all(|c| c.old == c.new) => ScenarioStatus::Unchanged,
        Some(_) => ScenarioStatus::Changed,
    };
    let change = ScenarioChange {
        scenario: r.scenario.clone(),
        status,
        metrics: metric_changes,
    };
    let recorded = BaselineScenario {
        commit: provenance.commit.clone(),
        date: provenance.date.clone(),
        metric,
    };
    (recorded, change)
}

/// The largest baseline file read: far beyond what neon-perf writes (256
/// samples a metric), so a larger one is refused before it is parsed.
pub const MAX_BASELINE_BYTES: u64 = 64 << 20;

/// The file's text, refused (`FileTooLarge`) beyond [`MAX_BASELINE_BYTES`].
fn read_bounded(path: &Path) -> io::Result<String> {
    let len = fs::metadata(path)?.len();
    if len > MAX_BASELINE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it is {len} bytes; a baseline file is at most {MAX_BASELINE_BYTES} (neon-perf keeps 256 samples a metric)"
            ),
        ));
    }
    fs::read_to_string(path)
}

/// Parses and checks a baseline file's text; `path` is for messages.
pub fn parse(path: &Path, text: &str) -> Result<BaselineFile, BaselineError> {
    let corrupt = |e: toml::de::Error| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        BaselineError::Corrupt {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    };
    // The version first, so a newer file says so instead of failing on
    // fields this build does not know.
    #[derive(Deserialize)]
    struct Head {
        format_version: Option<toml::Value>,
    }
    let head: Head = toml::from_str(text).map_err(corrupt)?;
    match head.format_version {
        None => {
            return Err(BaselineError::Invalid {
                path: path.to_path_buf(),
                what: "missing `format_version`".into(),
            });
        }
        Some(toml::Value::Integer(v)) if v == FORMAT_VERSION as i64 => {}
        Some(toml::Value::Integer(v)) => {
            return Err(BaselineError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: v,
                supported: FORMAT_VERSION,
                hint: if v > FORMAT_VERSION as i64 {
                    "it was written by a newer neon-perf; upgrade neon-perf"
                } else {
                    "bless again to rewrite it in the current format"
                },
            });
        }
        Some(other) => {
            return Err(BaselineError::Invalid {
                path: path.to_path_buf(),
                what: format!("`format_version` must be an integer, found {other}"),
            });
        }
    }
    let file: BaselineFile = toml::from_str(text).map_err(corrupt)?;
    validate(path, &file)?;
    Ok(file)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Numbers a hand edit could break: non-finite values anywhere, negative
/// ones where the unit cannot be negative, quantiles outside [0, 1].
fn validate(path: &Path, file: &BaselineFile) -> Result<(), BaselineError> {
    let bad = |what: String| BaselineError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    if !file.provenance.date.is_empty() && file.provenance.date.parse::<jiff::Timestamp>().is_err()
    {
        return Err(bad(format!(
            "`provenance.date` = {:?} is not an RFC 3339 timestamp",
            file.provenance.date
        )));
    }
    for (sname, s) in &file.scenario {
        for (mname, m) in &s.metric {
            let at = format!("scenario.{sname:?}.metric.{mname:?}");
            if let Err(e) = mname.parse::<crate::metric::MetricKey>() {
                return Err(bad(format!("{at}: {e}")));
            }
            crate::metric::check_estimator(&m.estimator)
                .map_err(|e| bad(format!("{at}.estimator: {e}")))?;
            let check = |field: &str, v: f64| {
                crate::metric::check_value(v, &m.unit, m.direction)
                    .map_err(|e| bad(format!("{at}.{field} {e}")))
            };
            check("estimate", m.estimate)?;
            if m.estimate != 0.0 && m.estimate.abs() < crate::metric::MIN_RATIO_BASE {
                return Err(bad(format!(
                    "{at}.estimate is {:e}, too small to take a ratio against (the gate would judge any value against it as noise); bless again, or gate it with an absolute bound",
                    m.estimate
                )));
            }
            if m.runs.is_empty() {
                return Err(bad(format!(
                    "{at}.runs is empty: it needs at least one run estimate"
                )));
            }
            let caps = [
                ("runs", m.runs.len(), super::RUNS_KEPT),
                ("reservoir", m.reservoir.len(), super::RESERVOIR_CAP),
            ];
            for (field, len, cap) in caps {
                if len > cap {
                    return Err(bad(format!(
                        "{at}.{field} has {len} entries; neon-perf keeps at most {cap} (was it edited by hand?)"
                    )));
                }
            }
            for (i, r) in m.runs.iter().enumerate() {
                check(&format!("runs[{i}]"), *r)?;
            }
            for (i, r) in m.reservoir.iter().enumerate() {
                check(&format!("reservoir[{i}]"), *r)?;
            }
        }
        duplicate_keys(sname, s).map_err(bad)?;
    }
    Ok(())
}

/// Two metric names that are one key (labels in another order, spaces):
/// two entries for one metric, which would be judged twice.
fn duplicate_keys(sname: &str, s: &BaselineScenario) -> Result<(), String> {
    let mut seen: BTreeMap<String, &String> = BTreeMap::new();
    for mname in s.metric.keys() {
        let Ok(key) = mname.parse::<crate::metric::MetricKey>() else {
            continue;
        };
        if let Some(first) = seen.insert(key.to_string(), mname) {
            return Err(format!(
                "scenario.{sname:?}: metrics {first:?} and {mname:?} are one metric, `{key}`, written twice"
            ));
        }
    }
    Ok(())
}

/// How a run to append differs from the runs recorded before it.
enum Divergence {
    /// A gated metric is worse beyond the limit: the run is refused.
    Worse(String),
    /// Gated metrics are only better, one beyond the limit: the recorded
    /// runs are the suspects (noise only makes runs worse: they were
    /// blessed in a slow spell or under load), so this run replaces them.
    Better(String),
}

/// Why `r` is not a repeat of the runs recorded in `old`, if it is not:
/// the first gated metric whose estimate lies beyond the divergence limit,
/// a worse one first.
fn divergence(
    old: &BaselineScenario,
    r: &ScenarioResult,
    gated: &dyn Fn(&ScenarioResult, &MetricSeries) -> bool,
) -> Option<Divergence> {
    let beyond: Vec<(bool, String)> = r
        .metrics
        .iter()
        .filter(|m| gated(r, m))
        .filter_map(|m| {
            let o = old.metric.get(&m.key.to_string())?;
            if !o.unit.same_quantity(&m.unit) || m.direction == Direction::Neither {
                return None;
            }
            if o.runs.is_empty() || o.estimate.is_nan() || o.estimate <= 0.0 {
                return None;
            }
            let new = super::estimate(&m.finite_samples(), o.estimator)?;
            if new <= 0.0 {
                return None;
            }
            let limit = (4.0 * o.run_log_sd().unwrap_or(0.0)).max((1.0 + DIVERGENCE_FLOOR).ln());
            let dev = (new / o.estimate).ln();
            let worse = (dev > 0.0) == (m.direction == Direction::LowerIsBetter);
            (dev.abs() > limit).then(|| {
                (
                    worse,
                    format!(
                        "{} {:+.1}% from the {} recorded run(s) (limit ±{:.0}%)",
                        m.key,
                        100.0 * (dev.exp() - 1.0),
                        o.runs.len(),
                        100.0 * (limit.exp() - 1.0)
                    ),
                )
            })
        })
        .collect();
    if let Some((_, why)) = beyond.iter().find(|(worse, _)| *worse) {
        return Some(Divergence::Worse(format!("{why}: not appended")));
    }
    beyond.into_iter().next().map(|(_, why)| {
        Divergence::Better(format!(
            "{why}: better than every recorded run could be, so those were blessed in a slow \
             spell or under load; they are dropped and this run recorded alone"
        ))
    })
}

/// A temp file this old is a killed writer's, not a live one's: writing a
/// baseline takes milliseconds.
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes `.<name>.*.tmp` files in `dir` last modified over [`STALE_TEMP`]
/// ago: what a bless killed between creating its temp file and renaming it
/// left behind. Best effort; returns how many it removed.
pub fn sweep_stale_temps(dir: &Path, name: &str) -> usize {
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file_name = e.file_name();
        let n = file_name.to_string_lossy();
        if !(n.starts_with(&prefix) && n.ends_with(".tmp")) {
            continue;
        }
        let old = e
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if old && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Temp file in the same folder → write → fsync → rename → fsync folder.
/// Stale temp files of the same target are swept first
/// ([`sweep_stale_temps`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BaselineError> {
    let werr = |source: io::Error| BaselineError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(werr)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sweep_stale_temps(dir, &name);
    let prefix = format!(".{name}.");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(werr)?;
    // The temp file is created 0600; a baseline is a file for the team
    // (committed, read by other users' jobs): keep the old file's mode, or
    // give a new one 0644.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o644);
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(werr)?;
    }
    // Chunked, so a slow disk (or a kill) interrupts between whole chunks;
    // either way the temp file is never the baseline.
    for chunk in bytes.chunks(1 << 16) {
        tmp.as_file_mut().write_all(chunk).map_err(werr)?;
    }
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(path).map_err(|e| werr(e.error))?;
    // The rename is durable only once the folder is synced.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
