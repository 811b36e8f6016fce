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
