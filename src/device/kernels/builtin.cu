// Built-in kernels of neon-perf (`builtin = "copy" | "saxpy" | "reduction" | "transpose"`).
// Compiled with NVRTC at run time; tests/kernels_compile.rs compiles them in CI.

extern "C" __global__ void np_copy_f32(const float* __restrict__ x, float* __restrict__ y,
                                       unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned long long n4 = n / 4;
    if (i < n4) {
        reinterpret_cast<float4*>(y)[i] = reinterpret_cast<const float4*>(x)[i];
    }
    if (i < n % 4) {
        unsigned long long j = n4 * 4 + i;
        y[j] = x[j];
    }
}

// z = a*x + y, four elements per thread; fmaf so the host check can be exact.
extern "C" __global__ void np_saxpy_f32(const float* __restrict__ x, const float* __restrict__ y,
                                        float* __restrict__ z, float a, unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned long long n4 = n / 4;
    if (i < n4) {
        float4 xv = reinterpret_cast<const float4*>(x)[i];
        float4 yv = reinterpret_cast<const float4*>(y)[i];
        float4 zv;
        zv.x = fmaf(a, xv.x, yv.x);
        zv.y = fmaf(a, xv.y, yv.y);
        zv.z = fmaf(a, xv.z, yv.z);
        zv.w = fmaf(a, xv.w, yv.w);
        reinterpret_cast<float4*>(z)[i] = zv;
    }
    if (i < n % 4) {
        unsigned long long j = n4 * 4 + i;
        z[j] = fmaf(a, x[j], y[j]);
    }
}

__device__ __forceinline__ float np_block_sum(float v) {
    __shared__ float warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
    __syncthreads();
    v = 0.0f;
    if (threadIdx.x < 32) {
        if (threadIdx.x < (blockDim.x + 31) / 32) v = warp_sums[threadIdx.x];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    }
    return v;
}

// Pass 1: each block sums a grid-stride slice of x into partial[blockIdx.x].
extern "C" __global__ void np_reduce_partial(const float* __restrict__ x, float* __restrict__ partial,
                                             unsigned long long n) {
    float acc = 0.0f;
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += stride) {
        acc += x[i];
    }
    acc = np_block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Pass 2: one block sums the m partial sums into out[0].
extern "C" __global__ void np_reduce_final(const float* __restrict__ partial, float* __restrict__ out,
                                           unsigned int m) {
    float acc = 0.0f;
    for (unsigned int i = threadIdx.x; i < m; i += blockDim.x) acc += partial[i];
    acc = np_block_sum(acc);
    if (threadIdx.x == 0) out[0] = acc;
}

// out (cols x rows) = transpose of in (rows x cols), row-major; 32x32 tiles, block (32, 8).
extern "C" __global__ void np_transpose_f32(const float* __restrict__ in, float* __restrict__ out,
                                            int rows, int cols) {
    __shared__ float tile[32][33];
    int x = blockIdx.x * 32 + threadIdx.x;
    int y = blockIdx.y * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8) {
        if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(size_t)(y + j) * cols + x];
    }
    __syncthreads();
    x = blockIdx.y * 32 + threadIdx.x;
    y = blockIdx.x * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8) {
        if (x < rows && y + j < cols) out[(size_t)(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
    }
}
