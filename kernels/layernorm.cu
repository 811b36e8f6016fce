// LayerNorm over rows of length c: the forward saves mean and 1/std per row,
// the backward accumulates dinp (one warp per row) and dw/db (column sums).
// Rows of up to 1024 columns (forward) and 768 (backward) take the "cached"
// kernels: each lane keeps its share of the row in registers (read from
// memory once, in 16-byte packs where the row allows) and the backward also
// keeps its dw/db partial sums there; in bf16 with 16-byte packs the
// backward also pipelines its rows through shared memory with cp.async.
// Wider rows take the general kernels (fused backward up to 2048).
// Mirrors src/backend/cpu/layernorm.rs (llm.c's formulation). Also T5's RMS
// norm (no mean, no bias), mirroring src/backend/cpu/rmsnorm.rs.
#include "common.cuh"
#include "cp_async.cuh"

// ---- kernels ------------------------------------------------------------------

// The fused backwards' last step: the block's dw and db sums go to its row of
// `partial` [blocks, 2c] (dw, then db); layernorm_params_reduce adds the rows
// to dw and db.
__device__ __forceinline__ void block_sums_out(float* partial, const float* block_dw, const float* block_db, int c) {
    float* mine = partial + (int64_t)blockIdx.x * 2 * c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        mine[i] = block_dw[i];
        mine[c + i] = block_db[i];
    }
}

// dw[i] += Σ_b partial[b, i], db[i] += Σ_b partial[b, c + i] (common.cuh's
// column_total: a fixed order, deterministic).
__device__ void layernorm_params_reduce(float* dw, float* db, const float* partial, int blocks, int c) {
    const int col = blockIdx.x * 32 + threadIdx.x;
    const float total = column_total(partial, blocks, 2 * c, col);
    if (threadIdx.y == 0 && col < 2 * c) {
        if (col < c) dw[col] += total;
        else db[col - c] += total;
    }
}

// The cached kernels' widest rows: a lane holds MAX_C / 32 elements (the
// backward's bound keeps it within 128 registers, two blocks per SM).
#define LN_FORWARD_CACHED_MAX_C 1024
#define LN_BACKWARD_CACHED_MAX_C 768

// Lane `lane`'s packs of a row: pack p covers columns (p·32 + lane)·V + [0, V).
#define FOR_LANE_PACKS(p, i, P, V, c)                                  \
    _Pragma("unroll") for (int p = 0, i = lane * (V); p < (P); p++, i += 32 * (V)) if (i < (c))

// A pack of the row a forward normalises: `inp`'s or, with ADD (the residual
// add fused in), inp + delta rounded to T as `add` rounds it, stored to `res`
// first. In place (res == inp) each element is read before it is written.
template <typename T, int V, bool ADD>
__device__ __forceinline__ Pack<T, V> layernorm_input_pack(T* res, const T* inp, const T* delta, int64_t at) {
    Pack<T, V> x = load_pack<T, V>(inp + at);
    if constexpr (ADD) {
        const Pack<T, V> d = load_pack<T, V>(delta + at);
        for (int k = 0; k < V; k++) x.v[k] = from_f32<T>(x[k] + d[k]);
        store_pack(res + at, x);
    }
    return x;
}

