//! Nsight Compute on a GPU runner, when a scenario asks for it
//! (`profile_kernels = true`, issue #22): `ncu --csv` of one run of the
//! program, sections SpeedOfLight and MemoryWorkloadAnalysis, and each
//! kernel's headline figures: achieved % of peak compute (`Compute (SM)
//! Throughput`) and of peak memory throughput (`Memory Throughput`),
//! averaged over its profiled launches. **Not yet run on a GPU**: the CSV
//! is read by the column and metric names NVIDIA documents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::perf::{Target, on_path, run_tagged};

/// Names the `ncu` binary to use instead of the one on PATH.
pub const NCU_VAR: &str = "NEON_PERF_NCU";

/// Launches profiled per run: ncu replays each one many times.
pub const LAUNCH_COUNT: u32 = 20;

#[derive(Clone, Debug)]
pub struct Ncu {
    bin: PathBuf,
}

/// One kernel's headline figures, % of peak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelFigures {
    pub name: String,
    /// (compute %, memory %) in the base, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<(f64, f64)>,
    pub head: (f64, f64),
}

impl Ncu {
    /// `ncu` (`$NEON_PERF_NCU`, else on PATH), or why not.
    pub fn find() -> Result<Ncu, String> {
        match std::env::var_os(NCU_VAR).filter(|v| !v.is_empty()) {
            Some(b) => Ok(Ncu {
                bin: PathBuf::from(b),
            }),
            None => on_path(std::env::var_os("PATH"), "ncu")
                .map(|bin| Ncu { bin })
                .ok_or_else(|| {
                    "kernel profiling unavailable: `ncu` (Nsight Compute) is not installed".into()
                }),
        }
    }

    /// Each kernel's (compute %, memory %) in one run of `t`; the CSV is
    /// kept at `csv`.
    pub fn profile(
        &self,
        t: &Target<'_>,
        csv: &Path,
    ) -> Result<BTreeMap<String, (f64, f64)>, String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--csv",
            "--section",
            "SpeedOfLight",
            "--section",
            "MemoryWorkloadAnalysis",
        ])
        .args([
            // Clocks as the gate measured them: ncu's default locks them to
            // base for the run, and a run cut short by the timeout (killed)
            // cannot unlock them, which would slow every scenario after it.
            "--clock-control",
            "none",
            "--target-processes",
            "all",
            "--launch-count",
            &LAUNCH_COUNT.to_string(),
        ])
        .arg("--log-file")
        .arg(csv)
        // No `--` before the program: ncu takes its first bare argument as
        // the program, and ncu 2022.3 refuses `--` ("option is ambiguous").
        .args(t.argv)
        .envs(t.env)
        .current_dir(t.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let (ok, stderr) = run_tagged(cmd, t.timeout)?;
        let text = std::fs::read_to_string(csv).unwrap_or_default();
        if !ok && text.is_empty() {
            return Err(format!(
                "`ncu` of `{}` failed: {}",
                t.argv.join(" "),
                stderr.lines().last().unwrap_or("no output")
            ));
        }
        parse_ncu_csv(&text).map_err(|e| match said(&text, &stderr) {
            Some(why) => format!("{e}; ncu said: {why}"),
            None => e,
        })
    }
}

/// What ncu said about why it profiled nothing: its `==ERROR==` notes and
/// "No kernels were profiled", from its log and its stderr (where it
/// writes what happens before the log opens), in order, without repeats.
/// ncu may end one note and start the next on one line.
fn said(log: &str, stderr: &str) -> Option<String> {
    let text = format!("{log}\n{stderr}")
        .replace("==ERROR==", "\n\u{1}E")
        .replace("==WARNING==", "\n\u{1}W")
        .replace("==PROF==", "\n\u{1}P");
    let mut notes: Vec<&str> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('\u{1}') else {
            continue;
        };
        let (kind, note) = rest.split_at(1);
        let note = note.trim();
        let wanted = kind == "E" || note.contains("No kernels were profiled");
        if wanted && !note.is_empty() && !notes.contains(&note) {
            notes.push(note);
        }
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

const COMPUTE: &str = "Compute (SM) Throughput";
const MEMORY: &str = "Memory Throughput";

/// `ncu --csv` (details page): one row per kernel launch, section and
/// metric. Lines before the header (`==PROF==` notes) are skipped. Only
/// rows in percent count: the Memory Workload Analysis section has a
/// `Memory Throughput` of its own in bytes per second
/// (`dram__bytes.sum.per_second` in ncu's MemoryWorkloadAnalysis.section;
/// the Speed Of Light one is `…pct_of_peak_sustained_elapsed`).
pub fn parse_ncu_csv(text: &str) -> Result<BTreeMap<String, (f64, f64)>, String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.contains("\"Kernel Name\"") && l.contains("\"Metric Value\"")));
    let header = super::nsys::split_csv(
        lines
            .next()
            .ok_or("no kernel in the `ncu` output (did the program launch any kernel?)")?,
    );
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("the ncu output has no `{name}` column"))
    };
    let (kernel, metric, value) = (
        col("Kernel Name")?,
        col("Metric Name")?,
        col("Metric Value")?,
    );
    let unit = col("Metric Unit").ok();
    // Per kernel: sums and counts of each figure over its launches.
    let mut acc: BTreeMap<String, [(f64, u32); 2]> = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let c = super::nsys::split_csv(line);
        let slot = match c.get(metric).map(String::as_str) {
            Some(COMPUTE) => 0,
            Some(MEMORY) => 1,
            _ => continue,
        };
        if unit.is_some_and(|u| c.get(u).is_some_and(|u| u != "%")) {
            continue;
        }
        // ncu writes "n/a" where a launch has no value for a metric.
        if c.get(value).is_some_and(|v| v == "n/a") {
            continue;
        }
        let (Some(k), Some(v)) = (
            c.get(kernel),
            c.get(value)
                .and_then(|v| v.replace(',', "").parse::<f64>().ok()),
        ) else {
            return Err(format!("cannot read ncu row: {line}"));
        };
        let e = &mut acc.entry(k.clone()).or_default()[slot];
        e.0 += v;
        e.1 += 1;
    }
    let mean = |(s, n): (f64, u32)| if n == 0 { f64::NAN } else { s / n as f64 };
    Ok(acc
        .into_iter()
        .map(|(k, [c, m])| (k, (mean(c), mean(m))))
        .collect())
}

