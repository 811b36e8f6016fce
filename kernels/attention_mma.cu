// Multi-head attention on bf16 tensor cores (mma.sync, FlashAttention-2's
// scheme): the same contract as attention.cu (masks, local windows, additive
// bias and its gradient, any scale, strided fused QKV/KV buffers, q_len ≠
// kv_len) for bf16 inputs and head_dim <= D (64 or 128); attention_fma.cu
// and attention.cu are the f32 paths, attention_decode.cu the forward of few
// queries (decoding).
//
// A block is 4 warps (the forward: 4 or 8); each warp owns 16 rows (the forward: 16 or 32) of its side (queries in the
// forward and the dQ pass, keys in the dK/dV pass) and streams row-major
// tiles of the other side through shared memory; ldmatrix reads them as B
// fragments, transposed for the products whose reduction runs over rows
// (P·V, dS·K, Pᵀ·dO, dSᵀ·Q). Scores stay in registers, in log2 units (the
// scale folded with log2 e, so each probability is one exp2); P is rounded
// to bf16 for its product, as FlashAttention does. A warp's tile that lies
// inside every one of its rows' windows, with no padding mask and no bias,
// skips the per-score visibility checks (most tiles of a long sequence); in
// the forward, a causal diagonal tile otherwise as plain checks only the
// causal bound, and the exponent is one ex2.approx (common.cuh's fast_exp2).
// The forward copies its K/V tiles with cp.async into two buffers, so the
// next tile loads while the block computes on this one.
//
// Backward, with P = softmax(S), Di = Σ dO_i·O_i:
//   dS_ij = P_ij·(dO_i·V_j − Di),  d bias_ij = Σ_b dS_ij,
//   dQ = scale·dS·K (pass 1, per query tile),  dK = scale·dSᵀ·Q, dV = Pᵀ·dO (pass 2, per key tile),
// each stored once (zeros where nothing reaches), not added to the buffer.
// S and dP are computed in both passes (no atomics on dQ, deterministic);
// `attn_backward=fused` (head_dim <= 64) runs pass 2 alone, which then also
// adds each tile's dQ to f32 rows by atomics (FlashAttention-2's one pass:
// 5 products a tile pair instead of 7; dQ's last bits vary run to run).
// A first launch writes each query's Di and lse (as the exponent's base) to
// a scratch the passes read (pass 2 would otherwise redo the dot products
// of every query tile for every key block); both passes double-buffer the
// tiles they stream with cp.async, as the forward does.
#include "attention_backward.cuh"

#define MMA_WARPS 4
#define ROWS (16 * MMA_WARPS)  // rows a block owns

// Rows [first, first + N) of a strided [rows, d] bf16 matrix into a
// row-major shared tile (pitch D + 8: ldmatrix's eight row addresses fall in
// distinct banks), zero past `limit` and past column d. 16-byte loads when
// `vec` (d, the stride and the base all multiples of 8 values), issued as
// cp.async copies when ASYNC (the caller commits and waits).
template <int N, int D, bool ASYNC = false>
__device__ void load_rows(bf16* tile, const bf16* base, int64_t stride, int first, int limit, int d, bool vec) {
    constexpr int CHUNKS = D / 8;
    for (int e = threadIdx.x; e < N * CHUNKS; e += blockDim.x) {
        const int r = e / CHUNKS, c = e % CHUNKS * 8, row = first + r;
        const bf16* src = base + (int64_t)row * stride + c;
        bf16* dst = tile + r * (D + 8) + c;
        if (vec && row < limit && c < d) {
            if constexpr (ASYNC) cp_async16(dst, src);
            else copy16(dst, src);
        } else {
            alignas(16) bf16 v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = (row < limit && c + u < d) ? src[u] : __float2bfloat16(0.0f);
            copy16(dst, v);
        }
    }
}

