// The pieces of the tensor-core attention forward that attention_mma.cu
// (mma.sync) and attention_wgmma.cu (Hopper's wgmma) share: masking, the
// online softmax over a 16-row × N tile of scores held in mma's
// accumulator layout (mma.cuh), and the normalised output rows and lse;
// also the mma kernels' A fragments read from global memory. Scores are in
// log2 units (the scale folded with log2 e, so each probability is one exp2).
#pragma once
#include "attention_shape.cuh"
#include "mma.cuh"

// Score of query i for key j before the softmax, or −∞ where i does not see j.
__device__ __forceinline__ float masked_score(float dot, const float* key_mask, const float* bias, const AttnShape& s, int b, int h, int i, int j) {
    const bool seen = i < s.q_len && j < s.kv_len && j >= visible_begin(s, i) && j < visible_end(s, i) && key_kept(key_mask, s, b, j);
    return seen ? dot * s.scale + bias_at(bias, s, h, i, j) : -CUDART_INF_F;
}

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// What exp2 subtracts for a row whose running max (or lse) is `x`, in log2
// units: x, or 0 for a row that has seen no key (−∞), so that its −∞ scores
// give exp2(−∞) = 0 rather than NaN.
__device__ __forceinline__ float exp_base(float x) { return x == -CUDART_INF_F ? 0.0f : x; }

// Whether queries [q_first, q_last] all see keys [k_first, k_last] with no
// mask or bias to apply: their scores need no per-element checks.
__device__ __forceinline__ bool all_visible(const AttnShape& s, const float* key_mask, const float* bias, int q_first, int q_last, int k_first, int k_last) {
    return key_mask == nullptr && bias == nullptr && q_last < s.q_len && k_last < s.kv_len && k_first >= visible_begin(s, q_last) &&
           k_last < visible_end(s, q_first);
}

__device__ __forceinline__ bool aligned8(const bf16* p, int64_t stride, int d) {
    return ((uintptr_t)p % 16 == 0) && stride % 8 == 0 && d % 8 == 0;
}

// Where a forward block works: its batch and head, its first query q0 (grid
// (query tiles, heads, batch), tiles taken last first: under a causal mask
// the last tiles see the most keys, and starting them first leaves the
// short ones to fill the final wave), its (batch, head)'s K and V, whether
// they allow 16-byte loads, and the keys [begin, end) its `rows` queries may
// see, begin rounded down to a tile of N keys.
struct ForwardBlock {
    int b, h, q0, begin, end;
    const bf16 *k_base, *v_base;
    bool vec;
};
template <int N>
__device__ __forceinline__ ForwardBlock forward_block(const bf16* k, const bf16* v, const AttnShape& s, int rows) {
    const int b = blockIdx.z, h = blockIdx.y, q0 = (gridDim.x - 1 - blockIdx.x) * rows;
    const bf16* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * s.head_dim;
    const bf16* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * s.head_dim;
    return ForwardBlock{b,      h,      q0, visible_begin(s, q0) / N * N, visible_end(s, min(q0 + rows, s.q_len) - 1),
                        k_base, v_base, aligned8(k_base, s.kv_stride, s.head_dim) && aligned8(v_base, s.kv_stride, s.head_dim)};
}

// A-operand fragments of 16 rows (row0 …) × D columns of a strided matrix,
// straight from global memory (loaded once per block).
template <int D>
__device__ void load_a_fragments(uint32_t (*frag)[4], const bf16* base, int64_t stride, int row0, int limit, int d) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    auto at = [&](int r, int c) { return (r < limit && c < d) ? base[(int64_t)r * stride + c] : __float2bfloat16(0.0f); };
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const int c = 16 * kk + 2 * t;
        frag[kk][0] = pack_bf16(at(row0 + g, c), at(row0 + g, c + 1));
        frag[kk][1] = pack_bf16(at(row0 + g + 8, c), at(row0 + g + 8, c + 1));
        frag[kk][2] = pack_bf16(at(row0 + g, c + 8), at(row0 + g, c + 9));
        frag[kk][3] = pack_bf16(at(row0 + g + 8, c + 8), at(row0 + g + 8, c + 9));
    }
}

// How much checking a 16-row × N tile of scores needs before its softmax.
enum TileKind {
    TILE_OPEN,    // every score visible, no mask or bias: scale only
    TILE_CAUSAL,  // as open, except keys after a row's causal end (the diagonal tiles)
    TILE_MASKED,  // anything else: masked_score per element
};

// Rows [r0, r0 + 15] × keys [j0, j0 + N − 1]. The open and causal kinds also
// need a positive scale (their max is taken before scaling).
__device__ __forceinline__ TileKind tile_kind(const AttnShape& s, const float* key_mask, const float* bias, int r0, int j0, int n) {
    if (s.scale <= 0.0f) return TILE_MASKED;
    if (all_visible(s, key_mask, bias, r0, r0 + 15, j0, j0 + n - 1)) return TILE_OPEN;
    const bool causal_only = s.causal && key_mask == nullptr && bias == nullptr && r0 + 15 < s.q_len && j0 + n - 1 < s.kv_len &&
                             j0 >= visible_begin(s, r0 + 15);
    return causal_only ? TILE_CAUSAL : TILE_MASKED;
}

