//! candle-core models for `batch_sweep` and `oom_stress`: an MLP and a
//! pre-norm transformer encoder, in f32/f16/bf16 or with quantized weights.
//! Built from seeded random weights or a safetensors file; no candle-nn, so
//! every op in the forward pass is visible here.

pub mod device;
pub mod weights;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};

use crate::plan::batch_sweep::{Activation, Arch, CompareDType, ModelDType, ModelSpec};
pub use weights::Weights;

/// Why a model could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Weights(String),
    #[error("{0}")]
    Unsupported(String),
}

/// How the weights are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Float(DType),
    /// Quantized weights (ggml block formats), f32 activations.
    Quant(GgmlDType),
}

impl Precision {
    pub fn of_model(d: ModelDType) -> Precision {
        Precision::Float(match d {
            ModelDType::F32 => DType::F32,
            ModelDType::F16 => DType::F16,
            ModelDType::Bf16 => DType::BF16,
        })
    }

    pub fn of_compare(d: CompareDType) -> Precision {
        use CompareDType as C;
        match d {
            C::F32 => Precision::Float(DType::F32),
            C::F16 => Precision::Float(DType::F16),
            C::Bf16 => Precision::Float(DType::BF16),
            C::Q4_0 => Precision::Quant(GgmlDType::Q4_0),
            C::Q4_1 => Precision::Quant(GgmlDType::Q4_1),
            C::Q5_0 => Precision::Quant(GgmlDType::Q5_0),
            C::Q5_1 => Precision::Quant(GgmlDType::Q5_1),
            C::Q8_0 => Precision::Quant(GgmlDType::Q8_0),
            C::Q2k => Precision::Quant(GgmlDType::Q2K),
            C::Q3k => Precision::Quant(GgmlDType::Q3K),
            C::Q4k => Precision::Quant(GgmlDType::Q4K),
            C::Q5k => Precision::Quant(GgmlDType::Q5K),
            C::Q6k => Precision::Quant(GgmlDType::Q6K),
            C::Q8k => Precision::Quant(GgmlDType::Q8K),
        }
    }

    /// The dtype of activations (inputs, outputs, norms).
    pub fn act_dtype(self) -> DType {
        match self {
            Precision::Float(d) => d,
            Precision::Quant(_) => DType::F32,
        }
    }
}

/// A dense layer `y = x Wᵀ + b`.
enum Linear {
    /// `w_t` is `[in, out]`, transposed once at load so the forward is one gemm.
    Dense {
        w_t: Tensor,
        b: Tensor,
    },
    Quant {
        w: QMatMul,
        b: Tensor,
    },
}

impl Linear {
    fn new(w: &Weights, name: &str, p: Precision, dev: &Device) -> Result<Linear, ModelError> {
        let weight = w.get(&format!("{name}.weight"))?;
        let bias = w.get(&format!("{name}.bias"))?;
        let b = bias.to_dtype(p.act_dtype())?.to_device(dev)?;
        Ok(match p {
            Precision::Float(dt) => Linear::Dense {
                w_t: weight.t()?.contiguous()?.to_dtype(dt)?.to_device(dev)?,
                b,
            },
            Precision::Quant(q) => {
                let inp = weight.dim(1)?;
                if inp % q.block_size() != 0 {
                    return Err(ModelError::Unsupported(format!(
                        "{q:?} needs input widths that are multiples of {}; `{name}` has {inp}",
                        q.block_size()
                    )));
                }
                let qt = QTensor::quantize_onto(weight, q, dev)?;
                Linear::Quant {
                    w: QMatMul::from_qtensor(qt)?,
                    b,
                }
            }
        })
    }

