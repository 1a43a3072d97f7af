//! Model weights: seeded random (deterministic across machines, no download)
//! or read from a `.safetensors` file. Held as f32 on the host; each
//! precision variant is made from this one master copy, so every dtype of a
//! comparison starts from the same numbers.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::ModelError;
use crate::plan::batch_sweep::{Arch, ModelSpec};

/// splitmix64: a tiny, well-mixed generator so seeds mean the same thing everywhere.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn fill(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.unit() * scale).collect()
    }
}

/// Names and shapes of every tensor a spec's model needs, in a fixed order.
/// Linear weights are `[out, in]` (PyTorch's layout), biases `[out]`.
pub fn layout(spec: &ModelSpec) -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    let linear = |v: &mut Vec<(String, Vec<usize>)>, name: &str, inp: usize, out: usize| {
        v.push((format!("{name}.weight"), vec![out, inp]));
        v.push((format!("{name}.bias"), vec![out]));
    };
    match spec.arch {
        Arch::Mlp => {
            let l = spec.layers.as_deref().unwrap_or(&[]);
            for (i, w) in l.windows(2).enumerate() {
                linear(&mut v, &format!("layers.{i}"), w[0], w[1]);
            }
        }
        Arch::Transformer => {
            let d = spec.d_model.unwrap_or(0);
            let ff = spec.d_ff.unwrap_or(4 * d);
            for b in 0..spec.blocks.unwrap_or(1) {
                let p = format!("blocks.{b}");
                v.push((format!("{p}.ln1.weight"), vec![d]));
                v.push((format!("{p}.ln1.bias"), vec![d]));
                linear(&mut v, &format!("{p}.attn.qkv"), d, 3 * d);
                linear(&mut v, &format!("{p}.attn.out"), d, d);
                v.push((format!("{p}.ln2.weight"), vec![d]));
                v.push((format!("{p}.ln2.bias"), vec![d]));
                linear(&mut v, &format!("{p}.mlp.fc1"), d, ff);
                linear(&mut v, &format!("{p}.mlp.fc2"), ff, d);
            }
            v.push(("ln_f.weight".into(), vec![d]));
            v.push(("ln_f.bias".into(), vec![d]));
        }
    }
    v
}

/// The f32 master weights on the host.
pub struct Weights {
    pub tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, small biases, unit
    /// layer-norm gains: activations stay O(1) through any depth.
    pub fn random(spec: &ModelSpec) -> Result<Weights, ModelError> {
        let mut rng = SplitMix::new(spec.seed());
        let mut tensors = HashMap::new();
        for (name, shape) in layout(spec) {
            let n: usize = shape.iter().product();
            let data = if name.contains(".ln") || name.starts_with("ln_f") {
                if name.ends_with(".weight") {
                    vec![1.0; n]
                } else {
                    vec![0.0; n]
                }
            } else if name.ends_with(".bias") {
                rng.fill(n, 0.01)
            } else {
                let fan_in = shape[1] as f32;
                rng.fill(n, 1.0 / fan_in.sqrt())
            };
            let t = Tensor::from_vec(data, shape, &Device::Cpu)?;
            tensors.insert(name, t);
        }
        Ok(Weights { tensors })
    }

    /// Reads a safetensors file and checks it holds every tensor the spec
    /// needs, with the right shape (any float dtype; converted to f32).
    pub fn load(path: &Path, spec: &ModelSpec) -> Result<Weights, ModelError> {
        let mut file = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            ModelError::Weights(format!("cannot read weights `{}`: {e}", path.display()))
        })?;
        let mut tensors = HashMap::new();
        for (name, shape) in layout(spec) {
            let t = file.remove(&name).ok_or_else(|| {
                ModelError::Weights(format!(
                    "weights `{}` lack tensor `{name}` (shape {shape:?}); names are listed in docs/models.md",
                    path.display()
                ))
            })?;
            if t.dims() != shape.as_slice() {
                return Err(ModelError::Weights(format!(
                    "weights `{}`: tensor `{name}` has shape {:?}, the model needs {shape:?}",
                    path.display(),
                    t.dims()
                )));
            }
            tensors.insert(name, t.to_dtype(DType::F32)?);
        }
        Ok(Weights { tensors })
    }

    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::Weights(format!("missing tensor `{name}`")))
    }

    /// Number of parameters.
    pub fn params(&self) -> usize {
        self.tensors.values().map(|t| t.elem_count()).sum()
    }

    /// Writes these weights as safetensors (used by tests and `docs/models.md`).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        candle_core::safetensors::save(&self.tensors, path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_in_range() {
        let a: Vec<f32> = SplitMix::new(7).fill(1000, 1.0);
        let b: Vec<f32> = SplitMix::new(7).fill(1000, 1.0);
        assert_eq!(a, b);
        assert!(a.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean: f32 = a.iter().sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.1, "{mean}");
    }
}