// acc[mt][n] (16 × 8 tiles, n < N/8) += A[mt] (16 × D, fragments) · tileᵀ,
// tile = N rows × D, for MT m-tiles of 16 rows: one ldmatrix gives the B
// fragments of n-tile n for head-dim chunks kk and kk + 1, used by every
// m-tile (so MT = 2 reads shared memory half as often per product).
template <int N, int D, int MT>
__device__ __forceinline__ void mma_rows_mt(float (&acc)[MT][N / 8][4], const uint32_t (&a)[MT][D / 16][4], const bf16* tile) {
    const int lane = threadIdx.x % 32;
    const bf16* lane_row = tile + (lane % 8) * (D + 8) + 8 * (lane / 8);
#pragma unroll
    for (int kk = 0; kk < D / 16; kk += 2) {
#pragma unroll
        for (int n = 0; n < N / 8; n++) {
            uint32_t b[4];
            ldmatrix_x4(b, lane_row + 8 * n * (D + 8) + 16 * kk);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                mma_16816(acc[mt][n], a[mt][kk], b);
                mma_16816(acc[mt][n], a[mt][kk + 1], b + 2);
            }
        }
    }
}

// out[mt][dn] (16 × D) += P[mt] (16 × N, accumulator tiles) · M, M = tile (N
// rows × D), for MT m-tiles. One transposing ldmatrix gives the B fragments
// of head-dim tiles dn and dn + 1 for rows 16kk … 16kk + 15.
template <int N, int D, int MT>
__device__ __forceinline__ void mma_cols_mt(float (&out)[MT][D / 8][4], const float (&p)[MT][N / 8][4], const bf16* tile) {
    const int lane = threadIdx.x % 32;
    const bf16* lane_row = tile + (lane % 8 + 8 * (lane / 8 % 2)) * (D + 8) + 8 * (lane / 16);
#pragma unroll
    for (int kk = 0; kk < N / 16; kk++) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) a_fragment(a[mt], p[mt], kk);
#pragma unroll
        for (int dn = 0; dn < D / 8; dn += 2) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, lane_row + 16 * kk * (D + 8) + 8 * dn);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                mma_16816(out[mt][dn], a[mt], b);
                mma_16816(out[mt][dn + 1], a[mt], b + 2);
            }
        }
    }
}

// One m-tile (the backward's): acc (16 × N) += A · tileᵀ, and out (16 × D) += P · tile.
template <int N, int D>
__device__ __forceinline__ void mma_rows(float (&acc)[N / 8][4], const uint32_t (&a)[D / 16][4], const bf16* tile) {
    mma_rows_mt<N, D, 1>(reinterpret_cast<float(&)[1][N / 8][4]>(acc), reinterpret_cast<const uint32_t(&)[1][D / 16][4]>(a), tile);
}
template <int N, int D>
__device__ __forceinline__ void mma_cols(float (&out)[D / 8][4], const float (&p)[N / 8][4], const bf16* tile) {
    mma_cols_mt<N, D, 1>(reinterpret_cast<float(&)[1][D / 8][4]>(out), reinterpret_cast<const float(&)[1][N / 8][4]>(p), tile);
}

// out (16 × D) += A · tile: A = the first 16 rows × K columns of `a_tile`
// (row-major, pitch K + 8, read by ldmatrix as A fragments), tile = K rows
// × D (pitch D + 8, B fragments by transposing ldmatrix as in mma_cols).
template <int K, int D>
__device__ __forceinline__ void mma_tile_cols(float (&out)[D / 8][4], const bf16* a_tile, const bf16* tile) {
    const int lane = threadIdx.x % 32, row = lane % 8 + 8 * (lane / 8 % 2), col = 8 * (lane / 16);  // lane's row of ldmatrix's matrix lane / 8
    const bf16 *a_row = a_tile + row * (K + 8) + col, *b_row = tile + row * (D + 8) + col;
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++) {
        uint32_t a[4];
        ldmatrix_x4(a, a_row + 16 * kk);
#pragma unroll
        for (int dn = 0; dn < D / 8; dn += 2) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, b_row + 16 * kk * (D + 8) + 8 * dn);
            mma_16816(out[dn], a, b);
            mma_16816(out[dn + 1], a, b + 2);
        }
    }
}