    /// `x` is `[rows, in]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Dense { w_t, b } => x.matmul(w_t)?.broadcast_add(b),
            Linear::Quant { w, b } => w.forward(x)?.broadcast_add(b),
        }
    }

    /// Bytes the weights take on the device.
    fn bytes(&self) -> usize {
        let t = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        match self {
            Linear::Dense { w_t, b } => t(w_t) + t(b),
            Linear::Quant { w, b } => {
                let q = match w {
                    QMatMul::QTensor(q) => q.storage_size_in_bytes(),
                    QMatMul::Tensor(x) | QMatMul::TensorF16(x) => t(x),
                };
                q + t(b)
            }
        }
    }
}

struct LayerNorm {
    g: Tensor,
    b: Tensor,
}

impl LayerNorm {
    fn new(w: &Weights, name: &str, dev: &Device) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            g: w.get(&format!("{name}.weight"))?.to_device(dev)?,
            b: w.get(&format!("{name}.bias"))?.to_device(dev)?,
        })
    }

    /// Normalizes over the last dim in f32, returns `x`'s dtype.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let y = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        y.broadcast_mul(&self.g)?
            .broadcast_add(&self.b)?
            .to_dtype(dt)
    }
}

fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let dt = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?.to_dtype(dt)
}

fn activate(a: Activation, x: &Tensor) -> candle_core::Result<Tensor> {
    match a {
        Activation::Gelu => x.gelu(),
        Activation::Relu => x.relu(),
        Activation::Silu => x.silu(),
        Activation::Tanh => x.tanh(),
    }
}

struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    out: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

enum Net {
    Mlp {
        layers: Vec<Linear>,
        act: Activation,
    },
    Transformer {
        blocks: Vec<Block>,
        ln_f: LayerNorm,
        d_model: usize,
        heads: usize,
        seq_len: usize,
    },
}

/// A built model on one device, in one precision.
pub struct Model {
    net: Net,
    pub device: Device,
    pub precision: Precision,
    /// Shape of one sample of input (without the batch dim).
    pub sample_shape: Vec<usize>,
    /// Bytes of weights on the device.
    pub weight_bytes: usize,
    pub params: usize,
}

impl Model {
    /// Places `w` on `dev` in precision `p`.
    pub fn build(
        spec: &ModelSpec,
        w: &Weights,
        p: Precision,
        dev: &Device,
    ) -> Result<Model, ModelError> {
        let (net, sample_shape) = match spec.arch {
            Arch::Mlp => {
                let widths = spec.layers.clone().unwrap_or_default();
                let layers = (0..widths.len().saturating_sub(1))
                    .map(|i| Linear::new(w, &format!("layers.{i}"), p, dev))
                    .collect::<Result<Vec<_>, _>>()?;
                let act = spec.activation.unwrap_or_default();
                (Net::Mlp { layers, act }, vec![widths[0]])
            }
            Arch::Transformer => {
                let d = spec.d_model.unwrap_or(0);
                let s = spec.seq_len.unwrap_or(0);
                let blocks = (0..spec.blocks.unwrap_or(1))
                    .map(|i| -> Result<Block, ModelError> {
                        let n = |x: &str| format!("blocks.{i}.{x}");
                        Ok(Block {
                            ln1: LayerNorm::new(w, &n("ln1"), dev)?,
                            qkv: Linear::new(w, &n("attn.qkv"), p, dev)?,
                            out: Linear::new(w, &n("attn.out"), p, dev)?,
                            ln2: LayerNorm::new(w, &n("ln2"), dev)?,
                            fc1: Linear::new(w, &n("mlp.fc1"), p, dev)?,
                            fc2: Linear::new(w, &n("mlp.fc2"), p, dev)?,
                        })
                    })
                    .collect::<Result<Vec<_>, ModelError>>()?;
                let net = Net::Transformer {
                    blocks,
                    ln_f: LayerNorm::new(w, "ln_f", dev)?,
                    d_model: d,
                    heads: spec.heads.unwrap_or(1),
                    seq_len: s,
                };
                (net, vec![s, d])
            }
        };
        let weight_bytes = match &net {
            Net::Mlp { layers, .. } => layers.iter().map(Linear::bytes).sum(),
            Net::Transformer {
                blocks, d_model, ..
            } => {
                blocks
                    .iter()
                    .map(|b| b.qkv.bytes() + b.out.bytes() + b.fc1.bytes() + b.fc2.bytes())
                    .sum::<usize>()
                    + (4 * blocks.len() + 2) * d_model * 4
            }
        };
        Ok(Model {
            net,
            device: dev.clone(),
            precision: p,
            sample_shape,
            weight_bytes,
            params: w.params(),
        })
    }