// One 16-row m-tile's step of the online softmax: its scores sc (dot
// products of rows row0 … for keys j0 …) become probabilities exp2(score −
// new max) in place, and the running max m and sum l of rows g and g + 8
// (log2 units) absorb the tile; `correction` gets the factor that takes
// the output rows to the new max (the caller applies it: online_softmax_step,
// or later, once products still adding into them are done). Open and causal
// tiles keep raw dot products until the exponent, where scaling and the
// subtraction are one fma (the max commutes with a positive scale).
template <int N>
__device__ __forceinline__ void online_softmax_tile(float (&sc)[N / 8][4], float (&m)[2], float (&l)[2], float (&correction)[2], TileKind kind,
                                                    float scale_log2, const float* key_mask, const float* bias, const AttnShape& s, int b, int h,
                                                    int row0, int j0) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    if (kind == TILE_CAUSAL) {
        const int last_key = s.kv_len - s.q_len + row0 + g - j0 - 2 * t;  // row g's last visible key, relative to this lane's column 0
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (8 * n + e % 2 > last_key + 8 * (e / 2)) sc[n][e] = -CUDART_INF_F;
    } else if (kind == TILE_MASKED) {
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[n][e] = LOG2E * masked_score(sc[n][e], key_mask, bias, s, b, h, row0 + g + 8 * (e / 2), j0 + 8 * n + 2 * t + e % 2);
    }
    const float mul = kind == TILE_MASKED ? 1.0f : scale_log2;  // from sc's units to log2 units
    float tile_max[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
    for (int n = 0; n < N / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) tile_max[e / 2] = fmaxf(tile_max[e / 2], sc[n][e]);
    float base[2], tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int r = 0; r < 2; r++) {  // the four lanes of a quad share rows g and g + 8
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
        const float m_new = fmaxf(m[r], tile_max[r] * mul);
        base[r] = exp_base(m_new);
        correction[r] = fast_exp2(m[r] - base[r]);
        m[r] = m_new;
    }
#pragma unroll
    for (int n = 0; n < N / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            sc[n][e] = fast_exp2(fmaf(sc[n][e], mul, -base[e / 2]));
            tile_sum[e / 2] += sc[n][e];
        }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        tile_sum[r] += __shfl_xor_sync(0xffffffffu, tile_sum[r], 1);
        tile_sum[r] += __shfl_xor_sync(0xffffffffu, tile_sum[r], 2);
        l[r] = l[r] * correction[r] + tile_sum[r];
    }
}

// o (16 × D accumulator tiles) *= the correction of its rows g and g + 8.
template <int D>
__device__ __forceinline__ void rescale_rows(float (&o)[D / 8][4], const float (&correction)[2]) {
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[dn][e] *= correction[e / 2];
}

// online_softmax_tile, then o rescaled to the new max.
template <int N, int D>
__device__ __forceinline__ void online_softmax_step(float (&sc)[N / 8][4], float (&m)[2], float (&l)[2], float (&o)[D / 8][4], TileKind kind,
                                                    float scale_log2, const float* key_mask, const float* bias, const AttnShape& s, int b, int h,
                                                    int row0, int j0) {
    float correction[2];
    online_softmax_tile<N>(sc, m, l, correction, kind, scale_log2, key_mask, bias, s, b, h, row0, j0);
    rescale_rows<D>(o, correction);
}

// One warp's 16 query rows (row0 …) of the forward's result: o / l into out
// [batch, q_len, heads·d] (columns < d) and lse = m·ln 2 + ln l into lse
// [batch, heads, q_len]; a row that saw no key gets zeros and lse = −∞.
template <int D>
__device__ __forceinline__ void store_forward_rows(bf16* out, float* lse, const float (&o)[D / 8][4], const float (&m)[2], const float (&l)[2], const AttnShape& s,
                                                   int b, int h, int row0) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4, d = s.head_dim;
    const int64_t c_all = (int64_t)s.heads * d;
    const float inv_l[2] = {l[0] > 0.0f ? 1.0f / l[0] : 0.0f, l[1] > 0.0f ? 1.0f / l[1] : 0.0f};
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = row0 + g + 8 * (e / 2), c = 8 * dn + 2 * t + e % 2;
            if (i < s.q_len && c < d) out[((int64_t)b * s.q_len + i) * c_all + (int64_t)h * d + c] = __float2bfloat16(o[dn][e] * inv_l[e / 2]);
        }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = row0 + g + 8 * r;
        if (t == 0 && i < s.q_len) lse[((int64_t)b * s.heads + h) * s.q_len + i] = l[r] > 0.0f ? m[r] * LN2 + logf(l[r]) : -CUDART_INF_F;
    }
}