// Σ_c dO_ic·O_ic of query i of (batch b, head h), summed across the warp (every lane gets it).
__device__ __forceinline__ float row_dot(const bf16* dout, const bf16* out, const AttnShape& s, int b, int h, int i) {
    const int lane = threadIdx.x % 32;
    const int64_t at = ((int64_t)b * s.q_len + i) * ((int64_t)s.heads * s.head_dim) + (int64_t)h * s.head_dim;
    float di = 0.0f;
    if (i < s.q_len)
        for (int c = lane; c < s.head_dim; c += 32) di += to_f32(dout[at + c]) * to_f32(out[at + c]);
    return warp_sum(di);
}

// K and V rows [j0, j0 + N) of one (batch, head) into buffer (j0 − first) / N % 2
// of `ks` and `vs` by cp.async, as one commit group (the forward's and the dQ pass's tiles).
template <int N, int D>
__device__ __forceinline__ void load_kv_tile(bf16 (&ks)[2][N * (D + 8)], bf16 (&vs)[2][N * (D + 8)], const bf16* k_base, const bf16* v_base,
                                             int64_t stride, int j0, int first, int end, int d, bool vec) {
    const int buf = (j0 - first) / N % 2;
    load_rows<N, D, true>(ks[buf], k_base, stride, j0, end, d, vec);
    load_rows<N, D, true>(vs[buf], v_base, stride, j0, end, d, vec);
    cp_async_commit();
}

// ---- kernels ------------------------------------------------------------------

// grid (ceil(q_len / (16·MT·W)), heads, batch), W warps of 16·MT query rows
// (MT m-tiles of 16, sharing each K/V fragment read from shared memory);
// out [batch, q_len, heads·d], lse [batch, heads, q_len]; query tiles last
// first (forward_block).
template <int D, int W, int MT>
__device__ void attention_mma_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const float* key_mask, const float* bias,
                                      AttnShape s) {
    constexpr int N = D == 128 ? 32 : 64;  // keys per tile; two tiles of K and V in flight (static shared memory: 48 KB)
    constexpr int WARP_ROWS = 16 * MT, BLOCK_ROWS = WARP_ROWS * W;
    alignas(16) __shared__ bf16 ks[2][N * (D + 8)];
    alignas(16) __shared__ bf16 vs[2][N * (D + 8)];
    const ForwardBlock f = forward_block<N>(k, v, s, BLOCK_ROWS);
    const int b = f.b, h = f.h, d = s.head_dim, q0 = f.q0, block_begin = f.begin, block_end = f.end, row0 = q0 + WARP_ROWS * (threadIdx.x / 32);
    const bf16 *k_base = f.k_base, *v_base = f.v_base;
    const bool vec = f.vec;
    const float scale_log2 = s.scale * LOG2E;

    // Keys the warp's queries may see.
    const int warp_begin = visible_begin(s, row0), warp_end = visible_end(s, min(row0 + WARP_ROWS - 1, s.q_len - 1));
    // Tile j0's keys and values go to buffer (j0 − block_begin) / N % 2; the
    // next tile's copies run while the block computes on this one.
    auto load_tile = [&](int j0) { load_kv_tile<N, D>(ks, vs, k_base, v_base, s.kv_stride, j0, block_begin, block_end, d, vec); };
    if (block_begin < block_end) load_tile(block_begin);

    uint32_t qa[MT][D / 16][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
        load_a_fragments<D>(qa[mt], q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, row0 + 16 * mt, s.q_len, d);

    // Per m-tile: running max m and sum l of rows g and g + 8, in log2 units.
    float o[MT][D / 8][4] = {}, m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) m[mt][0] = m[mt][1] = -CUDART_INF_F, l[mt][0] = l[mt][1] = 0.0f;
    for (int j0 = block_begin; j0 < block_end; j0 += N) {
        await_tile(j0, block_end, N, load_tile);
        const int buf = (j0 - block_begin) / N % 2;
        if (row0 < s.q_len && j0 < warp_end && j0 + N > warp_begin) {
            float sc[MT][N / 8][4] = {};
            mma_rows_mt<N, D, MT>(sc, qa, ks[buf]);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const int r0 = row0 + 16 * mt;
                online_softmax_step<N, D>(sc[mt], m[mt], l[mt], o[mt], tile_kind(s, key_mask, bias, r0, j0, N), scale_log2, key_mask, bias, s, b, h, r0, j0);
            }
            mma_cols_mt<N, D, MT>(o, sc, vs[buf]);
        }
        __syncthreads();  // this buffer is used up before the copies of tile j0 + 2N land in it
    }
    // Normalise and store.
