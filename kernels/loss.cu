// Fused softmax + cross-entropy: one block per row computes the loss
// lse − logit[target] and, when asked, overwrites the row with its gradient
// g·(softmax − onehot). Negative targets are ignored (zero loss and gradient).
// Mirrors src/backend/cpu/loss.rs.
#include "common.cuh"

// ---- kernels ------------------------------------------------------------------

// Online (max, sum) pair: merge two partial softmax denominators.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == -CUDART_INF_F) return;  // both empty
    s = s * expf(m - mm) + s2 * expf(m2 - mm);
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
        if (want_grad)
            for (int j = threadIdx.x; j < vocab; j += blockDim.x) x[j] = from_f32<T>(0.0f);
        return;
    }
    // Per-thread online max and sum of exp, then warp and block merges.
    float m = -CUDART_INF_F, s = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) merge(m, s, to_f32(x[j]), 1.0f);
    for (int o = 16; o > 0; o >>= 1) merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
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
        for (int o = 16; o > 0; o >>= 1) merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
        if (lane == 0) {
            row_lse = m + logf(s);
            losses[row] = row_lse - to_f32(x[target]);  // read before any thread overwrites the row
        }
    }
    __syncthreads();
    if (!want_grad) return;
    const float lse = row_lse;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        const float p = expf(to_f32(x[j]) - lse) * grad_scale;
        x[j] = from_f32<T>(j == target ? p - grad_scale : p);
    }
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                     \
    extern "C" __global__ void softmax_cross_entropy_##S(float* losses, T* logits, const int* targets, int vocab,          \
                                                         float grad_scale, int want_grad) {                                \
        softmax_cross_entropy<T>(losses, logits, targets, vocab, grad_scale, want_grad);                                   \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)
