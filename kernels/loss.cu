// Fused softmax + cross-entropy: one block per row computes the loss
// lse − logit[target] and, when asked, overwrites the row with its gradient
// g·(softmax − onehot). Negative targets are ignored (zero loss and gradient).
// The row is read twice (the second read mostly from L2) and written once,
// in 16-byte packs.
// Mirrors src/backend/cpu/loss.rs.
#include "common.cuh"

// ---- kernels ------------------------------------------------------------------

// A row of n elements visited by the block in 16-byte packs: the elements
// before the row's first 16-byte boundary and after its last one (a row of an
// odd vocabulary, 50,257 for GPT-2, starts anywhere) one at a time, the rest
// as packs. `f(j, x_j)` sees every element once; row_update stores what it returns.
template <typename T>
__device__ __forceinline__ int aligned_head(const T* x, int n) {
    const int misaligned = (int)((uintptr_t)x % 16 / sizeof(T));
    return min(n, misaligned == 0 ? 0 : VEC<T> - misaligned);
}

template <typename T, typename F>
__device__ __forceinline__ void row_scan(const T* x, int n, F&& f) {
    constexpr int V = VEC<T>;
    const int head = aligned_head(x, n), body_end = head + (n - head) / V * V;
    for (int j = threadIdx.x; j < head; j += blockDim.x) f(j, to_f32(x[j]));
    for (int j = head + threadIdx.x * V; j < body_end; j += blockDim.x * V) {
        const Pack<T, V> p = load_pack<T, V>(x + j);
        for (int k = 0; k < V; k++) f(j + k, p[k]);
    }
    for (int j = body_end + threadIdx.x; j < n; j += blockDim.x) f(j, to_f32(x[j]));
}

template <typename T, typename F>
__device__ __forceinline__ void row_update(T* x, int n, F&& f) {
    constexpr int V = VEC<T>;
    const int head = aligned_head(x, n), body_end = head + (n - head) / V * V;
    for (int j = threadIdx.x; j < head; j += blockDim.x) x[j] = from_f32<T>(f(j, to_f32(x[j])));
    for (int j = head + threadIdx.x * V; j < body_end; j += blockDim.x * V) {
        Pack<T, V> p = load_pack<T, V>(x + j);
        for (int k = 0; k < V; k++) p.v[k] = from_f32<T>(f(j + k, p[k]));
        store_pack(x + j, p);
    }
    for (int j = body_end + threadIdx.x; j < n; j += blockDim.x) x[j] = from_f32<T>(f(j, to_f32(x[j])));
}

// exp where bf16 rounding hides the fast instruction's error; full precision in f32.
template <typename T> __device__ __forceinline__ float loss_exp(float x) { return expf(x); }
template <> __device__ __forceinline__ float loss_exp<bf16>(float x) { return __expf(x); }

// Online (max, sum of exp) pair: merge two partial softmax denominators.
template <typename T>
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == -CUDART_INF_F) return;  // both empty
    s = s * loss_exp<T>(m - mm) + s2 * loss_exp<T>(m2 - mm);
    m = mm;
}

template <typename T>
__device__ void softmax_cross_entropy(float* losses, T* logits, const int* targets, int vocab, float grad_scale, int want_grad) {
    __shared__ float wm[32], ws[32];
    __shared__ float row_lse;
    const int row = blockIdx.x;
    T* x = logits + (int64_t)row * vocab;
    const int target = targets[row];
    if (target < 0) {
        if (threadIdx.x == 0) losses[row] = 0.0f;
        if (want_grad) row_update(x, vocab, [](int, float) { return 0.0f; });
        return;
    }
    // Per-thread online max and sum (one exp per element: the sum rescales
    // only when the max grows), then warp and block merges.
    float m = -CUDART_INF_F, s = 0.0f;
    row_scan(x, vocab, [&](int, float v) {
        if (v > m) {
            s = s * loss_exp<T>(m - v) + 1.0f;
            m = v;
        } else if (v != -CUDART_INF_F) {  // (−∞ − −∞ would be NaN)
            s += loss_exp<T>(v - m);
        }
    });
    for (int o = 16; o > 0; o >>= 1) merge<T>(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        wm[warp] = m;
        ws[warp] = s;
    }
    __syncthreads();
    if (warp == 0) {
        const bool live = lane < (int)(blockDim.x / 32);
        m = live ? wm[lane] : -CUDART_INF_F;
        s = live ? ws[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) merge<T>(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
        if (lane == 0) {
            row_lse = m + logf(s);
            losses[row] = row_lse - to_f32(x[target]);  // read before any thread overwrites the row
        }
    }
    __syncthreads();
    if (!want_grad) return;
    const float lse = row_lse;
    row_update(x, vocab, [&](int j, float v) {
        const float p = loss_exp<T>(v - lse) * grad_scale;
        return j == target ? p - grad_scale : p;
    });
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                     \
    extern "C" __global__ void softmax_cross_entropy_##S(float* losses, T* logits, const int* targets, int vocab,          \
                                                         float grad_scale, int want_grad) {                                \
        softmax_cross_entropy<T>(losses, logits, targets, vocab, grad_scale, want_grad);                                   \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)