#pragma unroll
    for (int mt = 0; mt < MT; mt++) store_forward_rows<D>(out, lse, o[mt], m[mt], l[mt], s, b, h, row0 + 16 * mt);
}

// Pass 0: one warp per query row of every (batch, head), rows ordered as lse
// ([batch, heads, q_len]): di = Σ_c dO_ic·O_ic, lse_base = its lse's exp
// base in log2 units; and where the backward is fused (dq_accum not null),
// the row's DQ_ACCUM_COLS f32 sums of dQ zeroed.
__device__ void attention_mma_backward_rows(float* di, float* lse_base, float* dq_accum, const bf16* dout, const bf16* out, const float* lse, AttnShape s) {
    const int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= (int64_t)s.batch * s.heads * s.q_len) return;
    const int i = (int)(row % s.q_len), h = (int)(row / s.q_len % s.heads), b = (int)(row / s.q_len / s.heads);
    const float x = row_dot(dout, out, s, b, h, i);
    if (threadIdx.x % 32 == 0) {
        di[row] = x;
        lse_base[row] = exp_base(LOG2E * lse[row]);
    }
    if (dq_accum != nullptr)
        for (int c = threadIdx.x % 32; c < DQ_ACCUM_COLS; c += 32) dq_accum[row * DQ_ACCUM_COLS + c] = 0.0f;
}

// After a fused backward: one warp per query row (ordered as pass 0's), dq = its dQ sums rounded to bf16.
__device__ void attention_backward_store_dq(bf16* dq, const float* dq_accum, AttnShape s) {
    const int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= (int64_t)s.batch * s.heads * s.q_len) return;
    const int i = (int)(row % s.q_len), h = (int)(row / s.q_len % s.heads), b = (int)(row / s.q_len / s.heads);
    bf16* dst = dq + ((int64_t)b * s.q_len + i) * s.q_stride + (int64_t)h * s.head_dim;
    for (int c = threadIdx.x % 32; c < s.head_dim; c += 32) dst[c] = __float2bfloat16(dq_accum[row * DQ_ACCUM_COLS + c]);
}

// Pass 1: grid (ceil(q_len / ROWS), heads, batch). dq += scale·dS·K for the
// block's queries; K/V tiles double-buffered (cp.async), as in the forward.
template <int D>
__device__ void attention_mma_backward_query(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const float* row_di,
                                             const float* row_lse_base, const float* key_mask, const float* bias, AttnShape s) {
    constexpr int N = D == 128 ? 32 : 64;  // keys per tile
    alignas(16) __shared__ bf16 ks[2][N * (D + 8)];
    alignas(16) __shared__ bf16 vs[2][N * (D + 8)];
    const int warp = threadIdx.x / 32;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim;
    const int q0 = blockIdx.x * ROWS, row0 = q0 + 16 * warp;
    const int64_t c_all = (int64_t)s.heads * d;
    const bf16* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bf16* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const bool vec = aligned8(k_base, s.kv_stride, d) && aligned8(v_base, s.kv_stride, d);
    const int block_begin = visible_begin(s, q0) / N * N;
    const int block_end = visible_end(s, min(q0 + ROWS, s.q_len) - 1);
    const int warp_begin = visible_begin(s, row0), warp_end = visible_end(s, min(row0 + 15, s.q_len - 1));
    auto load_tile = [&](int j0) { load_kv_tile<N, D>(ks, vs, k_base, v_base, s.kv_stride, j0, block_begin, block_end, d, vec); };
    if (block_begin < block_end) load_tile(block_begin);

    uint32_t qa[D / 16][4], da[D / 16][4];
    load_a_fragments<D>(qa, q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, row0, s.q_len, d);
    load_a_fragments<D>(da, dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d, c_all, row0, s.q_len, d);
    float di[2], lse_base[2];
    query_row_scratch(di, lse_base, row_di, row_lse_base, s, b, h, row0);

    float acc[D / 8][4] = {};
    for (int j0 = block_begin; j0 < block_end; j0 += N) {
        await_tile(j0, block_end, N, load_tile);
        const int buf = (j0 - block_begin) / N % 2;
        if (row0 < s.q_len && j0 < warp_end && j0 + N > warp_begin) {
            float sc[N / 8][4] = {}, dp[N / 8][4] = {};
            mma_rows<N, D>(sc, qa, ks[buf]);
            mma_rows<N, D>(dp, da, vs[buf]);
            probabilities<N>(sc, s, key_mask, bias, b, h, row0, j0, true, [&](int e, int) { return lse_base[e / 2]; });
#pragma unroll
            for (int n = 0; n < N / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) sc[n][e] *= (dp[n][e] - di[e / 2]) * s.scale;
            mma_cols<N, D>(acc, sc, ks[buf]);
        }
        __syncthreads();  // this buffer is used up before the copies of tile j0 + 2N land in it
    }
    store_rows<D>(dq + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, acc, row0, s.q_len, d);
}

