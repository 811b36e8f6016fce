// Warp-level bf16 tensor-core products: `mma_16816` is PTX
// mma.sync.m16n8k16 (bf16 inputs, f32 accumulate, sm_80+), D += A·B over a
// 16×16 A tile and a 16×8 B tile held in registers across the warp's 32 lanes.
// The emulator (emulator/emulate.h) implements the same instruction from the
// same register layout, so index math written against it is tested on a CPU.
//
// Fragment layout (PTX ISA, "mma.m16n8k16" for .bf16), with g = lane / 4 and
// t = lane % 4, each 32-bit register holding two bf16, the lower index in the
// low half:
//   A (row-major 16×16): a0 = A[g][2t..2t+1]   a1 = A[g+8][2t..2t+1]
//                        a2 = A[g][2t+8..+9]   a3 = A[g+8][2t+8..+9]
//   B (16×8, k × n):     b0 = B[2t..2t+1][g]   b1 = B[2t+8..+9][g]
//   C, D (16×8 f32):     c0, c1 = C[g][2t], C[g][2t+1];  c2, c3 = C[g+8][2t], C[g+8][2t+1]
// So an accumulator tile of S = Q·Kᵀ converts in registers into the A operand
// of P·V (FlashAttention-2's trick): the 16×16 A chunk kk is n-tiles 2kk and 2kk+1.
//
// `ldmatrix_x4` (ldmatrix.m8n8.x4) loads four 8×8 bf16 matrices from shared
// memory in one instruction: lanes 8m … 8m+7 give the addresses of rows
// 0 … 7 of matrix m (16-byte aligned), and register m of lane l receives row
// l/4, elements 2·(l%4) and +1 of matrix m — a B fragment when the matrix is
// 8 n-rows × 8 k-columns. `ldmatrix_x4_trans` transposes each matrix on the
// way: register m receives rows 2·(l%4) and +1 of column l/4, so a tile
// stored k-major (keys × head dims) yields B fragments of its transpose.
#pragma once
#include "common.cuh"
#include "cp_async.cuh"

#ifndef HHI_EMULATE
__device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint16_t bf16_bits(bf16 x) { return __bfloat16_as_ushort(x); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const bf16* row) {
    const uint32_t at = (uint32_t)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(at));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const bf16* row) {
    const uint32_t at = (uint32_t)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(at));
}

#endif

// Two bf16 as one register: `lo` in the low half.
__device__ __forceinline__ uint32_t pack_bf16(bf16 lo, bf16 hi) { return (uint32_t)bf16_bits(lo) | ((uint32_t)bf16_bits(hi) << 16); }
__device__ __forceinline__ uint32_t pack_f32(float lo, float hi) { return pack_bf16(__float2bfloat16(lo), __float2bfloat16(hi)); }

// The A fragment of columns 16kk … 16kk + 15 of a 16-row accumulator (its
// tiles 2kk and 2kk + 1), rounded to bf16: S's tile as P·V's A operand.
__device__ __forceinline__ void a_fragment(uint32_t (&a)[4], const float (*p)[4], int kk) {
    a[0] = pack_f32(p[2 * kk][0], p[2 * kk][1]);
    a[1] = pack_f32(p[2 * kk][2], p[2 * kk][3]);
    a[2] = pack_f32(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[3] = pack_f32(p[2 * kk + 1][2], p[2 * kk + 1][3]);
}