// layernorm_forward with the row in registers (ADD: of res = inp + delta).
// V = 1, or VEC<T> when c is a multiple of it and every pointer is 16-byte
// aligned.
template <typename T, int V, bool ADD>
__device__ void layernorm_forward_cached(T* res, T* out, float* mean, float* rstd, const T* inp, const T* delta, const T* w, const T* b, int rows, int c,
                                         float eps) {
    constexpr int P = LN_FORWARD_CACHED_MAX_C / (32 * V);
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t at = (int64_t)row * c;
    Pack<T, V> x[P];
    float sum = 0.0f;
    FOR_LANE_PACKS(p, i, P, V, c) {
        x[p] = layernorm_input_pack<T, V, ADD>(res, inp, delta, at + i);
        for (int k = 0; k < V; k++) sum += x[p][k];
    }
    const float m = warp_sum(sum) / c;
    float var = 0.0f;
    FOR_LANE_PACKS(p, i, P, V, c) for (int k = 0; k < V; k++) {
        const float d = x[p][k] - m;
        var += d * d;
    }
    const float r = 1.0f / sqrtf(warp_sum(var) / c + eps);
    FOR_LANE_PACKS(p, i, P, V, c) {
        const Pack<T, V> wp = load_pack<T, V>(w + i), bp = load_pack<T, V>(b + i);
        Pack<T, V> o;
        for (int k = 0; k < V; k++) o.v[k] = from_f32<T>((x[p][k] - m) * r * wp[k] + bp[k]);
        store_pack(out + at + i, o);
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

// One row of the backward, lane `lane`'s packs: dx_out = dx_in +
// rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)), dnorm = w·dy, and the
// lane's dw/db sums += norm·dy, dy. The row's three inputs are read in the
// first pass (one wait on memory a row); the second pass keeps x and dy in
// registers when HOLD (packed bf16 fits in 128 registers, no spills), else
// reads them again (from L1, or shared memory when the row is staged there).
template <typename T, int V, int P, bool HOLD>
__device__ __forceinline__ void layernorm_backward_row(T* dx_out, const T* dx_in, const T* x_in, const T* dy_in, const float* ws, float mu, float rs, int c,
                                                       float (&sum_dw)[P][V], float (&sum_db)[P][V]) {
    const int lane = threadIdx.x % 32;
    Pack<T, V> x[P], dy[P], dx[P];
    float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
    FOR_LANE_PACKS(p, i, P, V, c) {
        x[p] = load_pack<T, V>(x_in + i);
        dy[p] = load_pack<T, V>(dy_in + i);
        dx[p] = load_pack<T, V>(dx_in + i);
        for (int k = 0; k < V; k++) {
            const float dnorm = ws[i + k] * dy[p][k];
            dnorm_sum += dnorm;
            dnorm_norm_sum += dnorm * (x[p][k] - mu) * rs;
        }
    }
    const float mean_dnorm = warp_sum(dnorm_sum) / c, mean_dnorm_norm = warp_sum(dnorm_norm_sum) / c;
    FOR_LANE_PACKS(p, i, P, V, c) {
        if constexpr (!HOLD) {
            x[p] = load_pack<T, V>(x_in + i);
            dy[p] = load_pack<T, V>(dy_in + i);
        }
        for (int k = 0; k < V; k++) {
            const float norm = (x[p][k] - mu) * rs, dnorm = ws[i + k] * dy[p][k];
            dx[p].v[k] = from_f32<T>(dx[p][k] + (dnorm - mean_dnorm - norm * mean_dnorm_norm) * rs);
            sum_dw[p][k] += norm * dy[p][k];
            sum_db[p][k] += dy[p][k];
        }
        store_pack(dx_out + i, dx[p]);
    }
}

// The end of the register-sum backwards: the block's warps add their dw/db
// sums in shared memory one warp at a time (not atomics: a float atomicAdd on
// shared memory is a compare-and-swap loop on sm_80/sm_90, and eight warps
// contending for every column cost more than a wave's rows). Element k of
// pack q sits at [k·packs + q] (block_sum_at), so a warp's 32 lanes touch 32
// different banks.
template <int V, int P>
__device__ __forceinline__ void layernorm_block_sums(float* block_dw, float* block_db, const float (&sum_dw)[P][V], const float (&sum_db)[P][V], int c) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32, packs = c / V;
    for (int turn = 0; turn < warps; turn++) {
        if (warp == turn) FOR_LANE_PACKS(p, i, P, V, c) for (int k = 0; k < V; k++) {
                const int at = k * packs + i / V;
                block_dw[at] = (turn == 0 ? 0.0f : block_dw[at]) + sum_dw[p][k];
                block_db[at] = (turn == 0 ? 0.0f : block_db[at]) + sum_db[p][k];
            }
        __syncthreads();
    }
}
template <int V>
__device__ __forceinline__ int block_sum_at(int i, int c) { return i % V * (c / V) + i / V; }

// The block's dw/db sums to its row of `partial` (layernorm_params_reduce
// adds the rows in a fixed order).
template <int V, int P>
__device__ __forceinline__ void layernorm_block_sums_out(float* partial, float* block_dw, float* block_db, const float (&sum_dw)[P][V],
                                                         const float (&sum_db)[P][V], int c) {
    layernorm_block_sums<V, P>(block_dw, block_db, sum_dw, sum_db, c);
    float* mine = partial + (int64_t)blockIdx.x * 2 * c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        mine[i] = block_dw[block_sum_at<V>(i, c)];
        mine[c + i] = block_db[block_sum_at<V>(i, c)];
    }
}

