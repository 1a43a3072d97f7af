//! A scenario run once more under a profiler after its verdict (issue #22):
//! `profile = "on-regression"` when it regressed, `"always"` after every
//! run. The point behind the first regressed metric is recorded with
//! `perf` until the profile holds enough samples; in paired mode the base
//! tree's program too, run for run in turn, and the two are diffed. The
//! files go under the reports folder; the verdict never changes.

use std::path::Path;

mod gpu;

use super::*;
use crate::exec::command::Invocation;
use crate::plan::{ParamPoint, ProfileWhen, point_labels};
use crate::profile::{Folded, Perf, ProfileReport, Side, Target, svg};

/// Recording stops once a side holds this many samples (about 2 s of one
/// core at [`crate::profile::perf::FREQUENCY`])...
const ENOUGH_SAMPLES: u64 = 2000;
/// ... or after this many runs of each side, or the scenario's `max_time`.
const MAX_RUNS: u32 = 50;
/// Functions listed in the report.
const TOP: usize = 10;

/// Why `report` is profiled, or `None` when it is not: never in a bless,
/// nor for a run that did not run.
pub(super) fn reason(
    when: ProfileWhen,
    mode: &Mode,
    report: &ScenarioReport,
) -> Option<&'static str> {
    if matches!(mode, Mode::Bless { .. }) || report.result.outcome != Outcome::Ran {
        return None;
    }
    match when {
        ProfileWhen::Always => Some("always"),
        ProfileWhen::OnRegression if report.status == Status::Regressed => Some("regressed"),
        _ => None,
    }
}

/// The point behind the first regressed metric (all of the point's labels
/// on the metric's key), else the first point.
fn point_index(plan: &ScenarioPlan, verdicts: &[MetricVerdict]) -> usize {
    verdicts
        .iter()
        .filter(|v| v.verdict == Verdict::Regressed)
        .find_map(|v| {
            plan.points.iter().position(|p| {
                point_labels(p)
                    .iter()
                    .all(|(k, val)| v.key.labels.get(k) == Some(val))
            })
        })
        .unwrap_or(0)
}

