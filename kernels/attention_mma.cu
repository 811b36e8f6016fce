// Multi-head attention on bf16 tensor cores (mma.sync, FlashAttention-2's
// scheme): the same contract as attention.cu (masks, local windows, additive
// bias and its gradient, any scale, strided fused QKV/KV buffers, q_len ≠
// kv_len) for bf16 inputs and head_dim <= D (64 or 128); attention.cu remains
// the f32 path and the decoding path (few queries).
//
// A block is 4 warps; each warp owns 16 rows of its side (queries in the
// forward and the dQ pass, keys in the dK/dV pass) and streams tiles of the
// other side through shared memory: row-major tiles feed products whose
// reduction runs over head dims, transposed copies feed those whose reduction
// runs over rows (P·V, dS·K, Pᵀ·dO, dSᵀ·Q). Scores stay in registers; P is
// rounded to bf16 for its product, as FlashAttention does.
//
// Backward, with P = softmax(S), Di = Σ dO_i·O_i:
//   dS_ij = P_ij·(dO_i·V_j − Di),  d bias_ij = Σ_b dS_ij,
//   dQ = scale·dS·K (pass 1, per query tile),  dK = scale·dSᵀ·Q, dV = Pᵀ·dO (pass 2, per key tile).
// S and dP are computed in both passes (no atomics on dQ, deterministic).
#include "attention_shape.cuh"
#include "mma.cuh"

#define MMA_WARPS 4
#define ROWS (16 * MMA_WARPS)  // rows a block owns

// Score of query i for key j before the softmax, or −∞ where i does not see j.
__device__ __forceinline__ float masked_score(float dot, const float* key_mask, const float* bias, const AttnShape& s, int b, int h, int i, int j) {
    const bool seen = i < s.q_len && j < s.kv_len && j >= visible_begin(s, i) && j < visible_end(s, i) && key_kept(key_mask, s, b, j);
    return seen ? dot * s.scale + bias_at(bias, s, h, i, j) : -CUDART_INF_F;
}

// exp(score − lse): the softmax probability, 0 where the key is hidden or the row saw no key.
__device__ __forceinline__ float probability(float score, float lse) {
    return (score == -CUDART_INF_F || lse == -CUDART_INF_F) ? 0.0f : __expf(score - lse);
}

// Rows [first, first + N) of a strided [rows, d] bf16 matrix into shared
// memory, zero past `limit` and past column d: row-major into `tile` (pitch
// D + 8) and/or transposed into `tile_t` (pitch N + 8); either may be null.
// 16-byte loads when `vec` (d, the stride and the base all multiples of 8 values).
template <int N, int D>
__device__ void load_rows(bf16* tile, bf16* tile_t, const bf16* base, int64_t stride, int first, int limit, int d, bool vec) {
    constexpr int CHUNKS = D / 8;
    for (int e = threadIdx.x; e < N * CHUNKS; e += blockDim.x) {
        // Neighbouring threads take neighbouring 16-byte chunks of a row (coalesced
        // loads), or, when transposing, the same chunk of neighbouring rows (so
        // their 2-byte stores into tile_t fall in distinct banks).
        const int r = tile_t != nullptr ? e % N : e / CHUNKS, c = (tile_t != nullptr ? e / N : e % CHUNKS) * 8, row = first + r;
        alignas(16) bf16 v[8];
        const bf16* src = base + (int64_t)row * stride + c;
        if (vec && row < limit && c < d) {
            copy16(v, src);
        } else {
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = (row < limit && c + u < d) ? src[u] : __float2bfloat16(0.0f);
        }
        if (tile != nullptr) copy16(tile + r * (D + 8) + c, v);
        if (tile_t != nullptr) {
#pragma unroll
            for (int u = 0; u < 8; u++) tile_t[(c + u) * (N + 8) + r] = v[u];
        }
    }
}

__device__ __forceinline__ bool aligned8(const bf16* p, int64_t stride, int d) {
    return ((uintptr_t)p % 16 == 0) && stride % 8 == 0 && d % 8 == 0;
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

// acc[n] (16 × 8 tiles, n < N/8) += A (16 × D, fragments) · tileᵀ, tile = N rows × D (pitch D + 8).
template <int N, int D>
__device__ __forceinline__ void mma_rows(float (*acc)[4], const uint32_t (*a)[4], const bf16* tile) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
        for (int n = 0; n < N / 8; n++) {
            const bf16* row = tile + (8 * n + g) * (D + 8) + 16 * kk + 2 * t;
            const uint32_t b[2] = {load_pair(row), load_pair(row + 8)};
            mma_16816(acc[n], a[kk], b);
        }
    }
}

