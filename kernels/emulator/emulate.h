// CUDA's device-side vocabulary for the host, so that kernels/*.cu compile
// with a C++20 compiler and run on the CPU (tests/device_ops.rs runs them
// against the CPU reference on machines without a GPU).
//
// Model: a launch runs its blocks one after another (first to last, or last
// to first: launch.cpp); each CUDA thread of a
// block is a fiber (ucontext) on one OS thread, switched at barriers:
// `__syncthreads` waits for every live thread of the block, a warp shuffle
// writes a per-warp slot array between two waits on the warp's live threads
// (a lane that exited reads as NaN; mma and ldmatrix need all 32 lanes),
// `__shared__` is static storage (one block at a time; dynamic shared
// memory one buffer for the launch's bytes), filled with NaN
// bytes at each block's start (build.rs moves every function-local static
// of a kernel file into the section launch.cpp poisons: kernel files keep
// no other function-local statics). Threads that return
// early leave the barriers, as exited threads do on a GPU; a barrier that can
// never complete (divergent `__syncthreads`) is reported as an error instead
// of hanging; so is a misaligned 16-byte access, cp.async or ldmatrix row,
// and an access past a device buffer's end hits a guard page (launch.cpp
// names the kernel and thread).
// Faithful to the programming model, not to timing: it checks indexing,
// masking, reductions, alignment and synchronisation logic.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __forceinline__ inline
// nvcc's __launch_bounds__ compiles to nothing, except in build.rs's scan of
// the kernel names (a preprocessing run with HHI_SCAN_LAUNCH_BOUNDS), where it
// stays in the text as HHI_LAUNCH_BOUNDS(max threads, …) for the emulator to
// enforce: a GPU refuses a launch of more threads a block than the bound.
#ifdef HHI_SCAN_LAUNCH_BOUNDS
#define __launch_bounds__(...) HHI_LAUNCH_BOUNDS(__VA_ARGS__)
#else
#define __launch_bounds__(...)
#endif
#define __shared__ static
#define CUDART_INF_F INFINITY

struct uint3 {
    unsigned x, y, z;
};
typedef uint3 dim3;

struct float2 {
    float x, y;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }

// Set by the scheduler for the fiber it resumes.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

namespace emu {

// The launch's dynamic shared memory (HHI_DYNAMIC_SHARED in common.cuh):
// 1 KB-aligned, NaN bytes at each block's start like the static storage.
char* dynamic_shared();

// Parks the running fiber at the block barrier or at its warp's barrier.
void wait_block();
void wait_warp();

extern int lane, warp;

// A warp's exchange area: each lane's value staged for a shuffle, and the
// lanes inside the warp-wide operation (shuffle, mma, ldmatrix) under way.
struct WarpExchange {
    std::array<uint32_t, 32> slots;
    uint32_t present;
};
extern WarpExchange* warp_exchange;  // the running block's, one a warp

// Enters a warp-wide operation: waits for the warp's other live lanes.
inline void warp_enter() {
    warp_exchange[warp].present |= 1u << lane;
    wait_warp();
}
// Leaves it, once every lane has read what the others staged.
inline void warp_leave() {
    wait_warp();
    warp_exchange[warp].present &= ~(1u << lane);
}
// Records a fault unless all 32 lanes of the warp take part (mma and
// ldmatrix are `.sync.aligned`: a lane that exited, or a warp cut short by
// the block's size, leaves the GPU's result undefined).
void require_full_warp(const char* what);

// Lane `src_lane`'s value of `v` (any 4-byte type), as a warp shuffle. A
// lane that exited (or that the block lacks) stages nothing: reading it
// gives 0xff bytes (NaN, -1), where a GPU leaves the value undefined.
template <typename T>
inline T exchange(T v, int src_lane) {
    static_assert(sizeof(T) == 4, "the emulator shuffles 4-byte values");
    WarpExchange& x = warp_exchange[warp];
    std::memcpy(&x.slots[lane], &v, 4);
    warp_enter();
    const uint32_t bits = (x.present >> (src_lane & 31) & 1) ? x.slots[src_lane & 31] : 0xffffffffu;
    warp_leave();
    T r;
    std::memcpy(&r, &bits, 4);
    return r;
}

}  // namespace emu