// The block's dw/db sums added straight to dw and db by global atomics: no
// second launch, but the blocks' order (and so the last bits) varies run to run.
template <int V, int P>
__device__ __forceinline__ void layernorm_block_sums_add(float* dw, float* db, float* block_dw, float* block_db, const float (&sum_dw)[P][V],
                                                         const float (&sum_db)[P][V], int c) {
    layernorm_block_sums<V, P>(block_dw, block_db, sum_dw, sum_db, c);
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        atomicAdd(&dw[i], block_dw[block_sum_at<V>(i, c)]);
        atomicAdd(&db[i], block_db[block_sum_at<V>(i, c)]);
    }
}

// The whole LayerNorm backward with w and the dw/db partial sums in
// registers: warps take rows in turn (layernorm_backward_row), then the
// block's sums go to its row of `partial` (layernorm_block_sums_out).
template <typename T, int V>
__device__ void layernorm_backward_cached(T* dinp, float* partial, const T* dout, const T* inp, const T* w, const float* mean,
                                          const float* rstd, int rows, int c) {
    constexpr int P = LN_BACKWARD_CACHED_MAX_C / (32 * V);
    __shared__ float block_dw[LN_BACKWARD_CACHED_MAX_C], block_db[LN_BACKWARD_CACHED_MAX_C], ws[LN_BACKWARD_CACHED_MAX_C];
    const int warps = blockDim.x / 32;
    float sum_dw[P][V] = {}, sum_db[P][V] = {};
    for (int i = threadIdx.x; i < c; i += blockDim.x) ws[i] = to_f32(w[i]);
    __syncthreads();
    for (int row = blockIdx.x * warps + threadIdx.x / 32; row < rows; row += gridDim.x * warps) {
        const int64_t at = (int64_t)row * c;
        layernorm_backward_row<T, V, P, (sizeof(T) == 2 && V > 1)>(dinp + at, dinp + at, inp + at, dout + at, ws, mean[row], rstd[row], c, sum_dw, sum_db);
    }
    layernorm_block_sums_out<V, P>(partial, block_dw, block_db, sum_dw, sum_db, c);
}