// out[dn] (16 × D) += P (16 × N, accumulator tiles p[N/8]) · M, with M (N × D)
// given transposed: tile_t = D rows × N (pitch N + 8).
template <int N, int D>
__device__ __forceinline__ void mma_cols(float (*out)[4], const float (*p)[4], const bf16* tile_t) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int kk = 0; kk < N / 16; kk++) {
        const uint32_t a[4] = {pack_f32(p[2 * kk][0], p[2 * kk][1]), pack_f32(p[2 * kk][2], p[2 * kk][3]), pack_f32(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                               pack_f32(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            const bf16* row = tile_t + (8 * dn + g) * (N + 8) + 16 * kk + 2 * t;
            const uint32_t b[2] = {load_pair(row), load_pair(row + 8)};
            mma_16816(out[dn], a, b);
        }
    }
}

// Adds a 16 × D accumulator to rows row0 … of a strided bf16 matrix (columns < d).
template <int D>
__device__ void add_rows(bf16* base, int64_t stride, const float (*acc)[4], int row0, int limit, int d) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int r = row0 + g + 8 * (e / 2), c = 8 * dn + 2 * t + e % 2;
            if (r < limit && c < d) {
                bf16* x = base + (int64_t)r * stride + c;
                *x = __float2bfloat16(to_f32(*x) + acc[dn][e]);
            }
        }
    }
}

// Σ_c dO_ic·O_ic for rows i0 … i0+n of (batch b, head h), warp w taking rows w, w+MMA_WARPS, …
__device__ __forceinline__ float row_dot(const bf16* dout, const bf16* out, const AttnShape& s, int b, int h, int i) {
    const int lane = threadIdx.x % 32;
    const int64_t at = ((int64_t)b * s.q_len + i) * ((int64_t)s.heads * s.head_dim) + (int64_t)h * s.head_dim;
    float di = 0.0f;
    if (i < s.q_len)
        for (int c = lane; c < s.head_dim; c += 32) di += to_f32(dout[at + c]) * to_f32(out[at + c]);
    return warp_sum(di);
}

// ---- kernels ------------------------------------------------------------------

// grid (ceil(q_len / ROWS), heads, batch), MMA_WARPS warps; out [batch, q_len, heads·d], lse [batch, heads, q_len].
template <int D>
__device__ void attention_mma_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const float* key_mask, const float* bias,
                                      AttnShape s) {
    constexpr int N = 64;  // keys per tile
    alignas(16) __shared__ bf16 ks[N * (D + 8)];
    alignas(16) __shared__ bf16 vt[D * (N + 8)];
    const int warp = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim;
    const int q0 = blockIdx.x * ROWS, row0 = q0 + 16 * warp;
    const bf16* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bf16* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bool vec = aligned8(k_base, s.kv_stride, d) && aligned8(v_base, s.kv_stride, d);

    uint32_t qa[D / 16][4];
    load_a_fragments<D>(qa, q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, row0, s.q_len, d);
    // Keys the block's (and the warp's) queries may see.
    const int block_begin = visible_begin(s, q0) / N * N;
    const int block_end = visible_end(s, min(q0 + ROWS, s.q_len) - 1);
    const int warp_begin = visible_begin(s, row0), warp_end = visible_end(s, min(row0 + 15, s.q_len - 1));

    float o[D / 8][4] = {}, m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.0f, 0.0f};
    for (int j0 = block_begin; j0 < block_end; j0 += N) {
        __syncthreads();  // the previous tile is used up
        load_rows<N, D>(ks, nullptr, k_base, s.kv_stride, j0, block_end, d, vec);
        load_rows<N, D>(nullptr, vt, v_base, s.kv_stride, j0, block_end, d, vec);
        __syncthreads();
        if (row0 >= s.q_len || j0 >= warp_end || j0 + N <= warp_begin) continue;
        float sc[N / 8][4] = {};
        mma_rows<N, D>(sc, qa, ks);
        float tile_max[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                sc[n][e] = masked_score(sc[n][e], key_mask, bias, s, b, h, row0 + g + 8 * (e / 2), j0 + 8 * n + 2 * t + e % 2);
                tile_max[e / 2] = fmaxf(tile_max[e / 2], sc[n][e]);
            }
        float correction[2], tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; r++) {  // the four lanes of a quad share rows g and g + 8
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
            const float m_new = fmaxf(m[r], tile_max[r]);
            correction[r] = m[r] == -CUDART_INF_F ? 0.0f : __expf(m[r] - m_new);
            m[r] = m_new;
        }
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float x = sc[n][e];
                sc[n][e] = x == -CUDART_INF_F ? 0.0f : __expf(x - m[e / 2]);
                tile_sum[e / 2] += sc[n][e];
            }
