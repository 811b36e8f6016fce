// Elementwise ops: fill, strided row copies, residual adds, products,
// scaling, the activations (`Act` in src/backend/spec.rs: tanh GELU, erf
// GELU, quick_gelu, relu) and their gradients, bias broadcast and bias
// gradient. (No casts: AdamW writes bf16 parameters beside their f32
// masters, and transfers convert on the host.)
// Mirrors src/backend/cpu/elementwise.rs and matmul.rs (bias parts).
#include "common.cuh"

#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)
#define GELU_CUBIC 0.044715f

// ---- kernels ------------------------------------------------------------------

template <typename T>
__device__ void fill(T* x, float value, int64_t n) {
    GRID_STRIDE(i, n) x[i] = from_f32<T>(value);
}

template <typename T>
__device__ void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t width) {
    GRID_STRIDE(i, rows * width) {
        const int64_t r = i / width, c = i % width;
        dst[r * dst_stride + c] = src[r * src_stride + c];
    }
}

// copy_rows with destination row r taken from source row index[r] (beam
// reselection in KV caches). T is an element, or a 16-byte pack when every
// row is whole aligned packs (strides and width then count packs).
template <typename T>
__device__ void gather_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, const int* index, int64_t rows, int64_t width) {
    GRID_STRIDE(i, rows * width) {
        const int64_t r = i / width, c = i % width;
        if constexpr (sizeof(T) == 16) copy16(&dst[r * dst_stride + c], &src[index[r] * src_stride + c]);
        else dst[r * dst_stride + c] = src[index[r] * src_stride + c];
    }
}

template <typename T>
__device__ void scale(T* x, float alpha, int64_t n) {
    GRID_STRIDE(i, n) x[i] = from_f32<T>(to_f32(x[i]) * alpha);
}

// The codes of `Act::code` (src/backend/spec.rs).
enum Act { GELU_TANH = 0, GELU_ERF = 1, QUICK_GELU = 2, RELU = 3, TANH = 4 };

#define FRAC_1_SQRT_2 0.7071067811865476f
#define NORMAL_PDF_0 0.3989422804014327f  // 1/sqrt(2 pi)
#define QUICK_GELU_SLOPE 1.702f

