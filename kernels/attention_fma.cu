// f32 attention on CUDA cores, register-blocked as an SGEMM is: the same
// contract as attention.cu (masks, local windows, additive bias and its
// gradient, any scale, strided fused QKV/KV buffers, q_len ≠ kv_len, a zero
// output and lse = −∞ for a query that sees no key) for head_dim <= 64.
//
// attention.cu gives each warp one row and each lane one key (or query), so
// every multiply-add reads an operand from shared memory: bound by
// shared-memory bandwidth. Here a block of 256 threads owns 64 rows (queries
// in the forward and the dQ pass, keys in the dK/dV pass) and streams the
// other side in tiles of 64. Every product (S = Q·Kᵀ, O += P·V; dP = dO·Vᵀ,
// dQ += dS·K; Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q) runs as a
// 64 × 64 sum of outer products over shared-memory operands stored k-major:
// thread (ty, tx) of a 16 × 16 grid holds a 4 × 4 block of the result (rows
// 4ty.., columns 4tx..), and each step of the sum reads 4 values of each
// side in one 16-byte load for 16 multiply-adds. The softmax is exact f32
// with expf; the forward's row max and sum are reduced over the 16 lanes
// that share a row.
//
// Transposed tiles are stored with their 4-value groups XORed by a swizzle
// of the row, so the transposing stores fall in distinct banks while the
// reads stay 16-byte aligned. Three 64 × 64 tiles fill the 48 KB of static
// shared memory a block may have, so each pass reloads what a step needs
// (from L2) rather than keeping its own rows' tiles; the tiles come in by
// cp.async, and where a tile is free early the next operand lands while the
// current product runs.
//
// Backward, with P = softmax(S), Di = Σ dO_i·O_i (a first launch):
//   dS_ij = P_ij·(dO_i·V_j − Di),  d bias_ij = Σ_b dS_ij (atomics),
//   dQ = scale·dS·K (pass 1, per query block),  dK = scale·dSᵀ·Q, dV = Pᵀ·dO (pass 2, per key block),
// each stored once (zeros where nothing reaches); no atomics on dQ, dK, dV.
#include "attention_shape.cuh"
#include "cp_async.cuh"

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

// acc[i][j] += Σ_k a[k][row0 + i] · b[k][col0 + j] for k < k_len (a
// multiple of 8; row0, col0 multiples of 4). Unrolled whole, with a branch
// out every 8 rows: a row's swizzle (k & 7, or (k >> 2) & 7) then takes one
// of 8 values, so each load's address is one of 8 per-thread bases plus a
// constant offset, and the sum runs on loads and multiply-adds alone.
template <Swizzle SA, Swizzle SB>
__device__ __forceinline__ void product(float (&acc)[4][4], Tile& a, Tile& b, int k_len, int row0, int col0) {
    constexpr auto swizzle = [](Swizzle s, int k) { return s == PLAIN ? 0 : s == BY_ROW ? k & 7 : (k >> 2) & 7; };
#pragma unroll
    for (int k0 = 0; k0 < FMA_ROWS; k0 += 8) {
        if (k0 >= k_len) break;
#pragma unroll
        for (int k = k0; k < k0 + 8; k++) {
            const Pack<float, 4> x = load_pack<float, 4>(&a.v[k][((row0 >> 2) ^ swizzle(SA, k)) * 4]);
            const Pack<float, 4> y = load_pack<float, 4>(&b.v[k][((col0 >> 2) ^ swizzle(SB, k)) * 4]);
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(x.v[i], y.v[j], acc[i][j]);
        }
    }
}

// Copies rows first .. first + 64 of a strided [rows, d] matrix into
// `tile`, transposed (tile[c][row], swizzled by row) or not (tile[row][c]),
// by cp.async: every element's copy is in flight at once, and the caller
// commits and waits for them (zeros, stored at once, at rows >= limit and
// columns >= d). A warp reads whole 32-byte sectors and its copies land in
// 32 distinct banks: transposed, 4 rows × 8 consecutive columns (the 8
// columns' swizzles differ); plain, 32 consecutive columns of a row.
template <bool TRANSPOSED>
__device__ __forceinline__ void copy_rows(Tile& tile, const float* base, int64_t stride, int first, int limit, int d) {
#pragma unroll 1  // the copies do not wait: unrolled, their addresses would only take registers
    for (int n = 0; n < FMA_ROWS * FMA_ROWS / FMA_THREADS; n++) {
        const int e = n * FMA_THREADS + threadIdx.x;
        const int c = TRANSPOSED ? (e / 32 % 8) * 8 + e % 8 : e % FMA_ROWS;
        const int r = TRANSPOSED ? (e / 256) * 4 + e / 8 % 4 : e / FMA_ROWS;
        float* to = TRANSPOSED ? at<BY_ROW>(tile, c, r) : &tile.v[r][c];
        if (first + r < limit && c < d) cp_async4(to, base + (int64_t)(first + r) * stride + c);
        else *to = 0.0f;
    }
}

