// saxpy for suites/gpu.toml: z = a*x + y.
// `saxpy` is the measured kernel (four elements per thread, float4 loads);
// `saxpy_naive` is the reference it is checked against (one element per thread,
// grid-stride, so any launch configuration covers all n).
// Launch: threads = "(n + 3) / 4", arguments (x, y, z, a, n).

extern "C" __global__ void saxpy(const float* __restrict__ x, const float* __restrict__ y,
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

extern "C" __global__ void saxpy_naive(const float* x, const float* y, float* z, float a,
                                       unsigned long long n) {
    // Grid-stride, so it is correct with whatever launch configuration the
    // measured kernel uses.
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += stride) {
        z[i] = fmaf(a, x[i], y[i]);
    }
}
