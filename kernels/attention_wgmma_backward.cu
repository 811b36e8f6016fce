// The bf16 attention backward on Hopper's warpgroup tensor-core products
// (wgmma.mma_async, sm_90a; wgmma.cuh): attention_mma.cu's two passes with
// their contract (masks, local windows, additive bias and its gradient, any
// scale, strided fused buffers, q_len ≠ kv_len) for head_dim <= 64, the
// tuning alternative `attn_backward=wgmma` on sm_90 devices. Both read the
// per-query Di = Σ dO·O and lse base of attention_mma.cu's first launch.
// Other targets compile the kernels to a trap: the launcher never picks them there.
//
// A block is one warpgroup owning 64 rows (4 warps × 16, wgmma's M) and
// streams 64-row tiles of the other side through two shared buffers by
// cp.async, every operand tile in wgmma's unswizzled core-matrix layout
// (load_core_tile), so one tile serves as a K-major operand (S, dP) and as
// an MN-major one (the gradients' products):
//   query pass: S = Q·Kᵀ, dP = dO·Vᵀ (Q, dO and K, V tiles all in shared
//     memory), dS = P·(dP − Di) in registers, dQ += scale·dS·K (dS as the
//     register A operand, K MN-major);
//   key pass:   Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, then dV += Pᵀ·dO and dK +=
//     scale·dSᵀ·Q (Pᵀ and dSᵀ from registers, dO and Q MN-major); dbias gets dS.
// Operands that stay for the whole block (Q and dO, or K and V) are read
// from shared memory, not registers (wgmma.cuh: ptxas 13.0.88 takes a
// loop-invariant register A for dead after its first wgmma). Each pass takes
// its block's 48 KB of shared memory: the static limit.
// `attn_backward=wgmma_fused` runs the key pass alone, each tile's dQ =
// scale·dS·K added to f32 rows by atomics (8 KB more, dynamic, for dS).
#include "attention_backward.cuh"
#include "wgmma.cuh"

// ---- kernels ------------------------------------------------------------------

// Pass 1: grid (ceil(q_len / 64), heads, batch), 128 threads, query tiles
// last first (forward_block: under a causal mask they see the most keys).
// dq = scale·dS·K for the block's queries.
__device__ void attention_wgmma_backward_query_d64(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const float* row_di,
                                                   const float* row_lse_base, const float* key_mask, const float* bias, AttnShape s) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64, N = 64, ROWS = 64;  // head dims, keys a tile, queries a block
    alignas(128) __shared__ bf16 qs[ROWS * D];
    alignas(128) __shared__ bf16 dos[ROWS * D];
    alignas(128) __shared__ bf16 ks[2][N * D];
    alignas(128) __shared__ bf16 vs[2][N * D];
    const ForwardBlock f = forward_block<N>(k, v, s, ROWS);
    const int b = f.b, h = f.h, d = s.head_dim, q0 = f.q0, row0 = q0 + 16 * (threadIdx.x / 32);
    const int64_t c_all = (int64_t)s.heads * d;
    const bf16* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const bf16* do_base = dout + (int64_t)b * s.q_len * c_all + (int64_t)h * d;
    auto load_tile = [&](int j0) {
        const int buf = (j0 - f.begin) / N % 2;
        load_core_tile<N, D>(ks[buf], f.k_base, s.kv_stride, j0, f.end, d, f.vec);
        load_core_tile<N, D>(vs[buf], f.v_base, s.kv_stride, j0, f.end, d, f.vec);
        cp_async_commit();
    };
    if (f.begin < f.end) {  // Q and dO land with the first tile
        load_core_tile<ROWS, D>(qs, q_base, s.q_stride, q0, s.q_len, d, aligned8(q_base, s.q_stride, d));
        load_core_tile<ROWS, D>(dos, do_base, c_all, q0, s.q_len, d, aligned8(do_base, c_all, d));
        load_tile(f.begin);
    }
    float di[2], lse_base[2];
    query_row_scratch(di, lse_base, row_di, row_lse_base, s, b, h, row0);

    float acc[D / 8][4] = {};
    for (int j0 = f.begin; j0 < f.end; j0 += N) {
        await_core_tile(j0, f.end, N, load_tile);
        const int buf = (j0 - f.begin) / N % 2;
        float sc[N / 8][4], dp[N / 8][4];
        wgmma_fence();
        wgmma_rows_rows_t(sc, qs, ks[buf]);
        wgmma_rows_rows_t(dp, dos, vs[buf]);
        wgmma_commit();
        wgmma_wait<0>();
        // Every warp runs every tile (wgmma takes the whole warpgroup): scores
        // its rows do not see become probabilities of zero.
        probabilities<N>(sc, s, key_mask, bias, b, h, row0, j0, true, [&](int e, int) { return lse_base[e / 2]; });
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[n][e] *= (dp[n][e] - di[e / 2]) * s.scale;
        uint32_t ds_a[4][4];
        a_fragments(ds_a, sc);
        wgmma_fence();
        wgmma_regs_rows(acc, ds_a, ks[buf]);
        wgmma_commit();
        wgmma_wait<0>();
        __syncthreads();  // this buffer is used up before the copies of tile j0 + 2N land in it
    }
    store_rows<D>(dq + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, s.q_stride, acc, row0, s.q_len, d);
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
}