/// Base beside head for every kernel the head ran, slowest-looking first
/// (the largest drop in compute or memory throughput).
pub fn figures(
    base: Option<&BTreeMap<String, (f64, f64)>>,
    head: &BTreeMap<String, (f64, f64)>,
) -> Vec<KernelFigures> {
    let mut out: Vec<KernelFigures> = head
        .iter()
        .map(|(k, h)| KernelFigures {
            name: k.clone(),
            base: base.and_then(|b| b.get(k)).copied(),
            head: *h,
        })
        .collect();
    let drop = |f: &KernelFigures| f.base.map_or(0.0, |b| (b.0 - f.head.0).max(b.1 - f.head.1));
    out.sort_by(|x, y| drop(y).total_cmp(&drop(x)).then(x.name.cmp(&y.name)));
    out
}

/// `saxpy  compute 41% → 20%, memory 88% → 45%`.
pub fn figure_lines(f: &[KernelFigures]) -> Vec<String> {
    let w = f.iter().map(|x| x.name.len()).max().unwrap_or(0).min(60);
    f.iter()
        .map(|x| match x.base {
            Some(b) => format!(
                "{:<w$}  compute {:.0}% → {:.0}%, memory {:.0}% → {:.0}%",
                x.name, b.0, x.head.0, b.1, x.head.1
            ),
            None => format!(
                "{:<w$}  compute {:.0}%, memory {:.0}% of peak",
                x.name, x.head.0, x.head.1
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns NVIDIA documents for `ncu --csv` (details page), a
    /// `==PROF==` note first. Written from the documentation, not captured
    /// from ncu: no GPU was lent yet.
    const CSV: &str = "==PROF== Connected to process 4242\n\
\"ID\",\"Process ID\",\"Process Name\",\"Host Name\",\"Kernel Name\",\"Context\",\"Stream\",\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\"\n\
\"0\",\"4242\",\"neon-perf\",\"h\",\"saxpy\",\"1\",\"7\",\"GPU Speed Of Light Throughput\",\"Memory Throughput\",\"%\",\"88.00\"\n\
\"0\",\"4242\",\"neon-perf\",\"h\",\"saxpy\",\"1\",\"7\",\"GPU Speed Of Light Throughput\",\"Compute (SM) Throughput\",\"%\",\"40.00\"\n\
\"1\",\"4242\",\"neon-perf\",\"h\",\"saxpy\",\"1\",\"7\",\"GPU Speed Of Light Throughput\",\"Memory Throughput\",\"%\",\"86.00\"\n\
\"1\",\"4242\",\"neon-perf\",\"h\",\"saxpy\",\"1\",\"7\",\"GPU Speed Of Light Throughput\",\"Compute (SM) Throughput\",\"%\",\"42.00\"\n\
\"1\",\"4242\",\"neon-perf\",\"h\",\"saxpy\",\"1\",\"7\",\"GPU Speed Of Light Throughput\",\"Duration\",\"usecond\",\"1,204.10\"\n";

    #[test]
    fn each_kernels_figures_are_averaged_over_its_launches() {
        let k = parse_ncu_csv(CSV).unwrap();
        assert_eq!(k["saxpy"], (41.0, 87.0));
        let mut base = BTreeMap::new();
        base.insert("saxpy".to_string(), (80.0, 90.0));
        let f = figures(Some(&base), &k);
        assert_eq!(
            figure_lines(&f),
            ["saxpy  compute 80% → 41%, memory 90% → 87%"]
        );
        assert!(
            parse_ncu_csv("==PROF== nothing\n")
                .unwrap_err()
                .contains("no kernel")
        );
    }

    /// The layout of newer ncu versions, as public captures show it: more
    /// columns (block and grid size, device, compute capability, the
    /// rules'), metric rows ending in a comma, rule rows with no metric and
    /// a description full of commas, kernel names with commas inside
    /// their quotes, and "n/a" values. Values made up.
    const NEWER: &str = "==PROF== Connected to process 77 (/usr/bin/python3)\n\
==PROF== Disconnected from process 77\n\
\"ID\",\"Process ID\",\"Process Name\",\"Host Name\",\"Kernel Name\",\"Context\",\"Stream\",\"Block Size\",\"Grid Size\",\"Device\",\"CC\",\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\",\"Rule Name\",\"Rule Type\",\"Rule Description\",\"Estimated Speedup Type\",\"Estimated Speedup\"\n\
\"0\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"Memory Throughput\",\"%\",\"61.50\",\n\
\"0\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"Duration\",\"ns\",\"12,480\",\n\
\"0\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"Compute (SM) Throughput\",\"%\",\"20.25\",\n\
\"0\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"SpeedOfLight\",\"\",\"\",\"\",\"SOLBottleneck\",\"OPT\",\"Memory is busier than compute, by far, so look at the memory workload, first.\",\"\",\"\"\n\
\"0\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"Memory Workload Analysis\",\"Mem Busy\",\"%\",\"n/a\",\n\
\"1\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"Memory Throughput\",\"%\",\"n/a\",\n\
\"1\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"Compute (SM) Throughput\",\"%\",\"19.75\",\n";

    /// What ncu 2022.3 (Debian's nsight-compute) wrote, run here on a
    /// machine without a GPU: its log (`--log-file`) holds warnings and
    /// the application's error, its stderr why. The error names them; two
    /// notes on one line are told apart.
    #[test]
    fn what_ncu_said_is_in_the_error_when_nothing_was_profiled() {
        let log = "==WARNING== Could not determine user home directory for section deployment.\n\
==WARNING== See https://docs.nvidia.com/nsight-compute/ProfilingGuide/index.html#faq.\n\
==ERROR== The application returned an error code (1).\n\
==WARNING== No kernels were profiled.\n";
        let stderr = "==ERROR== Nsight Compute failed to connect to the CUDA driver (stub libcuda.so[.1] on path?).\n";
        let e = parse_ncu_csv(log).unwrap_err();
        assert!(e.contains("no kernel"), "{e}");
        assert_eq!(
            said(log, stderr).unwrap(),
            "The application returned an error code (1).; No kernels were profiled.; \
             Nsight Compute failed to connect to the CUDA driver (stub libcuda.so[.1] on path?)."
        );
        let one_line = "==WARNING== No kernels were profiled.==ERROR== The application returned an error code (1).\n";
        assert_eq!(
            said(one_line, stderr).unwrap(),
            "No kernels were profiled.; The application returned an error code (1).; \
             Nsight Compute failed to connect to the CUDA driver (stub libcuda.so[.1] on path?)."
        );
        assert_eq!(said("==PROF== Connected to process 4242\n", ""), None);
    }

    #[test]
    fn the_newer_layout_with_rules_trailing_commas_and_missing_values_is_read() {
        let k = parse_ncu_csv(NEWER).unwrap();
        assert_eq!(k.len(), 1, "{k:?}");
        assert_eq!(k["gemv(const float *, float *, int)"], (20.0, 61.5));
        // A `Memory Throughput` in bytes per second (Memory Workload
        // Analysis's, or the Speed Of Light one in a second unit, as public
        // captures show) is not a share of peak and is not averaged in.
        let row = |section: &str, unit: &str, v: &str| {
            format!(
                "\"0\",\"77\",\"python3\",\"127.0.0.1\",\"gemv(const float *, float *, int)\",\"1\",\"7\",\"(256, 1, 1)\",\"(64, 1, 1)\",\"0\",\"9.0\",\"{section}\",\"Memory Throughput\",\"{unit}\",\"{v}\",\n"
            )
        };
        let more = format!(
            "{NEWER}{}{}",
            row("Memory Workload Analysis", "byte/s", "412,345,678,912.00"),
            row("GPU Speed Of Light Throughput", "Gbyte/s", "1,200.00")
        );
        assert_eq!(
            parse_ncu_csv(&more).unwrap()["gemv(const float *, float *, int)"],
            (20.0, 61.5)
        );
        let bad = NEWER.replace("\"19.75\"", "\"fast\"");
        assert!(
            parse_ncu_csv(&bad)
                .unwrap_err()
                .starts_with("cannot read ncu row"),
            "{bad}"
        );
    }
}