// layernorm_backward_cached for bf16 rows of at most 768 columns in 16-byte
// packs, with the rows software-pipelined: while a warp computes on one row,
// cp.async copies its next S − 1 rows (x, dy, dinp, mean, rstd)
// into the warp's slots of shared memory, so that memory stays busy through
// the row's reductions (the cached kernel waits on memory once a row, with
// only 16 warps an SM at its 128 registers). Each lane copies and reads back
// its own packs; only mean and rstd (copied by lane 0) need a __syncwarp.
// W warps a block (blockDim.x = 32·W), S row slots a warp. The block's dw/db
// sums go to its row of `partial`, or with ATOMIC straight to dw and db.
template <int W, int S, bool ATOMIC = false>
__device__ void layernorm_backward_pipelined(bf16* dinp, float* partial, float* dw, float* db, const bf16* dout, const bf16* inp, const bf16* w,
                                             const float* mean, const float* rstd, int rows, int c) {
    constexpr int V = VEC<bf16>, P = LN_BACKWARD_CACHED_MAX_C / (32 * V);
    // W·S·4.5 KB of row slots + 9 KB of sums and weights: under the 48 KB of static shared memory.
    static_assert(W * S * 3 * LN_BACKWARD_CACHED_MAX_C * 2 + 3 * LN_BACKWARD_CACHED_MAX_C * 4 <= 48 * 1024 - 256, "static shared memory");
    alignas(16) __shared__ bf16 slots[W][S][3][LN_BACKWARD_CACHED_MAX_C];  // x, dy, dinp
    __shared__ float stats[W][S][2];                                        // mean, rstd
    __shared__ float block_dw[LN_BACKWARD_CACHED_MAX_C], block_db[LN_BACKWARD_CACHED_MAX_C], ws[LN_BACKWARD_CACHED_MAX_C];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int first = blockIdx.x * W + warp, step = gridDim.x * W;
    // Copies row `row` (if any) into slot `slot`; always commits a group, so
    // that the number of groups in flight says which slots have landed.
    auto fetch = [&](int row, int slot) {
        if (row < rows) {
            const int64_t at = (int64_t)row * c;
            FOR_LANE_PACKS(p, i, P, V, c) {
                cp_async16(&slots[warp][slot][0][i], inp + at + i);
                cp_async16(&slots[warp][slot][1][i], dout + at + i);
                cp_async16(&slots[warp][slot][2][i], dinp + at + i);
            }
            if (lane == 0) {
                cp_async4(&stats[warp][slot][0], mean + row);
                cp_async4(&stats[warp][slot][1], rstd + row);
            }
        }
        cp_async_commit();
    };
    float sum_dw[P][V] = {}, sum_db[P][V] = {};
    for (int s = 0; s < S - 1; s++) fetch(first + s * step, s);
    for (int i = threadIdx.x; i < c; i += blockDim.x) ws[i] = to_f32(w[i]);
    __syncthreads();
    for (int it = 0, row = first; row < rows; it++, row += step) {
        fetch(row + (S - 1) * step, (it + S - 1) % S);
        cp_async_wait<S - 1>();  // this row's group has landed; the later ones may run on
        __syncwarp();            // lane 0's mean and rstd are visible to the warp
        const int slot = it % S;
        layernorm_backward_row<bf16, V, P, false>(dinp + (int64_t)row * c, slots[warp][slot][2], slots[warp][slot][0], slots[warp][slot][1], ws,
                                                  stats[warp][slot][0], stats[warp][slot][1], c, sum_dw, sum_db);
        __syncwarp();  // every lane is done with this slot before it is refilled
    }
    cp_async_wait<0>();
    if constexpr (ATOMIC) layernorm_block_sums_add<V, P>(dw, db, block_dw, block_db, sum_dw, sum_db, c);
    else layernorm_block_sums_out<V, P>(partial, block_dw, block_db, sum_dw, sum_db, c);
}

// One warp per row; two passes over the row (mean, then centred variance) as
// the CPU reference does, so both agree to rounding. With ADD the row is
// res = inp + delta, rounded to T and stored in the first pass, read back
// (by the lane that wrote it) in the others.
template <typename T, bool ADD>
__device__ void layernorm_forward(T* res, T* out, float* mean, float* rstd, const T* inp, const T* delta, const T* w, const T* b, int rows, int c, float eps) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t at = (int64_t)row * c;
    float sum = 0.0f;
    for (int i = lane; i < c; i += 32) sum += layernorm_input_pack<T, 1, ADD>(res, inp, delta, at + i)[0];
    const T* x = (ADD ? res : inp) + at;
    const float m = warp_sum(sum) / c;
    float var = 0.0f;
    for (int i = lane; i < c; i += 32) {
        const float d = to_f32(x[i]) - m;
        var += d * d;
    }
    const float r = 1.0f / sqrtf(warp_sum(var) / c + eps);
    T* o = out + (int64_t)row * c;
    for (int i = lane; i < c; i += 32) o[i] = from_f32<T>((to_f32(x[i]) - m) * r * to_f32(w[i]) + to_f32(b[i]));
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

