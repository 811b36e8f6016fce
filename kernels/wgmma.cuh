// Hopper's warpgroup tensor-core products (PTX wgmma.mma_async, sm_90a
// only): the four warps of a warpgroup (128 threads) issue D = A·B (+ D)
// for a 64 × N × 16 product as one asynchronous operation; `wgmma_commit`
// closes a group of them and `wgmma_wait<n>` returns once at most n groups
// are still running. A is in registers here, each warp holding 16 of the 64
// rows in mma.sync's m16n8k16 A layout (mma.cuh), or in shared memory
// (K-major, as B below with M for N); D is N/8 accumulator
// tiles a thread, each in mma.sync's 16 × 8 C layout, warp w holding rows
// 16w … 16w + 15 (PTX ISA, "Matrix Fragments for wgmma.mma_async.m64nNk16").
// So S = Q·Kᵀ's accumulator turns into P·V's A operand in registers, as
// attention_mma.cu does with mma.sync.
//
// B is read from shared memory through a 64-bit matrix descriptor: its
// start address, a leading-dimension byte offset (LBO), a stride-dimension
// byte offset (SBO) and a swizzle mode, here always none ("interleaved").
// Without swizzling the operand is made of core matrices of 8 rows of 16
// bytes, each core matrix 128 contiguous bytes (PTX ISA, "Shared Memory
// Matrix Layout", canonical layouts ((8,m),(T,2k)):((1T,SBO),(1,LBO)) for
// K-major and ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO)) for MN-major, T = 8 bf16):
//   K-major B (trans_b = 0; B[k][n] for n's row of k values, as Kᵀ's K):
//     element (k, n) at (n/8)·SBO + (k/8)·LBO + (n%8)·16 + (k%8)·2 bytes;
//   MN-major B (trans_b = 1; n contiguous, as V's rows):
//     element (k, n) at (n/8)·SBO + (k/8)·LBO + (k%8)·16 + (n%8)·2 bytes.
// So SBO steps along N and LBO along K in both. Shared memory written by
// ordinary stores or cp.async must be made visible to wgmma's reads (the
// "async proxy") by `fence_shared_to_async` before the barrier that
// publishes it. The emulator (emulator/emulate.h) implements the same
// fragments and descriptors from this description. `load_core_tile` below
// fills such operand tiles from strided rows.
#pragma once
#include "mma.cuh"

// Whether this compilation can issue wgmma: the sm_90a device pass, or the emulator.
#if defined(HHI_EMULATE) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define HHI_HAS_WGMMA 1
#endif

// A shared-memory matrix descriptor (the emulator also keeps the pointer).
struct SmemDesc {
    uint64_t bits;
#ifdef HHI_EMULATE
    const void* at;
#endif
};

// The descriptor's bit fields: (x & 0x3FFFF) >> 4 of the start address
// (bits 0-13), of LBO (16-29) and of SBO (32-45); base offset 0 and swizzle
// mode 0 (none).
__device__ __forceinline__ uint64_t smem_desc_bits(uint32_t address, uint32_t lbo, uint32_t sbo) {
    auto field = [](uint32_t x) { return (uint64_t)((x & 0x3FFFF) >> 4); };
    return field(address) | field(lbo) << 16 | field(sbo) << 32;
}

#ifdef HHI_HAS_WGMMA
#ifndef HHI_EMULATE
__device__ __forceinline__ SmemDesc smem_desc(const bf16* tile, uint32_t lbo, uint32_t sbo) {
    return SmemDesc{smem_desc_bits((uint32_t)__cvta_generic_to_shared(tile), lbo, sbo)};
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void fence_shared_to_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// d (64 × 64 f32, 8 tiles a thread) = a (64 × 16 bf16, registers) · b (16 ×
// 64 bf16, shared memory; MN-major when TRANS_B) + d where scale_d, else without d.
// (ptxas 13.0.88 treats a register A as dead after its first wgmma: one
// that stays live across a loop's iterations, Q's fragments in the
// attention forward, had its registers reused inside the loop, as P's
// fragments among others. Neither an empty asm touching it each iteration
// nor an XOR with a zero ptxas could fold or hoist kept it apart (SASS):
// keep such operands in shared memory, `wgmma_m64n64k16_ss`.)
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[8][4], const uint32_t (&a)[4], SmemDesc b, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %38, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p, 1, 1, %37;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]),
          "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),
          "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]),
          "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b.bits), "n"(TRANS_B), "r"(scale_d));
}

// The same with a (64 × 16, K-major) in shared memory too.
template <int TRANS_B>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[8][4], SmemDesc a, SmemDesc b, int scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "%32, %33, p, 1, 1, 0, %35;\n}\n"
        : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]),
          "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),
          "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]),
          "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
        : "l"(a.bits), "l"(b.bits), "r"(scale_d), "n"(TRANS_B));
}
#else  // the emulator's (emulator/launch.cpp does the work)
inline SmemDesc smem_desc(const bf16* tile, uint32_t lbo, uint32_t sbo) { return SmemDesc{smem_desc_bits(emu::shared_address(tile), lbo, sbo), tile}; }
inline void wgmma_fence() { emu::wgmma_fence(); }
inline void wgmma_commit() { emu::wgmma_commit_group(); }
template <int N>
inline void wgmma_wait() {
    emu::wgmma_complete_all_but(N);
}
inline void fence_shared_to_async() { emu::fence_shared_to_async(); }
template <int TRANS_B>
inline void wgmma_m64n64k16(float (&d)[8][4], const uint32_t (&a)[4], SmemDesc b, int scale_d) {
    emu::wgmma_issue(64, a, {}, {b.bits, b.at}, TRANS_B != 0, scale_d != 0, &d[0][0]);
}
template <int TRANS_B>
inline void wgmma_m64n64k16_ss(float (&d)[8][4], SmemDesc a, SmemDesc b, int scale_d) {
    emu::wgmma_issue(64, nullptr, {a.bits, a.at}, {b.bits, b.at}, TRANS_B != 0, scale_d != 0, &d[0][0]);
}
#endif
#endif

