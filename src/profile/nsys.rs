//! Nsight Systems on a GPU runner (issue #22): `nsys profile --trace cuda`
//! of one run of the program, and its CUDA kernel summary (`nsys stats
//! --report cuda_gpu_kern_sum --format csv`): each kernel's total time and
//! instances. The `.nsys-rep` is kept for the Nsight Systems GUI.
//! **Not yet run on a GPU**: the CSV columns are read by their header names
//! as NVIDIA documents them (`Total Time (ns)`, `Instances`, `Name`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::perf::{Target, on_path, run_tagged};

/// Names the `nsys` binary to use instead of the one on PATH.
pub const NSYS_VAR: &str = "NEON_PERF_NSYS";

/// An `nsys` that answers `--version`.
#[derive(Clone, Debug)]
pub struct Nsys {
    bin: PathBuf,
    pub version: String,
}

/// One kernel's time in a run, or its change between base and head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kernel {
    pub name: String,
    /// Total time of all its launches, seconds (base: 0 when absent there).
    pub base_s: f64,
    pub head_s: f64,
    pub head_instances: u64,
}

impl Nsys {
    /// `nsys` (`$NEON_PERF_NSYS`, else on PATH), or why not.
    pub fn find() -> Result<Nsys, String> {
        let bin = match std::env::var_os(NSYS_VAR).filter(|v| !v.is_empty()) {
            Some(b) => PathBuf::from(b),
            None => on_path(std::env::var_os("PATH"), "nsys").ok_or_else(|| {
                "GPU profiling unavailable: `nsys` (Nsight Systems) is not installed".to_string()
            })?,
        };
        Nsys::at(bin)
    }

    /// Where this nsys is.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `nsys` at `bin`, if it answers `--version`.
    pub fn at(bin: PathBuf) -> Result<Nsys, String> {
        let out = Command::new(&bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!(
                    "GPU profiling unavailable: cannot run {}: {e}",
                    bin.display()
                )
            })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            return Err(format!(
                "GPU profiling unavailable: `{} --version` failed",
                bin.display()
            ));
        }
        Ok(Nsys { bin, version })
    }

    /// Records one run of `t` into `<base>.nsys-rep`; its kernels' total
    /// times (seconds) and instances, by name.
    pub fn profile(&self, t: &Target<'_>, base: &Path) -> Result<Vec<(String, f64, u64)>, String> {
        let mut cmd = Command::new(&self.bin);
        // CPU sampling off: perf samples the CPU already, and with it on
        // Debian's nsys 2022.4 hung in 3 of 12 runs on the 2-core VM
        // (none in 46 with it off).
        cmd.args([
            "profile",
            "--trace",
            "cuda",
            "--sample",
            "none",
            "--cpuctxsw",
            "none",
            "--force-overwrite",
            "true",
            "--output",
        ])
        .arg(base)
        // No `--` before the program: nsys takes its first bare argument
        // as the program, and nsys 2022.4 refuses `--` ("option is
        // ambiguous").
        .args(t.argv)
        .envs(t.env)
        .current_dir(t.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let (ok, stderr) = run_tagged(cmd, t.timeout)?;
        let rep = base.with_extension("nsys-rep");
        if !ok || !rep.is_file() {
            return Err(format!(
                "`nsys profile` of `{}` failed: {}",
                t.argv.join(" "),
                stderr.lines().last().unwrap_or("no output")
            ));
        }
        self.kernel_summary(&rep)
    }

    /// The kernel summary of a report, under the name this nsys knows it
    /// by (`cuda_gpu_kern_sum` since 2023; `gpukernsum` before, where the
    /// new name is "could not be found" and the exit status is still 0).
    fn kernel_summary(&self, rep: &Path) -> Result<Vec<(String, f64, u64)>, String> {
        let mut unknown = Vec::new();
        for report in KERNEL_REPORTS {
            let stats = Command::new(&self.bin)
                .args([
                    "stats", "--report", report, "--format", "csv", "--output", "-",
                ])
                .arg(rep)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run `nsys stats`: {e}"))?;
            let (out, err) = (
                String::from_utf8_lossy(&stats.stdout),
                String::from_utf8_lossy(&stats.stderr),
            );
            if err.contains(&format!("Report '{report}' could not be found")) {
                unknown.push(report);
                continue;
            }
            if !stats.status.success() {
                return Err(format!(
                    "`nsys stats` of {} failed ({}): {}",
                    rep.display(),
                    stats.status,
                    said(&out, &err).unwrap_or_else(|| "no output".into())
                ));
            }
            return parse_kernel_csv(&out).map_err(|e| match said(&out, &err) {
                Some(why) => format!("{e}; nsys said: {why}"),
                None => e,
            });
        }
        Err(format!(
            "`nsys stats` ({}) knows no kernel summary report: neither `{}`",
            self.version,
            unknown.join("` nor `")
        ))
    }
}

/// The kernel summary's report names, newest first.
const KERNEL_REPORTS: [&str; 2] = ["cuda_gpu_kern_sum", "gpukernsum"];