// dinp += rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)), dnorm = w·dout.
// The two means of one row, summed across the warp (every lane gets them).
template <typename T>
__device__ float2 layernorm_row_means(const T* dout, const T* inp, const T* w, float mu, float rs, int c) {
    const int lane = threadIdx.x % 32;
    float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
    for (int i = lane; i < c; i += 32) {
        const float norm = (to_f32(inp[i]) - mu) * rs;
        const float dnorm = to_f32(w[i]) * to_f32(dout[i]);
        dnorm_sum += dnorm;
        dnorm_norm_sum += dnorm * norm;
    }
    return make_float2(warp_sum(dnorm_sum) / c, warp_sum(dnorm_norm_sum) / c);
}

template <typename T>
__device__ void layernorm_backward_input(T* dinp, const T* dout, const T* inp, const T* w, const float* mean, const float* rstd, int rows, int c) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t at = (int64_t)row * c;
    const float mu = mean[row], rs = rstd[row];
    const float2 means = layernorm_row_means(dout + at, inp + at, w, mu, rs, c);
    for (int i = lane; i < c; i += 32) {
        const float norm = (to_f32(inp[at + i]) - mu) * rs;
        const float dnorm = to_f32(w[i]) * to_f32(dout[at + i]);
        dinp[at + i] = from_f32<T>(to_f32(dinp[at + i]) + (dnorm - means.x - norm * means.y) * rs);
    }
}

// The whole backward in one pass for rows of at most LN_FUSED_MAX_C columns:
// the block's warps take rows in turn and update dinp as
// layernorm_backward_input does, while the block sums dw and db over its rows
// in shared memory, then writes them out (block_sums_out).
#define LN_FUSED_MAX_C 2048
template <typename T>
__device__ void layernorm_backward_fused(T* dinp, float* partial, const T* dout, const T* inp, const T* w, const float* mean,
                                         const float* rstd, int rows, int c) {
    __shared__ float block_dw[LN_FUSED_MAX_C], block_db[LN_FUSED_MAX_C];
    for (int i = threadIdx.x; i < c; i += blockDim.x) block_dw[i] = block_db[i] = 0.0f;
    __syncthreads();
    const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int row = blockIdx.x * warps + threadIdx.x / 32; row < rows; row += gridDim.x * warps) {
        const int64_t at = (int64_t)row * c;
        const float mu = mean[row], rs = rstd[row];
        const float2 means = layernorm_row_means(dout + at, inp + at, w, mu, rs, c);
        for (int i = lane; i < c; i += 32) {
            const float norm = (to_f32(inp[at + i]) - mu) * rs;
            const float dy = to_f32(dout[at + i]), dnorm = to_f32(w[i]) * dy;
            dinp[at + i] = from_f32<T>(to_f32(dinp[at + i]) + (dnorm - means.x - norm * means.y) * rs);
            atomicAdd(&block_dw[i], norm * dy);
            atomicAdd(&block_db[i], dy);
        }
    }
    __syncthreads();
    block_sums_out(partial, block_dw, block_db, c);
}

