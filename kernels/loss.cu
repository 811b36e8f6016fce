// Fused softmax + cross-entropy: one block per row computes the loss
// lse − logit[target] and, when asked, overwrites the row with its gradient
// g·(softmax − onehot). Negative targets are ignored (zero loss and gradient).
// The row is read twice (the second read mostly from L2) and written once,
// in 16-byte packs, each thread loading U packs before it uses any (so
// that enough bytes are in flight to keep memory busy). Rows are `stride`
// elements apart (GPT-2's logits rows are padded to 50,304 so that each row
// starts 16-byte aligned); the elements between rows are not touched.
// Mirrors src/backend/cpu/loss.rs.
#include "common.cuh"

// ---- kernels ------------------------------------------------------------------

// Exponentials in the kernel's units: bf16 works on logits scaled by log2 e
// (one ex2 per element, an error bf16 rounding hides); f32 on natural units
// with full-precision expf, as the CPU reference does.
template <typename T> struct LossUnits {
    static constexpr float SCALE = 1.0f;
    static __device__ __forceinline__ float exp(float x) { return expf(x); }
    static __device__ __forceinline__ float log(float x) { return logf(x); }
};
template <> struct LossUnits<bf16> {
    static constexpr float SCALE = 1.4426950408889634f;  // log2 e
    static __device__ __forceinline__ float exp(float x) { return exp2f(x); }
    static __device__ __forceinline__ float log(float x) { return log2f(x); }
};

// A row of n elements visited by the block in 16-byte packs: the elements
// before the row's first 16-byte boundary and after its last one (dense rows
// of an odd vocabulary, 50,257 for GPT-2, start anywhere) one at a time, the rest
// as packs, U of them loaded at once. `f(j, x_j)` sees each element of
// the row once.
template <typename T>
__device__ __forceinline__ int aligned_head(const T* x, int n) {
    const int misaligned = (int)((uintptr_t)x % 16 / sizeof(T));
    return min(n, misaligned == 0 ? 0 : VEC<T> - misaligned);
}

// Calls `f(j, values, count)` with each pack (count = VEC<T>) and each
// element outside them (count = 1); `values` are the elements as f32.
template <typename T, int U, typename F>
__device__ __forceinline__ void row_scan(const T* x, int n, F&& f) {
    constexpr int V = VEC<T>;
    const int head = aligned_head(x, n), body_end = head + (n - head) / V * V, stride = blockDim.x * V;
    for (int j = threadIdx.x; j < head; j += blockDim.x) {
        const float v = to_f32(x[j]);
        f(j, &v, 1);
    }
    for (int j0 = head + threadIdx.x * V; j0 < body_end; j0 += stride * U) {
        Pack<T, V> p[U];
#pragma unroll
        for (int u = 0; u < U; u++)
            if (j0 + u * stride < body_end) p[u] = load_pack<T, V>(x + j0 + u * stride);
#pragma unroll
        for (int u = 0; u < U; u++)
            if (j0 + u * stride < body_end) {
                float v[V];
                for (int k = 0; k < V; k++) v[k] = p[u][k];
                f(j0 + u * stride, v, V);
            }
    }
    for (int j = body_end + threadIdx.x; j < n; j += blockDim.x) {
        const float v = to_f32(x[j]);
        f(j, &v, 1);
    }
}

// Overwrites every element x_j of the row with f(j, x_j), in the same order
// of access as row_scan. (The two walks stay separate loops: one walker
// shared through lambdas made nvcc spill in the 2- and 8-pack kernels, which
// are the ones timed on the GPU.)
template <typename T, int U, typename F>
__device__ __forceinline__ void row_update(T* x, int n, F&& f) {
    constexpr int V = VEC<T>;
    const int head = aligned_head(x, n), body_end = head + (n - head) / V * V, stride = blockDim.x * V;
    for (int j = threadIdx.x; j < head; j += blockDim.x) x[j] = from_f32<T>(f(j, to_f32(x[j])));
    for (int j0 = head + threadIdx.x * V; j0 < body_end; j0 += stride * U) {
        Pack<T, V> p[U];
#pragma unroll
        for (int u = 0; u < U; u++)
            if (j0 + u * stride < body_end) p[u] = load_pack<T, V>(x + j0 + u * stride);
#pragma unroll
        for (int u = 0; u < U; u++)
            if (j0 + u * stride < body_end) {
                for (int k = 0; k < V; k++) p[u].v[k] = from_f32<T>(f(j0 + u * stride + k, p[u][k]));
                store_pack(x + j0 + u * stride, p[u]);
            }
    }
    for (int j = body_end + threadIdx.x; j < n; j += blockDim.x) x[j] = from_f32<T>(f(j, to_f32(x[j])));
}