// A thread's 4 × 4 block v (rows 4ty.., columns 4tx..) stored transposed:
// tile[4tx + c][4ty + r] = v[r][c], each column of v one 16-byte store.
__device__ __forceinline__ void store_transposed(Tile& tile, const float (&v)[4][4], int ty, int tx) {
#pragma unroll
    for (int c = 0; c < 4; c++) {
        Pack<float, 4> column;
#pragma unroll
        for (int r = 0; r < 4; r++) column.v[r] = v[r][c];
        store_pack<float, 4>(at<BY_QUAD>(tile, 4 * tx + c, 4 * ty), column);
    }
}

// The block store_transposed stored from this thread, back (no barrier needed).
__device__ __forceinline__ void load_transposed(float (&v)[4][4], Tile& tile, int ty, int tx) {
#pragma unroll
    for (int c = 0; c < 4; c++) {
        const Pack<float, 4> column = load_pack<float, 4>(at<BY_QUAD>(tile, 4 * tx + c, 4 * ty));
#pragma unroll
        for (int r = 0; r < 4; r++) v[r][c] = column.v[r];
    }
}

// Whether each of keys first .. first + 3 lies below `limit` and is not padding.
__device__ __forceinline__ void keys_kept(bool (&kept)[4], const float* key_mask, const AttnShape& s, int b, int first, int limit) {
#pragma unroll
    for (int c = 0; c < 4; c++) kept[c] = first + c < limit && key_kept(key_mask, s, b, first + c);
}

