// Asynchronous copies global → shared (cp.async, sm_80+): issued without the
// thread waiting, grouped by `cp_async_commit`; `cp_async_wait<n>` returns
// once at most n of the thread's groups are still in flight. A thread sees
// its own copies after the wait; other threads need a barrier after it
// (__syncwarp or __syncthreads). The emulator keeps each copy's destination
// NaN until its group is waited for (emulator/emulate.h).
#pragma once
#include "common.cuh"

#ifndef HHI_EMULATE
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const uint32_t at = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(at), "l"(gmem));
}
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
    const uint32_t at = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(at), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
#endif

// One step of a double-buffered tile stream over [.., end) by `step`: starts
// the copies of the next tile (`load(at + step)`, into the other buffer),
// waits until this tile's copies have landed, runs `publish` (what must
// follow this thread's copies before the barrier: wgmma.cuh's proxy fence),
// then syncs the block, so every thread's copies of this tile are visible.
template <typename Load, typename Publish>
__device__ __forceinline__ void await_tile(int at, int end, int step, Load&& load, Publish&& publish) {
    if (at + step < end) {
        load(at + step);
        cp_async_wait<1>();  // this tile's copies are done, the next one's may run on
    } else {
        cp_async_wait<0>();
    }
    publish();
    __syncthreads();
}
template <typename Load>
__device__ __forceinline__ void await_tile(int at, int end, int step, Load&& load) {
    await_tile(at, end, step, load, [] {});
}
