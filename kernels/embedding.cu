// Table lookups. Token (+ position) embeddings: out[r] = wte[ids[r]] (+
// wpe[pos[r]]; `pos` may be null); the backward scatter-adds each row of dout
// into the tables (atomically, since ids repeat). T5's relative position
// bias: out[h, r] = table[buckets[r], h] and its scatter-add backward.
// Mirrors src/backend/cpu/embedding.rs.
#include "common.cuh"

// ---- kernels ------------------------------------------------------------------

// A thread per pack of V columns (V = 1, or VEC<T> when c is a multiple of
// it and the tables and output are 16-byte aligned).
template <typename T, int V>
__device__ void embedding_forward(T* out, const int* ids, const int* pos, const T* wte, const T* wpe, int rows, int c) {
    const int64_t packs_per_row = c / V;
    GRID_STRIDE(i, rows * packs_per_row) {
        const int64_t r = i / packs_per_row, col = (i % packs_per_row) * V;
        Pack<T, V> x = load_pack<T, V>(wte + (int64_t)ids[r] * c + col);
        if (pos != nullptr) {
            const Pack<T, V> p = load_pack<T, V>(wpe + (int64_t)pos[r] * c + col);
            for (int k = 0; k < V; k++) x.v[k] = from_f32<T>(x[k] + p[k]);
        }
        store_pack(out + r * c + col, x);
    }
}

template <typename T>
__device__ void embedding_backward(float* dwte, float* dwpe, const T* dout, const int* ids, const int* pos, int rows, int c) {
    GRID_STRIDE(i, (int64_t)rows * c) {
        const int64_t r = i / c, col = i % c;
        const float g = to_f32(dout[i]);
        atomicAdd(&dwte[(int64_t)ids[r] * c + col], g);
        if (pos != nullptr) atomicAdd(&dwpe[(int64_t)pos[r] * c + col], g);
    }
}

// out [heads, n] (f32) from table [num_buckets, heads].
template <typename T>
__device__ void position_bias_forward(float* out, const T* table, const int* buckets, int n, int heads) {
    GRID_STRIDE(i, (int64_t)heads * n) {
        const int64_t h = i / n, r = i % n;
        out[i] = to_f32(table[(int64_t)buckets[r] * heads + h]);
    }
}

__device__ void position_bias_backward(float* dtable, const float* dout, const int* buckets, int n, int heads) {
    GRID_STRIDE(i, (int64_t)heads * n) {
        const int64_t h = i / n, r = i % n;
        atomicAdd(&dtable[(int64_t)buckets[r] * heads + h], dout[i]);
    }
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                   \
    extern "C" __global__ void embedding_forward_##S(T* out, const int* ids, const int* pos, const T* wte, const T* wpe,  \
                                                     int rows, int c) {                                                   \
        embedding_forward<T, 1>(out, ids, pos, wte, wpe, rows, c);                                                        \
    }                                                                                                                     \
    extern "C" __global__ void embedding_forward_vec_##S(T* out, const int* ids, const int* pos, const T* wte,           \
                                                         const T* wpe, int rows, int c) {                                 \
        embedding_forward<T, VEC<T>>(out, ids, pos, wte, wpe, rows, c);                                                   \
    }                                                                                                                     \
    extern "C" __global__ void embedding_backward_##S(float* dwte, float* dwpe, const T* dout, const int* ids,            \
                                                      const int* pos, int rows, int c) {                                  \
        embedding_backward<T>(dwte, dwpe, dout, ids, pos, rows, c);                                                       \
    }                                                                                                                     \
    extern "C" __global__ void position_bias_forward_##S(float* out, const T* table, const int* buckets, int n,          \
                                                         int heads) {                                                     \
        position_bias_forward<T>(out, table, buckets, n, heads);                                                          \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)

extern "C" __global__ void position_bias_backward_f32(float* dtable, const float* dout, const int* buckets, int n, int heads) {
    position_bias_backward(dtable, dout, buckets, n, heads);
}
