// Token + position embeddings: out[r] = wte[ids[r]] + wpe[pos[r]]; the backward
// scatter-adds each row of dout into both tables (atomically, since ids repeat).
// Mirrors src/backend/cpu/embedding.rs.
#include "common.cuh"

// ---- kernels ------------------------------------------------------------------

template <typename T>
__device__ void embedding_forward(T* out, const int* ids, const int* pos, const T* wte, const T* wpe, int rows, int c) {
    GRID_STRIDE(i, (int64_t)rows * c) {
        const int64_t r = i / c, col = i % c;
        out[i] = from_f32<T>(to_f32(wte[(int64_t)ids[r] * c + col]) + to_f32(wpe[(int64_t)pos[r] * c + col]));
    }
}

template <typename T>
__device__ void embedding_backward(float* dwte, float* dwpe, const T* dout, const int* ids, const int* pos, int rows, int c) {
    GRID_STRIDE(i, (int64_t)rows * c) {
        const int64_t r = i / c, col = i % c;
        const float g = to_f32(dout[i]);
        atomicAdd(&dwte[(int64_t)ids[r] * c + col], g);
        atomicAdd(&dwpe[(int64_t)pos[r] * c + col], g);
    }
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                   \
    extern "C" __global__ void embedding_forward_##S(T* out, const int* ids, const int* pos, const T* wte, const T* wpe,  \
                                                     int rows, int c) {                                                   \
        embedding_forward<T>(out, ids, pos, wte, wpe, rows, c);                                                           \
    }                                                                                                                     \
    extern "C" __global__ void embedding_backward_##S(float* dwte, float* dwpe, const T* dout, const int* ids,            \
                                                      const int* pos, int rows, int c) {                                  \
        embedding_backward<T>(dwte, dwpe, dout, ids, pos, rows, c);                                                       \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)