// exp(score − lse): a probability of the backward, 0 where the score is
// hidden or the query sees no key (lse −∞).
__device__ __forceinline__ float probability(float score, float lse) {
    return lse == -CUDART_INF_F || score == -CUDART_INF_F ? 0.0f : expf(score - lse);
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
    const int d8 = (d + 7) / 8 * 8;
    copy_rows<true>(qt, q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, q0, s.q_len, d);
    cp_async_commit();

    // This thread's rows: the running max and sum, O.
    float m[4], l[4], o[4][4] = {};
#pragma unroll
    for (int r = 0; r < 4; r++) {
        m[r] = -CUDART_INF_F;
        l[r] = 0.0f;
    }
    const int block_begin = visible_begin(s, q0), block_end = visible_end(s, min(q0 + FMA_ROWS, s.q_len) - 1);
    const float* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const float* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    for (int j0 = block_begin; j0 < block_end; j0 += FMA_ROWS) {
        __syncthreads();  // the last tile's P·V is done with Pᵀ and V
        copy_rows<true>(kt_pt, k_base, s.kv_stride, j0, block_end, d);
        cp_async_commit();
        copy_rows<false>(vs, v_base, s.kv_stride, j0, block_end, d);
        cp_async_commit();
        cp_async_wait<1>();  // Qᵀ and Kᵀ are in; V lands during the scores
        __syncthreads();
        float p[4][4] = {};
        product<BY_ROW, BY_ROW>(p, qt, kt_pt, d8, 4 * ty, 4 * tx);

        // Scores (−∞ where unseen), then the online softmax row by row.
        bool kept[4];
        keys_kept(kept, key_mask, s, b, j0 + 4 * tx, block_end);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int i = q0 + 4 * ty + r;
            float tile_max = -CUDART_INF_F;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                p[r][c] = visible_score(p[r][c], kept[c], bias, s, h, i, j0 + 4 * tx + c);
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
        store_transposed(kt_pt, p, ty, tx);
        cp_async_wait<0>();
        __syncthreads();
        const int keys = min(FMA_ROWS, block_end - j0);
        product<BY_QUAD, PLAIN>(o, kt_pt, vs, (keys + 7) / 8 * 8, 4 * ty, 4 * tx);
    }
    cp_async_wait<0>();  // Qᵀ, where no key tile waited for it

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

// grid (ceil(rows / 8)), 256 threads: di[(b·heads + h)·q_len + i] = Σ dO_i·O_i, a warp a row.
__device__ void attention_fma_backward_rows(float* di, const float* dout, const float* out, AttnShape s) {
    const int64_t row = (int64_t)blockIdx.x * 8 + threadIdx.x / 32, rows = (int64_t)s.batch * s.heads * s.q_len;
    if (row >= rows) return;
    const int lane = threadIdx.x % 32, d = s.head_dim, i = row % s.q_len, h = row / s.q_len % s.heads, b = row / s.q_len / s.heads;
    const int64_t at = ((int64_t)b * s.q_len + i) * ((int64_t)s.heads * d) + (int64_t)h * d;
    float sum = 0.0f;
    for (int c = lane; c < d; c += 32) sum += dout[at + c] * out[at + c];
    sum = warp_sum(sum);
    if (lane == 0) di[row] = sum;
}

// Pass 1. grid (ceil(q_len / 64), heads, batch), 256 threads: dq like q.
__device__ void attention_fma_backward_query(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* di,
                                             const float* lse, const float* key_mask, const float* bias, AttnShape s) {
    alignas(16) __shared__ Tile x, y, z;
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    const int b = blockIdx.z, h = blockIdx.y, q0 = (gridDim.x - 1 - blockIdx.x) * FMA_ROWS, d = s.head_dim, c_all = s.heads * d;
    const int d8 = (d + 7) / 8 * 8;
    // This thread's queries: lse (−∞: sees no key, gets no gradient) and Di.
    float row_lse[4], row_di[4];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int i = q0 + 4 * ty + r;
        const int64_t at = ((int64_t)b * s.heads + h) * s.q_len + i;
        row_lse[r] = i < s.q_len ? lse[at] : -CUDART_INF_F;
        row_di[r] = i < s.q_len ? di[at] : 0.0f;
    }
    const int block_begin = visible_begin(s, q0), block_end = visible_end(s, min(q0 + FMA_ROWS, s.q_len) - 1);
    const float* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const float* do_base = dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d;
    const float* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const float* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    float dq_acc[4][4] = {};
    for (int j0 = block_begin; j0 < block_end; j0 += FMA_ROWS) {
        __syncthreads();  // the last tile's dS·K is done with z and y
        copy_rows<true>(x, q_base, s.q_stride, q0, s.q_len, d);
        copy_rows<true>(y, k_base, s.kv_stride, j0, block_end, d);
        cp_async_commit();
        copy_rows<true>(z, do_base, c_all, q0, s.q_len, d);  // lands during the scores
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        float p[4][4] = {};
        product<BY_ROW, BY_ROW>(p, x, y, d8, 4 * ty, 4 * tx);
        bool kept[4];
        keys_kept(kept, key_mask, s, b, j0 + 4 * tx, block_end);
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int i = q0 + 4 * ty + r, j = j0 + 4 * tx + c;
                p[r][c] = probability(visible_score(p[r][c], kept[c], bias, s, h, i, j), row_lse[r]);
            }

        __syncthreads();  // every thread is done with Qᵀ and Kᵀ
        copy_rows<true>(x, v_base, s.kv_stride, j0, block_end, d);
        cp_async_commit();
        copy_rows<false>(y, k_base, s.kv_stride, j0, block_end, d);  // lands during dP
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        float ds[4][4] = {};
        product<BY_ROW, BY_ROW>(ds, z, x, d8, 4 * ty, 4 * tx);
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) ds[r][c] = p[r][c] * (ds[r][c] - row_di[r]);

        __syncthreads();  // every thread is done with dOᵀ
        store_transposed(z, ds, ty, tx);
        cp_async_wait<0>();
        __syncthreads();
        const int keys = min(FMA_ROWS, block_end - j0);
        product<BY_QUAD, PLAIN>(dq_acc, z, y, (keys + 7) / 8 * 8, 4 * ty, 4 * tx);
    }

#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int i = q0 + 4 * ty + r;
        if (i >= s.q_len) break;
        float* dq_row = dq + ((int64_t)b * s.q_len + i) * s.q_stride + (int64_t)h * d;
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (4 * tx + c < d) dq_row[4 * tx + c] = dq_acc[r][c] * s.scale;
    }
}