// The fused key pass's dS: warp w's accumulators (its 16 keys × N queries,
// dSᵀ) as keys 16w … 16w + 15 of the row-major tile [query][key] (pitch
// ROWS + 8). A warp's store of one (n, e) hits 16 distinct banks, two
// lanes a 4-byte word: no conflicts.
template <int N>
__device__ __forceinline__ void store_ds_columns(bf16* ds_tile, const float (&ds)[N / 8][4], int warp) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int n = 0; n < N / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) ds_tile[(8 * n + 2 * t + e % 2) * (ROWS + 8) + 16 * warp + g + 8 * (e / 2)] = __float2bfloat16(ds[n][e]);
}

// Pass 2: grid (ceil(kv_len / ROWS), heads, batch). dk += scale·dSᵀ·Q, dv += Pᵀ·dO
// for the block's keys, streaming the queries that can see them (Q, dO and
// their Di and lse bases double-buffered); dbias gets dS.
// FUSED (head_dim <= 64; FlashAttention-2's one pass, pass 1 left out):
// also each tile's dQ += scale·dS·K, dS stored to shared memory by every
// warp and each warp's 16 queries multiplied by the block's K rows (both in
// 18 KB of dynamic shared memory), added to the f32 sums dq_accum by
// atomics (their order varies, so dQ's last bits can vary run to run).
template <int D, bool FUSED>
__device__ void attention_mma_backward_key(bf16* dk, bf16* dv, float* dbias, float* dq_accum, const bf16* dout, const bf16* q, const bf16* k,
                                           const bf16* v, const float* row_di, const float* row_lse_base, const float* key_mask, const float* bias,
                                           AttnShape s) {
    constexpr int N = D == 128 ? 32 : 64;  // queries per tile
    alignas(16) __shared__ bf16 qs[2][N * (D + 8)];
    alignas(16) __shared__ bf16 dos[2][N * (D + 8)];
    __shared__ float tile_lse_base[2][N], tile_di[2][N];
    HHI_DYNAMIC_SHARED(dynamic);
    bf16* const k_rows = reinterpret_cast<bf16*>(dynamic);  // FUSED: the block's K rows (ROWS × (D + 8)), dQ's B operand
    bf16* const ds_tile = k_rows + ROWS * (D + 8);           // FUSED: the tile's dS (N queries × (ROWS + 8) keys)
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const KeyBlock kb = key_block<N>(q, dout, s, ROWS);
    const int b = kb.b, h = kb.h, d = s.head_dim, row0 = kb.k0 + 16 * warp, first_query = kb.first, last_query = kb.last;
    const int64_t c_all = (int64_t)s.heads * d, kv_at = kb.kv_at, rows_at = kb.rows_at;
    const bf16 *q_base = kb.q_base, *do_base = kb.do_base;
    const bool vec = kb.vec;
    auto load_tile = [&](int i0) {
        const int buf = (i0 - first_query) / N % 2;
        load_rows<N, D, true>(qs[buf], q_base, s.q_stride, i0, s.q_len, d, vec);
        load_rows<N, D, true>(dos[buf], do_base, c_all, i0, s.q_len, d, vec);
        for (int r = threadIdx.x; r < N; r += blockDim.x) {
            if (i0 + r < s.q_len) {
                cp_async4(&tile_di[buf][r], row_di + rows_at + i0 + r);
                cp_async4(&tile_lse_base[buf][r], row_lse_base + rows_at + i0 + r);
            } else {
                tile_di[buf][r] = tile_lse_base[buf][r] = 0.0f;
            }
        }
        cp_async_commit();
    };
    if constexpr (FUSED) {
        if (first_query < last_query)  // lands with the first tile
            load_rows<ROWS, D, true>(k_rows, k + kv_at, s.kv_stride, kb.k0, s.kv_len, d, aligned8(k + kv_at, s.kv_stride, d));
    }
    if (first_query < last_query) load_tile(first_query);

    uint32_t ka[D / 16][4], va[D / 16][4];
    load_a_fragments<D>(ka, k + kv_at, s.kv_stride, row0, s.kv_len, d);
    load_a_fragments<D>(va, v + kv_at, s.kv_stride, row0, s.kv_len, d);

    float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
    for (int i0 = first_query; i0 < last_query; i0 += N) {
        await_tile(i0, last_query, N, load_tile);
        const int buf = (i0 - first_query) / N % 2;
        if (row0 < s.kv_len) {
            float sc[N / 8][4] = {}, dp[N / 8][4] = {};  // Sᵀ, dPᵀ: 16 keys × N queries
            mma_rows<N, D>(sc, ka, qs[buf]);
            mma_rows<N, D>(dp, va, dos[buf]);
            probabilities<N>(sc, s, key_mask, bias, b, h, row0, i0, false, [&](int, int r) { return tile_lse_base[buf][r]; });
#pragma unroll
            for (int n = 0; n < N / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int r = 8 * n + 2 * t + e % 2;
                    const float ds = sc[n][e] * (dp[n][e] - tile_di[buf][r]);
                    if (dbias != nullptr && sc[n][e] != 0.0f) atomicAdd(&dbias[((int64_t)h * s.q_len + i0 + r) * s.kv_len + row0 + g + 8 * (e / 2)], ds);
                    dp[n][e] = ds * s.scale;
                }
            mma_cols<N, D>(dv_acc, sc, dos[buf]);
            mma_cols<N, D>(dk_acc, dp, qs[buf]);
            if constexpr (FUSED) store_ds_columns<N>(ds_tile, dp, warp);
        } else if constexpr (FUSED) {
            store_ds_columns<N>(ds_tile, {}, warp);  // keys past kv_len: zeros (K's rows there are zeros, poison times zero is not)
        }
        if constexpr (FUSED) {
            __syncthreads();  // every warp's dS columns
            float dq_acc[D / 8][4] = {};  // the warp's 16 queries of the tile × head dims
            mma_tile_cols<ROWS, D>(dq_acc, ds_tile + 16 * warp * (ROWS + 8), k_rows);
#pragma unroll
            for (int dn = 0; dn < D / 8; dn++)
#pragma unroll
                for (int r = 0; r < 2; r++) {  // rows g and g + 8, columns c and c + 1 (past d: K's zero padding's 0)
                    const int i = i0 + 16 * warp + g + 8 * r, c = 8 * dn + 2 * t;
                    if (i < s.q_len && c < d) atomic_add_pair(&dq_accum[(rows_at + i) * DQ_ACCUM_COLS + c], dq_acc[dn][2 * r], dq_acc[dn][2 * r + 1]);
                }
        }
        __syncthreads();
    }
    store_rows<D>(dk + kv_at, s.kv_stride, dk_acc, row0, s.kv_len, d);
    store_rows<D>(dv + kv_at, s.kv_stride, dv_acc, row0, s.kv_len, d);
}