// Pass 2: grid (ceil(kv_len / 64), heads, batch), 128 threads. dk =
// scale·dSᵀ·Q and dv = Pᵀ·dO for the block's keys, streaming the query
// tiles that can see them (Q and dO by cp.async; each query's Di and lse
// base read from global memory while the scores' products run); dbias gets dS.
// FUSED (FlashAttention-2's one pass, the query pass left out): also each
// tile's dQ += scale·dS·K, with dSᵀ stored transposed to shared memory
// (8 KB of dynamic shared memory past the static 48) as the A operand and
// K read MN-major, added to the f32 sums dq_accum by atomics (their order
// varies, so dQ's last bits can vary run to run).
template <bool FUSED>
__device__ void attention_wgmma_backward_key_d64(bf16* dk, bf16* dv, float* dbias, float* dq_accum, const bf16* dout, const bf16* q, const bf16* k,
                                                 const bf16* v, const float* row_di, const float* row_lse_base, const float* key_mask, const float* bias,
                                                 AttnShape s) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64, N = 64, ROWS = 64;  // head dims, queries a tile, keys a block
    alignas(128) __shared__ bf16 ks[ROWS * D];
    alignas(128) __shared__ bf16 vs[ROWS * D];
    alignas(128) __shared__ bf16 qs[2][N * D];
    alignas(128) __shared__ bf16 dos[2][N * D];
    HHI_DYNAMIC_SHARED(dynamic);
    bf16* const ds_tile = reinterpret_cast<bf16*>(dynamic);  // FUSED: this tile's dS (N queries × 64 keys)
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const KeyBlock kb = key_block<N>(q, dout, s, ROWS);
    const int b = kb.b, h = kb.h, d = s.head_dim, k0 = kb.k0, row0 = k0 + 16 * (threadIdx.x / 32), first_query = kb.first, last_query = kb.last;
    const int64_t c_all = (int64_t)s.heads * d, kv_at = kb.kv_at;
    const bf16 *q_base = kb.q_base, *do_base = kb.do_base;
    const float* tile_di = row_di + kb.rows_at;  // this (batch, head)'s queries
    const float* tile_lse_base = row_lse_base + kb.rows_at;
    const bool vec = kb.vec;
    auto load_tile = [&](int i0) {
        const int buf = (i0 - first_query) / N % 2;
        load_core_tile<N, D>(qs[buf], q_base, s.q_stride, i0, s.q_len, d, vec);
        load_core_tile<N, D>(dos[buf], do_base, c_all, i0, s.q_len, d, vec);
        cp_async_commit();
    };
    if (first_query < last_query) {  // K and V land with the first tile
        const bool kv_vec = aligned8(k + kv_at, s.kv_stride, d) && aligned8(v + kv_at, s.kv_stride, d);
        load_core_tile<ROWS, D>(ks, k + kv_at, s.kv_stride, k0, s.kv_len, d, kv_vec);
        load_core_tile<ROWS, D>(vs, v + kv_at, s.kv_stride, k0, s.kv_len, d, kv_vec);
        load_tile(first_query);
    }

    float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
    for (int i0 = first_query; i0 < last_query; i0 += N) {
        await_core_tile(i0, last_query, N, load_tile);
        const int buf = (i0 - first_query) / N % 2;
        float sc[N / 8][4], dp[N / 8][4];  // Sᵀ, dPᵀ: 64 keys × N queries
        wgmma_fence();
        wgmma_rows_rows_t(sc, ks, qs[buf]);
        wgmma_rows_rows_t(dp, vs, dos[buf]);
        wgmma_commit();
        // This thread's query columns 8n + 2t + c: their Di and lse bases
        // (zero past q_len, where the scores are masked anyway).
        float col_di[N / 8][2], col_lse_base[N / 8][2];
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int c = 0; c < 2; c++) {
                const int i = i0 + 8 * n + 2 * t + c;
                col_di[n][c] = i < s.q_len ? tile_di[i] : 0.0f;
                col_lse_base[n][c] = i < s.q_len ? tile_lse_base[i] : 0.0f;
            }
        wgmma_wait<0>();
        probabilities<N>(sc, s, key_mask, bias, b, h, row0, i0, false, [&](int e, int col) { return col_lse_base[col / 8][e % 2]; });
