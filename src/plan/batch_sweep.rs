//! `kind = "batch_sweep"`: a candle-core model run over batch sizes, and
//! optionally compared across dtypes / quantizations.

use serde::{Deserialize, Serialize};

use crate::plan::kinds::{CheckCtx, KindRules, SpecError};
use crate::units::{ByteSize, HumanDuration};

impl KindRules for BatchSweepSpec {
    const BLESS_CAN_TELL: bool = true;
    const FRESH_PROCESSES: bool = false;
    const LEAK_RULES: bool = false;

    fn check(&self, _: &CheckCtx<'_>) -> Result<(), SpecError> {
        self.validate().map_err(SpecError::from)
    }
}

/// Keys of a `batch_sweep` scenario besides the common ones.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSweepSpec {
    /// The model: `{ arch = "mlp", layers = [..] }` or `{ arch = "transformer", .. }`.
    pub model: ModelSpec,
    /// Batch sizes to measure, e.g. `[1, 2, 4, 8]`. Exactly one of
    /// `batch_sizes` and `batch_range` is given.
    #[serde(default)]
    pub batch_sizes: Option<Vec<u32>>,
    /// Powers of two from `min` to `max`: `{ min = 1, max = 64 }`.
    #[serde(default)]
    pub batch_range: Option<BatchRange>,
    /// Latency bound per forward pass: `max_batch_under_slo` is the largest
    /// batch whose p99 latency stays under it.
    #[serde(default)]
    pub latency_slo: Option<HumanDuration>,
    /// Runs the model in each of these (at `compare_batch`) and reports
    /// `speedup{dtype=..}` and `rel_l2_error{dtype=..}` against f32.
    #[serde(default)]
    pub compare_dtypes: Vec<CompareDType>,
    /// Batch size of the dtype comparison (default: the largest swept batch ≤ 16).
    #[serde(default)]
    pub compare_batch: Option<u32>,
    /// The "batching" check passes when throughput at the best batch is at
    /// least this many times throughput at the smallest batch (default 1.5).
    #[serde(default)]
    pub min_batch_speedup: Option<f64>,
    /// Upper bound on memory per batch (host RSS growth on CPU, device memory
    /// on CUDA), checked for the "gpu-memory" item on CUDA.
    #[serde(default)]
    pub memory_budget: Option<ByteSize>,
}

