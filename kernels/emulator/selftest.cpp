// Kernels that check the emulator itself (src/backend/cuda/emulator.rs has
// the tests). build.rs compiles this file like a kernel file, so its
// `__shared__` storage is poisoned at each block's start like theirs.
#include "registry.h"
#include "wgmma.cuh"

namespace {

// Lanes 0-15 wait at the block barrier while 16-31 wait at a warp shuffle:
// neither can complete, which the launcher must report (a GPU would hang).
void divergent_barrier(int* out) {
    if (threadIdx.x < 16) __syncthreads();
    else out[threadIdx.x] = int(__shfl_xor_sync(0xffffffffu, 1.0f, 1));
}

// Threads that return early leave the barrier, as on a GPU.
void early_exit(int* out) {
    if (threadIdx.x >= 16) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

// Each thread copies one value into shared memory by cp.async; launched as
// two blocks of two warps (block 0 runs warp 0 first, block 1 warp 1), each
// block its own 64 values.
void cp_async_visibility(float* out, const float* in) {
    __shared__ float tile[64];
    const int t = threadIdx.x, other = (t + 32) % 64;
    float* o = out + blockIdx.x * 256;
    cp_async4(&tile[t], in + blockIdx.x * 64 + t);
    cp_async_commit();
    o[t] = tile[t];  // before the wait: not landed
    cp_async_wait<0>();
    o[64 + t] = tile[t];       // its own copy, landed
    o[128 + t] = tile[other];  // the other warp's, no barrier: not yet there unless that warp ran first
    __syncthreads();
    o[192 + t] = tile[other];  // after the barrier: landed
}

// Each block notes when it ran: out[block] = its turn (out[gridDim.x] counts).
void block_order(int* out) {
    if (threadIdx.x == 0) out[blockIdx.x] = out[gridDim.x]++;
}

// A 16-byte copy from an address 8 bytes past a 16-byte boundary.
void misaligned_copy(int* out) {
    alignas(16) __shared__ int words[8];
    copy16(out, words + 2);
}

// Each thread reads its shared slot before writing it: out[block][thread] is
// what the block found there (the previous block's write, but for the poison).
void unwritten_shared(float* out) {
    __shared__ float slot[32];
    out[blockIdx.x * 32 + threadIdx.x] = slot[threadIdx.x];
    slot[threadIdx.x] = 1.0f;
}

// Lanes 16-31 exit; lanes 0-15 then read them by shuffle (out[lane]).
void shuffle_from_exited_lanes(float* out) {
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 16);
}

// A tensor-core product by however many lanes the block has.
void mma_by_the_block(float* out) {
    const uint32_t a[4] = {}, b[2] = {};
    float d[4] = {};
    mma_16816(d, a, b);
    out[threadIdx.x] = d[0];
}

// One warpgroup's wgmma: D (64 × 64) = A (64 × 16 in registers, A[m][k] =
// (3m + k) % 7 − 3) · B (16 × 64 in shared memory, MN-major, B[k][n] =
// (k + n) % 5 − 2), each thread's 32 accumulators to out[thread]. Mode 1
// reads the accumulators before the wait; mode 2 lands a cp.async copy in
// B's tile with no fence_shared_to_async before the product; mode 3 leaves
// out the wgmma fence; mode 4 the barrier after B's stores; mode 5 keeps
// B in dynamic shared memory (a launch of 2 KB).
void wgmma_product(float* out, int mode) {
    alignas(128) __shared__ bf16 static_b[16 * 64];
    HHI_DYNAMIC_SHARED(dynamic);
    bf16* const b = mode == 5 ? reinterpret_cast<bf16*>(dynamic) : static_b;
    const int t = threadIdx.x, w = t / 32, g = t % 32 / 4, q = t % 4;
    for (int e = t; e < 16 * 64; e += blockDim.x) {
        const int k = e / 64, n = e % 64;  // at (n/8)·SBO + (k/8)·LBO + (k%8)·16 + (n%8)·2 bytes, SBO 128, LBO 1024
        b[(n / 8) * 64 + (k / 8) * 512 + (k % 8) * 8 + n % 8] = __float2bfloat16(float((k + n) % 5 - 2));
    }
    if (mode == 2) {
        cp_async4(b, out);
        cp_async_commit();
        cp_async_wait<0>();
    } else {
        fence_shared_to_async();
    }
    if (mode != 4) __syncthreads();
    auto a_at = [](int m, int k) { return __float2bfloat16(float((3 * m + k) % 7 - 3)); };
    const int row = 16 * w + g;
    const uint32_t a[4] = {pack_bf16(a_at(row, 2 * q), a_at(row, 2 * q + 1)), pack_bf16(a_at(row + 8, 2 * q), a_at(row + 8, 2 * q + 1)),
                           pack_bf16(a_at(row, 2 * q + 8), a_at(row, 2 * q + 9)), pack_bf16(a_at(row + 8, 2 * q + 8), a_at(row + 8, 2 * q + 9))};
    float d[8][4];
    if (mode != 3) wgmma_fence();
    wgmma_m64n64k16<1>(d, a, smem_desc(b, 1024, 128), 0);
    wgmma_commit();
    if (mode == 1)
        for (int j = 0; j < 32; j++) out[32 * t + j] = d[j / 4][j % 4];
    wgmma_wait<0>();
    if (mode != 1)
        for (int j = 0; j < 32; j++) out[32 * t + j] = d[j / 4][j % 4];
}

// Each thread reads its slot of dynamic shared memory before writing it
// (out[block][thread]: the poison), then its neighbour's after a barrier
// (out[block][32 + thread]); launched with 128 bytes.
void dynamic_shared(float* out) {
    HHI_DYNAMIC_SHARED(dynamic);
    float* slot = reinterpret_cast<float*>(dynamic);
    const int t = threadIdx.x;
    out[blockIdx.x * 64 + t] = slot[t];
    slot[t] = float(t);
    __syncthreads();
    out[blockIdx.x * 64 + 32 + t] = slot[(t + 1) % 32];
}

}  // namespace

void hhi_emu_register_selftests() {
    emu::registry()["emu_selftest_dynamic_shared"] = emu::kernel(dynamic_shared, 1024);
    emu::registry()["emu_selftest_divergent_barrier"] = emu::kernel(divergent_barrier, 1024);
    emu::registry()["emu_selftest_early_exit"] = emu::kernel(early_exit, 1024);
    emu::registry()["emu_selftest_cp_async_visibility"] = emu::kernel(cp_async_visibility, 1024);
    emu::registry()["emu_selftest_misaligned_copy"] = emu::kernel(misaligned_copy, 1024);
    emu::registry()["emu_selftest_block_order"] = emu::kernel(block_order, 1024);
    emu::registry()["emu_selftest_unwritten_shared"] = emu::kernel(unwritten_shared, 1024);
    emu::registry()["emu_selftest_shuffle_from_exited_lanes"] = emu::kernel(shuffle_from_exited_lanes, 1024);
    emu::registry()["emu_selftest_mma_by_the_block"] = emu::kernel(mma_by_the_block, 1024);
    emu::registry()["emu_selftest_wgmma_product"] = emu::kernel(wgmma_product, 1024);
}