// ---- launchers: one kernel per (pass, head-dim bound), bf16 only -----------------

// The forward as W warps × 16·MT rows, registers capped for MIN_BLOCKS blocks an SM: 4 × 16 at 3 (`_d64_`,
// `_d128_`: at 1, ptxas took 179 registers and the block ran 13% slower on an H100), 8 × 16 (`_8x16_`),
// 4 × 32 (`_4x32_`, head_dim ≤ 64 only: registers), and 4 × 16 held to 128 registers for 4 blocks (`_4x16b4_`, head_dim ≤ 64).
#define FORWARD_FOR(DM, W, MT, MIN_BLOCKS, NAME)                                                                                             \
    extern "C" __global__ void __launch_bounds__(W * 32, MIN_BLOCKS)                                                                        \
        NAME(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const float* key_mask, const float* bias, AttnShape s) {   \
        attention_mma_forward<DM, W, MT>(out, lse, q, k, v, key_mask, bias, s);                                                             \
    }
FORWARD_FOR(64, 4, 1, 3, attention_mma_forward_d64_bf16)
FORWARD_FOR(128, 4, 1, 3, attention_mma_forward_d128_bf16)
FORWARD_FOR(64, 8, 1, 1, attention_mma_forward_8x16_d64_bf16)
FORWARD_FOR(128, 8, 1, 1, attention_mma_forward_8x16_d128_bf16)
FORWARD_FOR(64, 4, 2, 1, attention_mma_forward_4x32_d64_bf16)
FORWARD_FOR(64, 4, 1, 4, attention_mma_forward_4x16b4_d64_bf16)

