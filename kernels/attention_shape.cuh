// Attention geometry shared by the CUDA-core kernels (attention.cu) and the
// tensor-core ones (attention_mma.cu): `struct AttnShape` (the Rust side's
// AttnShapeC, same field order) and which keys a query sees.
#pragma once
#include "common.cuh"

struct AttnShape {
    int batch, heads, head_dim, q_len, kv_len, kv_cap;
    int64_t q_stride, kv_stride;
    int causal;
    float scale;
    int window;  // local attention: keys at positions > p - window; 0 = no limit
};

// Keys visible to query i (before the padding mask): visible_begin .. visible_end.
__device__ __forceinline__ int visible_end(const AttnShape& s, int i) {
    return s.causal ? min(s.kv_len - s.q_len + i + 1, s.kv_len) : s.kv_len;
}

__device__ __forceinline__ int visible_begin(const AttnShape& s, int i) {
    return s.window > 0 ? max(s.kv_len - s.q_len + i + 1 - s.window, 0) : 0;
}

// Whether query i sees key j (before the padding mask).
__device__ __forceinline__ bool in_view(const AttnShape& s, int i, int j) { return i < s.q_len && j >= visible_begin(s, i) && j < visible_end(s, i); }

__device__ __forceinline__ float bias_at(const float* bias, const AttnShape& s, int h, int i, int j) {
    return bias == nullptr ? 0.0f : bias[((int64_t)h * s.q_len + i) * s.kv_len + j];
}

__device__ __forceinline__ bool key_kept(const float* key_mask, const AttnShape& s, int b, int j) {
    return key_mask == nullptr || key_mask[(int64_t)b * s.kv_cap + j] != 0.0f;
}

// Query i's score for key j before the softmax (dot·scale + bias), or −∞
// where i does not see j; `kept`: j is a key (below kv_len) and not padding.
// (attention_mma.cu's masked_score is the same test, written out: its
// register allocation was tuned on a GPU.)
__device__ __forceinline__ float visible_score(float dot, bool kept, const float* bias, const AttnShape& s, int h, int i, int j) {
    return kept && in_view(s, i, j) ? dot * s.scale + bias_at(bias, s, h, i, j) : -CUDART_INF_F;
}

