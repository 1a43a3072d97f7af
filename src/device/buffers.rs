//! Typed host and device buffers for kernel arguments: seeded random
//! initialisation, poisoning outputs, and comparing outputs with tolerances.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, LaunchArgs, PushKernelArg};
use half::{bf16, f16};

use super::{DeviceError, driver_err};
use crate::plan::gpu_kernel::Dtype;

/// The byte a poisoned buffer is filled with: every float type made of it
/// is NaN, so an element a kernel never wrote shows up in a comparison.
pub const POISON_BYTE: u8 = 0xFF;

/// Element data on the host.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
}

/// splitmix64: a tiny, good-enough generator with a seed per chunk, so the
/// data does not depend on how many threads made it.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [-1, 1) with 24 random bits: exact in f32.
fn unit_f32(x: u64) -> f32 {
    ((x >> 40) as f32) / ((1u32 << 24) as f32) * 2.0 - 1.0
}

/// Uniform in [-1, 1).
fn unit(x: u64) -> f64 {
    ((x >> 11) as f64) / ((1u64 << 53) as f64) * 2.0 - 1.0
}

const CHUNK: usize = 1 << 20;

/// Fills `out` chunk by chunk on all cores; chunk `c` is seeded with `seed ^ c`.
fn fill_parallel<T: Send>(out: &mut [T], seed: u64, f: impl Fn(u64) -> T + Sync) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(16);
    let chunks: Vec<(usize, &mut [T])> = out.chunks_mut(CHUNK).enumerate().collect();
    let per = chunks.len().div_ceil(threads).max(1);
    let mut groups: Vec<Vec<(usize, &mut [T])>> = Vec::new();
    let mut it = chunks.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    std::thread::scope(|s| {
        for group in groups {
            let f = &f;
            s.spawn(move || {
                for (c, slice) in group {
                    let mut st = seed ^ (c as u64).wrapping_mul(0xA24B_AED4_963E_E407);
                    for v in slice.iter_mut() {
                        *v = f(splitmix64(&mut st));
                    }
                }
            });
        }
    });
}

impl HostData {
    /// Seeded uniform data: [-1, 1) for floats (f16/bf16 may round to ±1),
    /// [0, 1024) for integers.
    pub fn random(dtype: Dtype, len: usize, seed: u64) -> HostData {
        fn make<T: Send + Copy + Default>(
            len: usize,
            seed: u64,
            f: impl Fn(u64) -> T + Sync,
        ) -> Vec<T> {
            let mut v = vec![T::default(); len];
            fill_parallel(&mut v, seed, f);
            v
        }
        match dtype {
            Dtype::F32 => HostData::F32(make(len, seed, unit_f32)),
            Dtype::F64 => HostData::F64(make(len, seed, unit)),
            Dtype::F16 => HostData::F16(make(len, seed, |x| f16::from_f64(unit(x)))),
            Dtype::Bf16 => HostData::Bf16(make(len, seed, |x| bf16::from_f64(unit(x)))),
            Dtype::I32 => HostData::I32(make(len, seed, |x| (x % 1024) as i32)),
            Dtype::U32 => HostData::U32(make(len, seed, |x| (x % 1024) as u32)),
            Dtype::I64 => HostData::I64(make(len, seed, |x| (x % 1024) as i64)),
            Dtype::U64 => HostData::U64(make(len, seed, |x| x % 1024)),
        }
    }

    pub fn constant(dtype: Dtype, len: usize, v: f64) -> HostData {
        match dtype {
            Dtype::F32 => HostData::F32(vec![v as f32; len]),
            Dtype::F64 => HostData::F64(vec![v; len]),
            Dtype::F16 => HostData::F16(vec![f16::from_f64(v); len]),
            Dtype::Bf16 => HostData::Bf16(vec![bf16::from_f64(v); len]),
            Dtype::I32 => HostData::I32(vec![v as i32; len]),
            Dtype::U32 => HostData::U32(vec![v as u32; len]),
            Dtype::I64 => HostData::I64(vec![v as i64; len]),
            Dtype::U64 => HostData::U64(vec![v as u64; len]),
        }
    }

