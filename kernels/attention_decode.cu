// Attention for a few queries against many keys (decoding steps: one new
// token a sequence against its KV cache), split over the keys
// (FlashDecoding's scheme). The same contract as attention.cu's forward
// (masks, local windows, additive bias, any scale, strided KV caches), for
// q_len < 16, where a query-tiled kernel leaves most of a block idle and one
// block reads a (batch, head)'s whole cache alone.
//
// A block takes one query of one (batch, head) and one chunk of the keys it
// sees, and streams them straight from global memory: 4 warps, each lane
// group of 8 lanes one key at a time (4 keys a warp, 16 a block in flight),
// each lane a D/8-wide slice of the head, in 16-byte loads where aligned.
// A group keeps its own online softmax (running max m, sum l, weighted V
// sum); groups and then warps merge theirs. With one chunk the block writes
// the output and lse; with several it writes its unnormalised (m, l, acc)
// and a second launch merges the chunks of each query.
//
// Scores are in natural units with expf, as attention.cu's forward, whose
// results these match up to summation order.
#include "attention_shape.cuh"

#define DECODE_WARPS 4
#define GROUP 8                                  // lanes a key
#define KEYS_AT_ONCE (DECODE_WARPS * 32 / GROUP)  // keys a block reads a step

// Lanes g·GROUP … of a group hold dims [E·(lane % GROUP), +E) of a D-wide row:
// a row's slice as floats, zero past d; 16-byte packs when PACKED (d == D
// and every row 16-byte aligned).
template <typename T, int E, bool PACKED>
__device__ __forceinline__ void load_slice(float (&x)[E], const T* row, int c0, int d) {
    if constexpr (PACKED) {
        constexpr int V = VEC<T>;
        static_assert(E % V == 0, "a vector slice is whole 16-byte packs");
#pragma unroll
        for (int p = 0; p < E / V; p++) {
            const Pack<T, V> pack = load_pack<T, V>(row + c0 + p * V);
#pragma unroll
            for (int k = 0; k < V; k++) x[p * V + k] = pack[k];
        }
    } else {
#pragma unroll
        for (int e = 0; e < E; e++) x[e] = c0 + e < d ? to_f32(row[c0 + e]) : 0.0f;
    }
}

// Merges softmax state (m2, l2, acc2) into (m, l, acc): both rescaled to the
// larger max. A state that saw no key has m = −∞ and l = acc = 0.
template <int E>
__device__ __forceinline__ void merge_state(float& m, float& l, float (&acc)[E], float m2, float l2, const float (&acc2)[E]) {
    const float m_new = fmaxf(m, m2);
    const float a = m == -CUDART_INF_F ? 0.0f : expf(m - m_new);
    const float b = m2 == -CUDART_INF_F ? 0.0f : expf(m2 - m_new);
    l = l * a + l2 * b;
#pragma unroll
    for (int e = 0; e < E; e++) acc[e] = acc[e] * a + acc2[e] * b;
    m = m_new;
}

// Where the final state of query (b, h, i) goes: with one chunk the output
// row and lse; with several, the chunk's slot of the partial states.
__device__ __forceinline__ int64_t query_row(const AttnShape& s, int b, int h, int i) { return ((int64_t)b * s.heads + h) * s.q_len + i; }

// ---- kernels ------------------------------------------------------------------

