// CUDA's device-side vocabulary for the host, so that kernels/*.cu compile
// with a C++20 compiler and run on CPU threads (tests/device_ops.rs runs them
// against the CPU reference on machines without a GPU).
//
// Model: a launch runs its blocks one after another; each CUDA thread of a
// block is an OS thread. `__syncthreads` is a barrier over the block's live
// threads, warp shuffles exchange through a per-warp slot array between two
// barriers over the warp, `__shared__` is static storage (one block at a
// time), atomics take a lock. Threads that return early leave the barriers,
// as exited threads do on a GPU. Faithful to the programming model, not to
// timing: it checks indexing, masking, reductions and synchronisation logic.
#pragma once

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define CUDART_INF_F INFINITY

struct uint3 {
    unsigned x, y, z;
};
typedef uint3 dim3;

extern thread_local uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

namespace emu {

// A reusable barrier whose party shrinks when a thread leaves.
class Barrier {
  public:
    void reset(int parties) {
        expected_ = parties;
        arrived_ = 0;
    }
    void wait() {
        std::unique_lock<std::mutex> lock(m_);
        const uint64_t gen = generation_;
        if (++arrived_ == expected_) release();
        else cv_.wait(lock, [&] { return generation_ != gen; });
    }
    void leave() {
        std::unique_lock<std::mutex> lock(m_);
        --expected_;
        if (arrived_ > 0 && arrived_ == expected_) release();
    }

  private:
    void release() {
        arrived_ = 0;
        ++generation_;
        cv_.notify_all();
    }
    std::mutex m_;
    std::condition_variable cv_;
    int expected_ = 0, arrived_ = 0;
    uint64_t generation_ = 0;
};

struct Warp {
    Barrier barrier;
    float slots[32];
};

// The block being run, and this thread's place in it.
extern Barrier* block_barrier;
extern Warp* warps;
extern thread_local int lane, warp;
extern std::mutex atomic_lock;

inline float exchange(float v, int src_lane) {
    Warp& w = warps[warp];
    w.slots[lane] = v;
    w.barrier.wait();
    const float r = w.slots[src_lane & 31];
    w.barrier.wait();
    return r;
}

}  // namespace emu

inline void __syncthreads() { emu::block_barrier->wait(); }
inline float __shfl_xor_sync(unsigned, float v, int mask) { return emu::exchange(v, emu::lane ^ mask); }
inline float __shfl_sync(unsigned, float v, int src) { return emu::exchange(v, src); }
inline float atomicAdd(float* p, float v) {
    std::lock_guard<std::mutex> g(emu::atomic_lock);
    const float old = *p;
    *p = old + v;
    return old;
}
inline int min(int a, int b) { return a < b ? a : b; }

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
