//! `neon-perf merge`: the shards of one run (each runner's `--json` file)
//! become one report, with the checklist and exit code derived again from
//! all scenarios, exactly as one unsharded run would derive them.

use std::collections::{BTreeMap, BTreeSet};

use super::{CombineError, ResultsFile, same_hardware};
use crate::checklist;
use crate::outcome::{RunReport, Status, exit_code, not_measured};
use crate::plan::Partition;

/// Merges shard results. Refuses different hardware keys, a scenario in two
/// files, and (when the files record their `--partition`) a missing or
/// mismatched shard.
pub fn merge(files: &[ResultsFile], fail_on_inconclusive: bool) -> Result<RunReport, CombineError> {
    let hardware = same_hardware(files)?.clone();
    given_once(files)?;
    check_shards(files)?;

    let mut seen: BTreeMap<String, &ResultsFile> = BTreeMap::new();
    let mut scenarios = Vec::new();
    for f in files {
        for s in &f.report.scenarios {
            let name = s.result.full_name();
            if let Some(first) = seen.get(&name) {
                return Err(CombineError::Duplicate {
                    scenario: name,
                    first: first.path.clone(),
                    other: f.path.clone(),
                });
            }
            seen.insert(name, f);
            scenarios.push(s.clone());
        }
    }
    // The order one unsharded run reports: suite files in path order, then
    // scenarios in the order they are declared.
    scenarios.sort_by(|a, b| {
        let key = |s: &crate::outcome::ScenarioReport| {
            (
                s.result.location.file.clone(),
                s.result.location.line,
                s.result.location.column,
                s.result.full_name(),
            )
        };
        key(a).cmp(&key(b))
    });

    let first = &files[0].report;
    let distinct = |f: fn(&RunReport) -> Option<String>| -> Option<String> {
        let set: BTreeSet<String> = files.iter().filter_map(|x| f(&x.report)).collect();
        (!set.is_empty()).then(|| set.into_iter().collect::<Vec<_>>().join(","))
    };
    let statuses: Vec<Status> = scenarios.iter().map(|s| s.status).collect();
    let not_recorded: Vec<String> = files
        .iter()
        .flat_map(|f| f.report.not_recorded.iter().cloned())
        .collect();
    let mode = distinct(|r| Some(r.mode.clone())).unwrap_or_default();
    let not_measured = not_measured(&mode, &scenarios);
    Ok(RunReport {
        format_version: first.format_version,
        tool_version: first.tool_version.clone(),
        created: jiff::Timestamp::now().to_string(),
        git_commit: distinct(|r| r.git_commit.clone()),
        mode,
        hardware_dir: hardware.dirname(),
        hardware_key: hardware,
        checklist: checklist::evaluate(&scenarios),
        // A cancelled shard leaves the run incomplete: the merge keeps its
        // exit code (128 + the signal), never a pass.
        exit_code: files
            .iter()
            .find(|f| f.report.cancelled.is_some())
            .map(|f| f.report.exit_code)
            .unwrap_or_else(|| {
                exit_code(
                    &statuses,
                    fail_on_inconclusive,
                    !not_recorded.is_empty(),
                    not_measured,
                )
            }),
        scenarios,
        blessed: files
            .iter()
            .flat_map(|f| f.report.blessed.iter().cloned())
            .collect(),
        partition: None,
        not_recorded,
        cancelled: distinct(|r| r.cancelled.clone()),
    })
}

/// Refuses a file given twice (`merge a.json a.json`): it would otherwise
/// read as a missing shard, or as its scenarios run twice.
fn given_once(files: &[ResultsFile]) -> Result<(), CombineError> {
    let id = |f: &ResultsFile| std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
    for (i, f) in files.iter().enumerate() {
        if files[..i].iter().any(|g| id(g) == id(f)) {
            return Err(CombineError::Shards(format!(
                "{} is given more than once: give each shard's results once",
                f.path.display()
            )));
        }
    }
    Ok(())
}

/// When shards say which partition they ran, all of `1..=n` must be there,
/// with one kind and one `n`.
fn check_shards(files: &[ResultsFile]) -> Result<(), CombineError> {
    let mut parts = Vec::new();
    for f in files {
        let Some(p) = &f.report.partition else {
            continue;
        };
        let p: Partition = p
            .parse()
            .map_err(|e| CombineError::Shards(format!("{}: {e}", f.path.display())))?;
        parts.push((p, f));
    }
    let Some((first, first_file)) = parts.first().copied() else {
        return Ok(());
    };
    if parts.len() != files.len() {
        return Err(CombineError::Shards(format!(
            "{} is shard {first} but {} of the {} files record no partition: merge the shards of one run",
            first_file.path.display(),
            files.len() - parts.len(),
            files.len()
        )));
    }
    for (p, f) in &parts {
        if (p.kind, p.n) != (first.kind, first.n) {
            return Err(CombineError::Shards(format!(
                "{} is shard {p} but {} is shard {first}: shards must share kind and count",
                f.path.display(),
                first_file.path.display()
            )));
        }
    }
    // A shard twice first: it would otherwise read as another one missing.
    let mut first_of: BTreeMap<u32, &ResultsFile> = BTreeMap::new();
    for (p, f) in &parts {
        if let Some(earlier) = first_of.insert(p.k, f) {
            return Err(CombineError::Shards(format!(
                "shard {p} is given twice: {} and {} both ran it; merge the results of each shard once",
                earlier.path.display(),
                f.path.display()
            )));
        }
    }
    let have: BTreeSet<u32> = first_of.keys().copied().collect();
    let missing: Vec<String> = (1..=first.n)
        .filter(|k| !have.contains(k))
        .map(|k| format!("{k}/{}", first.n))
        .collect();
    if !missing.is_empty() {
        return Err(CombineError::Shards(format!(
            "shard(s) {} missing: their scenarios would go unchecked; merge the results of all {} shards",
            missing.join(", "),
            first.n
        )));
    }
    Ok(())
}
