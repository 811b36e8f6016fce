// Multi-head attention, flash-style (online softmax; no T×T matrix in memory).
// Mirrors src/backend/cpu/attention.rs: query i of q_len sits at absolute
// position kv_len − q_len + i and, when causal, sees keys at positions <= its
// own; key_mask[b·kv_cap + j] == 0 hides key j; a query that sees no key gets a
// zero output and lse = −∞. Scores are multiplied by `scale` (1 for GPT-Neo
// and T5); an optional f32 bias [heads, q_len, kv_len] is added to them (T5's
// relative positions), and the backward can return its gradient (dS summed
// over the batch). Gradients have the layout and strides of their inputs
// (dq like q, dk like k, dv like v), so fused QKV/KV buffers work as is.
//
// Layout: a block holds WARPS warps of one (batch, head); in the forward and
// the dq pass each warp owns one query row, in the dk/dv pass one key row.
// Rows of the other side stream through shared memory in tiles of 32, one row
// per lane when forming scores; a lane owns dims lane, lane+32, … of the
// D_MAX-wide accumulators (D_MAX a multiple of 32, head_dim <= D_MAX).
#include "attention_shape.cuh"

#define WARPS 8
#define TILE 32

// Loads rows first .. first+TILE (clamped to `limit`) of a strided matrix into
// a padded shared tile (zeros past the end), with every thread of the block.
template <typename T, int D_MAX>
__device__ void load_tile(float (*tile)[D_MAX + 1], const T* base, int64_t stride, int first, int limit, int d) {
    for (int e = threadIdx.x; e < TILE * D_MAX; e += blockDim.x) {
        const int r = e / D_MAX, c = e % D_MAX;
        const int row = first + r;
        tile[r][c] = (row < limit && c < d) ? to_f32(base[(int64_t)row * stride + c]) : 0.0f;
    }
}

// ---- kernels ------------------------------------------------------------------

// grid (ceil(q_len / WARPS), heads, batch); out [batch, q_len, heads·d], lse [batch, heads, q_len].
template <typename T, int D_MAX>
__device__ void attention_forward(T* out, float* lse, const T* q, const T* k, const T* v, const float* key_mask, const float* bias, AttnShape s) {
    constexpr int PER_LANE = D_MAX / 32;
    __shared__ float ks[TILE][D_MAX + 1], vs[TILE][D_MAX + 1], qs[WARPS][D_MAX];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim;
    const int first_query = blockIdx.x * WARPS, i = first_query + warp;
    const bool live = i < s.q_len;
    const T* q_row = q + ((int64_t)b * s.q_len + i) * s.q_stride + (int64_t)h * d;
    for (int c = lane; c < D_MAX; c += 32) qs[warp][c] = (live && c < d) ? to_f32(q_row[c]) : 0.0f;
    const int begin = live ? visible_begin(s, i) : 0, end = live ? visible_end(s, i) : 0;
    // Keys any query of the block may see; tiles start at a multiple of TILE.
    const int block_begin = visible_begin(s, first_query) / TILE * TILE;
    const int block_end = visible_end(s, min(first_query + WARPS, s.q_len) - 1);
    const T* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const T* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    float m = -CUDART_INF_F, l = 0.0f, acc[PER_LANE];
#pragma unroll
    for (int u = 0; u < PER_LANE; u++) acc[u] = 0.0f;

    for (int j0 = block_begin; j0 < block_end; j0 += TILE) {
        __syncthreads();  // previous tile fully used (and qs written)
        load_tile<T, D_MAX>(ks, k_base, s.kv_stride, j0, block_end, d);
        load_tile<T, D_MAX>(vs, v_base, s.kv_stride, j0, block_end, d);
        __syncthreads();
        if (j0 >= end || j0 + TILE <= begin) continue;
        const int j = j0 + lane;
        float score = -CUDART_INF_F;
        if (j >= begin && j < end && key_kept(key_mask, s, b, j)) {
            float dot = 0.0f;
            for (int c = 0; c < d; c++) dot += qs[warp][c] * ks[lane][c];
            score = dot * s.scale + bias_at(bias, s, h, i, j);
        }
        const float m_new = fmaxf(m, warp_max(score));
        if (m_new == -CUDART_INF_F) continue;  // nothing visible yet
        const float p = score == -CUDART_INF_F ? 0.0f : expf(score - m_new);
        const float correction = m == -CUDART_INF_F ? 0.0f : expf(m - m_new);
        l = l * correction + warp_sum(p);
        m = m_new;
#pragma unroll
        for (int u = 0; u < PER_LANE; u++) acc[u] *= correction;
        for (int jj = 0; jj < TILE; jj++) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int u = 0; u < PER_LANE; u++) acc[u] += pj * vs[jj][lane + 32 * u];
        }
    }
    if (!live) return;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T* o = out + ((int64_t)b * s.q_len + i) * ((int64_t)s.heads * d) + (int64_t)h * d;
#pragma unroll
    for (int u = 0; u < PER_LANE; u++) {
        const int c = lane + 32 * u;
        if (c < d) o[c] = from_f32<T>(acc[u] * inv);
    }
    if (lane == 0) lse[((int64_t)b * s.heads + h) * s.q_len + i] = l > 0.0f ? m + logf(l) : -CUDART_INF_F;
}