// dw[j] += Σ_r norm[r,j]·dout[r,j], db[j] += Σ_r dout[r,j] (common.cuh's
// column sums): rows wider than the fused backwards take.
template <typename T, int V>
__device__ void layernorm_backward_params(float* out0, float* out1, int rows, int c, int rows_per_split, const T* dout, const T* inp,
                                          const float* mean, const float* rstd) {
    column_sums<T, V, 2>(out0, out1, rows, c, rows_per_split, [&](int r, int64_t j, float (&acc)[2][V]) {
        const int64_t at = (int64_t)r * c + j;
        const Pack<T, V> dy = load_pack<T, V>(dout + at), x = load_pack<T, V>(inp + at);
        const float m = mean[r], s = rstd[r];
        for (int k = 0; k < V; k++) {
            acc[0][k] += (x[k] - m) * s * dy[k];
            acc[1][k] += dy[k];
        }
    });
}

// RMS norm: out = w · x · r, r = 1/sqrt(mean(x²) + eps); one warp per row,
// lane `lane` on packs of V columns at (p·32 + lane)·V (V = VEC<T> when c is
// a multiple of it and every pointer 16-byte aligned, else 1). With ADD the
// row is res = inp + delta, rounded to T and stored in the first pass, read
// back (by the lane that wrote it) in the second.
template <typename T, int V, bool ADD>
__device__ void rmsnorm_forward(T* res, T* out, float* rstd, const T* inp, const T* delta, const T* w, int rows, int c, float eps) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t at = (int64_t)row * c;
    float sq = 0.0f;
    for (int i = lane * V; i < c; i += 32 * V) {
        const Pack<T, V> x = layernorm_input_pack<T, V, ADD>(res, inp, delta, at + i);
        for (int k = 0; k < V; k++) sq += x[k] * x[k];
    }
    const T* x = (ADD ? res : inp) + at;
    const float r = 1.0f / sqrtf(warp_sum(sq) / c + eps);
    for (int i = lane * V; i < c; i += 32 * V) {
        const Pack<T, V> xp = load_pack<T, V>(x + i), wp = load_pack<T, V>(w + i);
        Pack<T, V> o;
        for (int k = 0; k < V; k++) o.v[k] = from_f32<T>(wp[k] * (xp[k] * r));
        store_pack(out + at + i, o);
    }
    if (lane == 0) rstd[row] = r;
}

// With g = w·dout: dinp += r·g − x·r³·(g·x)/c (packs as rmsnorm_forward).
template <typename T, int V>
__device__ void rmsnorm_backward_input(T* dinp, const T* dout, const T* inp, const T* w, const float* rstd, int rows, int c) {
    const int lane = threadIdx.x % 32;
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t at = (int64_t)row * c;
    const float r = rstd[row];
    float gx = 0.0f;
    for (int i = lane * V; i < c; i += 32 * V) {
        const Pack<T, V> wp = load_pack<T, V>(w + i), dy = load_pack<T, V>(dout + at + i), x = load_pack<T, V>(inp + at + i);
        for (int k = 0; k < V; k++) gx += wp[k] * dy[k] * x[k];
    }
    const float scale = warp_sum(gx) * r * r * r / c;
    for (int i = lane * V; i < c; i += 32 * V) {
        const Pack<T, V> wp = load_pack<T, V>(w + i), dy = load_pack<T, V>(dout + at + i), x = load_pack<T, V>(inp + at + i);
        Pack<T, V> dx = load_pack<T, V>(dinp + at + i);
        for (int k = 0; k < V; k++) dx.v[k] = from_f32<T>(dx[k] + wp[k] * dy[k] * r - x[k] * scale);
        store_pack(dinp + at + i, dx);
    }
}