#pragma unroll
        for (int r = 0; r < 2; r++) {
            tile_sum[r] += __shfl_xor_sync(0xffffffffu, tile_sum[r], 1);
            tile_sum[r] += __shfl_xor_sync(0xffffffffu, tile_sum[r], 2);
            l[r] = l[r] * correction[r] + tile_sum[r];
        }
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[dn][e] *= correction[e / 2];
        mma_cols<N, D>(o, sc, vt);
    }
    // Normalise and store; a row that saw no key gets zeros and lse = −∞.
    const int64_t c_all = (int64_t)s.heads * d;
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = row0 + g + 8 * (e / 2), c = 8 * dn + 2 * t + e % 2;
            const float li = l[e / 2];
            if (i < s.q_len && c < d) out[((int64_t)b * s.q_len + i) * c_all + (int64_t)h * d + c] = __float2bfloat16(li > 0.0f ? o[dn][e] / li : 0.0f);
        }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = row0 + g + 8 * r;
        if (t == 0 && i < s.q_len) lse[((int64_t)b * s.heads + h) * s.q_len + i] = l[r] > 0.0f ? m[r] + logf(l[r]) : -CUDART_INF_F;
    }
}

// Pass 1: grid (ceil(q_len / ROWS), heads, batch). dq += scale·dS·K for the block's queries.
template <int D>
__device__ void attention_mma_backward_query(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const bf16* out,
                                             const float* lse, const float* key_mask, const float* bias, AttnShape s) {
    constexpr int N = D == 128 ? 32 : 64;  // keys per tile (shared memory: three tiles)
    alignas(16) __shared__ bf16 ks[N * (D + 8)];
    alignas(16) __shared__ bf16 vs[N * (D + 8)];
    alignas(16) __shared__ bf16 kt[D * (N + 8)];
    const int warp = threadIdx.x / 32, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim;
    const int q0 = blockIdx.x * ROWS, row0 = q0 + 16 * warp;
    const int64_t c_all = (int64_t)s.heads * d;
    const bf16* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bf16* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bool vec = aligned8(k_base, s.kv_stride, d) && aligned8(v_base, s.kv_stride, d);

    uint32_t qa[D / 16][4], da[D / 16][4];
    load_a_fragments<D>(qa, q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, row0, s.q_len, d);
    load_a_fragments<D>(da, dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d, c_all, row0, s.q_len, d);
    float di[2] = {0.0f, 0.0f}, row_lse[2];
    for (int r = 0; r < 16; r++) {
        const float x = row_dot(dout, out, s, b, h, row0 + r);
        if (r == g) di[0] = x;
        if (r == g + 8) di[1] = x;
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = row0 + g + 8 * r;
        row_lse[r] = i < s.q_len ? lse[((int64_t)b * s.heads + h) * s.q_len + i] : -CUDART_INF_F;
    }
    const int block_begin = visible_begin(s, q0) / N * N;
    const int block_end = visible_end(s, min(q0 + ROWS, s.q_len) - 1);
    const int warp_begin = visible_begin(s, row0), warp_end = visible_end(s, min(row0 + 15, s.q_len - 1));

    float acc[D / 8][4] = {};
    for (int j0 = block_begin; j0 < block_end; j0 += N) {
        __syncthreads();
        load_rows<N, D>(ks, kt, k_base, s.kv_stride, j0, block_end, d, vec);
        load_rows<N, D>(vs, nullptr, v_base, s.kv_stride, j0, block_end, d, vec);
        __syncthreads();
        if (row0 >= s.q_len || j0 >= warp_end || j0 + N <= warp_begin) continue;
        float sc[N / 8][4] = {}, dp[N / 8][4] = {};
        mma_rows<N, D>(sc, qa, ks);
        mma_rows<N, D>(dp, da, vs);
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float x = masked_score(sc[n][e], key_mask, bias, s, b, h, row0 + g + 8 * (e / 2), j0 + 8 * n + 2 * t + e % 2);
                sc[n][e] = probability(x, row_lse[e / 2]) * (dp[n][e] - di[e / 2]) * s.scale;
            }
        mma_cols<N, D>(acc, sc, kt);
    }
    add_rows<D>(dq + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, acc, row0, s.q_len, d);
}

