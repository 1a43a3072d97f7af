//! Launch configurations from evaluated `threads` / `block` / `grid`. Pure.

use super::DeviceError;

/// Grid and block sizes, checked against CUDA's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchDims {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub shared_mem_bytes: u32,
}

impl LaunchDims {
    pub fn to_cudarc(self) -> cudarc::driver::LaunchConfig {
        cudarc::driver::LaunchConfig {
            grid_dim: self.grid,
            block_dim: self.block,
            shared_mem_bytes: self.shared_mem_bytes,
        }
    }
}

fn pad3(v: &[i64], what: &str) -> Result<[i64; 3], String> {
    if v.is_empty() || v.len() > 3 {
        return Err(format!("`{what}` needs 1 to 3 dimensions, got {}", v.len()));
    }
    let mut out = [1i64; 3];
    out[..v.len()].copy_from_slice(v);
    for (i, x) in out.iter().enumerate() {
        if *x < 1 {
            return Err(format!(
                "`{what}` dimension {} is {x}: it must be at least 1",
                ["x", "y", "z"][i]
            ));
        }
    }
    Ok(out)
}

/// `grid` wins when given; otherwise grid = ceil(threads / block) per dimension.
/// `block` defaults to 256 threads in x.
pub fn derive(
    threads: Option<&[i64]>,
    block: Option<&[i64]>,
    grid: Option<&[i64]>,
    shared_mem_bytes: i64,
) -> Result<LaunchDims, DeviceError> {
    dims(threads, block, grid, shared_mem_bytes).map_err(DeviceError::Invalid)
}

fn dims(
    threads: Option<&[i64]>,
    block: Option<&[i64]>,
    grid: Option<&[i64]>,
    shared_mem_bytes: i64,
) -> Result<LaunchDims, String> {
    let block = pad3(block.unwrap_or(&[256]), "block")?;
    let per_block: i64 = block.iter().product();
    if per_block > 1024 {
        return Err(format!(
            "`block` = {block:?} is {per_block} threads per block; CUDA allows at most 1024"
        ));
    }
    if block[2] > 64 {
        return Err(format!(
            "`block` z = {} exceeds CUDA's limit of 64",
            block[2]
        ));
    }
    let grid = match (grid, threads) {
        (Some(g), _) => pad3(g, "grid")?,
        (None, Some(t)) => {
            let t = pad3(t, "threads")?;
            [0, 1, 2].map(|i| (t[i] + block[i] - 1) / block[i])
        }
        (None, None) => return Err("give `threads` or `grid`".into()),
    };
    if grid[0] > i32::MAX as i64 {
        return Err(format!(
            "grid x = {} blocks exceeds CUDA's limit of 2^31-1",
            grid[0]
        ));
    }
    if grid[1] > 65535 || grid[2] > 65535 {
        return Err(format!(
            "grid y/z = {}/{} blocks exceeds CUDA's limit of 65535",
            grid[1], grid[2]
        ));
    }
    if !(0..=u32::MAX as i64).contains(&shared_mem_bytes) {
        return Err(format!(
            "`shared_mem` = {shared_mem_bytes} bytes is out of range"
        ));
    }
    Ok(LaunchDims {
        grid: (grid[0] as u32, grid[1] as u32, grid[2] as u32),
        block: (block[0] as u32, block[1] as u32, block[2] as u32),
        shared_mem_bytes: shared_mem_bytes as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_from_threads_rounds_up() {
        let d = derive(Some(&[1_000_000]), None, None, 0).unwrap();
        assert_eq!(d.block, (256, 1, 1));
        assert_eq!(d.grid, (3907, 1, 1));
        let d = derive(Some(&[1000, 513]), Some(&[32, 8]), None, 0).unwrap();
        assert_eq!(d.grid, (32, 65, 1));
        assert_eq!(d.block, (32, 8, 1));
    }

    #[test]
    fn explicit_grid_wins() {
        let d = derive(Some(&[1 << 30]), Some(&[128]), Some(&[132 * 4]), 4096).unwrap();
        assert_eq!(d.grid, (528, 1, 1));
        assert_eq!(d.shared_mem_bytes, 4096);
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn limits_are_enforced_with_clear_messages() {
        let cases: [(Option<&[i64]>, Option<&[i64]>, Option<&[i64]>, &str); 6] = [
            (Some(&[10]), Some(&[2048]), None, "at most 1024"),
            (Some(&[10]), Some(&[32, 32, 2]), None, "at most 1024"),
            (Some(&[0]), None, None, "must be at least 1"),
            (None, None, None, "give `threads` or `grid`"),
            (None, None, Some(&[1, 70000]), "65535"),
            (Some(&[1 << 40]), Some(&[1]), None, "2^31-1"),
        ];
        for (t, b, g, want) in cases {
            let err = derive(t, b, g, 0).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