/// What `nsys stats` said besides the table: its `ERROR`, `WARNING` and
/// `SKIPPED` lines (stderr also holds progress bars, redrawn with `\r`).
fn said(stdout: &str, stderr: &str) -> Option<String> {
    let notes: Vec<&str> = stdout
        .split(['\n', '\r'])
        .chain(stderr.split(['\n', '\r']))
        .map(str::trim)
        .filter(|l| {
            ["ERROR", "WARNING", "SKIPPED"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// The kernel summary's CSV: the header line (the first holding `Name`
/// and `Total Time (ns)`), then one row per kernel up to the first empty
/// line. Lines before the header (nsys prints what it is processing and
/// the report's title) and after the table are skipped. Rows of one name
/// are summed: some versions give a row per kernel and grid size.
pub fn parse_kernel_csv(text: &str) -> Result<Vec<(String, f64, u64)>, String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.contains("Total Time (ns)") && l.contains("Name")));
    let header = split_csv(lines.next().ok_or(
        "no CUDA kernel summary in the `nsys stats` output (did the program launch any kernel?)",
    )?);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("the kernel summary has no `{name}` column"))
    };
    let (total, instances, name) = (col("Total Time (ns)")?, col("Instances")?, col("Name")?);
    let mut out = Vec::new();
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let cells = split_csv(line);
        let num = |i: usize| {
            cells
                .get(i)
                .map(|c| c.replace(',', ""))
                .and_then(|c| c.parse::<f64>().ok())
        };
        let (Some(t), Some(n), Some(k)) = (num(total), num(instances), cells.get(name)) else {
            return Err(format!("cannot read kernel summary row: {line}"));
        };
        match out.iter_mut().find(|e: &&mut (String, f64, u64)| &e.0 == k) {
            Some(e) => {
                e.1 += t * 1e-9;
                e.2 += n as u64;
            }
            None => out.push((k.clone(), t * 1e-9, n as u64)),
        }
    }
    Ok(out)
}