#pragma unroll
        for (int n = 0; n < N / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float ds = sc[n][e] * (dp[n][e] - col_di[n][e % 2]);
                const int i = i0 + 8 * n + 2 * t + e % 2;
                if (dbias != nullptr && sc[n][e] != 0.0f) atomicAdd(&dbias[((int64_t)h * s.q_len + i) * s.kv_len + row0 + g + 8 * (e / 2)], ds);
                dp[n][e] = ds * s.scale;
            }
        uint32_t p_a[4][4], ds_a[4][4];
        a_fragments(p_a, sc);
        a_fragments(ds_a, dp);
        if constexpr (FUSED) {
            store_transposed_core_tile(ds_tile, dp);  // the last tile's dQ product was waited for (the barrier below)
            fence_shared_to_async();
            __syncthreads();  // every warp's dS rows, visible to wgmma
        }
        float dq_acc[D / 8][4];  // FUSED: the tile's dQ rows (its queries × head dims)
        wgmma_fence();
        wgmma_regs_rows(dv_acc, p_a, dos[buf]);
        wgmma_regs_rows(dk_acc, ds_a, qs[buf]);
        if constexpr (FUSED) wgmma_rows_rows(dq_acc, ds_tile, ks);
        wgmma_commit();
        wgmma_wait<0>();
        if constexpr (FUSED) {
#pragma unroll
            for (int dn = 0; dn < D / 8; dn++)
#pragma unroll
                for (int r = 0; r < 2; r++) {  // rows g and g + 8, columns c and c + 1 (past d: K's zero padding's 0)
                    const int i = i0 + 16 * (threadIdx.x / 32) + g + 8 * r, c = 8 * dn + 2 * t;
                    if (i < s.q_len && c < d) atomic_add_pair(&dq_accum[(kb.rows_at + i) * DQ_ACCUM_COLS + c], dq_acc[dn][2 * r], dq_acc[dn][2 * r + 1]);
                }
        }
        __syncthreads();  // this buffer is used up before the copies of tile i0 + 2N land in it
    }
    store_rows<D>(dk + kv_at, s.kv_stride, dk_acc, row0, s.kv_len, d);
    store_rows<D>(dv + kv_at, s.kv_stride, dv_acc, row0, s.kv_len, d);
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
}

// ---- launchers ------------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(128)
    attention_wgmma_backward_query_d64_bf16(bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const float* row_di,
                                            const float* row_lse_base, const float* key_mask, const float* bias, AttnShape s) {
    attention_wgmma_backward_query_d64(dq, dout, q, k, v, row_di, row_lse_base, key_mask, bias, s);
}
extern "C" __global__ void __launch_bounds__(128)
    attention_wgmma_backward_key_d64_bf16(bf16* dk, bf16* dv, float* dbias, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                                          const float* row_di, const float* row_lse_base, const float* key_mask, const float* bias, AttnShape s) {
    attention_wgmma_backward_key_d64<false>(dk, dv, dbias, nullptr, dout, q, k, v, row_di, row_lse_base, key_mask, bias, s);
}
// The one-pass backward (`attn_backward=wgmma_fused`): dK and dV, and dQ's
// sums in dq_accum (pass 0 zeroes them; attention_backward_store_dq rounds
// them into dQ); 8 KB of dynamic shared memory.
extern "C" __global__ void __launch_bounds__(128)
    attention_wgmma_backward_fused_d64_bf16(bf16* dk, bf16* dv, float* dbias, float* dq_accum, const bf16* dout, const bf16* q, const bf16* k,
                                            const bf16* v, const float* row_di, const float* row_lse_base, const float* key_mask, const float* bias,
                                            AttnShape s) {
    attention_wgmma_backward_key_d64<true>(dk, dv, dbias, dq_accum, dout, q, k, v, row_di, row_lse_base, key_mask, bias, s);
}