    /// A seeded input batch on the model's device, in its activation dtype.
    /// The same (batch, seed) gives the same numbers in every precision.
    pub fn input(&self, batch: usize, seed: u64) -> Result<Tensor, ModelError> {
        let mut shape = vec![batch];
        shape.extend(&self.sample_shape);
        let n: usize = shape.iter().product();
        let data = weights::SplitMix::new(seed ^ 0x1f2e_3d4c).fill(n, 1.0);
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?
            .to_dtype(self.precision.act_dtype())?
            .to_device(&self.device)?)
    }

    /// One forward pass. Returns once the work is queued (CUDA) or done (CPU):
    /// call [`Model::sync`] before reading a clock.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.net {
            Net::Mlp { layers, act } => {
                let mut h = x.clone();
                for (i, l) in layers.iter().enumerate() {
                    h = l.forward(&h)?;
                    if i + 1 < layers.len() {
                        h = activate(*act, &h)?;
                    }
                }
                Ok(h)
            }
            Net::Transformer {
                blocks,
                ln_f,
                d_model,
                heads,
                seq_len,
            } => {
                let (b, s, d, h) = (x.dim(0)?, *seq_len, *d_model, *heads);
                let dh = d / h;
                let scale = 1.0 / (dh as f64).sqrt();
                let mut x = x.reshape((b * s, d))?;
                for blk in blocks {
                    // attention
                    let a = blk.ln1.forward(&x)?;
                    let qkv = blk.qkv.forward(&a)?.reshape((b, s, 3, h, dh))?;
                    let qkv = qkv.permute((2, 0, 3, 1, 4))?; // [3, b, h, s, dh]
                    let q = qkv.get(0)?.contiguous()?;
                    let k = qkv.get(1)?.contiguous()?;
                    let v = qkv.get(2)?.contiguous()?;
                    let att = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
                    let att = softmax_last(&att)?;
                    let o = att.matmul(&v)?; // [b, h, s, dh]
                    let o = o.transpose(1, 2)?.contiguous()?.reshape((b * s, d))?;
                    x = (x + blk.out.forward(&o)?)?;
                    // mlp
                    let m = blk.ln2.forward(&x)?;
                    let m = blk.fc1.forward(&m)?.gelu()?;
                    x = (x + blk.fc2.forward(&m)?)?;
                }
                ln_f.forward(&x)?.reshape((b, s, d))
            }
        }
    }

    /// Waits for queued device work (no-op on CPU).
    pub fn sync(&self) -> candle_core::Result<()> {
        self.device.synchronize()
    }
}