    /// The first `len` little-endian elements of `bytes`.
    pub fn from_le_bytes(dtype: Dtype, len: usize, bytes: &[u8]) -> Result<HostData, DeviceError> {
        let need = len * dtype.size();
        if bytes.len() < need {
            return Err(DeviceError::Invalid(format!(
                "needs {len} {} elements ({need} bytes) but has {} bytes",
                dtype.id(),
                bytes.len()
            )));
        }
        let b = &bytes[..need];
        macro_rules! conv {
            ($t:ty, $n:expr, $ctor:expr) => {
                b.chunks_exact($n)
                    .map(|c| $ctor(<[u8; $n]>::try_from(c).unwrap()))
                    .collect::<Vec<$t>>()
            };
        }
        Ok(match dtype {
            Dtype::F32 => HostData::F32(conv!(f32, 4, f32::from_le_bytes)),
            Dtype::F64 => HostData::F64(conv!(f64, 8, f64::from_le_bytes)),
            Dtype::F16 => HostData::F16(conv!(f16, 2, f16::from_le_bytes)),
            Dtype::Bf16 => HostData::Bf16(conv!(bf16, 2, bf16::from_le_bytes)),
            Dtype::I32 => HostData::I32(conv!(i32, 4, i32::from_le_bytes)),
            Dtype::U32 => HostData::U32(conv!(u32, 4, u32::from_le_bytes)),
            Dtype::I64 => HostData::I64(conv!(i64, 8, i64::from_le_bytes)),
            Dtype::U64 => HostData::U64(conv!(u64, 8, u64::from_le_bytes)),
        })
    }

    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F64(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::Bf16(v) => v.len(),
            HostData::I32(v) => v.len(),
            HostData::U32(v) => v.len(),
            HostData::I64(v) => v.len(),
            HostData::U64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64 (for comparison).
    pub fn get(&self, i: usize) -> f64 {
        match self {
            HostData::F32(v) => v[i] as f64,
            HostData::F64(v) => v[i],
            HostData::F16(v) => v[i].to_f64(),
            HostData::Bf16(v) => v[i].to_f64(),
            HostData::I32(v) => v[i] as f64,
            HostData::U32(v) => v[i] as f64,
            HostData::I64(v) => v[i] as f64,
            HostData::U64(v) => v[i] as f64,
        }
    }
}

/// A device buffer of one of the supported element types.
#[derive(Debug)]
pub enum DevBuf {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    F16(CudaSlice<f16>),
    Bf16(CudaSlice<bf16>),
    I32(CudaSlice<i32>),
    U32(CudaSlice<u32>),
    I64(CudaSlice<i64>),
    U64(CudaSlice<u64>),
}

macro_rules! each_buf {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            DevBuf::F32($s) => $body,
            DevBuf::F64($s) => $body,
            DevBuf::F16($s) => $body,
            DevBuf::Bf16($s) => $body,
            DevBuf::I32($s) => $body,
            DevBuf::U32($s) => $body,
            DevBuf::I64($s) => $body,
            DevBuf::U64($s) => $body,
        }
    };
}

impl DevBuf {
    /// Allocates a device buffer holding `data` (`name` is for messages).
    pub fn upload(
        stream: &Arc<CudaStream>,
        data: &HostData,
        name: &str,
    ) -> Result<DevBuf, DeviceError> {
        let ctx = |e| {
            DeviceError::Driver(driver_err(
                &format!(
                    "cuMemAlloc + cuMemcpyHtoD for buffer `{name}` ({} elements)",
                    data.len()
                ),
                e,
            ))
        };
        Ok(match data {
            HostData::F32(v) => DevBuf::F32(stream.clone_htod(v).map_err(ctx)?),
            HostData::F64(v) => DevBuf::F64(stream.clone_htod(v).map_err(ctx)?),
            HostData::F16(v) => DevBuf::F16(stream.clone_htod(v).map_err(ctx)?),
            HostData::Bf16(v) => DevBuf::Bf16(stream.clone_htod(v).map_err(ctx)?),
            HostData::I32(v) => DevBuf::I32(stream.clone_htod(v).map_err(ctx)?),
            HostData::U32(v) => DevBuf::U32(stream.clone_htod(v).map_err(ctx)?),
            HostData::I64(v) => DevBuf::I64(stream.clone_htod(v).map_err(ctx)?),
            HostData::U64(v) => DevBuf::U64(stream.clone_htod(v).map_err(ctx)?),
        })
    }