impl BatchSweepSpec {
    /// The batch sizes to measure, ascending, without duplicates.
    pub fn batches(&self) -> Vec<usize> {
        let mut v: Vec<usize> = match (&self.batch_sizes, &self.batch_range) {
            (Some(b), _) => b.iter().map(|&x| x as usize).collect(),
            (None, Some(r)) => r.expand(),
            (None, None) => vec![1],
        };
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Checks the values serde cannot: returns the offending key (empty when
    /// a key is missing) and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match (&self.batch_sizes, &self.batch_range) {
            (Some(_), Some(_)) => {
                return Err((
                    "batch_range",
                    "give either `batch_sizes` or `batch_range`, not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    "",
                    "missing `batch_sizes` (e.g. `batch_sizes = [1, 8, 32]`) or `batch_range` (e.g. `batch_range = { min = 1, max = 64 }`)".into(),
                ));
            }
            (Some(b), None) => {
                if b.is_empty() {
                    return Err(("batch_sizes", "`batch_sizes` must not be empty".into()));
                }
                if b.contains(&0) {
                    return Err(("batch_sizes", "batch sizes must be at least 1".into()));
                }
            }
            (None, Some(r)) => {
                if r.min == 0 || r.max < r.min {
                    return Err((
                        "batch_range",
                        format!(
                            "`batch_range` needs 1 <= min <= max, got min = {}, max = {}",
                            r.min, r.max
                        ),
                    ));
                }
            }
        }
        if self
            .min_batch_speedup
            .is_some_and(|t| !(t.is_finite() && t > 0.0))
        {
            return Err((
                "min_batch_speedup",
                "`min_batch_speedup` must be a positive number".into(),
            ));
        }
        if self.compare_batch == Some(0) {
            return Err(("compare_batch", "`compare_batch` must be at least 1".into()));
        }
        self.model.validate().map_err(|m| ("model", m))?;
        let widths = self.model.input_widths();
        for d in &self.compare_dtypes {
            if let Some(w) = widths.iter().find(|w| **w % d.block() != 0) {
                return Err((
                    "compare_dtypes",
                    format!(
                        "`{}` quantizes in blocks of {}: every layer's input width must be a multiple of it, and this model has one of {w}",
                        d.id(),
                        d.block()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `batch_range = { min = 1, max = 64 }`: every power of two in between,
/// plus `min` and `max` themselves.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRange {
    pub min: u32,
    pub max: u32,
}

impl BatchRange {
    pub fn expand(&self) -> Vec<usize> {
        let (lo, hi) = (self.min.max(1) as usize, self.max as usize);
        let mut v = vec![lo];
        let mut p = lo.next_power_of_two();
        while p <= hi {
            v.push(p);
            p *= 2;
        }
        if hi >= lo {
            v.push(hi);
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Dense layers with an activation between them.
    Mlp,
    /// Pre-norm encoder blocks: multi-head self-attention + MLP.
    Transformer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Gelu,
    Relu,
    Silu,
    Tanh,
}

/// The precision the model's weights and activations are held in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelDType {
    #[default]
    F32,
    F16,
    Bf16,
}

/// A precision for `compare_dtypes`: a float type, or a candle/ggml quantized
/// type (weights quantized, activations f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareDType {
    F32,
    F16,
    Bf16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2k,
    Q3k,
    Q4k,
    Q5k,
    Q6k,
    Q8k,
}

impl CompareDType {
    pub fn id(self) -> &'static str {
        match self {
            CompareDType::F32 => "f32",
            CompareDType::F16 => "f16",
            CompareDType::Bf16 => "bf16",
            CompareDType::Q4_0 => "q4_0",
            CompareDType::Q4_1 => "q4_1",
            CompareDType::Q5_0 => "q5_0",
            CompareDType::Q5_1 => "q5_1",
            CompareDType::Q8_0 => "q8_0",
            CompareDType::Q2k => "q2k",
            CompareDType::Q3k => "q3k",
            CompareDType::Q4k => "q4k",
            CompareDType::Q5k => "q5k",
            CompareDType::Q6k => "q6k",
            CompareDType::Q8k => "q8k",
        }
    }

    /// Elements per quantization block: every weight matrix's input width
    /// must be a multiple of it.
    pub fn block(self) -> usize {
        match self {
            CompareDType::F32 | CompareDType::F16 | CompareDType::Bf16 => 1,
            CompareDType::Q4_0
            | CompareDType::Q4_1
            | CompareDType::Q5_0
            | CompareDType::Q5_1
            | CompareDType::Q8_0 => 32,
            _ => 256,
        }
    }
}

/// `model = { .. }`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub arch: Arch,
    /// mlp: widths from input to output, e.g. `[1024, 4096, 1024]` (2+ entries).
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
    /// mlp: the activation between layers (default gelu).
    #[serde(default)]
    pub activation: Option<Activation>,
    /// transformer: model width.
    #[serde(default)]
    pub d_model: Option<usize>,
    /// transformer: attention heads (d_model must be a multiple).
    #[serde(default)]
    pub heads: Option<usize>,
    /// transformer: tokens per sample.
    #[serde(default)]
    pub seq_len: Option<usize>,
    /// transformer: number of blocks (default 1).
    #[serde(default)]
    pub blocks: Option<usize>,
    /// transformer: hidden width of each block's MLP (default 4 × d_model).
    #[serde(default)]
    pub d_ff: Option<usize>,
    /// Weights and activations (default f32).
    #[serde(default)]
    pub dtype: Option<ModelDType>,
    /// Seed of the random weights and inputs (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// A `.safetensors` file (relative to the suite file) with the weights;
    /// names in docs/models.md. Without it, weights are seeded random.
    #[serde(default)]
    pub weights: Option<String>,
}

impl ModelSpec {
    pub fn validate(&self) -> Result<(), String> {
        let wrong_arch = |key: &str, arch: &str| -> Result<(), String> {
            Err(format!(
                "`model.{key}` is a key of `arch = \"{arch}\"` models"
            ))
        };
        match self.arch {
            Arch::Mlp => {
                for (k, set) in [
                    ("d_model", self.d_model.is_some()),
                    ("heads", self.heads.is_some()),
                    ("seq_len", self.seq_len.is_some()),
                    ("blocks", self.blocks.is_some()),
                    ("d_ff", self.d_ff.is_some()),
                ] {
                    if set {
                        return wrong_arch(k, "transformer");
                    }
                }
                let Some(layers) = &self.layers else {
                    return Err(
                        "an mlp needs `layers`, the widths from input to output, e.g. `layers = [512, 2048, 512]`"
                            .into(),
                    );
                };
                if layers.len() < 2 || layers.contains(&0) {
                    return Err(
                        "`model.layers` needs at least two widths (input and output), all positive"
                            .into(),
                    );
                }
            }
            Arch::Transformer => {
                if self.layers.is_some() {
                    return wrong_arch("layers", "mlp");
                }
                if self.activation.is_some() {
                    return wrong_arch("activation", "mlp");
                }
                let (Some(d), Some(h), Some(s)) = (self.d_model, self.heads, self.seq_len) else {
                    return Err(
                        "a transformer needs `d_model`, `heads` and `seq_len`, e.g. `{ arch = \"transformer\", d_model = 256, heads = 4, seq_len = 64 }`"
                            .into(),
                    );
                };
                if d == 0 || h == 0 || s == 0 || self.blocks == Some(0) || self.d_ff == Some(0) {
                    return Err("transformer sizes must be positive".into());
                }
                if d % h != 0 {
                    return Err(format!(
                        "`d_model` ({d}) must be a multiple of `heads` ({h})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Input widths of every dense layer (what a quantized format's block
    /// size must divide).
    pub fn input_widths(&self) -> Vec<usize> {
        match self.arch {
            Arch::Mlp => {
                let l = self.layers.as_deref().unwrap_or(&[]);
                l[..l.len().saturating_sub(1)].to_vec()
            }
            Arch::Transformer => {
                let d = self.d_model.unwrap_or(0);
                vec![d, self.d_ff.unwrap_or(4 * d)]
            }
        }
    }

    pub fn dtype(&self) -> ModelDType {
        self.dtype.unwrap_or_default()
    }

    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_powers_of_two_with_ends() {
        assert_eq!(
            BatchRange { min: 1, max: 64 }.expand(),
            [1, 2, 4, 8, 16, 32, 64]
        );
        assert_eq!(BatchRange { min: 3, max: 20 }.expand(), [3, 4, 8, 16, 20]);
        assert_eq!(BatchRange { min: 5, max: 5 }.expand(), [5]);
    }
}
