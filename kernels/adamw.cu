// AdamW over the flat parameter buffer, step for step as torch.optim.AdamW
// (decoupled decay first, bias-corrected moments, eps after the square root),
// with the gradient-clipping factor fused in, on f32 parameters or on bf16
// parameters with f32 master weights; and Σx² for global-norm clipping.
// Mirrors src/backend/cpu/adamw.rs.
#include "common.cuh"

// The scalars of one step, computed on the host as the CPU reference does.
struct AdamStep {
    float step_size;      // lr / (1 − β1^t)
    float one_minus_b1;   // 1 − β1
    float b2;             // β2
    float one_minus_b2;   // 1 − β2
    float bc2_sqrt;       // √(1 − β2^t)
    float eps;
    float shrink;         // 1 − lr·weight_decay, for decaying segments
    float grad_scale;     // clipping factor
};

// ---- kernels ------------------------------------------------------------------

// Segments are sorted, disjoint ranges [offset, offset+len) of the buffer;
// `segments` holds (offset, len, decay) triples. Elements outside every
// segment are left alone, as on the CPU.
__device__ __forceinline__ int find_segment(const int64_t* segments, int count, int64_t i) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        const int64_t start = segments[3 * mid];
        if (i < start) hi = mid - 1;
        else if (i >= start + segments[3 * mid + 1]) lo = mid + 1;
        else return mid;
    }
    return -1;
}

// `params` in T; with T = bf16 the f32 `master` weights are updated and
// rounded into `params` (for T = f32, `master` is null and unused).
template <typename T>
__device__ void adamw(T* params, float* master, const float* grads, float* m, float* v, const int64_t* segments, int count, int64_t n,
                      AdamStep a) {
    GRID_STRIDE(i, n) {
        const int seg = find_segment(segments, count, i);
        if (seg < 0) continue;
        const float g = grads[i] * a.grad_scale;
        float p = master ? master[i] : to_f32(params[i]);
        if (segments[3 * seg + 2]) p *= a.shrink;
        const float mi = m[i] + a.one_minus_b1 * (g - m[i]);
        const float vi = a.b2 * v[i] + a.one_minus_b2 * g * g;
        const float denom = sqrtf(vi) / a.bc2_sqrt + a.eps;
        p -= a.step_size * mi / denom;
        if (master) master[i] = p;
        params[i] = from_f32<T>(p);
        m[i] = mi;
        v[i] = vi;
    }
}

// *out += Σ x² (a block sum per block, then one atomic add per block).
__device__ void sum_squares(float* out, const float* x, int64_t n) {
    float s = 0.0f;
    GRID_STRIDE(i, n) s += x[i] * x[i];
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(out, s);
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                   \
    extern "C" __global__ void adamw_##S(T* params, float* master, const float* grads, float* m, float* v,                \
                                         const int64_t* segments, int count, int64_t n, AdamStep a) {                     \
        adamw<T>(params, master, grads, m, v, segments, count, n, a);                                                     \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)

extern "C" __global__ void sum_squares_f32(float* out, const float* x, int64_t n) { sum_squares(out, x, n); }
