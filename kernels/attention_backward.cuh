// The pieces of the tensor-core attention backward that attention_mma.cu
// (mma.sync) and attention_wgmma_backward.cu (Hopper's wgmma) share: a
// 16-row tile of scores, in mma's accumulator layout (mma.cuh), turned into
// probabilities by each query's lse, and a 16 × D accumulator stored as
// bf16 rows. Both take the same per-query scratch (Di = Σ dO·O and the
// lse's exponent base) from attention_mma.cu's first launch.
#pragma once
#include "attention_forward.cuh"

// The fused backward's dQ sums (f32, added to by every key block that a
// query sees): DQ_ACCUM_COLS a query row (head_dim <= 64), rows ordered as
// the per-query scratch ([batch, heads, q_len]).
#define DQ_ACCUM_COLS 64

// p[0] += a and p[1] += b (p 8-byte aligned): one atomic on sm_90
// (red.global.add.v2.f32), two before.
__device__ __forceinline__ void atomic_add_pair(float* p, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(p), "f"(a), "f"(b) : "memory");
#else
#ifdef HHI_EMULATE
    emu::check_aligned(p, 8, "atomic_add_pair at");
#endif
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
#endif
}

// Scores of a 16-row × N tile (accumulators of dot products, rows `row0` …
// of one side, columns `col0` … of the other) → probabilities exp2(score − lse),
// in place; `lse_base` gives each element's exp_base of its query's lse in
// log2 units. `queries_are_rows`: the rows are queries (dQ pass), or keys (dK/dV pass).
template <int N, typename LseBase>
__device__ __forceinline__ void probabilities(float (*sc)[4], const AttnShape& s, const float* key_mask, const float* bias, int b, int h, int row0, int col0,
                                              bool queries_are_rows, LseBase&& lse_base) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    const bool plain = queries_are_rows ? all_visible(s, key_mask, bias, row0, row0 + 15, col0, col0 + N - 1)
                                        : all_visible(s, key_mask, bias, col0, col0 + N - 1, row0, row0 + 15);
    const float scale_log2 = s.scale * LOG2E;
    if (plain) {
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[n][e] = fast_exp2(fmaf(sc[n][e], scale_log2, -lse_base(e, 8 * n + 2 * t + e % 2)));
        return;
    }
#pragma unroll
    for (int n = 0; n < N / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int row = row0 + g + 8 * (e / 2), col = col0 + 8 * n + 2 * t + e % 2;
            const float x = queries_are_rows ? masked_score(sc[n][e], key_mask, bias, s, b, h, row, col) : masked_score(sc[n][e], key_mask, bias, s, b, h, col, row);
            sc[n][e] = fast_exp2(LOG2E * x - lse_base(e, 8 * n + 2 * t + e % 2));
        }
}

// Stores a 16 × D accumulator in rows row0 … of a strided bf16 matrix (columns < d).
template <int D>
__device__ void store_rows(bf16* base, int64_t stride, const float (*acc)[4], int row0, int limit, int d) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int r = row0 + g + 8 * (e / 2), c = 8 * dn + 2 * t + e % 2;
            if (r < limit && c < d) {
                base[(int64_t)r * stride + c] = __float2bfloat16(acc[dn][e]);
            }
        }
    }
}

// The first launch's Di and lse base of this thread's query rows row0 + g
// and row0 + g + 8 (g = lane / 4, mma's accumulator rows) of (batch b,
// head h); zeros for rows past q_len.
__device__ __forceinline__ void query_row_scratch(float (&di)[2], float (&lse_base)[2], const float* row_di, const float* row_lse_base, const AttnShape& s,
                                                  int b, int h, int row0) {
    const int g = threadIdx.x % 32 / 4;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = row0 + g + 8 * r;
        const int64_t at = ((int64_t)b * s.heads + h) * s.q_len + i;
        di[r] = i < s.q_len ? row_di[at] : 0.0f;
        lse_base[r] = i < s.q_len ? row_lse_base[at] : 0.0f;
    }
}

// Where a key block of the dK/dV pass works (grid (key tiles, heads,
// batch)): its batch and head, its first key k0, the offset of its (batch,
// head)'s K and V rows, its Q and dO, the offset of its queries' Di and lse
// bases, whether Q and dO allow 16-byte loads, and the queries [first,
// last) that may see one of its `rows` keys, first rounded down to a tile of N.
struct KeyBlock {
    int b, h, k0, first, last;
    int64_t kv_at, rows_at;
    const bf16 *q_base, *do_base;
    bool vec;
};
template <int N>
__device__ __forceinline__ KeyBlock key_block(const bf16* q, const bf16* dout, const AttnShape& s, int rows) {
    const int b = blockIdx.z, h = blockIdx.y, d = s.head_dim, k0 = blockIdx.x * rows;
    const int64_t c_all = (int64_t)s.heads * d;
    const bf16* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const bf16* do_base = dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d;
    // Query i sits at position offset + i.
    const int offset = s.kv_len - s.q_len;
    const int first = s.causal ? max(k0 - offset, 0) / N * N : 0;
    const int last = s.window > 0 ? max(min(s.q_len, k0 + rows - 1 - offset + s.window), 0) : s.q_len;
    return KeyBlock{b,
                    h,
                    k0,
                    first,
                    last,
                    (int64_t)b * s.kv_cap * s.kv_stride + (int64_t)h * d,
                    ((int64_t)b * s.heads + h) * s.q_len,
                    q_base,
                    do_base,
                    aligned8(q_base, s.q_stride, d) && aligned8(do_base, c_all, d)};
}
