// The bf16 attention forward on Hopper's warpgroup tensor-core products
// (wgmma.mma_async, sm_90a; wgmma.cuh): the contract of attention_mma.cu's
// forward (masks, local windows, additive bias, any scale, strided fused
// QKV buffers, q_len ≠ kv_len) for head_dim <= 64, the tuning alternative
// `attn_forward=wgmma` on sm_90 devices. Other targets compile the kernel
// to a trap: the launcher never picks it there.
//
// A block is one or two warpgroups (each 4 warps × 16 query rows = wgmma's
// M of 64; two share each K/V tile, halving the loads a query). Per tile of
// 64 keys: S = Q·Kᵀ as 4 wgmma m64n64k16 (the block's Q tile,
// loaded once, and the K tile, both K-major in shared memory), the online
// softmax on S in registers (attention_forward.cuh, as attention_mma.cu's),
// then O += P·V as 4 more (P's accumulators repacked as A fragments; the V
// tile MN-major). K and V tiles stream through two buffers by cp.async, the
// next tile landing while the block computes on this one, in wgmma's
// unswizzled layout of 128-byte core matrices.
#include "attention_forward.cuh"
#include "wgmma.cuh"

// ---- kernels ------------------------------------------------------------------

// grid (ceil(q_len / (64·WG)), heads, batch), 128·WG threads; out [batch,
// q_len, heads·d], lse [batch, heads, q_len]; query tiles last first
// (forward_block).
template <int WG>
__device__ void attention_wgmma_forward_d64(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const float* key_mask, const float* bias,
                                            AttnShape s) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64, N = 64, ROWS = 64 * WG;  // head dims, keys a tile, queries a block
    alignas(128) __shared__ bf16 qs[ROWS * D];      // 8 or 16 KB; with K and V, 40 or 48 KB
    alignas(128) __shared__ bf16 ks[2][N * D];
    alignas(128) __shared__ bf16 vs[2][N * D];
    const int warp = threadIdx.x / 32;
    const bf16* q_tile = qs + (warp / 4) * 64 * D;  // the warpgroup's 64 rows
    const ForwardBlock f = forward_block<N>(k, v, s, ROWS);
    const int b = f.b, h = f.h, d = s.head_dim, q0 = f.q0, block_begin = f.begin, block_end = f.end, row0 = q0 + 16 * warp;
    const bf16 *q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d, *k_base = f.k_base, *v_base = f.v_base;
    const bool vec = f.vec;
    const float scale_log2 = s.scale * LOG2E;

    // Tile j0 of the block's keys goes to buffer (j0 − block_begin) / N % 2.
    auto load_tile = [&](int j0) {
        const int buf = (j0 - block_begin) / N % 2;
        load_core_tile<N, D>(ks[buf], k_base, s.kv_stride, j0, block_end, d, vec);
        load_core_tile<N, D>(vs[buf], v_base, s.kv_stride, j0, block_end, d, vec);
        cp_async_commit();
    };
    if (block_begin < block_end) {
        load_core_tile<ROWS, D>(qs, q_base, s.q_stride, q0, s.q_len, d, aligned8(q_base, s.q_stride, d));  // lands with the first tile
        load_tile(block_begin);
    }
    // Running max m and sum l of rows g and g + 8, in log2 units.
    float o[D / 8][4] = {}, m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.0f, 0.0f};
    for (int j0 = block_begin; j0 < block_end; j0 += N) {
        await_core_tile(j0, block_end, N, load_tile);
        const int buf = (j0 - block_begin) / N % 2;

        // S = Q·Kᵀ (the warpgroup's Q rows and the K tile).
        float sc[N / 8][4];
        wgmma_fence();
        wgmma_rows_rows_t(sc, q_tile, ks[buf]);
        wgmma_commit();
        wgmma_wait<0>();
        // Every warp runs every tile (wgmma takes the whole warpgroup): a
        // warp's rows that see none of its keys get probabilities of zero.
        online_softmax_step<N, D>(sc, m, l, o, tile_kind(s, key_mask, bias, row0, j0, N), scale_log2, key_mask, bias, s, b, h, row0, j0);

        // O += P·V (P's fragments, the V tile read MN-major).
        uint32_t pa[N / 16][4];
        a_fragments(pa, sc);
        wgmma_fence();
        wgmma_regs_rows(o, pa, vs[buf]);
        wgmma_commit();
        wgmma_wait<0>();
        __syncthreads();  // both tiles used up before the copies of tile j0 + 2N land in this buffer
    }
    store_forward_rows<D>(out, lse, o, m, l, s, b, h, row0);
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
}