/// One CSV line: fields split at commas outside double quotes, `""` an
/// escaped quote.
pub(super) fn split_csv(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The `n` kernels whose total time changed most from base to head (or,
/// with no base, the head's longest), longest change first.
pub fn kernel_changes(
    base: Option<&[(String, f64, u64)]>,
    head: &[(String, f64, u64)],
    n: usize,
) -> Vec<Kernel> {
    let mut all: Vec<Kernel> = head
        .iter()
        .map(|(name, t, k)| Kernel {
            name: name.clone(),
            base_s: base
                .and_then(|b| b.iter().find(|x| &x.0 == name))
                .map_or(0.0, |x| x.1),
            head_s: *t,
            head_instances: *k,
        })
        .collect();
    if let Some(b) = base {
        for (name, t, _) in b.iter().filter(|x| !head.iter().any(|h| h.0 == x.0)) {
            all.push(Kernel {
                name: name.clone(),
                base_s: *t,
                head_s: 0.0,
                head_instances: 0,
            });
        }
        all.sort_by(|x, y| {
            (y.head_s - y.base_s)
                .abs()
                .total_cmp(&(x.head_s - x.base_s).abs())
        });
    } else {
        all.sort_by(|x, y| y.head_s.total_cmp(&x.head_s));
    }
    all.truncate(n);
    all
}

/// The kernels as lines: `gemm_kernel  1.20 ms → 2.41 ms  (+101%)`.
pub fn kernel_lines(k: &[Kernel], with_base: bool) -> Vec<String> {
    let w = k.iter().map(|x| x.name.len()).max().unwrap_or(0).min(60);
    let ms = |s: f64| format!("{:.3} ms", s * 1e3);
    k.iter()
        .map(|x| {
            if with_base {
                let pct = if x.base_s > 0.0 {
                    format!("{:+.0}%", (x.head_s / x.base_s - 1.0) * 100.0)
                } else {
                    "new".into()
                };
                format!(
                    "{:<w$}  {} → {}  ({pct})",
                    x.name,
                    ms(x.base_s),
                    ms(x.head_s)
                )
            } else {
                format!("{:<w$}  {}  ×{}", x.name, ms(x.head_s), x.head_instances)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout NVIDIA documents for `cuda_gpu_kern_sum` as CSV (a
    /// progress line first; names with commas quoted). Written here from
    /// the documentation, not captured from nsys: no GPU was lent yet.
    const CSV: &str = "Processing [head.sqlite] with [cuda_gpu_kern_sum.py]... \n\
\"Time (%)\",\"Total Time (ns)\",\"Instances\",\"Avg (ns)\",\"Med (ns)\",\"Min (ns)\",\"Max (ns)\",\"StdDev (ns)\",\"Name\"\n\
\"66.7\",\"2000000\",\"10\",\"200000.0\",\"200000.0\",\"190000\",\"210000\",\"5000.0\",\"void gemm<float, 128>(int, float const*)\"\n\
\"33.3\",\"1000000\",\"10\",\"100000.0\",\"100000.0\",\"90000\",\"110000\",\"5000.0\",\"saxpy\"\n";

    #[test]
    fn the_kernel_summary_is_read_by_its_headers() {
        let k = parse_kernel_csv(CSV).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].0, "void gemm<float, 128>(int, float const*)");
        assert!((k[0].1 - 0.002).abs() < 1e-12);
        assert_eq!(k[0].2, 10);
        assert!(
            parse_kernel_csv("Processing...\n")
                .unwrap_err()
                .contains("no CUDA kernel summary")
        );
    }

    /// What other nsys versions print around the table, as public
    /// captures show it: the SQLite export and the report's title first,
    /// numbers unquoted or quoted with thousands separators, and another
    /// report after an empty line. Values made up.
    const AROUND: &str = "Generating SQLite file head.sqlite from head.nsys-rep\n\
** CUDA GPU Kernel Summary (cuda_gpu_kern_sum):\n\
\"Time (%)\",\"Total Time (ns)\",\"Instances\",\"Avg (ns)\",\"Med (ns)\",\"Min (ns)\",\"Max (ns)\",\"StdDev (ns)\",\"Name\"\n\
75.0,\"3,000,000\",20,150000.0,150000.0,140000,160000,4000.0,\"void scale<float, (int)4>(float*, float const*, int)\"\n\
25.0,1000000,20,50000.0,50000.0,48000,52000,900.0,\"saxpy\"\n\
\n\
** CUDA API Summary (cuda_api_sum):\n\
\"Time (%)\",\"Total Time (ns)\",\"Num Calls\",\"Name\"\n\
\"100.0\",\"9000000\",\"40\",\"cuLaunchKernel\"\n";

    #[test]
    fn only_the_kernel_table_is_read_from_what_nsys_prints_around_it() {
        let k = parse_kernel_csv(AROUND).unwrap();
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(
            k[0].0,
            "void scale<float, (int)4>(float*, float const*, int)"
        );
        assert!((k[0].1 - 0.003).abs() < 1e-12);
        assert_eq!((k[1].0.as_str(), k[1].2), ("saxpy", 20));
    }

    /// nsys 2022.4's `gpukernsum` layout, as public captures describe it:
    /// grid and block columns before the name (space-separated, padded),
    /// and so a row per kernel and grid size. Values made up.
    const BY_GRID: &str = "Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),GridXYZ,BlockXYZ,Name\n\
60.0,3000000,30,100000.0,100000.0,90000,110000,2000.0, 896    1    1,  128    1    1,\"void rowtile<4>(const float *, float *)\"\n\
30.0,1500000,10,150000.0,150000.0,140000,160000,2000.0, 256    1    1,  128    1    1,\"void rowtile<4>(const float *, float *)\"\n\
10.0,500000,5,100000.0,100000.0,90000,110000,2000.0,   64    1    1,  256    1    1,saxpy\n";

    /// What nsys 2022.4.2 (Debian's nsight-systems) printed, run here on
    /// a program with no CUDA: for the report's new name an error on
    /// stderr and exit status 0; for the old name a note that there is no
    /// kernel data.
    #[test]
    fn what_nsys_stats_said_is_kept() {
        let new_name = "Exporting 5707 events: [1%    ]\rExporting 5707 events: [100%]\n\
ERROR: Report 'cuda_gpu_kern_sum' could not be found.\n\n";
        assert_eq!(
            said(
                "Processing [nx.sqlite] with [cuda_gpu_kern_sum]... \n",
                new_name
            )
            .unwrap(),
            "ERROR: Report 'cuda_gpu_kern_sum' could not be found."
        );
        let old_name = "Processing [/tmp/nx.sqlite] with [/opt/nsys/host-linux-x64/reports/gpukernsum.py]... \n\
SKIPPED: /tmp/nx.sqlite does not contain CUDA kernel data.\n\n";
        assert!(parse_kernel_csv(old_name).is_err());
        assert_eq!(
            said(old_name, "").unwrap(),
            "SKIPPED: /tmp/nx.sqlite does not contain CUDA kernel data."
        );
        assert_eq!(said("Processing...\n", ""), None);
    }

    #[test]
    fn rows_of_one_kernel_at_several_grid_sizes_are_summed() {
        let k = parse_kernel_csv(BY_GRID).unwrap();
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k[0].0, "void rowtile<4>(const float *, float *)");
        assert!((k[0].1 - 0.0045).abs() < 1e-12, "{k:?}");
        assert_eq!(k[0].2, 40);
        assert_eq!((k[1].0.as_str(), k[1].2), ("saxpy", 5));
    }

    #[test]
    fn the_kernel_that_slowed_comes_first() {
        let base = vec![
            ("gemm".to_string(), 0.002, 10),
            ("saxpy".to_string(), 0.001, 10),
        ];
        let head = vec![
            ("gemm".to_string(), 0.002, 10),
            ("saxpy".to_string(), 0.003, 10),
        ];
        let c = kernel_changes(Some(&base), &head, 5);
        assert_eq!(c[0].name, "saxpy");
        let lines = kernel_lines(&c, true);
        assert_eq!(lines[0], "saxpy  1.000 ms → 3.000 ms  (+200%)");
        let alone = kernel_changes(None, &head, 1);
        assert_eq!(kernel_lines(&alone, false), ["saxpy  3.000 ms  ×10"]);
    }
}