// Backward. With P = softmax(S), Di = Σ dO_i·O_i:
//   dS_ij = P_ij·(dO_i·V_j − Di),  d bias_ij = Σ_b dS_ij,
//   dQ_i = scale·Σ_j dS_ij K_j,    dK_j = scale·Σ_i dS_ij Q_i,   dV_j = Σ_i P_ij dO_i.
// Pass 1 (a warp per query) stores dQ; pass 2 (a warp per key) dK, dV (zeros
// for padded keys) and adds to d bias.

template <typename T, int D_MAX>
__device__ void attention_backward_query(T* dq, const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse,
                                         const float* key_mask, const float* bias, AttnShape s) {
    constexpr int PER_LANE = D_MAX / 32;
    __shared__ float ks[TILE][D_MAX + 1], vs[TILE][D_MAX + 1], qs[WARPS][D_MAX], dos[WARPS][D_MAX];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim, c_all = s.heads * d;
    const int first_query = blockIdx.x * WARPS, i = first_query + warp;
    const bool live = i < s.q_len;
    const int64_t row = ((int64_t)b * s.q_len + i);
    const int64_t o_at = row * c_all + (int64_t)h * d;
    float di = 0.0f;
    for (int c = lane; c < D_MAX; c += 32) {
        const bool in = live && c < d;
        qs[warp][c] = in ? to_f32(q[row * s.q_stride + (int64_t)h * d + c]) : 0.0f;
        dos[warp][c] = in ? to_f32(dout[o_at + c]) : 0.0f;
        di += in ? dos[warp][c] * to_f32(out[o_at + c]) : 0.0f;
    }
    di = warp_sum(di);
    const float l = live ? lse[((int64_t)b * s.heads + h) * s.q_len + i] : -CUDART_INF_F;
    const int begin = live ? visible_begin(s, i) : 0, end = (live && l != -CUDART_INF_F) ? visible_end(s, i) : 0;
    const int block_begin = visible_begin(s, first_query) / TILE * TILE;
    const int block_end = visible_end(s, min(first_query + WARPS, s.q_len) - 1);
    const T* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const T* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    float acc[PER_LANE];
#pragma unroll
    for (int u = 0; u < PER_LANE; u++) acc[u] = 0.0f;
    for (int j0 = block_begin; j0 < block_end; j0 += TILE) {
        __syncthreads();
        load_tile<T, D_MAX>(ks, k_base, s.kv_stride, j0, block_end, d);
        load_tile<T, D_MAX>(vs, v_base, s.kv_stride, j0, block_end, d);
        __syncthreads();
        if (j0 >= end || j0 + TILE <= begin) continue;
        const int j = j0 + lane;
        float ds = 0.0f;
        if (j >= begin && j < end && key_kept(key_mask, s, b, j)) {
            float dot = 0.0f, dp = 0.0f;
            for (int c = 0; c < d; c++) {
                dot += qs[warp][c] * ks[lane][c];
                dp += dos[warp][c] * vs[lane][c];
            }
            const float p = expf(dot * s.scale + bias_at(bias, s, h, i, j) - l);
            ds = p * (dp - di) * s.scale;
        }
        for (int jj = 0; jj < TILE; jj++) {
            const float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
            for (int u = 0; u < PER_LANE; u++) acc[u] += dsj * ks[jj][lane + 32 * u];
        }
    }
    if (!live) return;
    T* dq_row = dq + row * s.q_stride + (int64_t)h * d;
#pragma unroll
    for (int u = 0; u < PER_LANE; u++) {
        const int c = lane + 32 * u;
        if (c < d) dq_row[c] = from_f32<T>(acc[u]);
    }
}