extern "C" __global__ void attention_mma_backward_rows_bf16(float* di, float* lse_base, float* dq_accum, const bf16* dout, const bf16* out, const float* lse,
                                                             AttnShape s) {
    attention_mma_backward_rows(di, lse_base, dq_accum, dout, out, lse, s);
}
extern "C" __global__ void attention_backward_store_dq_bf16(bf16* dq, const float* dq_accum, AttnShape s) { attention_backward_store_dq(dq, dq_accum, s); }

// The backward passes with the registers ptxas picks (2 blocks an SM: `_d64_`,
// `_d128_`), and capped at 168 for 3 blocks an SM with a few spills (`_b3_d64_`, `_b3_d128_`).
#define BACKWARD_FOR(DM, BOUNDS, VARIANT)                                                                                                   \
    extern "C" __global__ void __launch_bounds__ BOUNDS                                                                                     \
        attention_mma_backward_query##VARIANT##_d##DM##_bf16(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,       \
                                                             const float* row_di, const float* row_lse_base, const float* key_mask,         \
                                                             const float* bias, AttnShape s) {                                              \
        attention_mma_backward_query<DM>(dq, dout, q, k, v, row_di, row_lse_base, key_mask, bias, s);                                       \
    }                                                                                                                                       \
    extern "C" __global__ void __launch_bounds__ BOUNDS                                                                                     \
        attention_mma_backward_key##VARIANT##_d##DM##_bf16(bf16* dk, bf16* dv, float* dbias, const bf16* dout, const bf16* q,               \
                                                           const bf16* k, const bf16* v, const float* row_di, const float* row_lse_base,    \
                                                           const float* key_mask, const float* bias, AttnShape s) {                         \
        attention_mma_backward_key<DM, false>(dk, dv, dbias, nullptr, dout, q, k, v, row_di, row_lse_base, key_mask, bias, s);              \
    }

BACKWARD_FOR(64, (MMA_WARPS * 32), )
BACKWARD_FOR(128, (MMA_WARPS * 32), )
BACKWARD_FOR(64, (MMA_WARPS * 32, 3), _b3)
BACKWARD_FOR(128, (MMA_WARPS * 32, 3), _b3)

// The one-pass backward (`attn_backward=fused`, head_dim <= 64): dK and dV,
// and dQ's sums in dq_accum (pass 0 zeroes them; attention_backward_store_dq
// rounds them into dQ); 18 KB of dynamic shared memory.
extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)
    attention_mma_backward_fused_d64_bf16(bf16* dk, bf16* dv, float* dbias, float* dq_accum, const bf16* dout, const bf16* q, const bf16* k,
                                          const bf16* v, const float* row_di, const float* row_lse_base, const float* key_mask, const float* bias,
                                          AttnShape s) {
    attention_mma_backward_key<64, true>(dk, dv, dbias, dq_accum, dout, q, k, v, row_di, row_lse_base, key_mask, bias, s);
}