// act(x) and act'(x). Tanh GELU: d/dx [0.5·x·(1 + tanh u)] = 0.5·(1 + tanh u)
// + 0.5·x·(1 − tanh² u)·u'; erf GELU: Φ(x) + x·φ(x); quick_gelu: x·σ(1.702x).
__device__ __forceinline__ float2 activation(int act, float x) {
    switch (act) {
        case GELU_ERF: {
            const float cdf = 0.5f * (1.0f + erff(x * FRAC_1_SQRT_2));
            return make_float2(x * cdf, cdf + x * NORMAL_PDF_0 * expf(-0.5f * x * x));
        }
        case QUICK_GELU: {
            const float s = 1.0f / (1.0f + expf(-QUICK_GELU_SLOPE * x));
            return make_float2(x * s, s + QUICK_GELU_SLOPE * x * s * (1.0f - s));
        }
        case RELU:
            return make_float2(x > 0.0f ? x : 0.0f, x > 0.0f ? 1.0f : 0.0f);
        case TANH: {
            const float t = tanhf(x);
            return make_float2(t, 1.0f - t * t);
        }
        default: {
            const float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
            const float t = tanhf(u);
            const float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
            return make_float2(0.5f * x * (1.0f + t), 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
        }
    }
}

// The elementwise arithmetic ops, out[i] = f(a[i], b[i], c[i]) (b, c may be
// null; out may be one of the inputs), as packs of V elements: V = VEC<T>
// (16-byte accesses, every pointer 16-byte aligned) or 1; the last n % V
// elements one at a time.
template <typename T, int V, typename F>
__device__ __forceinline__ void map_elements(T* out, const T* a, const T* b, const T* c, int64_t n, F f) {
    const int64_t packs = n / V;
    GRID_STRIDE(p, packs) {
        const int64_t i = p * V;
        const Pack<T, V> x = load_pack<T, V>(a + i);
        const Pack<T, V> y = b != nullptr ? load_pack<T, V>(b + i) : x, z = c != nullptr ? load_pack<T, V>(c + i) : x;
        Pack<T, V> o;
        for (int k = 0; k < V; k++) o.v[k] = from_f32<T>(f(x[k], y[k], z[k]));
        store_pack(out + i, o);
    }
    GRID_STRIDE(j, n - packs * V) {
        const int64_t i = packs * V + j;
        const float x = to_f32(a[i]);
        out[i] = from_f32<T>(f(x, b != nullptr ? to_f32(b[i]) : x, c != nullptr ? to_f32(c[i]) : x));
    }
}

template <typename T, int V>
__device__ void add(T* out, const T* a, const T* b, int64_t n) {
    map_elements<T, V>(out, a, b, nullptr, n, [](float x, float y, float) { return x + y; });
}

template <typename T, int V>
__device__ void add_assign(T* dst, const T* src, int64_t n) {
    map_elements<T, V>(dst, dst, src, nullptr, n, [](float x, float y, float) { return x + y; });
}

template <typename T, int V>
__device__ void mul(T* out, const T* a, const T* b, int64_t n) {
    map_elements<T, V>(out, a, b, nullptr, n, [](float x, float y, float) { return x * y; });
}

template <typename T, int V>
__device__ void activation_forward(T* out, const T* inp, int64_t n, int act) {
    map_elements<T, V>(out, inp, nullptr, nullptr, n, [act](float x, float, float) { return activation(act, x).x; });
}

// dinp = act'(inp)·dout.
template <typename T, int V>
__device__ void activation_backward(T* dinp, const T* inp, const T* dout, int64_t n, int act) {
    map_elements<T, V>(dinp, inp, dout, nullptr, n, [act](float x, float g, float) { return activation(act, x).y * g; });
}

// out[r, j] (+)= bias[j] over rows × n, rows `stride` apart: the bias
// epilogue, written before the GEMM accumulates into out. Block (x: packs of
// V columns, y: rows), the grid's y striding over the rows: no index
// division (a 64-bit one an element made the kernel compute-bound).
template <typename T, int V>
__device__ void bias_broadcast(T* out, const T* bias, int64_t rows, int64_t n, int64_t stride, int accumulate) {
    const int64_t j = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * V;
    if (j >= n) return;
    const Pack<T, V> b = load_pack<T, V>(bias + j);
    for (int64_t r = (int64_t)blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += (int64_t)gridDim.y * blockDim.y) {
        T* o = out + r * stride + j;
        Pack<T, V> x;
        if (accumulate) x = load_pack<T, V>(o);
        for (int k = 0; k < V; k++) x.v[k] = from_f32<T>((accumulate ? x[k] : 0.0f) + b[k]);
        store_pack(o, x);
    }
}

// dbias[j] += Σ_r dout[r, j] (common.cuh's column sums).
template <typename T, int V>
__device__ void bias_backward(float* out0, float* out1, int rows, int n, int rows_per_split, const T* dout) {
    column_sums<T, V, 1>(out0, out1, rows, n, rows_per_split, [&](int r, int64_t j, float (&acc)[1][V]) {
        const Pack<T, V> dy = load_pack<T, V>(dout + (int64_t)r * n + j);
        for (int k = 0; k < V; k++) acc[0][k] += dy[k];
    });
}

// ---- launchers (extern "C" entry points, one per dtype) -------------------------

#define FOR_DTYPE(T, S)                                                                                                   \
    extern "C" __global__ void fill_##S(T* x, float value, int64_t n) { fill<T>(x, value, n); }                           \
    extern "C" __global__ void copy_rows_##S(T* dst, int64_t ds, const T* src, int64_t ss, int64_t rows, int64_t width) { \
        copy_rows<T>(dst, ds, src, ss, rows, width);                                                                      \
    }                                                                                                                     \
    extern "C" __global__ void gather_rows_##S(T* dst, int64_t ds, const T* src, int64_t ss, const int* index,            \
                                               int64_t rows, int64_t width) {                                            \
        gather_rows<T>(dst, ds, src, ss, index, rows, width);                                                             \
    }                                                                                                                     \
    extern "C" __global__ void scale_##S(T* x, float alpha, int64_t n) { scale<T>(x, alpha, n); }                         \
    extern "C" __global__ void bias_broadcast_##S(T* out, const T* bias, int64_t rows, int64_t n, int64_t stride,         \
                                                  int accumulate) {                                                       \
        bias_broadcast<T, 1>(out, bias, rows, n, stride, accumulate);                                                     \
    }                                                                                                                     \
    extern "C" __global__ void bias_broadcast_vec_##S(T* out, const T* bias, int64_t rows, int64_t n, int64_t stride,     \
                                                      int accumulate) {                                                   \
        bias_broadcast<T, VEC<T>>(out, bias, rows, n, stride, accumulate);                                                \
    }                                                                                                                     \
    extern "C" __global__ void bias_backward_##S(float* out0, float* out1, int rows, int n, int rows_per_split, const T* dout) { \
        bias_backward<T, 1>(out0, out1, rows, n, rows_per_split, dout);                                                   \
    }                                                                                                                     \
    extern "C" __global__ void bias_backward_vec_##S(float* out0, float* out1, int rows, int n, int rows_per_split,       \
                                                     const T* dout) {                                                     \
        bias_backward<T, VEC<T>>(out0, out1, rows, n, rows_per_split, dout);                                              \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)