// Rows [first, first + N) of a strided [rows, d] bf16 matrix into an
// unswizzled wgmma operand tile: the 16 bytes of row r, columns 8c … 8c + 7
// go to element ((r/8)·(D/8) + c)·64 + (r%8)·8, so each 8 × 8 core matrix
// is 128 contiguous bytes and an 8-row group's D/8 of them follow one
// another. One tile reads both ways: K-major (LBO 128 bytes, SBO 16·D; its
// rows as a product's M or N, its columns as K: Q and K in S = Q·Kᵀ) and
// MN-major (LBO 16·D, SBO 128; rows as K, columns as N: V in P·V).
// Consecutive threads fill consecutive 16 bytes. Zero past `limit` and
// past column d; cp.async where `vec` (d, the stride and the base
// multiples of 8 values; the caller commits, waits and fences).
template <int N, int D>
__device__ void load_core_tile(bf16* tile, const bf16* base, int64_t stride, int first, int limit, int d, bool vec) {
    constexpr int CHUNKS = D / 8;
    for (int e = threadIdx.x; e < N * CHUNKS; e += blockDim.x) {
        const int r = e / (8 * CHUNKS) * 8 + e % 8, c = e / 8 % CHUNKS * 8, row = first + r;
        const bf16* src = base + (int64_t)row * stride + c;
        bf16* dst = tile + 8 * e;
        if (vec && row < limit && c < d) {
            cp_async16(dst, src);
        } else {
            alignas(16) bf16 v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = (row < limit && c + u < d) ? src[u] : __float2bfloat16(0.0f);
            copy16(dst, v);
        }
    }
}

// await_tile (cp_async.cuh) for tiles wgmma reads: every thread's copies
// and zeros made visible to wgmma's reads (the async proxy) before the barrier.
template <typename Load>
__device__ __forceinline__ void await_core_tile(int at, int end, int step, Load&& load) {
    await_tile(at, end, step, load, [] { fence_shared_to_async(); });
}

// A fragments (64 × 64, 4 chunks of 16 columns) of p's mma accumulator
// tiles, rounded to bf16: a register A operand (write them before the
// wgmma_fence that precedes its products, else ptxas fences again: C7519).
__device__ __forceinline__ void a_fragments(uint32_t (&a)[4][4], const float (&p)[8][4]) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++) a_fragment(a[kk], p, kk);
}

// acc (64 × 64) = a · bᵀ, a and b 64 rows × 64 columns (load_core_tile's
// tiles, read K-major): 4 products over columns 16kk … 16kk + 15 (two core
// matrices of each row), issued, not waited for. (S = Q·Kᵀ in the forward.)
__device__ __forceinline__ void wgmma_rows_rows_t(float (&acc)[8][4], const bf16* a, const bf16* b) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) wgmma_m64n64k16_ss<0>(acc, smem_desc(a + 128 * kk, 128, 16 * D), smem_desc(b + 128 * kk, 128, 16 * D), kk > 0);
#endif
}

// acc (64 × 64) += a (64 × 64, A fragments) · b (64 rows × 64 columns, read
// MN-major): 4 products over b's rows 16kk … 16kk + 15, issued, not waited
// for (P·V in the forward). The fragments are written before the
// wgmma_fence that precedes this (else ptxas fences again: C7519).
__device__ __forceinline__ void wgmma_regs_rows(float (&acc)[8][4], const uint32_t (&a)[4][4], const bf16* b) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64;
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wgmma_m64n64k16<1>(acc, a[kk], smem_desc(b + 16 * D * kk, 16 * D, 128), 1);
#endif
}

// acc (64 × 64) = a · b, a 64 rows × 64 columns read K-major (its columns
// as K) and b 64 rows × 64 columns read MN-major (its rows as K): 4
// products over a's columns and b's rows 16kk … 16kk + 15, issued, not
// waited for (dQ = dS·K in the fused backward).
__device__ __forceinline__ void wgmma_rows_rows(float (&acc)[8][4], const bf16* a, const bf16* b) {
#ifdef HHI_HAS_WGMMA
    constexpr int D = 64;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) wgmma_m64n64k16_ss<1>(acc, smem_desc(a + 128 * kk, 128, 16 * D), smem_desc(b + 16 * D * kk, 16 * D, 128), kk > 0);
#endif
}

// The warpgroup's 64 × 64 accumulators x (thread's rows 16w + g + 8(e/2),
// columns 8n + 2t + e%2), rounded to bf16 and transposed into a
// load_core_tile tile: x's column c becomes the tile's row c. A warp's
// store of one (n, e) covers 32 two-byte slots of one 128-byte core matrix
// row group: no bank conflicts.
__device__ __forceinline__ void store_transposed_core_tile(bf16* tile, const float (&x)[8][4]) {
    constexpr int CHUNKS = 8;  // 16-byte chunks a tile row (64 columns)
    const int w = threadIdx.x / 32 % 4, g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int r = 8 * n + 2 * t + e % 2, c = 16 * w + g + 8 * (e / 2);
            tile[((r / 8) * CHUNKS + c / 8) * 64 + (r % 8) * 8 + c % 8] = __float2bfloat16(x[n][e]);
        }
}