fn label_of(point: &ParamPoint) -> String {
    point_labels(point)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A folder name from the scenario's name and point: letters, digits,
/// `-`, `_` and `.` kept, anything else `_`.
fn folder_name(full_name: &str, point: &str) -> String {
    let raw = if point.is_empty() {
        full_name.to_string()
    } else {
        format!("{full_name}.{point}")
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The programs to profile: the base tree's (paired mode) and the head's.
struct Programs {
    base: Option<Invocation>,
    head: Invocation,
}

impl Programs {
    /// Base first (when there is one), then head.
    fn each(&self) -> impl Iterator<Item = (&'static str, &Invocation)> {
        self.base
            .iter()
            .map(|b| ("base", b))
            .chain(std::iter::once(("head", &self.head)))
    }
}

/// One side being recorded.
struct Recording<'a> {
    name: &'static str,
    program: Invocation,
    folded: Folded,
    runs: u32,
    dir: &'a Path,
}

impl Recording<'_> {
    fn done(&self) -> bool {
        self.folded.samples() >= ENOUGH_SAMPLES || self.runs >= MAX_RUNS
    }

    fn record_once(&mut self, perf: &Perf, timeout: Duration) -> Result<(), String> {
        // Absolute: perf runs in the program's own folder.
        let data = std::path::absolute(self.dir.join(format!("{}.perf.data", self.name)))
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let target = Target {
            argv: &self.program.argv,
            env: &self.program.env,
            cwd: &self.program.cwd,
            timeout,
        };
        let f = perf.profile(&target, &data);
        let _ = std::fs::remove_file(&data);
        self.folded.add(&f?);
        self.runs += 1;
        Ok(())
    }

    /// Writes the folded stacks and the flame graph.
    fn save(&self, title: &str) -> Result<Side, String> {
        let folded = self.dir.join(format!("{}.folded", self.name));
        let flame_graph = self.dir.join(format!("{}.svg", self.name));
        let svg = svg::flame_graph(&self.folded, &format!("{title} ({})", self.name))?;
        write(&folded, self.folded.text().as_bytes())?;
        write(&flame_graph, svg.as_bytes())?;
        Ok(Side {
            folded,
            flame_graph,
            samples: self.folded.samples(),
            runs: self.runs,
        })
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl Session {
    /// Keeps the scenario for [`Session::profile_pending`] when its
    /// `profile` setting asks for a profile of this report.
    pub(super) fn queue_profile(
        &mut self,
        plan: &ScenarioPlan,
        settings: Settings,
        report: &ScenarioReport,
    ) {
        if let Some(why) = reason(settings.resolve().profile, &self.cfg.mode, report) {
            self.to_profile.push((plan.clone(), settings, why));
        }
    }

    /// The scenarios waiting for a profile (their full names).
    pub fn pending_profiles(&self) -> Vec<String> {
        self.to_profile
            .iter()
            .map(|(p, _, _)| p.full_name())
            .collect()
    }

    /// Profiles each queued scenario, now that every scenario was
    /// measured, and attaches what it found (or why it could not) to its
    /// report. Nothing is profiled after a cancel.
    pub fn profile_pending(
        &mut self,
        reports: &mut [ScenarioReport],
        on_event: &mut dyn FnMut(&str, ExecEvent),
    ) {
        for (plan, settings, why) in std::mem::take(&mut self.to_profile) {
            if crate::process::cancel::requested().is_some() {
                return;
            }
            let name = plan.full_name();
            let Some(report) = reports.iter_mut().find(|r| r.result.full_name() == name) else {
                continue;
            };
            let mut events = |e: ExecEvent| on_event(&name, e);
            report.profile = Some(self.profile_one(&plan, &settings, report, why, &mut events));
        }
    }

    fn profile_one(
        &mut self,
        plan: &ScenarioPlan,
        settings: &Settings,
        report: &ScenarioReport,
        reason: &'static str,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> ProfileReport {
        let resolved = settings.resolve();
        let started = Instant::now();
        let mut out = ProfileReport {
            reason: reason.into(),
            profiler: "perf".into(),
            ..Default::default()
        };
        let index = point_index(plan, &report.verdicts).min(plan.points.len().saturating_sub(1));
        let Some(point) = plan.points.get(index) else {
            out.error = Some("the scenario has no point to profile".into());
            return out;
        };
        out.point = label_of(point);
        out.dir = self
            .cfg
            .profile_dir
            .join(folder_name(&plan.full_name(), &out.point));
        if let Err(e) = self.profile_into(plan, point, &resolved, &mut out, on_event) {
            out.error = Some(e);
        }
        out.seconds = started.elapsed().as_secs_f64();
        out
    }

    fn profile_into(
        &mut self,
        plan: &ScenarioPlan,
        point: &ParamPoint,
        settings: &crate::plan::Resolved,
        out: &mut ProfileReport,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(), String> {
        let head = exec::command::program(plan, point, &self.cfg.env, settings.max_time)
            .map_err(|e| e.to_string())?;
        let base = match self.base_program(plan, point, settings.max_time) {
            Some(Ok(program)) => Some(program),
            Some(Err(why)) => {
                out.error = Some(format!("the base was not profiled: {why}"));
                None
            }
            None => None,
        };
        let _ = std::fs::remove_dir_all(&out.dir);
        std::fs::create_dir_all(&out.dir)
            .map_err(|e| format!("cannot create {}: {e}", out.dir.display()))?;
        let programs = Programs { base, head };
        if gpu::here() {
            out.profiler = match settings.profile_kernels {
                true => "perf + nsys + ncu",
                false => "perf + nsys",
            }
            .into();
            if let Err(e) = self.gpu_profile(&programs, settings, out, on_event) {
                out.gpu_error = Some(e);
            }
        }
        self.cpu_profile(plan, &programs, settings, out, on_event)
    }

    /// `perf` of base (when there is one) and head, in turn.
    fn cpu_profile(
        &mut self,
        plan: &ScenarioPlan,
        programs: &Programs,
        settings: &crate::plan::Resolved,
        out: &mut ProfileReport,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(), String> {
        let perf = self.perf.get_or_insert_with(Perf::find).clone()?;
        let mut sides: Vec<Recording> = programs
            .each()
            .map(|(name, program)| Recording {
                name,
                program: program.clone(),
                folded: Folded::default(),
                runs: 0,
                dir: &out.dir,
            })
            .collect();
        // Base and head in turn, run for run, so both see the same machine.
        let budget = settings.max_time;
        let started = Instant::now();
        while sides.iter().any(|s| !s.done()) {
            for side in sides.iter_mut().filter(|s| !s.done()) {
                on_event(ExecEvent::Phase {
                    label: format!("profiling {}, run {}", side.name, side.runs + 1),
                });
                side.record_once(&perf, settings.timeout)?;
            }
            if started.elapsed() >= budget {
                break;
            }
        }
        let title = plan.full_name();
        let saved: Vec<Side> = sides
            .iter()
            .map(|s| s.save(&title))
            .collect::<Result<_, _>>()?;
        let head = sides.last().expect("the head");
        match sides.first().filter(|s| s.name == "base") {
            Some(base) => {
                let diff = out.dir.join("diff.svg");
                let svg = svg::differential(
                    &base.folded,
                    &head.folded,
                    &format!("{title}: head vs base"),
                )?;
                write(&diff, svg.as_bytes())?;
                out.differential = Some(diff);
                out.changes = crate::profile::top_changes(&base.folded, &head.folded, TOP);
                out.base = Some(saved[0].clone());
            }
            None => out.changes = head.folded.hottest(TOP),
        }
        out.head = saved.last().cloned();
        Ok(())
    }

    /// In paired mode, the base tree's program of the same point.
    fn base_program(
        &mut self,
        plan: &ScenarioPlan,
        point: &ParamPoint,
        max_time: Duration,
    ) -> Option<Result<Invocation, String>> {
        let tree = self.base_tree.as_mut()?;
        let base = match tree.plan_for(plan) {
            Ok(Some(b)) => b,
            Ok(None) => return Some(Err("no base variant (new in this tree)".into())),
            Err(e) => return Some(Err(e.to_string())),
        };
        let labels = point_labels(point);
        let Some(p) = base.points.iter().find(|p| point_labels(p) == labels) else {
            return Some(Err(format!("the base has no point {}", label_of(point))));
        };
        Some(exec::command::program(&base, p, &self.cfg.env, max_time).map_err(|e| e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_plain() {
        assert_eq!(folder_name("cmd::slow", ""), "cmd__slow");
        assert_eq!(folder_name("s::x", "batch=8"), "s__x.batch_8");
    }
}