// dw[j] += Σ_r dout[r,j]·x[r,j]·r[r] (common.cuh's column sums).
template <typename T, int V>
__device__ void rmsnorm_backward_params(float* out0, float* out1, int rows, int c, int rows_per_split, const T* dout, const T* inp, const float* rstd) {
    column_sums<T, V, 1>(out0, out1, rows, c, rows_per_split, [&](int r, int64_t j, float (&acc)[1][V]) {
        const int64_t at = (int64_t)r * c + j;
        const Pack<T, V> dy = load_pack<T, V>(dout + at), x = load_pack<T, V>(inp + at);
        const float s = rstd[r];
        for (int k = 0; k < V; k++) acc[0][k] += dy[k] * x[k] * s;
    });
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                        \
    extern "C" __global__ void layernorm_forward_##S(T* out, float* mean, float* rstd, const T* inp, const T* w, const T* b,   \
                                                     int rows, int c, float eps) {                                             \
        layernorm_forward<T, false>(nullptr, out, mean, rstd, inp, nullptr, w, b, rows, c, eps);                               \
    }                                                                                                                          \
    extern "C" __global__ void add_layernorm_forward_##S(T* res, T* out, float* mean, float* rstd, const T* inp,              \
                                                         const T* delta, const T* w, const T* b, int rows, int c, float eps) { \
        layernorm_forward<T, true>(res, out, mean, rstd, inp, delta, w, b, rows, c, eps);                                      \
    }                                                                                                                          \
    extern "C" __global__ void layernorm_backward_input_##S(T* dinp, const T* dout, const T* inp, const T* w, const float* mean, \
                                                            const float* rstd, int rows, int c) {                              \
        layernorm_backward_input<T>(dinp, dout, inp, w, mean, rstd, rows, c);                                                  \
    }                                                                                                                          \
    extern "C" __global__ void layernorm_backward_fused_##S(T* dinp, float* partial, const T* dout, const T* inp, const T* w,     \
                                                            const float* mean, const float* rstd, int rows, int c) {           \
        layernorm_backward_fused<T>(dinp, partial, dout, inp, w, mean, rstd, rows, c);                                         \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)

// The RMS norm and the parameter gradients' column sums, with element
// (`rmsnorm_forward_f32`) and 16-byte (`rmsnorm_forward_vec_f32`) access.
#define PACKED_FOR(T, S, V, VS)                                                                                                 \
    extern "C" __global__ void rmsnorm_forward##VS##_##S(T* out, float* rstd, const T* inp, const T* w, int rows, int c,        \
                                                         float eps) {                                                           \
        rmsnorm_forward<T, V, false>(nullptr, out, rstd, inp, nullptr, w, rows, c, eps);                                        \
    }                                                                                                                          \
    extern "C" __global__ void add_rmsnorm_forward##VS##_##S(T* res, T* out, float* rstd, const T* inp, const T* delta,         \
                                                             const T* w, int rows, int c, float eps) {                          \
        rmsnorm_forward<T, V, true>(res, out, rstd, inp, delta, w, rows, c, eps);                                               \
    }                                                                                                                          \
    extern "C" __global__ void rmsnorm_backward_input##VS##_##S(T* dinp, const T* dout, const T* inp, const T* w,               \
                                                                const float* rstd, int rows, int c) {                           \
        rmsnorm_backward_input<T, V>(dinp, dout, inp, w, rstd, rows, c);                                                        \
    }                                                                                                                          \
    extern "C" __global__ void layernorm_backward_params##VS##_##S(float* out0, float* out1, int rows, int c, int rows_per_split, \
                                                                   const T* dout, const T* inp, const float* mean,              \
                                                                   const float* rstd) {                                         \
        layernorm_backward_params<T, V>(out0, out1, rows, c, rows_per_split, dout, inp, mean, rstd);                            \
    }                                                                                                                          \
    extern "C" __global__ void rmsnorm_backward_params##VS##_##S(float* out0, float* out1, int rows, int c, int rows_per_split,  \
                                                                 const T* dout, const T* inp, const float* rstd) {              \
        rmsnorm_backward_params<T, V>(out0, out1, rows, c, rows_per_split, dout, inp, rstd);                                    \
    }

PACKED_FOR(float, f32, 1, )
PACKED_FOR(bf16, bf16, 1, )
PACKED_FOR(float, f32, 4, _vec)
PACKED_FOR(bf16, bf16, 8, _vec)

