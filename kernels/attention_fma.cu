// f32 attention forward on CUDA cores, register-blocked as an SGEMM is: the
// same contract as attention.cu's forward (masks, local windows, additive
// bias, any scale, strided fused QKV/KV buffers, q_len ≠ kv_len, a zero
// output and lse = −∞ for a query that sees no key) for head_dim <= 64.
//
// attention.cu gives each warp one query and each lane one key, so every
// multiply-add reads an operand from shared memory: bound by shared-memory
// bandwidth. Here a block of 256 threads owns 64 queries and streams the keys
// in tiles of 64. Both of its products, S = Q·Kᵀ and O += P·V, run as
// 64 × 64 outer-product sums over shared-memory operands stored k-major
// (Qᵀ, Kᵀ, Pᵀ, V): thread (ty, tx) of a 16 × 16 grid holds a 4 × 4 block of
// S and of O (rows 4ty.., columns 4tx..), and each step of the sum reads 4
// values of each side in one 16-byte load for 16 multiply-adds. The online
// softmax is exact f32 with expf, each row's max and sum reduced over the 16
// lanes that share the row.
//
// Transposed tiles (Qᵀ, Kᵀ, Pᵀ) are stored with their 4-value groups XORed
// by a swizzle of the row, so the transposing stores fall in distinct banks
// while the reads stay 16-byte aligned. The three 64 × 64 tiles fill the
// 48 KB of static shared memory a block may have (Pᵀ reuses Kᵀ's).
#include "attention_shape.cuh"

#define FMA_ROWS 64  // queries a block, keys a tile, head_dim bound
#define FMA_THREADS 256

// A 64 × 64 f32 tile whose rows are read as 4-value groups; group g of row r
// is stored at group g ^ swizzle(r).
struct Tile {
    float v[FMA_ROWS][FMA_ROWS];
};

// How a tile's row r swizzles its groups: not at all (V); by r's low 3 bits,
// for tiles stored by columns of 8 consecutive rows (Qᵀ, Kᵀ: r = head dim);
// by bits 2–4, for Pᵀ, stored by rows 4 apart (r = key = 4·tx + c).
enum Swizzle { PLAIN, BY_ROW, BY_QUAD };

template <Swizzle S>
__device__ __forceinline__ float* at(Tile& t, int r, int col) {
    const int swizzle = S == PLAIN ? 0 : S == BY_ROW ? r & 7 : (r >> 2) & 7;
    return &t.v[r][((col >> 2) ^ swizzle) * 4 + (col & 3)];
}

// acc[i][j] += Σ_k a[k][row0 + i] · b[k][col0 + j] for k < k_len (a multiple of 4).
template <Swizzle SA, Swizzle SB>
__device__ __forceinline__ void product(float (&acc)[4][4], Tile& a, Tile& b, int k_len, int row0, int col0) {
#pragma unroll 4
    for (int k = 0; k < k_len; k++) {
        const Pack<float, 4> x = load_pack<float, 4>(at<SA>(a, k, row0));
        const Pack<float, 4> y = load_pack<float, 4>(at<SB>(b, k, col0));
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = fmaf(x.v[i], y.v[j], acc[i][j]);
    }
}

// Rows first .. first + 64 of a strided [rows, d] matrix (zeros at rows >=
// limit and columns >= d) into `tile`, transposed (tile[c][row], swizzled by
// row) or not (tile[row][c]). A warp reads 4 rows × 8 consecutive columns:
// 4 whole 32-byte sectors, and its transposed stores hit 32 distinct banks.
template <bool TRANSPOSED>
__device__ void load_rows(Tile& tile, const float* base, int64_t stride, int first, int limit, int d) {
    for (int e = threadIdx.x; e < FMA_ROWS * FMA_ROWS; e += FMA_THREADS) {
        const int c = (e / 32 % 8) * 8 + e % 8, r = (e / 256) * 4 + e / 8 % 4;
        const int row = first + r;
        const float x = (row < limit && c < d) ? base[(int64_t)row * stride + c] : 0.0f;
        if (TRANSPOSED) *at<BY_ROW>(tile, c, r) = x;
        else tile.v[r][c] = x;
    }
}