// Pass 2. grid (ceil(kv_len / 64), heads, batch), 256 threads: this thread's
// rows are keys, its columns queries (Sᵀ, dPᵀ) or head dims (dK, dV). dk, dv
// like k, v (zeros for padded keys); dbias, when given, gets d bias added.
__device__ void attention_fma_backward_key(float* dk, float* dv, float* dbias, const float* dout, const float* q, const float* k, const float* v,
                                           const float* di, const float* lse, const float* key_mask, const float* bias, AttnShape s) {
    alignas(16) __shared__ Tile x, y, z;
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * FMA_ROWS, d = s.head_dim, c_all = s.heads * d;
    const int d8 = (d + 7) / 8 * 8;
    bool kept[4];
    keys_kept(kept, key_mask, s, b, k0 + 4 * ty, s.kv_len);
    // Queries that see any of the block's keys: from the first key's
    // (causal), to the last key's window end.
    const int offset = s.kv_len - s.q_len, last_key = min(k0 + FMA_ROWS, s.kv_len) - 1;
    const int first_query = s.causal ? max(k0 - offset, 0) : 0;
    const int end_query = s.window > 0 ? max(min(s.q_len, last_key - offset + s.window), 0) : s.q_len;
    const float* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const float* do_base = dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d;
    const float* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const float* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    float dk_acc[4][4] = {}, dv_acc[4][4] = {};
    for (int i0 = first_query; i0 < end_query; i0 += FMA_ROWS) {
        __syncthreads();  // the last tile's products are done with x, y, z
        copy_rows<true>(x, k_base, s.kv_stride, k0, s.kv_len, d);
        copy_rows<true>(y, q_base, s.q_stride, i0, end_query, d);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        float p[4][4] = {};
        product<BY_ROW, BY_ROW>(p, x, y, d8, 4 * ty, 4 * tx);
        float col_lse[4], col_di[4];
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const int i = i0 + 4 * tx + c;
            const int64_t at = ((int64_t)b * s.heads + h) * s.q_len + i;
            col_lse[c] = i < end_query ? lse[at] : -CUDART_INF_F;
            col_di[c] = i < end_query ? di[at] : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int i = i0 + 4 * tx + c, j = k0 + 4 * ty + r;
                p[r][c] = probability(visible_score(p[r][c], kept[r], bias, s, h, i, j), col_lse[c]);
            }
        store_transposed(z, p, ty, tx);  // P [query][key], for dV (z is free: the last tile ended at a barrier)

        __syncthreads();  // every thread is done with Kᵀ and Qᵀ
        copy_rows<true>(x, v_base, s.kv_stride, k0, s.kv_len, d);
        copy_rows<true>(y, do_base, c_all, i0, end_query, d);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        float ds[4][4] = {};
        product<BY_ROW, BY_ROW>(ds, x, y, d8, 4 * ty, 4 * tx);
        load_transposed(p, z, ty, tx);
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                ds[r][c] = p[r][c] * (ds[r][c] - col_di[c]);
                const int i = i0 + 4 * tx + c, j = k0 + 4 * ty + r;
                if (dbias != nullptr && p[r][c] != 0.0f) atomicAdd(&dbias[((int64_t)h * s.q_len + i) * s.kv_len + j], ds[r][c]);
            }

        __syncthreads();  // every thread is done with Vᵀ and dOᵀ
        copy_rows<false>(y, do_base, c_all, i0, end_query, d);
        cp_async_commit();
        copy_rows<false>(x, q_base, s.q_stride, i0, end_query, d);  // lands during dV
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const int queries = (min(FMA_ROWS, end_query - i0) + 7) / 8 * 8;
        product<BY_QUAD, PLAIN>(dv_acc, z, y, queries, 4 * ty, 4 * tx);
        __syncthreads();  // every thread is done with P
        store_transposed(z, ds, ty, tx);  // dS [query][key]
        cp_async_wait<0>();
        __syncthreads();
        product<BY_QUAD, PLAIN>(dk_acc, z, x, queries, 4 * ty, 4 * tx);
    }

#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int j = k0 + 4 * ty + r;
        if (j >= s.kv_len) break;
        const int64_t at = ((int64_t)b * s.kv_cap + j) * s.kv_stride + (int64_t)h * d;
#pragma unroll
        for (int c = 0; c < 4; c++)
            if (4 * tx + c < d) {
                dk[at + 4 * tx + c] = dk_acc[r][c] * s.scale;
                dv[at + 4 * tx + c] = dv_acc[r][c];
            }
    }
}

// ---- launchers -----------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(FMA_THREADS, 2) attention_fma_forward_d64_f32(float* out, float* lse, const float* q, const float* k,
                                                                                          const float* v, const float* key_mask,
                                                                                          const float* bias, AttnShape s) {
    attention_fma_forward(out, lse, q, k, v, key_mask, bias, s);
}
extern "C" __global__ void __launch_bounds__(256) attention_fma_backward_rows_f32(float* di, const float* dout, const float* out, AttnShape s) {
    attention_fma_backward_rows(di, dout, out, s);
}
extern "C" __global__ void __launch_bounds__(FMA_THREADS, 2) attention_fma_backward_query_d64_f32(float* dq, const float* dout, const float* q,
                                                                                                 const float* k, const float* v, const float* di,
                                                                                                 const float* lse, const float* key_mask,
                                                                                                 const float* bias, AttnShape s) {
    attention_fma_backward_query(dq, dout, q, k, v, di, lse, key_mask, bias, s);
}
extern "C" __global__ void __launch_bounds__(FMA_THREADS, 2) attention_fma_backward_key_d64_f32(float* dk, float* dv, float* dbias, const float* dout,
                                                                                               const float* q, const float* k, const float* v,
                                                                                               const float* di, const float* lse,
                                                                                               const float* key_mask, const float* bias,
                                                                                               AttnShape s) {
    attention_fma_backward_key(dk, dv, dbias, dout, q, k, v, di, lse, key_mask, bias, s);
}