// The cached kernels, each with plain (`_cached_`) and 16-byte (`_cached_vec_`) access.
#define CACHED_FOR(T, S, V, NAME)                                                                                                 \
    extern "C" __global__ void layernorm_forward_##NAME##_##S(T* out, float* mean, float* rstd, const T* inp, const T* w,       \
                                                               const T* b, int rows, int c, float eps) {                          \
        layernorm_forward_cached<T, V, false>(nullptr, out, mean, rstd, inp, nullptr, w, b, rows, c, eps);                          \
    }                                                                                                                              \
    extern "C" __global__ void add_layernorm_forward_##NAME##_##S(T* res, T* out, float* mean, float* rstd, const T* inp,      \
                                                                   const T* delta, const T* w, const T* b, int rows, int c,       \
                                                                   float eps) {                                                   \
        layernorm_forward_cached<T, V, true>(res, out, mean, rstd, inp, delta, w, b, rows, c, eps);                                \
    }                                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256, 2) layernorm_backward_##NAME##_##S(T* dinp, float* partial, const T* dout,  \
                                                                const T* inp, const T* w, const float* mean, const float* rstd,  \
                                                                int rows, int c) {                                               \
        layernorm_backward_cached<T, V>(dinp, partial, dout, inp, w, mean, rstd, rows, c);                                         \
    }

CACHED_FOR(float, f32, 1, cached)
CACHED_FOR(bf16, bf16, 1, cached)
CACHED_FOR(float, f32, VEC<float>, cached_vec)
CACHED_FOR(bf16, bf16, VEC<bf16>, cached_vec)

// The pipelined backward as 4 warps × 2 row slots (`_pipelined_`), 2 warps × 3 slots (`_pipelined3_`) or
// 2 warps × 4 slots (`_pipelined4_`: three rows in flight a warp); `_pipelined_atomic_` is the first with
// the dw/db sums added by atomics (no layernorm_params_reduce launch).
extern "C" __global__ void __launch_bounds__(128, 4) layernorm_backward_pipelined_bf16(bf16* dinp, float* partial, const bf16* dout, const bf16* inp,
                                                                                      const bf16* w, const float* mean, const float* rstd, int rows, int c) {
    layernorm_backward_pipelined<4, 2>(dinp, partial, nullptr, nullptr, dout, inp, w, mean, rstd, rows, c);
}
extern "C" __global__ void __launch_bounds__(64, 8) layernorm_backward_pipelined3_bf16(bf16* dinp, float* partial, const bf16* dout, const bf16* inp,
                                                                                      const bf16* w, const float* mean, const float* rstd, int rows, int c) {
    layernorm_backward_pipelined<2, 3>(dinp, partial, nullptr, nullptr, dout, inp, w, mean, rstd, rows, c);
}
extern "C" __global__ void __launch_bounds__(64, 8) layernorm_backward_pipelined4_bf16(bf16* dinp, float* partial, const bf16* dout, const bf16* inp,
                                                                                      const bf16* w, const float* mean, const float* rstd, int rows, int c) {
    layernorm_backward_pipelined<2, 4>(dinp, partial, nullptr, nullptr, dout, inp, w, mean, rstd, rows, c);
}

extern "C" __global__ void __launch_bounds__(128, 4) layernorm_backward_pipelined_atomic_bf16(bf16* dinp, float* dw, float* db, const bf16* dout,
                                                                                             const bf16* inp, const bf16* w, const float* mean,
                                                                                             const float* rstd, int rows, int c) {
    layernorm_backward_pipelined<4, 2, true>(dinp, nullptr, dw, db, dout, inp, w, mean, rstd, rows, c);
}

extern "C" __global__ void layernorm_params_reduce_f32(float* dw, float* db, const float* partial, int blocks, int c) {
    layernorm_params_reduce(dw, db, partial, blocks, c);
}