// grid (q_len · chunks, heads, batch), DECODE_WARPS warps. Chunk `part` of
// query i's visible keys: [begin + part·chunk, min(begin + (part+1)·chunk, end)).
// part_ml [rows, chunks, 2] and part_acc [rows, chunks, D] (rows as lse's)
// take the chunk's state when there are several.
template <typename T, int D, bool PACKED>
__device__ void attention_decode(T* out, float* lse, float* part_ml, float* part_acc, const T* q, const T* k, const T* v, const float* key_mask,
                                 const float* bias, AttnShape s, int chunks, int chunk) {
    constexpr int E = D / GROUP;
    __shared__ float warp_m[DECODE_WARPS], warp_l[DECODE_WARPS], warp_acc[DECODE_WARPS][D];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, slot = threadIdx.x / GROUP, c0 = E * (lane % GROUP);
    const int b = blockIdx.z, h = blockIdx.y, i = blockIdx.x / chunks, part = blockIdx.x % chunks, d = s.head_dim;
    const int visible = visible_begin(s, i), visible_stop = visible_end(s, i);
    const int begin = min(visible + part * chunk, visible_stop), end = min(begin + chunk, visible_stop);

    float qx[E];
    load_slice<T, E, PACKED>(qx, q + ((int64_t)b * s.q_len + i) * s.q_stride + (int64_t)h * d, c0, d);
    const T* k_base = k + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;
    const T* v_base = v + (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d;

    float m = -CUDART_INF_F, l = 0.0f, acc[E];
#pragma unroll
    for (int e = 0; e < E; e++) acc[e] = 0.0f;
    // Every lane of a group runs the same iterations (the shuffles need the
    // whole warp), keys past `end` or masked scoring −∞.
    for (int j0 = begin; j0 < end; j0 += KEYS_AT_ONCE) {
        const int j = j0 + slot;
        const bool live = j < end && key_kept(key_mask, s, b, j);
        float vx[E], dot = 0.0f;
        if (live) {
            float kx[E];
            load_slice<T, E, PACKED>(kx, k_base + (int64_t)j * s.kv_stride, c0, d);
            load_slice<T, E, PACKED>(vx, v_base + (int64_t)j * s.kv_stride, c0, d);
#pragma unroll
            for (int e = 0; e < E; e++) dot += qx[e] * kx[e];
        }
        for (int o = 1; o < GROUP; o <<= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        const float score = live ? dot * s.scale + bias_at(bias, s, h, i, j) : -CUDART_INF_F;
        if (score == -CUDART_INF_F) continue;  // hidden (a −∞ bias too): weight 0
        if (score > m) {  // a new max: what came before shrinks by exp(m − score)
            const float shrink = m == -CUDART_INF_F ? 0.0f : expf(m - score);
            l *= shrink;
#pragma unroll
            for (int e = 0; e < E; e++) acc[e] *= shrink;
            m = score;
        }
        const float p = expf(score - m);
        l += p;
#pragma unroll
        for (int e = 0; e < E; e++) acc[e] += p * vx[e];
    }
    // The warp's 4 groups, then the block's warps, into one state.
    for (int o = GROUP; o < 32; o <<= 1) {
        float other[E];
#pragma unroll
        for (int e = 0; e < E; e++) other[e] = __shfl_xor_sync(0xffffffffu, acc[e], o);
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
        merge_state<E>(m, l, acc, m2, l2, other);
    }
    if (lane < GROUP) {
#pragma unroll
        for (int e = 0; e < E; e++) warp_acc[warp][c0 + e] = acc[e];
        if (lane == 0) warp_m[warp] = m, warp_l[warp] = l;
    }
    __syncthreads();
    if (warp != 0 || lane >= GROUP) return;
    for (int w = 1; w < DECODE_WARPS; w++) {
        float other[E];
#pragma unroll
        for (int e = 0; e < E; e++) other[e] = warp_acc[w][c0 + e];
        merge_state<E>(m, l, acc, warp_m[w], warp_l[w], other);
    }
    const int64_t row = query_row(s, b, h, i);
    if (chunks == 1) {
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        T* o = out + ((int64_t)b * s.q_len + i) * ((int64_t)s.heads * d) + (int64_t)h * d;
#pragma unroll
        for (int e = 0; e < E; e++)
            if (c0 + e < d) o[c0 + e] = from_f32<T>(acc[e] * inv);
        if (lane == 0) lse[row] = l > 0.0f ? m + logf(l) : -CUDART_INF_F;
    } else {
        const int64_t at = row * chunks + part;
#pragma unroll
        for (int e = 0; e < E; e++) part_acc[at * D + c0 + e] = acc[e];
        if (lane == 0) part_ml[2 * at] = m, part_ml[2 * at + 1] = l;
    }
}

// grid (rows), D threads: query row's chunks merged (each weighted by
// exp(m_chunk − max)), normalised, written as the output row and its lse.
template <typename T, int D>
__device__ void attention_decode_merge(T* out, float* lse, const float* part_ml, const float* part_acc, AttnShape s, int chunks) {
    const int64_t row = blockIdx.x;
    const int c = threadIdx.x, i = (int)(row % s.q_len), h = (int)(row / s.q_len % s.heads), b = (int)(row / s.q_len / s.heads);
    const float* ml = part_ml + 2 * row * chunks;
    float m = -CUDART_INF_F;
    for (int p = 0; p < chunks; p++) m = fmaxf(m, ml[2 * p]);
    float l = 0.0f, acc = 0.0f;
    if (m != -CUDART_INF_F) {
        for (int p = 0; p < chunks; p++) {
            if (ml[2 * p] == -CUDART_INF_F) continue;
            const float w = expf(ml[2 * p] - m);
            l += w * ml[2 * p + 1];
            acc += w * part_acc[(row * chunks + p) * D + c];
        }
    }
    if (c < s.head_dim) out[((int64_t)b * s.q_len + i) * ((int64_t)s.heads * s.head_dim) + (int64_t)h * s.head_dim + c] = from_f32<T>(l > 0.0f ? acc / l : 0.0f);
    if (c == 0) lse[row] = l > 0.0f ? m + logf(l) : -CUDART_INF_F;
}

// ---- launchers: per (head-dim bound, dtype), the chunk kernel with scalar
// and (where a lane's slice is whole 16-byte packs) vector loads --------------

#define DECODE_FOR(DM, T, S, VEC_NAME, PACKED)                                                                     \
    extern "C" __global__ void __launch_bounds__(DECODE_WARPS * 32)                                                \
        attention_decode##VEC_NAME##_d##DM##_##S(T* out, float* lse, float* part_ml, float* part_acc, const T* q,  \
                                                 const T* k, const T* v, const float* key_mask, const float* bias, \
                                                 AttnShape s, int chunks, int chunk) {                             \
        attention_decode<T, DM, PACKED>(out, lse, part_ml, part_acc, q, k, v, key_mask, bias, s, chunks, chunk);   \
    }

#define MERGE_FOR(DM, T, S)                                                                                              \
    extern "C" __global__ void __launch_bounds__(DM)                                                                     \
        attention_decode_merge_d##DM##_##S(T* out, float* lse, const float* part_ml, const float* part_acc, AttnShape s, \
                                           int chunks) {                                                                 \
        attention_decode_merge<T, DM>(out, lse, part_ml, part_acc, s, chunks);                                           \
    }

#define FOR_DTYPE(T, S)                                                                        \
    DECODE_FOR(32, T, S, , false) DECODE_FOR(64, T, S, , false) DECODE_FOR(128, T, S, , false) \
    DECODE_FOR(64, T, S, _vec, true) DECODE_FOR(128, T, S, _vec, true)                         \
    MERGE_FOR(32, T, S) MERGE_FOR(64, T, S) MERGE_FOR(128, T, S)

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)