inline void __syncthreads() { emu::wait_block(); }
inline void __syncwarp() { emu::wait_warp(); }
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
    return emu::exchange(v, emu::lane ^ mask);
}
template <typename T>
inline T __shfl_sync(unsigned, T v, int src) {
    return emu::exchange(v, src);
}
inline float atomicAdd(float* p, float v) {  // fibers never interleave inside it
    const float old = *p;
    *p = old + v;
    return old;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
    const unsigned old = *p;
    *p = old + v;
    return old;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}

// bf16 as its bits, rounding to nearest even like __float2bfloat16.
struct bf16 {
    uint16_t bits;
};
inline float __bfloat162float(bf16 x) {
    const uint32_t u = uint32_t(x.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline bf16 __float2bfloat16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::isnan(f)) return bf16{uint16_t((u >> 16) | 0x40)};
    u += 0x7fff + ((u >> 16) & 1);
    return bf16{uint16_t(u >> 16)};
}

inline float __expf(float x) { return expf(x); }
// ex2.approx.ftz.f32 (common.cuh): results under 2^-126 flush to zero.
inline float fast_exp2(float x) {
    const float y = exp2f(x);
    return y < 0x1p-126f ? 0.0f : y;
}
inline uint16_t bf16_bits(bf16 x) { return x.bits; }
namespace emu {
// Records a misaligned access as the launch's fault (launch.cpp keeps the
// first); the launch then fails, as a GPU's does with "misaligned address".
void misaligned(const char* what, const void* addr, size_t alignment);
inline void check_aligned(const void* p, size_t alignment, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % alignment != 0) misaligned(what, p, alignment);
}
}  // namespace emu
inline void copy16(void* dst, const void* src) {
    emu::check_aligned(src, 16, "16-byte load from");
    emu::check_aligned(dst, 16, "16-byte store to");
    std::memcpy(dst, src, 16);
}

namespace emu {
// One lane's operands of a warp-wide mma, staged for the other lanes.
struct MmaOperands {
    uint32_t a[4], b[2];
};
inline std::array<std::array<MmaOperands, 32>, 32> mma_stage;  // [warp][lane]

inline float half_of(uint32_t reg, int k) {
    const bf16 x{uint16_t(k % 2 ? reg >> 16 : reg & 0xffff)};
    return __bfloat162float(x);
}
}  // namespace emu

// mma.sync.m16n8k16 bf16 → f32 (kernels/mma.cuh has the fragment layout): every
// lane stages its A and B registers, then computes its four D entries.
inline void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    auto& stage = emu::mma_stage[emu::warp];
    for (int r = 0; r < 4; r++) stage[emu::lane].a[r] = a[r];
    for (int r = 0; r < 2; r++) stage[emu::lane].b[r] = b[r];
    emu::warp_enter();
    emu::require_full_warp("mma.sync");
    const int g = emu::lane / 4, t = emu::lane % 4;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e / 2), col = 2 * t + e % 2;
        float sum = 0.0f;
        for (int k = 0; k < 16; k++) {
            const uint32_t a_reg = stage[(row % 8) * 4 + (k % 8) / 2].a[(row / 8) + 2 * (k / 8)];
            const uint32_t b_reg = stage[col * 4 + (k % 8) / 2].b[k / 8];
            sum += emu::half_of(a_reg, k) * emu::half_of(b_reg, k);
        }
        d[e] += sum;
    }
    emu::warp_leave();
}