    /// A device buffer of `len` elements, filled with [`POISON_BYTE`] (NaN for floats).
    pub fn poisoned(
        stream: &Arc<CudaStream>,
        dtype: Dtype,
        len: usize,
        name: &str,
    ) -> Result<DevBuf, DeviceError> {
        let e = |e| {
            DeviceError::Driver(driver_err(
                &format!(
                    "cuMemAlloc for buffer `{name}` ({len} {} elements)",
                    dtype.id()
                ),
                e,
            ))
        };
        // SAFETY: poisoned below before anyone reads it.
        let mut b = unsafe {
            match dtype {
                Dtype::F32 => DevBuf::F32(stream.alloc(len).map_err(e)?),
                Dtype::F64 => DevBuf::F64(stream.alloc(len).map_err(e)?),
                Dtype::F16 => DevBuf::F16(stream.alloc(len).map_err(e)?),
                Dtype::Bf16 => DevBuf::Bf16(stream.alloc(len).map_err(e)?),
                Dtype::I32 => DevBuf::I32(stream.alloc(len).map_err(e)?),
                Dtype::U32 => DevBuf::U32(stream.alloc(len).map_err(e)?),
                Dtype::I64 => DevBuf::I64(stream.alloc(len).map_err(e)?),
                Dtype::U64 => DevBuf::U64(stream.alloc(len).map_err(e)?),
            }
        };
        b.poison(stream, name)?;
        Ok(b)
    }