// Pass 2: grid (ceil(kv_len / ROWS), heads, batch). dk += scale·dSᵀ·Q, dv += Pᵀ·dO
// for the block's keys, streaming the queries that can see them; dbias gets dS.
template <int D>
__device__ void attention_mma_backward_key(bf16* dk, bf16* dv, float* dbias, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                                           const bf16* out, const float* lse, const float* key_mask, const float* bias, AttnShape s) {
    constexpr int N = D == 128 ? 32 : 64;  // queries per tile (shared memory: four tiles)
    alignas(16) __shared__ bf16 qs[N * (D + 8)];
    alignas(16) __shared__ bf16 dos[N * (D + 8)];
    alignas(16) __shared__ bf16 qt[D * (N + 8)];
    alignas(16) __shared__ bf16 dot[D * (N + 8)];
    __shared__ float tile_lse[N], tile_di[N];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim;
    const int k0 = blockIdx.x * ROWS, row0 = k0 + 16 * warp;
    const int64_t c_all = (int64_t)s.heads * d;
    const int64_t kv_at = (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bf16* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const bf16* do_base = dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d;
    const bool vec = aligned8(q_base, s.q_stride, d) && aligned8(do_base, c_all, d);

    uint32_t ka[D / 16][4], va[D / 16][4];
    load_a_fragments<D>(ka, k + kv_at, s.kv_stride, row0, s.kv_len, d);
    load_a_fragments<D>(va, v + kv_at, s.kv_stride, row0, s.kv_len, d);
    // Queries that can see a key of the block: query i sits at position offset + i.
    const int offset = s.kv_len - s.q_len;
    const int first_query = s.causal ? max(k0 - offset, 0) / N * N : 0;
    const int last_query = s.window > 0 ? max(min(s.q_len, k0 + ROWS - 1 - offset + s.window), 0) : s.q_len;

    float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
    for (int i0 = first_query; i0 < last_query; i0 += N) {
        __syncthreads();
        load_rows<N, D>(qs, qt, q_base, s.q_stride, i0, s.q_len, d, vec);
        load_rows<N, D>(dos, dot, do_base, c_all, i0, s.q_len, d, vec);
        for (int r = warp; r < N; r += MMA_WARPS) {
            const int i = i0 + r;
            const float di = row_dot(dout, out, s, b, h, i);
            if (lane == 0) {
                tile_di[r] = di;
                tile_lse[r] = i < s.q_len ? lse[((int64_t)b * s.heads + h) * s.q_len + i] : -CUDART_INF_F;
            }
        }
        __syncthreads();
        if (row0 >= s.kv_len) continue;
        float sc[N / 8][4] = {}, dp[N / 8][4] = {};  // Sᵀ, dPᵀ: 16 keys × N queries
        mma_rows<N, D>(sc, ka, qs);
        mma_rows<N, D>(dp, va, dos);
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int j = row0 + g + 8 * (e / 2), r = 8 * n + 2 * t + e % 2, i = i0 + r;
                const float p = probability(masked_score(sc[n][e], key_mask, bias, s, b, h, i, j), tile_lse[r]);
                const float ds = p * (dp[n][e] - tile_di[r]);
                if (dbias != nullptr && p != 0.0f) atomicAdd(&dbias[((int64_t)h * s.q_len + i) * s.kv_len + j], ds);
                sc[n][e] = p;
                dp[n][e] = ds * s.scale;
            }
        mma_cols<N, D>(dv_acc, sc, dot);
        mma_cols<N, D>(dk_acc, dp, qt);
    }
    add_rows<D>(dk + kv_at, s.kv_stride, dk_acc, row0, s.kv_len, d);
    add_rows<D>(dv + kv_at, s.kv_stride, dv_acc, row0, s.kv_len, d);
}

// ---- launchers: one kernel per (pass, head-dim bound), bf16 only -----------------

#define FOR_DIM(DM)                                                                                                                         \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)                                                                            \
        attention_mma_forward_d##DM##_bf16(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const float* key_mask,       \
                                           const float* bias, AttnShape s) {                                                                \
        attention_mma_forward<DM>(out, lse, q, k, v, key_mask, bias, s);                                                                    \
    }                                                                                                                                       \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)                                                                            \
        attention_mma_backward_query_d##DM##_bf16(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const bf16* out, \
                                                  const float* lse, const float* key_mask, const float* bias, AttnShape s) {                \
        attention_mma_backward_query<DM>(dq, dout, q, k, v, out, lse, key_mask, bias, s);                                                   \
    }                                                                                                                                       \
    extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)                                                                            \
        attention_mma_backward_key_d##DM##_bf16(bf16* dk, bf16* dv, float* dbias, const bf16* dout, const bf16* q, const bf16* k,           \
                                                const bf16* v, const bf16* out, const float* lse, const float* key_mask, const float* bias, \
                                                AttnShape s) {                                                                              \
        attention_mma_backward_key<DM>(dk, dv, dbias, dout, q, k, v, out, lse, key_mask, bias, s);                                          \
    }

FOR_DIM(64)
FOR_DIM(128)