// Online softmax denominator in the kernel's units: the running max m and
// s = Σ exp(u − m) over the values u seen so far.
template <typename T>
struct OnlineSum {
    float m = -CUDART_INF_F, s = 0.0f;

    // Adds `count` values (already scaled): rescales once per call, not per element.
    __device__ __forceinline__ void add(const float* u, int count) {
        float top = u[0];
        for (int k = 1; k < count; k++) top = fmaxf(top, u[k]);
        if (top > m) {
            s *= LossUnits<T>::exp(m - top);  // m = −∞: s is still 0
            m = top;
        }
        if (m == -CUDART_INF_F) return;  // only −∞ so far (−∞ − −∞ would be NaN)
        for (int k = 0; k < count; k++) s += LossUnits<T>::exp(u[k] - m);
    }

    // Merges another partial sum into this one.
    __device__ __forceinline__ void merge(float m2, float s2) {
        const float mm = fmaxf(m, m2);
        if (mm == -CUDART_INF_F) return;  // both empty
        s = s * LossUnits<T>::exp(m - mm) + s2 * LossUnits<T>::exp(m2 - mm);
        m = mm;
    }

    __device__ __forceinline__ void warp_merge() {
        for (int o = 16; o > 0; o >>= 1) merge(__shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    }
};

template <typename T, int U>
__device__ void softmax_cross_entropy(float* losses, T* logits, const int* targets, int vocab, int64_t stride, float grad_scale, int want_grad) {
    using Units = LossUnits<T>;
    __shared__ float wm[32], ws[32];
    __shared__ float row_lse;  // in the kernel's units
    const int row = blockIdx.x;
    T* x = logits + row * stride;
    const int target = targets[row];
    if (target < 0) {
        if (threadIdx.x == 0) losses[row] = 0.0f;
        if (want_grad) row_update<T, U>(x, vocab, [](int, float) { return 0.0f; });
        return;
    }
    // Per-thread online sums, then warp and block merges.
    OnlineSum<T> sum;
    row_scan<T, U>(x, vocab, [&](int, const float* v, int count) {
        float u[VEC<T>];
        for (int k = 0; k < count; k++) u[k] = v[k] * Units::SCALE;
        sum.add(u, count);
    });
    sum.warp_merge();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        wm[warp] = sum.m;
        ws[warp] = sum.s;
    }
    __syncthreads();
    if (warp == 0) {
        const bool live = lane < (int)(blockDim.x / 32);
        OnlineSum<T> block;
        block.m = live ? wm[lane] : -CUDART_INF_F;
        block.s = live ? ws[lane] : 0.0f;
        block.warp_merge();
        if (lane == 0) {
            row_lse = block.m + Units::log(block.s);
            losses[row] = row_lse / Units::SCALE - to_f32(x[target]);  // read before any thread overwrites the row
        }
    }
    __syncthreads();
    if (!want_grad) return;
    const float lse = row_lse;
    row_update<T, U>(x, vocab, [&](int j, float v) {
        const float p = Units::exp(v * Units::SCALE - lse) * grad_scale;
        return j == target ? p - grad_scale : p;
    });
}

// ---- launchers ------------------------------------------------------------------

// Each dtype with 4 packs in flight a thread (`_<dtype>`), 8 (`_u8_`: a
// GPT-2 row in one round at 1024 threads), or 2 at two 1024-thread blocks
// an SM (`_u2_`: one block's reductions overlap the other's loads).
#define FOR_DTYPE(T, S)                                                                                                                         \
    extern "C" __global__ void softmax_cross_entropy_##S(float* losses, T* logits, const int* targets, int vocab, int64_t stride,               \
                                                         float grad_scale, int want_grad) {                                                     \
        softmax_cross_entropy<T, 4>(losses, logits, targets, vocab, stride, grad_scale, want_grad);                                             \
    }                                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(1024) softmax_cross_entropy_u8_##S(float* losses, T* logits, const int* targets, int vocab,    \
                                                                                    int64_t stride, float grad_scale, int want_grad) {          \
        softmax_cross_entropy<T, 8>(losses, logits, targets, vocab, stride, grad_scale, want_grad);                                             \
    }                                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(1024, 2) softmax_cross_entropy_u2_##S(float* losses, T* logits, const int* targets, int vocab, \
                                                                                       int64_t stride, float grad_scale, int want_grad) {       \
        softmax_cross_entropy<T, 2>(losses, logits, targets, vocab, stride, grad_scale, want_grad);                                             \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)
