//! On a GPU runner, Nsight Systems beside perf (issue #22): one `nsys
//! profile --trace cuda` run of each side, the kernels whose total time
//! changed most (or, with no base, the longest), and the `.nsys-rep` files
//! kept for the GUI; with `profile_kernels = true`, `ncu`'s headline
//! figures of each kernel too. On a machine without a GPU nothing is tried and
//! nothing is said; with a GPU and no `nsys`, the report says so.
//! **Not yet run on a GPU.**

use super::*;
use crate::profile::ncu::{Ncu, figures};
use crate::profile::nsys::{Nsys, kernel_changes};

/// Whether NVML sees a GPU here.
pub(super) fn here() -> bool {
    crate::monitor::tree_gpu::NvmlProcesses::open().is_ok()
}

impl Session {
    /// nsys, then (`profile_kernels`) ncu; each one's failure is said,
    /// neither stops the other.
    pub(super) fn gpu_profile(
        &mut self,
        programs: &Programs,
        settings: &crate::plan::Resolved,
        out: &mut ProfileReport,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(), String> {
        let mut errors = Vec::new();
        errors.extend(
            self.timeline_profile(programs, settings, out, on_event)
                .err(),
        );
        if settings.profile_kernels {
            errors.extend(self.kernel_profile(programs, settings, out, on_event).err());
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("; ")),
        }
    }

    /// `nsys` of one run of each side: the CUDA kernel table.
    fn timeline_profile(
        &mut self,
        programs: &Programs,
        settings: &crate::plan::Resolved,
        out: &mut ProfileReport,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(), String> {
        let nsys = self.nsys.get_or_insert_with(Nsys::find).clone()?;
        let recorded = each_side(
            programs,
            settings,
            &out.dir,
            ("nsys", "nsys-rep"),
            on_event,
            |t, file| nsys.profile(t, &file.with_extension("")),
        );
        out.nsys_reports = written(programs, &out.dir, "nsys-rep");
        let mut tables = recorded?;
        let head = tables.pop().expect("the head");
        out.kernels = kernel_changes(tables.first().map(Vec::as_slice), &head, TOP);
        Ok(())
    }

    /// `profile_kernels = true`: `ncu` of one run of each side.
    fn kernel_profile(
        &mut self,
        programs: &Programs,
        settings: &crate::plan::Resolved,
        out: &mut ProfileReport,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(), String> {
        let ncu = Ncu::find()?;
        let recorded = each_side(
            programs,
            settings,
            &out.dir,
            ("ncu", "ncu.csv"),
            on_event,
            |t, file| ncu.profile(t, file),
        );
        out.ncu_reports = written(programs, &out.dir, "ncu.csv");
        let mut runs = recorded?;
        let head = runs.pop().expect("the head");
        out.kernel_figures = figures(runs.first(), &head);
        Ok(())
    }
}

/// The files `<dir>/<side>.<ext>` the tool wrote, base first: kept and
/// listed even when reading them failed (an `.nsys-rep` opens in the GUI;
/// ncu's log holds its errors).
fn written(programs: &Programs, dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    programs
        .each()
        .filter_map(|(name, _)| std::path::absolute(dir.join(format!("{name}.{ext}"))).ok())
        .filter(|f| f.is_file())
        .collect()
}

/// One run of each side under `record` (the `tool`), which writes
/// `<dir>/<side>.<ext>`: what each returned, base first.
fn each_side<T>(
    programs: &Programs,
    settings: &crate::plan::Resolved,
    dir: &Path,
    (tool, ext): (&str, &str),
    on_event: &mut dyn FnMut(ExecEvent),
    mut record: impl FnMut(&Target<'_>, &Path) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut got = Vec::new();
    for (name, p) in programs.each() {
        on_event(ExecEvent::Phase {
            label: format!("{tool} of {name}"),
        });
        let file = std::path::absolute(dir.join(format!("{name}.{ext}")))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let target = Target {
            argv: &p.argv,
            env: &p.env,
            cwd: &p.cwd,
            timeout: settings.timeout,
        };
        got.push(record(&target, &file)?);
    }
    Ok(got)
}