namespace emu {
inline std::array<std::array<const bf16*, 32>, 32> ldmatrix_stage;  // [warp][lane]: row addresses
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16 (kernels/mma.cuh has the
// layout): every lane stages its row address, then reads its registers.
inline void ldmatrix_x4_lanes(uint32_t r[4], const bf16* row, bool trans) {
    auto& stage = emu::ldmatrix_stage[emu::warp];
    emu::check_aligned(row, 16, "ldmatrix row at");
    stage[emu::lane] = row;
    emu::warp_enter();
    emu::require_full_warp("ldmatrix");
    const int g = emu::lane / 4, t = emu::lane % 4;
    for (int m = 0; m < 4; m++) {
        const bf16 lo = trans ? stage[8 * m + 2 * t][g] : stage[8 * m + g][2 * t];
        const bf16 hi = trans ? stage[8 * m + 2 * t + 1][g] : stage[8 * m + g][2 * t + 1];
        r[m] = uint32_t(lo.bits) | (uint32_t(hi.bits) << 16);
    }
    emu::warp_leave();
}
inline void ldmatrix_x4(uint32_t r[4], const bf16* row) { ldmatrix_x4_lanes(r, row, false); }
inline void ldmatrix_x4_trans(uint32_t r[4], const bf16* row) { ldmatrix_x4_lanes(r, row, true); }

// cp.async, asynchronous as on the GPU (launch.cpp keeps each thread's
// copies): an issued copy reads its source at once but fills its
// destination with NaN bytes until a `cp_async_wait` completes its group,
// so a thread that reads a tile before waiting for it, or reads another
// thread's copies without a barrier after that thread's wait, or refills a
// tile that another thread is still reading, computes with NaNs.
namespace emu {
void cp_async_issue(void* smem, const void* gmem, size_t bytes);
void cp_async_commit_group();
void cp_async_complete_all_but(int newest);
}  // namespace emu
inline void cp_async16(void* smem, const void* gmem) { emu::cp_async_issue(smem, gmem, 16); }
inline void cp_async4(void* smem, const void* gmem) { emu::cp_async_issue(smem, gmem, 4); }
inline void cp_async_commit() { emu::cp_async_commit_group(); }
template <int N>
inline void cp_async_wait() {
    emu::cp_async_complete_all_but(N);
}

// wgmma.mma_async (kernels/wgmma.cuh has the fragments and descriptors),
// asynchronous as on the GPU: an issuing thread stages its A registers and
// accumulator input and gets NaN accumulators back until a wait completes
// the op's group. The wait is a barrier of the warpgroup's 128 threads
// (every one must have issued the op), after which each thread computes its
// own accumulators, reading shared-memory operands through their
// descriptors (unswizzled layouts only) and faulting where they changed
// since the first thread issued the op (a GPU reads them between the issue
// and the wait: other threads' writes need a barrier before it). A wgmma issued while some thread of the block
// has cp.async copies that landed after its last `fence_shared_to_async`
// fails the launch: on a GPU, wgmma might not see them; so does one with
// no `wgmma_fence` since the thread's start or its last wgmma wait (the
// fence orders the thread's register writes before wgmma reads them: a
// stricter rule than PTX's, which asks for it where the registers changed).
namespace emu {
// The 18-bit shared-window address wgmma descriptors encode (offset into the kernels' shared storage).
uint32_t shared_address(const void* p);
// A shared-memory operand: its descriptor's bits and the pointer they encode.
struct WgmmaOperand {
    uint64_t desc = 0;
    const void* at = nullptr;
};
// A from `a` (this thread's 4 registers), or from `a_smem` (K-major) where `a` is null.
void wgmma_issue(int n, const uint32_t* a, WgmmaOperand a_smem, WgmmaOperand b, bool trans_b, bool scale_d, float* d);
void wgmma_commit_group();
void wgmma_complete_all_but(int newest);
void fence_shared_to_async();
void wgmma_fence();
}  // namespace emu