// Max and sum over the 16 lanes that hold one row (lanes 0–15 and 16–31).
__device__ __forceinline__ float row_max(float v) {
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float row_sum(float v) {
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// ---- kernels ------------------------------------------------------------------

// grid (ceil(q_len / 64), heads, batch), 256 threads; out [batch, q_len, heads·d], lse [batch, heads, q_len].
__device__ void attention_fma_forward(float* out, float* lse, const float* q, const float* k, const float* v, const float* key_mask,
                                      const float* bias, AttnShape s) {
    alignas(16) __shared__ Tile qt, kt_pt, vs;  // Qᵀ; Kᵀ, then Pᵀ; V
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    // Causal blocks of later queries see more keys: those start first.
    const int b = blockIdx.z, h = blockIdx.y, q0 = (gridDim.x - 1 - blockIdx.x) * FMA_ROWS, d = s.head_dim;
    const int d4 = (d + 3) / 4 * 4;
    load_rows<true>(qt, q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, q0, s.q_len, d);

    // This thread's rows: the keys each sees, the running max and sum, O.
    int begin[4], end[4];
    float m[4], l[4], o[4][4] = {};
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int i = q0 + 4 * ty + r;
        begin[r] = i < s.q_len ? visible_begin(s, i) : 0;
        end[r] = i < s.q_len ? visible_end(s, i) : 0;
        m[r] = -CUDART_INF_F;
        l[r] = 0.0f;
    }
    const int block_begin = visible_begin(s, q0), block_end = visible_end(s, min(q0 + FMA_ROWS, s.q_len) - 1);
    const float* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const float* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    for (int j0 = block_begin; j0 < block_end; j0 += FMA_ROWS) {
        __syncthreads();  // the last tile's P·V is done with Pᵀ and V
        load_rows<true>(kt_pt, k_base, s.kv_stride, j0, block_end, d);
        load_rows<false>(vs, v_base, s.kv_stride, j0, block_end, d);
        __syncthreads();
        float p[4][4] = {};
        product<BY_ROW, BY_ROW>(p, qt, kt_pt, d4, 4 * ty, 4 * tx);

        // Scores (−∞ where unseen), then the online softmax row by row.
        bool kept[4];
#pragma unroll
        for (int c = 0; c < 4; c++) kept[c] = j0 + 4 * tx + c < block_end && key_kept(key_mask, s, b, j0 + 4 * tx + c);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int i = q0 + 4 * ty + r;
            float tile_max = -CUDART_INF_F;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int j = j0 + 4 * tx + c;
                p[r][c] = kept[c] && j >= begin[r] && j < end[r] ? p[r][c] * s.scale + bias_at(bias, s, h, i, j) : -CUDART_INF_F;
                tile_max = fmaxf(tile_max, p[r][c]);
            }
            const float m_new = fmaxf(m[r], row_max(tile_max));
            const float correction = m[r] == -CUDART_INF_F ? 0.0f : expf(m[r] - m_new);
            float sum = 0.0f;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                p[r][c] = p[r][c] == -CUDART_INF_F ? 0.0f : expf(p[r][c] - m_new);
                sum += p[r][c];
            }
            l[r] = l[r] * correction + row_sum(sum);
            m[r] = m_new;
#pragma unroll
            for (int c = 0; c < 4; c++) o[r][c] *= correction;
        }

        __syncthreads();  // every thread is done reading Kᵀ
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const int key = 4 * tx + c;
            Pack<float, 4> column;
#pragma unroll
            for (int r = 0; r < 4; r++) column.v[r] = p[r][c];
            store_pack<float, 4>(at<BY_QUAD>(kt_pt, key, 4 * ty), column);
        }
        __syncthreads();
        const int keys = min(FMA_ROWS, block_end - j0);
        product<BY_QUAD, PLAIN>(o, kt_pt, vs, (keys + 3) / 4 * 4, 4 * ty, 4 * tx);
    }

#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int i = q0 + 4 * ty + r;
        if (i >= s.q_len) break;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        float* o_row = out + ((int64_t)b * s.q_len + i) * ((int64_t)s.heads * d) + (int64_t)h * d;
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (4 * tx + c < d) o_row[4 * tx + c] = o[r][c] * inv;
        if (tx == 0) lse[((int64_t)b * s.heads + h) * s.q_len + i] = l[r] > 0.0f ? m[r] + logf(l[r]) : -CUDART_INF_F;
    }
}

// ---- launchers -----------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(FMA_THREADS, 2) attention_fma_forward_d64_f32(float* out, float* lse, const float* q, const float* k,
                                                                                          const float* v, const float* key_mask,
                                                                                          const float* bias, AttnShape s) {
    attention_fma_forward(out, lse, q, k, v, key_mask, bias, s);
}