// Column sums' second launch for one sum a column: out[j] += Σ_s partial[s, j].
extern "C" __global__ void column_sums_add_f32(float* out, const float* partial, int splits, int n) {
    const int col = blockIdx.x * 32 + threadIdx.x;
    const float total = column_total(partial, splits, n, col);
    if (threadIdx.y == 0 && col < n) out[col] += total;
}

// gather_rows in 16-byte packs, whatever the element type.
extern "C" __global__ void gather_rows_packs(Pack<float, 4>* dst, int64_t ds, const Pack<float, 4>* src, int64_t ss, const int* index, int64_t rows,
                                             int64_t width) {
    gather_rows<Pack<float, 4>>(dst, ds, src, ss, index, rows, width);
}

// The arithmetic ops with element (`add_f32`) and 16-byte (`add_vec_f32`) access.
#define MAPPED_FOR(T, S, V, VS)                                                                                            \
    extern "C" __global__ void add##VS##_##S(T* out, const T* a, const T* b, int64_t n) { add<T, V>(out, a, b, n); }      \
    extern "C" __global__ void add_assign##VS##_##S(T* dst, const T* src, int64_t n) { add_assign<T, V>(dst, src, n); }   \
    extern "C" __global__ void mul##VS##_##S(T* out, const T* a, const T* b, int64_t n) { mul<T, V>(out, a, b, n); }      \
    extern "C" __global__ void activation_forward##VS##_##S(T* out, const T* inp, int64_t n, int act) {                   \
        activation_forward<T, V>(out, inp, n, act);                                                                       \
    }                                                                                                                     \
    extern "C" __global__ void activation_backward##VS##_##S(T* dinp, const T* inp, const T* dout, int64_t n, int act) {  \
        activation_backward<T, V>(dinp, inp, dout, n, act);                                                               \
    }

MAPPED_FOR(float, f32, 1, )
MAPPED_FOR(bf16, bf16, 1, )
MAPPED_FOR(float, f32, VEC<float>, _vec)
MAPPED_FOR(bf16, bf16, VEC<bf16>, _vec)

