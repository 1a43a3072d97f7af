//! The `plan::Settings` keys, read from `[defaults]` or a `[[scenario]]`,
//! range-checked, and remembered with their spans for cross-key checks.

use std::collections::BTreeMap;
use std::ops::Range;

use super::error::Diag;
use super::read::{self, Value};
use crate::plan::Settings;
use crate::units::HumanDuration;

/// Every key of `plan::Settings`, as written in a suite.
pub(crate) const SETTINGS_KEYS: [&str; 14] = [
    "warmup",
    "warmup_runs",
    "min_samples",
    "max_samples",
    "max_time",
    "target_rel_ci",
    "tolerance",
    "timeout",
    "monitor_interval",
    "max_contention",
    "quiet_wait",
    "output_tail",
    "profile",
    "profile_kernels",
];

/// One layer of settings as written in the file, with where each key was set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layer {
    pub settings: Settings,
    pub spans: BTreeMap<&'static str, Range<usize>>,
}

impl Layer {
    /// Reads `key` if it is a settings key; `Ok(false)` when it is not one.
    pub fn read(&mut self, key: &str, v: &Value<'_>) -> Result<bool, Diag> {
        let Some(name) = SETTINGS_KEYS.iter().copied().find(|k| *k == key) else {
            return Ok(false);
        };
        let s = &mut self.settings;
        let span = v.span();
        match name {
            "warmup" => s.warmup = Some(HumanDuration(read::duration(v, name)?)),
            "quiet_wait" => s.quiet_wait = Some(HumanDuration(read::duration(v, name)?)),
            "output_tail" => {
                let n = read::size(v, name)?;
                if !(1024..=(1 << 30)).contains(&n) {
                    return Err(Diag::new(
                        span.clone(),
                        format!("`output_tail` must be between 1KiB and 1GiB, found {n} bytes"),
                    ));
                }
                s.output_tail = Some(n);
            }
            "max_time" | "timeout" | "monitor_interval" => {
                let d = read::duration(v, name)?;
                limits::positive_duration(d).map_err(|l| l.diag(span.clone(), name, None))?;
                let d = Some(HumanDuration(d));
                match name {
                    "max_time" => s.max_time = d,
                    "timeout" => s.timeout = d,
                    _ => s.monitor_interval = d,
                }
            }
            "warmup_runs" => s.warmup_runs = Some(read::count(v, name)?),
            "min_samples" | "max_samples" => {
                let n = read::count(v, name)?;
                limits::samples(n).map_err(|l| l.diag(span.clone(), name, None))?;
                if name == "min_samples" {
                    s.min_samples = Some(n);
                } else {
                    s.max_samples = Some(n);
                }
            }
            "target_rel_ci" => {
                let x = read::number(v, name)?;
                limits::target_rel_ci(x).map_err(|l| l.diag(span.clone(), name, Some(x)))?;
                s.target_rel_ci = Some(x);
            }
            "tolerance" => s.tolerance = Some(tolerance(v)?),
            "profile_kernels" => s.profile_kernels = Some(read::boolean(v, name)?),
            "profile" => {
                let w = read::string(v, name)?;
                s.profile = Some(crate::plan::ProfileWhen::from_id(w).ok_or_else(|| {
                    Diag::new(
                        span.clone(),
                        format!(
                            "`profile` must be \"off\", \"on-regression\" or \"always\", found \"{w}\""
                        ),
                    )
                })?);
            }
            "max_contention" => {
                let x = read::number(v, name)?;
                limits::max_contention(x).map_err(|l| l.diag(span.clone(), name, Some(x)))?;
                s.max_contention = Some(x);
            }
            _ => unreachable!("every settings key is handled"),
        }
        self.spans.insert(name, v.span());
        Ok(true)
    }