// grid (ceil(kv_len / WARPS), heads, batch): a warp per key j streams the
// queries that can see it through shared memory. Query i sits at position
// offset + i (offset = kv_len − q_len): causal, it sees j when i >= j − offset;
// with a window, when i < j − offset + window.
template <typename T, int D_MAX>
__device__ void attention_backward_key(T* dk, T* dv, float* dbias, const T* dout, const T* q, const T* k, const T* v, const T* out,
                                       const float* lse, const float* key_mask, const float* bias, AttnShape s) {
    constexpr int PER_LANE = D_MAX / 32;
    __shared__ float qs[TILE][D_MAX + 1], dos[TILE][D_MAX + 1], kr[WARPS][D_MAX], vr[WARPS][D_MAX];
    __shared__ float tile_lse[TILE], tile_di[TILE];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim, c_all = s.heads * d;
    const int first_key = blockIdx.x * WARPS, j = first_key + warp;
    const bool live = j < s.kv_len && key_kept(key_mask, s, b, j);
    const int64_t kv_at = ((int64_t)b * s.kv_cap + j) * s.kv_stride + (int64_t)h * d;
    for (int c = lane; c < D_MAX; c += 32) {
        const bool in = live && c < d;
        kr[warp][c] = in ? to_f32(k[kv_at + c]) : 0.0f;
        vr[warp][c] = in ? to_f32(v[kv_at + c]) : 0.0f;
    }
    const int offset = s.kv_len - s.q_len;
    const int block_first_query = s.causal ? max(first_key - offset, 0) : 0;
    const int block_last_query = s.window > 0 ? max(min(s.q_len, first_key + WARPS - 1 - offset + s.window), 0) : s.q_len;
    const T* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const T* do_base = dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d;

    float dk_acc[PER_LANE], dv_acc[PER_LANE];
#pragma unroll
    for (int u = 0; u < PER_LANE; u++) dk_acc[u] = dv_acc[u] = 0.0f;
    for (int i0 = block_first_query; i0 < block_last_query; i0 += TILE) {
        __syncthreads();
        load_tile<T, D_MAX>(qs, q_base, s.q_stride, i0, s.q_len, d);
        load_tile<T, D_MAX>(dos, do_base, c_all, i0, s.q_len, d);
        // Di = dO_i·O_i for the tile's queries: warp w handles rows w, w+WARPS, …
        for (int r = warp; r < TILE; r += WARPS) {
            const int i = i0 + r;
            float di = 0.0f;
            if (i < s.q_len) {
                const int64_t o_at = ((int64_t)b * s.q_len + i) * c_all + (int64_t)h * d;
                for (int c = lane; c < d; c += 32) di += to_f32(dout[o_at + c]) * to_f32(out[o_at + c]);
            }
            di = warp_sum(di);
            if (lane == 0) {
                tile_di[r] = di;
                tile_lse[r] = i < s.q_len ? lse[((int64_t)b * s.heads + h) * s.q_len + i] : -CUDART_INF_F;
            }
        }
        __syncthreads();
        if (!live) continue;
        const int i = i0 + lane;
        float p = 0.0f, ds = 0.0f;
        if (i < s.q_len && j >= visible_begin(s, i) && j < visible_end(s, i) && tile_lse[lane] != -CUDART_INF_F) {
            float dot = 0.0f, dp = 0.0f;
            for (int c = 0; c < d; c++) {
                dot += qs[lane][c] * kr[warp][c];
                dp += dos[lane][c] * vr[warp][c];
            }
            p = expf(dot * s.scale + bias_at(bias, s, h, i, j) - tile_lse[lane]);
            ds = p * (dp - tile_di[lane]);
            if (dbias != nullptr) atomicAdd(&dbias[((int64_t)h * s.q_len + i) * s.kv_len + j], ds);
            ds *= s.scale;
        }
        for (int ii = 0; ii < TILE; ii++) {
            const float pi = __shfl_sync(0xffffffffu, p, ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
            for (int u = 0; u < PER_LANE; u++) {
                dv_acc[u] += pi * dos[ii][lane + 32 * u];
                dk_acc[u] += dsi * qs[ii][lane + 32 * u];
            }
        }
    }
    if (j >= s.kv_len) return;  // a padded key (not live) gets zeros
    T* dk_row = dk + kv_at;
    T* dv_row = dv + kv_at;
#pragma unroll
    for (int u = 0; u < PER_LANE; u++) {
        const int c = lane + 32 * u;
        if (c < d) {
            dk_row[c] = from_f32<T>(dk_acc[u]);
            dv_row[c] = from_f32<T>(dv_acc[u]);
        }
    }
}

// ---- launchers: one kernel per (op, head-dim bound, dtype) ----------------------

#define FORWARD(DM, T, S)                                                                                                    \
    extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                                 \
        attention_forward_d##DM##_##S(T* out, float* lse, const T* q, const T* k, const T* v, const float* key_mask,         \
                                      const float* bias, AttnShape s) {                                                      \
        attention_forward<T, DM>(out, lse, q, k, v, key_mask, bias, s);                                                      \
    }

#define BACKWARD(DM, T, S)                                                                                                   \
    extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                                 \
        attention_backward_query_d##DM##_##S(T* dq, const T* dout, const T* q, const T* k, const T* v, const T* out,         \
                                             const float* lse, const float* key_mask, const float* bias, AttnShape s) {      \
        attention_backward_query<T, DM>(dq, dout, q, k, v, out, lse, key_mask, bias, s);                                     \
    }                                                                                                                        \
    extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                                 \
        attention_backward_key_d##DM##_##S(T* dk, T* dv, float* dbias, const T* dout, const T* q, const T* k, const T* v,    \
                                           const T* out, const float* lse, const float* key_mask, const float* bias,         \
                                           AttnShape s) {                                                                    \
        attention_backward_key<T, DM>(dk, dv, dbias, dout, q, k, v, out, lse, key_mask, bias, s);                            \
    }

#define FOR_DIMS(M, T, S) M(32, T, S) M(64, T, S) M(128, T, S)

// The forward in both types (bf16: fewer than 16 queries under
// attn_decode=tiled); the backward in f32 only (the tensor-core kernels take
// every bf16 backward; the register-blocked ones f32 at head sizes <= 64
// unless attn_f32=warp).
FOR_DIMS(FORWARD, float, f32)
FOR_DIMS(FORWARD, bf16, bf16)
FOR_DIMS(BACKWARD, float, f32)
