//! `kind = "gpu_kernel"`: a CUDA kernel compiled with NVRTC, or a built-in one.
//! The keys are documented in docs/gpu.md.

pub mod expr;

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::DeviceSel;
use super::kinds::{At, CheckCtx, KindRules, SpecError};

impl KindRules for GpuKernelSpec {
    const BLESS_CAN_TELL: bool = true;
    const FRESH_PROCESSES: bool = false;
    const LEAK_RULES: bool = false;

    fn check(&self, ctx: &CheckCtx<'_>) -> Result<(), SpecError> {
        self.validate()
            .and_then(|()| self.validate_device(ctx.device))
            .map_err(|m| SpecError::new(At::Scenario, m))
    }
}

/// An arithmetic expression over sweep parameters (`"12*n"`) or a number
/// literal; checked for syntax when the suite is read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExprText(pub String);

impl ExprText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExprText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct ExprVisitor;

impl Visitor<'_> for ExprVisitor {
    type Value = ExprText;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or an expression such as \"12*n\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<ExprText, E> {
        expr::parse(s).map_err(E::custom)?;
        Ok(ExprText(s.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExprText, E> {
        Ok(ExprText(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExprText, E> {
        Ok(ExprText(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ExprText, E> {
        // `{:?}` keeps a decimal point, so 2.0 stays a float literal.
        Ok(ExprText(format!("{v:?}")))
    }
}

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExprVisitor)
    }
}

/// One to three expressions: `256`, `"n"`, `[32, 8]`, `["cols", "rows"]` (x, y, z).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dims(pub Vec<ExprText>);

impl<'de> Deserialize<'de> for Dims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, an expression, or a list of 1 to 3 of them (x, y, z)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dims, E> {
                ExprVisitor.visit_str(s).map(|e| Dims(vec![e]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dims, E> {
                Ok(Dims(vec![ExprText(v.to_string())]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dims, E> {
                Ok(Dims(vec![ExprText(v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dims, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<ExprText>()? {
                    out.push(e);
                }
                if out.is_empty() || out.len() > 3 {
                    return Err(de::Error::custom(format!(
                        "expected 1 to 3 dimensions (x, y, z), got {}",
                        out.len()
                    )));
                }
                Ok(Dims(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Kernels neon-perf ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// `y[i] = x[i]`, f32, float4 loads; param `n`.
    Copy,
    /// `z[i] = a*x[i] + y[i]`, f32, a = 2; param `n`.
    Saxpy,
    /// Sum of `n` f32 (two passes); param `n`.
    Reduction,
    /// Tiled transpose of a `rows`×`cols` f32 matrix; params `rows`, `cols` (or `n`).
    Transpose,
    /// cuBLAS f32 GEMM; params `m`, `n`, `k` (missing ones default to `n`).
    Sgemm,
    /// cuBLAS f16 GEMM, tensor ops, f32 accumulate.
    Hgemm,
    /// cuBLAS bf16 GEMM, tensor ops, f32 accumulate.
    Bf16gemm,
    /// `n` f32 copied from GPU i to GPU j for every ordered pair i ≠ j
    /// (`cuMemcpyPeerAsync`); needs two or more GPUs.
    #[serde(rename = "p2p_copy")]
    P2pCopy,
}

impl Builtin {
    pub fn id(self) -> &'static str {
        match self {
            Builtin::Copy => "copy",
            Builtin::Saxpy => "saxpy",
            Builtin::Reduction => "reduction",
            Builtin::Transpose => "transpose",
            Builtin::Sgemm => "sgemm",
            Builtin::Hgemm => "hgemm",
            Builtin::Bf16gemm => "bf16gemm",
            Builtin::P2pCopy => "p2p_copy",
        }
    }
}

/// Element types of buffers and scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    #[default]
    F32,
    F64,
    F16,
    Bf16,
    I32,
    U32,
    I64,
    U64,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::Bf16)
    }
    /// Default `(rtol, atol)` for output comparison.
    pub fn default_tolerance(self) -> (f64, f64) {
        match self {
            Dtype::F32 => (1e-5, 1e-6),
            Dtype::F64 => (1e-12, 1e-14),
            Dtype::F16 => (1e-2, 1e-3),
            Dtype::Bf16 => (2e-2, 1e-2),
            _ => (0.0, 0.0),
        }
    }
    pub fn id(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::I32 => "i32",
            Dtype::U32 => "u32",
            Dtype::I64 => "i64",
            Dtype::U64 => "u64",
        }
    }
}

/// How a buffer is filled before the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Uniform in [-1, 1) for floats, [0, 1024) for integers, from `seed`.
    #[default]
    Random,
    /// Every element `fill`.
    Constant,
    /// Raw little-endian elements from `file` (relative to the suite folder).
    File,
}

/// One kernel argument, in the kernel's parameter order: a device buffer
/// (`len` given) or a scalar (`value` given).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    pub name: String,
    #[serde(default)]
    pub dtype: Dtype,
    /// Buffer length in elements.
    #[serde(default)]
    pub len: Option<ExprText>,
    /// Scalar value.
    #[serde(default)]
    pub value: Option<ExprText>,
    #[serde(default)]
    pub init: Option<Init>,
    /// The value for `init = "constant"`.
    #[serde(default)]
    pub fill: Option<f64>,
    /// The file for `init = "file"`.
    #[serde(default)]
    pub file: Option<String>,
    /// Seed for `init = "random"` (default: the scenario's seed + argument index).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Written only: poisoned with NaN before each checked launch, then compared.
    #[serde(default)]
    pub out: bool,
    /// Read and written: initialised, then compared.
    #[serde(default)]
    pub inout: bool,
}

impl ArgSpec {
    pub fn is_buffer(&self) -> bool {
        self.len.is_some()
    }
    pub fn is_output(&self) -> bool {
        self.out || self.inout
    }
}

/// Keys of a `gpu_kernel` scenario besides the common ones. Rarely used
/// expressions are boxed to keep `KindSpec` small.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuKernelSpec {
    /// A `.cu` file relative to the suite file.
    #[serde(default)]
    pub source: Option<String>,
    /// Kernel function name (`extern "C" __global__`).
    #[serde(default)]
    pub entry: Option<String>,
    /// A kernel neon-perf ships, instead of `source` + `entry`.
    #[serde(default)]
    pub builtin: Option<Builtin>,
    /// A simple kernel in the same file with the same arguments; outputs must match.
    #[serde(default)]
    pub reference_entry: Option<String>,
    /// Kernel arguments in order.
    #[serde(default)]
    pub args: Vec<ArgSpec>,
    /// Total threads per dimension; grid = ceil(threads / block).
    #[serde(default)]
    pub threads: Option<Box<Dims>>,
    /// Threads per block (default 256).
    #[serde(default)]
    pub block: Option<Box<Dims>>,
    /// Blocks per grid, overriding `threads`.
    #[serde(default)]
    pub grid: Option<Box<Dims>>,
    /// Dynamic shared memory per block, bytes.
    #[serde(default)]
    pub shared_mem: Option<Box<ExprText>>,
    /// Bytes moved per launch → `bandwidth` (B/s).
    #[serde(default)]
    pub bytes: Option<Box<ExprText>>,
    /// Floating-point operations per launch → `flops` (FLOP/s).
    #[serde(default)]
    pub flops: Option<Box<ExprText>>,
    /// Flush L2 between launches (metrics get the label `cache=cold`).
    #[serde(default)]
    pub cold: bool,
    /// Output comparison tolerances (defaults depend on the dtype).
    #[serde(default)]
    pub rtol: Option<f64>,
    #[serde(default)]
    pub atol: Option<f64>,
    /// Extra NVRTC options, e.g. ["--use_fast_math"].
    #[serde(default)]
    pub nvrtc_options: Vec<String>,
    /// Seed for random buffers (default 0x5EED).
    #[serde(default)]
    pub seed: Option<u64>,
}

impl ArgSpec {
    /// A buffer (`len`) or a scalar (`value`), with the keys that apply to it.
    fn check(&self) -> Result<(), String> {
        match (&self.len, &self.value) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "argument `{}`: give `len` (a buffer) or `value` (a scalar), not both",
                    self.name
                ));
            }
            (None, None) => {
                return Err(format!(
                    "argument `{}`: give `len` (a buffer) or `value` (a scalar)",
                    self.name
                ));
            }
            (None, Some(_)) => {
                if self.out
                    || self.inout
                    || self.init.is_some()
                    || self.fill.is_some()
                    || self.file.is_some()
                {
                    return Err(format!(
                        "argument `{}` is a scalar: `out`, `inout`, `init`, `fill` and `file` apply to buffers",
                        self.name
                    ));
                }
            }
            (Some(_), None) => {
                if self.out && self.inout {
                    return Err(format!(
                        "argument `{}`: `out` (write-only) and `inout` exclude each other",
                        self.name
                    ));
                }
                match self.init.unwrap_or_default() {
                    Init::Constant if self.fill.is_none() => {
                        return Err(format!(
                            "argument `{}`: init = \"constant\" needs `fill`",
                            self.name
                        ));
                    }
                    Init::File if self.file.is_none() => {
                        return Err(format!(
                            "argument `{}`: init = \"file\" needs `file`",
                            self.name
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

impl GpuKernelSpec {
    /// Checks what serde cannot: which keys go together.
    pub fn validate(&self) -> Result<(), String> {
        self.check_kernel()?;
        let mut names = BTreeSet::new();
        for a in &self.args {
            if !names.insert(a.name.as_str()) {
                return Err(format!("argument `{}` appears twice", a.name));
            }
            a.check()?;
        }
        if self.reference_entry.is_some() && !self.args.iter().any(|a| a.is_output()) {
            return Err(
                "`reference_entry` needs at least one output buffer (`out = true` or `inout = true`)"
                    .into(),
            );
        }
        for (k, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if let Some(v) = v
                && !(v >= 0.0 && v.is_finite())
            {
                return Err(format!("`{k}` must be a finite number ≥ 0, got {v}"));
            }
        }
        Ok(())
    }

    /// Either a builtin or a `source` with its `entry` and launch size.
    fn check_kernel(&self) -> Result<(), String> {
        match (&self.builtin, &self.source) {
            (Some(_), Some(_)) => {
                return Err("give either `builtin` or `source`, not both".into());
            }
            (None, None) => {
                return Err(
                    "missing kernel: give `source = \"kernels/x.cu\"` with `entry`, or `builtin = \"copy\"`"
                        .into(),
                );
            }
            (Some(b), None) => {
                if self.entry.is_some() || self.reference_entry.is_some() || !self.args.is_empty() {
                    return Err(format!(
                        "builtin `{}` takes no `entry`, `reference_entry` or `args`: its sizes come from the params",
                        b.id()
                    ));
                }
                if self.threads.is_some() || self.grid.is_some() || self.block.is_some() {
                    return Err(format!(
                        "builtin `{}` chooses its own launch configuration: remove `threads`, `block` and `grid`",
                        b.id()
                    ));
                }
                if *b == Builtin::P2pCopy {
                    if self.cold {
                        return Err(
                            "builtin `p2p_copy` measures the link between GPUs: `cold` (an L2 flush) does not apply"
                                .into(),
                        );
                    }
                    if self.flops.is_some() {
                        return Err("builtin `p2p_copy` does no arithmetic: remove `flops`".into());
                    }
                }
            }
            (None, Some(_)) => {
                if self.entry.is_none() {
                    return Err("`source` needs `entry`, the kernel's name".into());
                }
                if self.threads.is_none() && self.grid.is_none() {
                    return Err(
                        "give `threads` (e.g. \"n\") or `grid` so the launch size is known".into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Checks the spec against the scenario's `device`: `p2p_copy` uses every
    /// visible GPU, so it takes `device = "all"` (or `"auto"`) only.
    pub fn validate_device(&self, device: DeviceSel) -> Result<(), String> {
        match (self.builtin, device) {
            (Some(Builtin::P2pCopy), DeviceSel::Auto | DeviceSel::AllGpus) => Ok(()),
            (Some(Builtin::P2pCopy), other) => Err(format!(
                "builtin `p2p_copy` copies between every pair of GPUs: use device = \"all\", not \"{other}\""
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<GpuKernelSpec, String> {
        toml::from_str::<GpuKernelSpec>(s).map_err(|e| e.to_string())
    }

    #[test]
    fn saxpy_spec_parses_and_validates() {
        let spec = parse(
            r#"
            source = "kernels/saxpy.cu"
            entry = "saxpy"
            reference_entry = "saxpy_naive"
            threads = "n"
            block = 256
            bytes = "12 * n"
            flops = "2*n"
            args = [
              { name = "x", dtype = "f32", len = "n" },
              { name = "y", len = "n", init = "constant", fill = 1.5 },
              { name = "z", len = "n", out = true },
              { name = "a", value = 2.0 },
              { name = "n", dtype = "i32", value = "n" },
            ]
            "#,
        )
        .unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.args.len(), 5);
        assert_eq!(spec.args[3].value, Some(ExprText("2.0".into())));
        assert_eq!(spec.args[4].dtype, Dtype::I32);
        assert_eq!(
            spec.block.as_deref(),
            Some(&Dims(vec![ExprText("256".into())]))
        );
        assert!(spec.args[2].is_output() && !spec.args[0].is_output());
    }

    #[test]
    fn builtins_and_dims() {
        let spec = parse("builtin = \"bf16gemm\"\nflops = \"2*m*n*k\"").unwrap();
        assert_eq!(spec.builtin, Some(Builtin::Bf16gemm));
        spec.validate().unwrap();
        let spec = parse(
            "source = \"t.cu\"\nentry = \"t\"\nthreads = [\"cols\", \"rows\"]\nblock = [32, 8]",
        )
        .unwrap();
        assert_eq!(spec.threads.as_ref().unwrap().0.len(), 2);
        spec.validate().unwrap();
    }

    #[test]
    fn parse_errors_are_specific() {
        let cases = [
            ("builtin = \"fft\"", "unknown variant `fft`"),
            ("source = \"a.cu\"\nbogus = 1", "unknown field `bogus`"),
            ("bytes = \"12 * \"", "invalid expression `12 * `"),
            ("block = [1, 2, 3, 4]", "expected 1 to 3 dimensions"),
            (
                "args = [{ name = \"x\", len = \"n\", dtype = \"f8\" }]",
                "unknown variant `f8`",
            ),
            (
                "args = [{ name = \"x\", size = 3 }]",
                "unknown field `size`",
            ),
        ];
        for (toml, want) in cases {
            let err = parse(toml).unwrap_err();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }

    #[test]
    fn validation_errors_are_specific() {
        let cases = [
            ("entry = \"k\"", "missing kernel"),
            ("builtin = \"copy\"\nsource = \"a.cu\"", "not both"),
            ("source = \"a.cu\"\nthreads = \"n\"", "needs `entry`"),
            ("source = \"a.cu\"\nentry = \"k\"", "give `threads`"),
            ("builtin = \"copy\"\nentry = \"k\"", "takes no `entry`"),
            ("builtin = \"copy\"\nblock = 128", "chooses its own launch"),
            (
                "source = \"a.cu\"\nentry = \"k\"\nthreads = \"n\"\nargs = [{ name = \"x\" }]",
                "give `len` (a buffer) or `value`",
            ),
            (
                "source = \"a.cu\"\nentry = \"k\"\nthreads = \"n\"\nargs = [{ name = \"a\", value = 1, out = true }]",
                "is a scalar",
            ),
            (
                "source = \"a.cu\"\nentry = \"k\"\nthreads = \"n\"\nargs = [{ name = \"x\", len = \"n\", init = \"constant\" }]",
                "needs `fill`",
            ),
            (
                "source = \"a.cu\"\nentry = \"k\"\nthreads = \"n\"\nargs = [{ name = \"x\", len = \"n\" }, { name = \"x\", len = \"n\" }]",
                "appears twice",
            ),
            (
                "source = \"a.cu\"\nentry = \"k\"\nreference_entry = \"r\"\nthreads = \"n\"\nargs = [{ name = \"x\", len = \"n\" }]",
                "needs at least one output buffer",
            ),
            ("builtin = \"copy\"\nrtol = -1.0", "`rtol` must be"),
        ];
        for (toml, want) in cases {
            let err = parse(toml).unwrap().validate().unwrap_err();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }

    #[test]
    fn p2p_copy_spec_validates() {
        let spec = parse("builtin = \"p2p_copy\"\nbytes = \"4*n\"").unwrap();
        assert_eq!(spec.builtin, Some(Builtin::P2pCopy));
        assert_eq!(Builtin::P2pCopy.id(), "p2p_copy");
        spec.validate().unwrap();
        for d in [DeviceSel::Auto, DeviceSel::AllGpus] {
            spec.validate_device(d).unwrap();
        }
        for d in [DeviceSel::Cpu, DeviceSel::Cuda(1)] {
            let err = spec.validate_device(d).unwrap_err();
            assert!(err.contains("use device = \"all\""), "{err}");
        }
        // Other kernels take any device here (the executor refuses "cpu").
        let copy = parse("builtin = \"copy\"").unwrap();
        copy.validate_device(DeviceSel::Cuda(1)).unwrap();
        let cases = [
            (
                "builtin = \"p2p_copy\"\ncold = true",
                "`cold` (an L2 flush) does not apply",
            ),
            ("builtin = \"p2p_copy\"\nflops = \"n\"", "remove `flops`"),
            ("builtin = \"p2p_copy\"\nentry = \"k\"", "takes no `entry`"),
            (
                "builtin = \"p2p_copy\"\nblock = 128",
                "chooses its own launch",
            ),
        ];
        for (toml, want) in cases {
            let err = parse(toml).unwrap().validate().unwrap_err();
            assert!(err.contains(want), "{toml}: {err}");
        }
        assert!(
            parse("builtin = \"p2pcopy\"")
                .unwrap_err()
                .contains("unknown variant")
        );
    }

    #[test]
    fn dtype_tolerances_are_looser_for_half_types() {
        assert_eq!(Dtype::F32.default_tolerance(), (1e-5, 1e-6));
        assert!(Dtype::Bf16.default_tolerance().0 > Dtype::F16.default_tolerance().0);
        assert_eq!(Dtype::I32.default_tolerance(), (0.0, 0.0));
        assert_eq!(Dtype::Bf16.size(), 2);
    }
}