    /// `min_samples ≤ max_samples` once this layer sits on `lower` and the
    /// built-in defaults; reported only when this layer set one of the two.
    pub fn check_samples(&self, lower: Option<&Layer>) -> Option<Diag> {
        let own_min = self.spans.get("min_samples");
        let own_max = self.spans.get("max_samples");
        if own_min.is_none() && own_max.is_none() {
            return None;
        }
        let merged = match lower {
            Some(l) => self.settings.clone().or(&l.settings),
            None => self.settings.clone(),
        };
        let r = merged.resolve();
        if r.min_samples <= r.max_samples {
            return None;
        }
        let lower_span = |k: &str| lower.and_then(|l| l.spans.get(k)).cloned();
        let (span, other, other_key) = match (own_min, own_max) {
            (Some(min), _) => (min.clone(), lower_span("max_samples"), "max_samples"),
            (None, Some(max)) => (max.clone(), lower_span("min_samples"), "min_samples"),
            (None, None) => unreachable!(),
        };
        let origin = |set: bool| if set { "" } else { ", the built-in default" };
        let mut d = Diag::new(
            span,
            format!(
                "`min_samples` ({}{}) is greater than `max_samples` ({}{})",
                r.min_samples,
                origin(merged.min_samples.is_some()),
                r.max_samples,
                origin(merged.max_samples.is_some()),
            ),
        );
        if let Some(o) = other {
            d = d.related(o, format!("`{other_key}` set here"));
        }
        Some(d)
    }
}

/// A relative tolerance: strictly between 0 and 1.
pub(crate) fn tolerance(v: &Value<'_>) -> Result<f64, Diag> {
    let x = read::number(v, "tolerance")?;
    limits::tolerance(x).map_err(|l| l.diag(v.span(), "tolerance", Some(x)))
}

/// The ranges of the settings keys. Suite files and the command-line
/// overrides (`--tolerance`, `--min-samples`, ...) check the same ones, so
/// a value a suite may not hold cannot come in through a flag either.
pub mod limits {
    use std::ops::Range;
    use std::time::Duration;

    use super::Diag;