/// Relative L2 error `‖a − ref‖ / ‖ref‖`, computed in f32 on the host.
pub fn rel_l2_error(a: &Tensor, reference: &Tensor) -> Result<f64, ModelError> {
    let a = a.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let r = reference
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if a.len() != r.len() {
        return Err(ModelError::Unsupported(format!(
            "outputs differ in size: {} vs {}",
            a.len(),
            r.len()
        )));
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(&r) {
        num += ((x - y) as f64).powi(2);
        den += (*y as f64).powi(2);
    }
    Ok(if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlp() -> ModelSpec {
        toml::from_str("arch = \"mlp\"\nlayers = [64, 128, 32]\nseed = 3").unwrap()
    }

    fn tf() -> ModelSpec {
        toml::from_str(
            "arch = \"transformer\"\nd_model = 64\nheads = 4\nseq_len = 8\nblocks = 2\nseed = 3",
        )
        .unwrap()
    }

    #[test]
    fn shapes_and_determinism() {
        for spec in [mlp(), tf()] {
            let w = Weights::random(&spec).unwrap();
            let m = Model::build(&spec, &w, Precision::Float(DType::F32), &Device::Cpu).unwrap();
            let x = m.input(3, 1).unwrap();
            let y = m.forward(&x).unwrap();
            assert_eq!(y.dim(0).unwrap(), 3);
            let y2 = m.forward(&m.input(3, 1).unwrap()).unwrap();
            assert_eq!(rel_l2_error(&y, &y2).unwrap(), 0.0);
            let norm = y
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm.is_finite() && norm > 0.0, "{norm}");
        }
    }

    #[test]
    fn batch_rows_are_independent() {
        // Row 0 of a batch of 4 equals the same sample run alone: batching
        // must not change results (the attention is per sample).
        let spec = tf();
        let w = Weights::random(&spec).unwrap();
        let m = Model::build(&spec, &w, Precision::Float(DType::F32), &Device::Cpu).unwrap();
        let x = m.input(4, 9).unwrap();
        let y = m.forward(&x).unwrap();
        let y0 = m.forward(&x.narrow(0, 0, 1).unwrap()).unwrap();
        let e = rel_l2_error(&y.narrow(0, 0, 1).unwrap(), &y0).unwrap();
        assert!(e < 1e-5, "{e}");
    }

    #[test]
    fn quantized_and_half_are_close_to_f32() {
        let spec = mlp();
        let w = Weights::random(&spec).unwrap();
        let f = Model::build(&spec, &w, Precision::Float(DType::F32), &Device::Cpu).unwrap();
        let x = f.input(2, 5).unwrap();
        let y = f.forward(&x).unwrap();
        for (p, tol) in [
            (Precision::Quant(GgmlDType::Q8_0), 0.02),
            (Precision::Quant(GgmlDType::Q4_0), 0.2),
            (Precision::Float(DType::BF16), 0.05),
        ] {
            let m = Model::build(&spec, &w, p, &Device::Cpu).unwrap();
            let yq = m.forward(&m.input(2, 5).unwrap()).unwrap();
            let e = rel_l2_error(&yq, &y).unwrap();
            assert!(e > 0.0 && e < tol, "{p:?}: {e}");
        }
    }

    #[test]
    fn quantization_needs_block_multiples() {
        let spec: ModelSpec = toml::from_str("arch = \"mlp\"\nlayers = [48, 32]").unwrap();
        let w = Weights::random(&spec).unwrap();
        let e = Model::build(&spec, &w, Precision::Quant(GgmlDType::Q8_0), &Device::Cpu)
            .err()
            .unwrap();
        assert!(e.to_string().contains("multiples of 32"), "{e}");
    }

    #[test]
    fn safetensors_round_trip() {
        let spec = tf();
        let w = Weights::random(&spec).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        w.save(&path).unwrap();
        let back = Weights::load(&path, &spec).unwrap();
        let p = Precision::Float(DType::F32);
        let a = Model::build(&spec, &w, p, &Device::Cpu).unwrap();
        let b = Model::build(&spec, &back, p, &Device::Cpu).unwrap();
        let x = a.input(2, 0).unwrap();
        let e = rel_l2_error(&a.forward(&x).unwrap(), &b.forward(&x).unwrap()).unwrap();
        assert_eq!(e, 0.0);
        // a file for another shape is refused by name and shape
        let other: ModelSpec = toml::from_str("arch = \"mlp\"\nlayers = [64, 32]").unwrap();
        let err = Weights::load(&path, &other).err().unwrap().to_string();
        assert!(err.contains("lack tensor `layers.0.weight`"), "{err}");
    }
}