    /// Overwrites the buffer with `data` (same type and length).
    pub fn write(
        &mut self,
        stream: &Arc<CudaStream>,
        data: &HostData,
        name: &str,
    ) -> Result<(), DeviceError> {
        let e =
            |e| DeviceError::Driver(driver_err(&format!("cuMemcpyHtoD for buffer `{name}`"), e));
        match (self, data) {
            (DevBuf::F32(d), HostData::F32(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::F64(d), HostData::F64(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::F16(d), HostData::F16(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::Bf16(d), HostData::Bf16(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::I32(d), HostData::I32(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::U32(d), HostData::U32(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::I64(d), HostData::I64(v)) => stream.memcpy_htod(v, d).map_err(e),
            (DevBuf::U64(d), HostData::U64(v)) => stream.memcpy_htod(v, d).map_err(e),
            _ => Err(DeviceError::Invalid(format!(
                "buffer `{name}`: host data of another type"
            ))),
        }
    }

    /// Copies the buffer back (synchronises the stream).
    pub fn download(&self, stream: &Arc<CudaStream>, name: &str) -> Result<HostData, DeviceError> {
        let e =
            |e| DeviceError::Driver(driver_err(&format!("cuMemcpyDtoH for buffer `{name}`"), e));
        Ok(match self {
            DevBuf::F32(d) => HostData::F32(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::F64(d) => HostData::F64(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::F16(d) => HostData::F16(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::Bf16(d) => HostData::Bf16(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::I32(d) => HostData::I32(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::U32(d) => HostData::U32(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::I64(d) => HostData::I64(stream.clone_dtoh(d).map_err(e)?),
            DevBuf::U64(d) => HostData::U64(stream.clone_dtoh(d).map_err(e)?),
        })
    }

    /// Fills every byte with [`POISON_BYTE`]: NaN for every float type, so an element
    /// the kernel never wrote shows up in the comparison.
    pub fn poison(&mut self, stream: &Arc<CudaStream>, name: &str) -> Result<(), DeviceError> {
        stream
            .context()
            .bind_to_thread()
            .map_err(|e| DeviceError::Driver(driver_err("cuCtxSetCurrent", e)))?;
        each_buf!(self, s => {
            let bytes = s.num_bytes();
            let (ptr, _rec) = cudarc::driver::DevicePtrMut::device_ptr_mut(s, stream);
            // SAFETY: ptr and bytes describe the buffer we own.
            unsafe { cudarc::driver::result::memset_d8_async(ptr, POISON_BYTE, bytes, stream.cu_stream()) }
                .map_err(|e| DeviceError::Driver(driver_err(&format!("cuMemsetD8Async (poison buffer `{name}`)"), e)))
        })
    }

    pub fn num_bytes(&self) -> usize {
        each_buf!(self, s => s.num_bytes())
    }

    /// Adds the buffer as the next kernel argument.
    pub fn push<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        each_buf!(self, s => { b.arg(s); })
    }
}

/// A scalar kernel argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    F32(f32),
    F64(f64),
    F16(f16),
    Bf16(bf16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
}

impl Scalar {
    /// `value` converted to `dtype`; integers must be whole and in range.
    pub fn new(dtype: Dtype, value: f64) -> Result<Scalar, DeviceError> {
        let int = |lo: f64, hi: f64| {
            if value.fract() != 0.0 || value < lo || value > hi {
                Err(DeviceError::Invalid(format!(
                    "{value} does not fit in {}",
                    dtype.id()
                )))
            } else {
                Ok(value)
            }
        };
        Ok(match dtype {
            Dtype::F32 => Scalar::F32(value as f32),
            Dtype::F64 => Scalar::F64(value),
            Dtype::F16 => Scalar::F16(f16::from_f64(value)),
            Dtype::Bf16 => Scalar::Bf16(bf16::from_f64(value)),
            Dtype::I32 => Scalar::I32(int(i32::MIN as f64, i32::MAX as f64)? as i32),
            Dtype::U32 => Scalar::U32(int(0.0, u32::MAX as f64)? as u32),
            Dtype::I64 => Scalar::I64(int(i64::MIN as f64, i64::MAX as f64)? as i64),
            Dtype::U64 => Scalar::U64(int(0.0, u64::MAX as f64)? as u64),
        })
    }

    pub fn push<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        match self {
            Scalar::F32(v) => b.arg(v),
            Scalar::F64(v) => b.arg(v),
            Scalar::F16(v) => b.arg(v),
            Scalar::Bf16(v) => b.arg(v),
            Scalar::I32(v) => b.arg(v),
            Scalar::U32(v) => b.arg(v),
            Scalar::I64(v) => b.arg(v),
            Scalar::U64(v) => b.arg(v),
        };
    }
}

/// The outcome of comparing an output with its reference.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareReport {
    pub checked: usize,
    pub mismatches: usize,
    /// NaN where the reference has a number: never written (poison) or broken.
    pub nan: usize,
    pub max_abs_err: f64,
    pub max_rel_err: f64,
    /// First failing element: (index, got, want).
    pub first_bad: Option<(usize, f64, f64)>,
}

impl CompareReport {
    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.checked > 0
    }

    pub fn evidence(&self, name: &str, rtol: f64, atol: f64) -> String {
        let mut s = format!(
            "{name}: {} elements checked, {} mismatches ({} NaN/unwritten), max abs err {:.3e}, max rel err {:.3e} (rtol {rtol:e}, atol {atol:e})",
            self.checked, self.mismatches, self.nan, self.max_abs_err, self.max_rel_err
        );
        if let Some((i, got, want)) = self.first_bad {
            s.push_str(&format!(
                "; first bad element [{i}]: got {got}, want {want}"
            ));
        }
        s
    }
}

/// Elementwise `|got - want| <= atol + rtol * |want|`; a NaN in `got` always
/// fails (outputs are poisoned with NaN, so it marks an unwritten element). Pure.
pub fn compare(
    len: usize,
    got: impl Fn(usize) -> f64,
    want: impl Fn(usize) -> f64,
    rtol: f64,
    atol: f64,
) -> CompareReport {
    let mut r = CompareReport {
        checked: len,
        ..Default::default()
    };
    for i in 0..len {
        let (g, w) = (got(i), want(i));
        let bad = if g.is_nan() {
            r.nan += 1;
            true
        } else if w.is_nan() {
            true
        } else if g == w {
            false
        } else {
            let abs = (g - w).abs();
            let rel = if w != 0.0 {
                abs / w.abs()
            } else {
                f64::INFINITY
            };
            if abs.is_finite() {
                r.max_abs_err = r.max_abs_err.max(abs);
                if rel.is_finite() {
                    r.max_rel_err = r.max_rel_err.max(rel);
                }
            }
            let bound = atol + rtol * w.abs();
            abs.is_nan() || bound.is_nan() || abs > bound
        };
        if bad {
            r.mismatches += 1;
            if r.first_bad.is_none() {
                r.first_bad = Some((i, g, w));
            }
        }
    }
    r
}

/// `||got - want||_2 / ||want||_2` over pairs. Pure.
pub fn rel_l2_error(pairs: &[(f64, f64)]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (g, w) in pairs {
        num += (g - w) * (g - w);
        den += w * w;
    }
    if den == 0.0 {
        if num == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        (num / den).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_data_is_seeded_and_in_range() {
        let a = HostData::random(Dtype::F32, 3 * CHUNK + 17, 7);
        let b = HostData::random(Dtype::F32, 3 * CHUNK + 17, 7);
        let c = HostData::random(Dtype::F32, 3 * CHUNK + 17, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let HostData::F32(v) = &a else { unreachable!() };
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        // Never all zeros: the default init must catch kernels that do nothing.
        assert!(v.iter().filter(|x| **x == 0.0).count() < 10);
        let mean: f64 = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        let HostData::U32(u) = HostData::random(Dtype::U32, 1000, 1) else {
            unreachable!()
        };
        assert!(u.iter().all(|x| *x < 1024));
    }

    #[test]
    fn file_init_reads_little_endian() {
        let bytes: Vec<u8> = [1.0f32, -2.5]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(
            HostData::from_le_bytes(Dtype::F32, 2, &bytes).unwrap(),
            HostData::F32(vec![1.0, -2.5])
        );
        let err = HostData::from_le_bytes(Dtype::F32, 3, &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs 3 f32 elements (12 bytes) but has 8 bytes"),
            "{err}"
        );
    }

    #[test]
    fn scalars_convert_and_check_range() {
        assert_eq!(Scalar::new(Dtype::I32, 42.0), Ok(Scalar::I32(42)));
        assert_eq!(Scalar::new(Dtype::F32, 2.0), Ok(Scalar::F32(2.0)));
        assert!(
            Scalar::new(Dtype::I32, 1.5)
                .unwrap_err()
                .to_string()
                .contains("does not fit in i32")
        );
        assert!(Scalar::new(Dtype::U32, -1.0).is_err());
        assert!(Scalar::new(Dtype::I32, 3e9).is_err());
    }

    #[test]
    fn compare_with_tolerances() {
        let want = [1.0, 2.0, 0.0, 100.0];
        let close = [1.0 + 1e-7, 2.0, 5e-7, 100.0 * (1.0 + 5e-6)];
        let r = compare(4, |i| close[i], |i| want[i], 1e-5, 1e-6);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.checked, 4);
        let far = [1.0, 2.1, 0.0, 100.0];
        let r = compare(4, |i| far[i], |i| want[i], 1e-5, 1e-6);
        assert!(!r.passed());
        assert_eq!(r.mismatches, 1);
        assert_eq!(r.first_bad, Some((1, 2.1, 2.0)));
        assert!(
            r.evidence("y", 1e-5, 1e-6)
                .contains("first bad element [1]: got 2.1, want 2")
        );
    }

    #[test]
    fn compare_catches_unwritten_poison() {
        let got = [1.0, f64::NAN, 3.0];
        let want = [1.0, 2.0, 3.0];
        let r = compare(3, |i| got[i], |i| want[i], 1.0, 1.0);
        assert_eq!((r.mismatches, r.nan), (1, 1));
        assert!(!r.passed());
        // Integers: exact.
        let r = compare(2, |i| [5.0, 6.0][i], |i| [5.0, 7.0][i], 0.0, 0.0);
        assert_eq!(r.mismatches, 1);
        // Nothing checked is not a pass.
        assert!(!compare(0, |_| 0.0, |_| 0.0, 0.0, 0.0).passed());
    }

    #[test]
    fn poison_bytes_are_nan_in_every_float_type() {
        let b = POISON_BYTE;
        assert!(f32::from_ne_bytes([b; 4]).is_nan());
        assert!(f64::from_ne_bytes([b; 8]).is_nan());
        assert!(f16::from_ne_bytes([b; 2]).is_nan());
        assert!(bf16::from_ne_bytes([b; 2]).is_nan());
    }

    #[test]
    fn relative_l2() {
        assert_eq!(rel_l2_error(&[(1.0, 1.0), (2.0, 2.0)]), 0.0);
        let e = rel_l2_error(&[(3.0, 4.0), (0.0, 0.0)]);
        assert!((e - 0.25).abs() < 1e-12);
        assert_eq!(rel_l2_error(&[(1.0, 0.0)]), f64::INFINITY);
    }
}