    /// A value outside its key's range: what it must be, and how to read the key.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Limit {
        /// "must be between 0 and 1"
        pub must: &'static str,
        pub hint: Option<&'static str>,
    }

    impl Limit {
        /// The suite-file diagnostic: "`key` must be ..., found x".
        pub(crate) fn diag(&self, span: Range<usize>, key: &str, found: Option<f64>) -> Diag {
            let found = found.map(|x| format!(", found {x}")).unwrap_or_default();
            Diag::new(span, format!("`{key}` {}{found}", self.must))
                .hint(self.hint.map(str::to_string))
        }

        /// The text after clap's "invalid value 'X' for '--flag <FLAG>': ".
        pub fn for_flag(&self) -> String {
            match self.hint {
                Some(h) => format!("{} ({h})", self.must),
                None => self.must.to_string(),
            }
        }
    }

    /// `tolerance`: strictly between 0 and 1.
    pub fn tolerance(x: f64) -> Result<f64, Limit> {
        if x > 0.0 && x < 1.0 {
            Ok(x)
        } else {
            Err(Limit {
                must: "must be between 0 and 1",
                hint: Some(
                    "it is a relative change: 0.05 means a 5% change counts as a regression",
                ),
            })
        }
    }

    /// `target_rel_ci`: in (0, 0.5].
    pub fn target_rel_ci(x: f64) -> Result<f64, Limit> {
        if x > 0.0 && x <= 0.5 {
            Ok(x)
        } else {
            Err(Limit {
                must: "must be in (0, 0.5]",
                hint: Some("it is a relative half-width: 0.01 stops once the 95% ci is within ±1%"),
            })
        }
    }

    /// `max_contention`: in (0, 1].
    pub fn max_contention(x: f64) -> Result<f64, Limit> {
        if x > 0.0 && x <= 1.0 {
            Ok(x)
        } else {
            Err(Limit {
                must: "must be in (0, 1]",
                hint: Some(
                    "the share of the CPU cores other processes may use before a CPU run is invalid; 1 turns the check off",
                ),
            })
        }
    }

    /// `min_samples`, `max_samples`: at least 1.
    pub fn samples(n: u32) -> Result<u32, Limit> {
        if n >= 1 {
            Ok(n)
        } else {
            Err(Limit {
                must: "must be at least 1",
                hint: None,
            })
        }
    }

    /// `max_time`, `timeout`, `monitor_interval`: greater than zero.
    pub fn positive_duration(d: Duration) -> Result<Duration, Limit> {
        if d.is_zero() {
            Err(Limit {
                must: "must be greater than zero",
                hint: None,
            })
        } else {
            Ok(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::de::DeTable;

    fn layer(src: &str) -> Result<Layer, Diag> {
        let doc = DeTable::parse(src).unwrap();
        let mut l = Layer::default();
        for (k, v) in read::entries(doc.get_ref()) {
            assert!(l.read(k.get_ref(), v)?, "{k:?} is a settings key");
        }
        Ok(l)
    }

    #[test]
    fn valid_values() {
        let l = layer(
            "warmup = \"0s\"\nwarmup_runs = 0\nmin_samples = 5\nmax_samples = 50\n\
             max_time = \"2s\"\ntarget_rel_ci = 0.5\ntolerance = 0.1\ntimeout = \"1m\"\n\
             monitor_interval = \"10ms\"\n",
        )
        .unwrap();
        let r = l.settings.resolve();
        assert_eq!(r.max_samples, 50);
        assert_eq!(r.timeout.as_secs(), 60);
        assert_eq!(r.tolerance, 0.1);
        assert!(l.check_samples(None).is_none());
    }

    #[test]
    fn invalid_values() {
        let cases = [
            (
                "tolerance = 0",
                "`tolerance` must be between 0 and 1, found 0",
            ),
            (
                "tolerance = 1.5",
                "`tolerance` must be between 0 and 1, found 1.5",
            ),
            (
                "tolerance = -0.1",
                "`tolerance` must be between 0 and 1, found -0.1",
            ),
            (
                "target_rel_ci = 0.6",
                "`target_rel_ci` must be in (0, 0.5], found 0.6",
            ),
            ("max_time = \"0s\"", "`max_time` must be greater than zero"),
            (
                "max_contention = 0",
                "`max_contention` must be in (0, 1], found 0",
            ),
            (
                "profile = \"sometimes\"",
                "`profile` must be \"off\", \"on-regression\" or \"always\", found \"sometimes\"",
            ),
            (
                "output_tail = \"10B\"",
                "`output_tail` must be between 1KiB and 1GiB, found 10 bytes",
            ),
            (
                "target_rel_ci = 0",
                "`target_rel_ci` must be in (0, 0.5], found 0",
            ),
            ("min_samples = 0", "`min_samples` must be at least 1"),
            ("max_samples = -1", "`max_samples` must not be negative"),
            (
                "warmup_runs = 1.5",
                "expected a whole number for `warmup_runs`, found float",
            ),
            (
                "timeout = \"10 parsecs\"",
                "invalid duration `10 parsecs`: unknown unit `parsecs` (use ns, us, ms, s, m or h)",
            ),
            (
                "warmup = 3",
                "`warmup` needs a unit: write a string such as \"3s\" or \"3ms\"",
            ),
            (
                "tolerance = \"5%\"",
                "expected a number for `tolerance`, found string",
            ),
        ];
        for (src, want) in cases {
            let e = layer(src).unwrap_err();
            assert_eq!(e.message, want, "{src}");
        }
    }

    #[test]
    fn samples_cross_check_across_layers() {
        let defaults = layer("max_samples = 20").unwrap();
        assert!(defaults.check_samples(None).is_none());
        let scenario = layer("min_samples = 30").unwrap();
        let d = scenario.check_samples(Some(&defaults)).unwrap();
        assert_eq!(
            d.message,
            "`min_samples` (30) is greater than `max_samples` (20)"
        );
        assert_eq!(d.related.len(), 1);
        let alone = layer("max_samples = 5").unwrap();
        let d = alone.check_samples(None).unwrap();
        assert_eq!(
            d.message,
            "`min_samples` (10, the built-in default) is greater than `max_samples` (5)"
        );
    }
}