// The one-warpgroup forward with P·V overlapped (FlashAttention-3's
// intra-warpgroup pipelining): tile t's S = Q·Kᵀ and tile t − 1's O += P·V
// are issued together, the wait returns once S is done, and tile t's
// softmax runs while P·V still adds into O; then O takes the new max's
// correction and P_t waits in registers for the next tile's products. The
// V tile of P·V is read one tile later, so V streams through three buffers
// (K through two): 8 + 16 + 24 KB of shared memory.
__device__ void attention_wgmma_forward_overlap_d64(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const float* key_mask,
                                                    const float* bias, AttnShape s) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64, N = 64, ROWS = 64;  // head dims, keys a tile, queries a block
    alignas(128) __shared__ bf16 qs[ROWS * D];
    alignas(128) __shared__ bf16 ks[2][N * D];
    alignas(128) __shared__ bf16 vs[3][N * D];
    const ForwardBlock f = forward_block<N>(k, v, s, ROWS);
    const int b = f.b, h = f.h, d = s.head_dim, q0 = f.q0, row0 = q0 + 16 * (threadIdx.x / 32);
    const bf16* q_base = q + (int64_t)b * s.q_len * s.q_stride + (int64_t)h * d;
    const float scale_log2 = s.scale * LOG2E;

    // Tile t (keys f.begin + N·t …): K to buffer t % 2, V to buffer t % 3.
    // Its copies, issued as tile t − 1 starts, overwrite K of tile t − 2 and
    // V of tile t − 3, whose products (S, P·V) were waited for in tile
    // t − 2 (a product is the warpgroup's: done for one warp, done for all).
    auto load_tile = [&](int j0) {
        const int t = (j0 - f.begin) / N;
        load_core_tile<N, D>(ks[t % 2], f.k_base, s.kv_stride, j0, f.end, d, f.vec);
        load_core_tile<N, D>(vs[t % 3], f.v_base, s.kv_stride, j0, f.end, d, f.vec);
        cp_async_commit();
    };
    if (f.begin < f.end) {
        load_core_tile<ROWS, D>(qs, q_base, s.q_stride, q0, s.q_len, d, aligned8(q_base, s.q_stride, d));  // lands with the first tile
        load_tile(f.begin);
    }
    float o[D / 8][4] = {}, m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.0f, 0.0f};
    uint32_t pa[N / 16][4] = {};  // the previous tile's probabilities, for its P·V
    for (int j0 = f.begin; j0 < f.end; j0 += N) {
        const int t = (j0 - f.begin) / N;
        await_core_tile(j0, f.end, N, load_tile);
        const bf16* v_prev = vs[(t + 2 * (t > 0)) % 3];  // tile t − 1's V (this one's in the first: no branch)
        float sc[N / 8][4];
        wgmma_fence();
        wgmma_rows_rows_t(sc, qs, ks[t % 2]);
        wgmma_commit();
        // The previous tile's P·V (in the first tile, zeros times this V: no
        // branch around a wgmma, which ptxas fences again and waits for S at).
        wgmma_regs_rows(o, pa, v_prev);
        wgmma_commit();
        wgmma_wait<1>();  // S is done; the previous tile's P·V may still run
        float correction[2];
        online_softmax_tile<N>(sc, m, l, correction, tile_kind(s, key_mask, bias, row0, j0, N), scale_log2, key_mask, bias, s, b, h, row0, j0);
        wgmma_wait<0>();  // the previous P·V is in O
        rescale_rows<D>(o, correction);
        a_fragments(pa, sc);
    }
    if (f.begin < f.end) {  // the last tile's P·V
        const int t = (f.end - 1 - f.begin) / N;
        wgmma_fence();
        wgmma_regs_rows(o, pa, vs[t % 3]);
        wgmma_commit();
        wgmma_wait<0>();
    }
    store_forward_rows<D>(out, lse, o, m, l, s, b, h, row0);
#elif defined(__CUDA_ARCH__)
    __trap();
#endif
}

// ---- launchers ------------------------------------------------------------------

// One warpgroup a block (`_d64_`: 130 registers, 3 blocks an SM), or two
// (`_2wg_d64_`: registers capped at 128 for 2 blocks an SM, 52 bytes spilled).
extern "C" __global__ void __launch_bounds__(128) attention_wgmma_forward_d64_bf16(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                                                                   const float* key_mask, const float* bias, AttnShape s) {
    attention_wgmma_forward_d64<1>(out, lse, q, k, v, key_mask, bias, s);
}
extern "C" __global__ void __launch_bounds__(256, 2) attention_wgmma_forward_2wg_d64_bf16(bf16* out, float* lse, const bf16* q, const bf16* k,
                                                                                       const bf16* v, const float* key_mask, const float* bias,
                                                                                       AttnShape s) {
    attention_wgmma_forward_d64<2>(out, lse, q, k, v, key_mask, bias, s);
}
// One warpgroup with P·V overlapping the next tile's softmax.
extern "C" __global__ void __launch_bounds__(128) attention_wgmma_forward_overlap_d64_bf16(bf16* out, float* lse, const bf16* q, const bf16* k,
                                                                                           const bf16* v, const float* key_mask, const float* bias,
                                                                                           AttnShape s) {
    attention_wgmma_forward_overlap_d64(out, lse, q, k, v, key_mask, bias, s);
}
