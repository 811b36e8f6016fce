// Shared device helpers: dtype conversion, warp and block reductions, and the
// macros that instantiate a templated kernel as `extern "C"` symbols named
// `<op>_<dtype>` (the names the Rust side loads).
#pragma once

#ifdef HHI_EMULATE
#include "emulator/emulate.h"  // the same source, compiled for the host (tests)
#else
#include <cuda_bf16.h>
#include <math_constants.h>
#include <stdint.h>
typedef __nv_bfloat16 bf16;
#endif

// ---- dynamic shared memory ------------------------------------------------------
// `name`: the block's dynamic shared memory, the launch's `shared` bytes
// (Runtime::launch_shared; over 48 KB the GPU's driver opts the kernel in
// first), 128-byte aligned. Static `__shared__` storage stops at 48 KB.
#ifdef HHI_EMULATE
#define HHI_DYNAMIC_SHARED(name) char* const name = emu::dynamic_shared()
#else
#define HHI_DYNAMIC_SHARED(name) extern __shared__ __align__(128) char name[]
#endif

// ---- dtype conversion ---------------------------------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float x) { return __float2bfloat16(x); }

// ---- reductions ---------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32); every thread gets the
// result. Uses 33 floats of shared memory; safe to call repeatedly.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    __shared__ float total;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < warps ? partial[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    const float result = total;
    __syncthreads();  // `partial`/`total` may be reused by the next call
    return result;
}

// ---- column sums ----------------------------------------------------------------
// Σ_r term(r, j) for each column j of a [rows, n] problem, SUMS sums a column
// (the bias gradient Σ dy; LayerNorm's dw and db; the RMS norm's dw), in a
// fixed order (deterministic), in two launches. First column_sums: block
// (32 lanes × 8 row lanes) over 32 packs of V columns (V = VEC<T>: 16-byte
// loads, n whole aligned packs; or 1) and the rows [r0, r1) of its split,
// grid (column blocks, splits); `term(r, j, acc)` adds row r's terms of
// columns j … j + V − 1 to acc[s][k]. A lane issues COLUMN_LOADS rows'
// terms unrolled (their loads in flight together); the 8 row lanes' sums
// meet in shared memory. With one split the block adds its sums to out0 (and
// out1) itself; with several, sum s goes to out0[blockIdx.y, s, j] of a
// [splits, SUMS, n] scratch, and column_total adds up its rows.
#define COLUMN_LOADS 4
template <typename T, int V, int SUMS, typename Term>
__device__ __forceinline__ void column_sums(float* out0, float* out1, int rows, int n, int rows_per_split, Term term) {
    __shared__ float sums[SUMS][8][32 * V];
    const int pack = blockIdx.x * 32 + threadIdx.x;
    const int r0 = blockIdx.y * rows_per_split, r1 = min(rows, r0 + rows_per_split);
    float acc[SUMS][V] = {};
    if (pack < n / V) {
        for (int r = r0 + threadIdx.y; r < r1; r += 8 * COLUMN_LOADS) {
#pragma unroll
            for (int u = 0; u < COLUMN_LOADS; u++)
                if (r + 8 * u < r1) term(r + 8 * u, (int64_t)pack * V, acc);
        }
    }
    for (int s = 0; s < SUMS; s++)
        for (int k = 0; k < V; k++) sums[s][threadIdx.y][threadIdx.x * V + k] = acc[s][k];
    __syncthreads();
    for (int col = threadIdx.y * 32 + threadIdx.x; col < 32 * V; col += 256) {
        const int j = blockIdx.x * 32 * V + col;
        if (j >= n) continue;
        for (int s = 0; s < SUMS; s++) {
            float total = 0.0f;
            for (int y = 0; y < 8; y++) total += sums[s][y][col];
            if (gridDim.y > 1) out0[((int64_t)blockIdx.y * SUMS + s) * n + j] = total;
            else (s == 0 ? out0 : out1)[j] += total;
        }
    }
}

// The second launch: Σ_r partial[r, col] over the rows of a [rows, width] f32
// scratch, for a block of (32 columns × 32 lanes): lane y sums rows y, y + 32,
// … of its column, then the 32 sums are added in lane order (a fixed order);
// the total is valid in threadIdx.y == 0. Every partial row is read by 32
// threads at once; a thread per column summing all rows in turn waited on
// memory once per row. A lane issues REDUCE_LOADS of its rows' loads before
// adding any, so that a device's worth of blocks (up to 32 · REDUCE_LOADS
// rows) costs one wait.
#define REDUCE_LOADS 16
__device__ __forceinline__ float column_total(const float* partial, int rows, int64_t width, int64_t col) {
    __shared__ float sums[32][33];
    float s = 0.0f;
    if (col < width) {
        for (int r0 = threadIdx.y; r0 < rows; r0 += 32 * REDUCE_LOADS) {
            float v[REDUCE_LOADS];
#pragma unroll
            for (int u = 0; u < REDUCE_LOADS; u++) {
                const int r = r0 + 32 * u;
                v[u] = r < rows ? partial[(int64_t)r * width + col] : 0.0f;
            }
#pragma unroll
            for (int u = 0; u < REDUCE_LOADS; u++) s += v[u];
        }
    }
    sums[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    float total = 0.0f;
    if (threadIdx.y == 0)
        for (int y = 0; y < 32; y++) total += sums[y][threadIdx.x];
    return total;
}

// ---- fast math ----------------------------------------------------------------
#ifndef HHI_EMULATE
// 2^x as one multi-function-unit instruction (ex2.approx.ftz: relative error
// about 2^-22, results under 2^-126 flush to 0, 2^-inf = 0). exp2f wraps the
// same instruction in a range fix-up of three more (a compare and two
// predicated multiplies), which the softmax inner loops pay once a score.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
#endif

// ---- 16-byte vector access ----------------------------------------------------
#ifndef HHI_EMULATE
// 16 bytes from `src` to `dst`, both 16-byte aligned.
__device__ __forceinline__ void copy16(void* dst, const void* src) { *(uint4*)dst = *(const uint4*)src; }
#endif

// V consecutive elements of T moved as one access: V = 16 / sizeof(T) makes a
// 16-byte vector load or store (the address must be 16-byte aligned); V = 1
// is a plain element access (any alignment). Kernels templated on V get both
// from one body; the launcher picks the vector form when the data allows it.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
    T v[V];
    __device__ __forceinline__ float operator[](int k) const { return to_f32(v[k]); }
};
template <typename T> constexpr int VEC = 16 / sizeof(T);

template <typename T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
    Pack<T, V> r;
    if constexpr (sizeof(T) * V == 16) copy16(&r, p);
    else
        for (int k = 0; k < V; k++) r.v[k] = p[k];
    return r;
}

template <typename T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& r) {
    if constexpr (sizeof(T) * V == 16) copy16(p, &r);
    else
        for (int k = 0; k < V; k++) p[k] = r.v[k];
}

// Grid-stride loop over [0, n).
#define GRID_STRIDE(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// A kernel body `name<T>` becomes `extern "C"` kernels through a per-file
// macro `FOR_DTYPE(T, suffix)` expanded once per dtype; `suffix` is f32 or bf16.
