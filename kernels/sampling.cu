// Choosing the next token on the device, so that a decoding step copies only
// ids back: one block per row applies the repetition penalty and n-gram bans,
// then takes the argmax, or samples after temperature, top-k and top-p; for
// beam search, each row's best n candidates (beam_candidates, below).
// Mirrors src/generate/sampling.rs (transformers' logits processors):
// - top-k keeps values >= the k-th largest (ties kept);
// - top-p drops, in ascending (stable) order, the tokens whose cumulative
//   probability stays <= 1 - p (found by bisection over an order-preserving
//   integer image of (value, index) instead of a sort);
// - sampling returns the first token whose cumulative probability exceeds u.
#include "common.cuh"

#define SAMPLE_THREADS 1024

// Order-preserving map of a float to an unsigned integer.
__device__ __forceinline__ unsigned order_key(float f) {
    const unsigned bits = __float_as_uint(f);
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// A token's place in an ascending stable sort: value first, then index.
__device__ __forceinline__ unsigned long long rank_key(float f, int index) {
    return ((unsigned long long)order_key(f) << 32) | (unsigned)index;
}

// Block reductions for SAMPLE_THREADS threads.
__device__ float block_max(float v) {
    __shared__ float partial[32];
    __shared__ float result;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_max(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float m = lane < (int)(blockDim.x / 32) ? partial[lane] : -CUDART_INF_F;
        m = warp_max(m);
        if (lane == 0) result = m;
    }
    __syncthreads();
    const float r = result;
    __syncthreads();
    return r;
}

// The smallest index among threads (INT_MAX for none).
__device__ int block_min_index(int v) {
    __shared__ int partial[32];
    __shared__ int result;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int m = lane < (int)(blockDim.x / 32) ? partial[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) m = min(m, __shfl_xor_sync(0xffffffffu, m, o));
        if (lane == 0) result = m;
    }
    __syncthreads();
    const int r = result;
    __syncthreads();
    return r;
}

// ---- kernels ------------------------------------------------------------------

// The row's processed logits go to `work` (f32, [rows, vocab]); `lists` holds
// each row's seen tokens then its banned tokens, `bounds[3r..3r+3]` = (seen
// start, seen end = banned start, banned end). Inactive rows get token 0.
template <typename T>
__device__ void select_tokens(int* out, float* work, const T* logits, int vocab, const int* lists, const int* bounds, const float* uniforms,
                              const int* active, float penalty, int do_sample, float temperature, int top_k, float top_p) {
    const int row = blockIdx.x;
    if (!active[row]) {
        if (threadIdx.x == 0) out[row] = 0;
        return;
    }
    float* x = work + (int64_t)row * vocab;
    const T* in = logits + (int64_t)row * vocab;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) x[j] = to_f32(in[j]);
    __syncthreads();
    const int seen_start = bounds[3 * row], banned_start = bounds[3 * row + 1], banned_end = bounds[3 * row + 2];
    for (int i = seen_start + threadIdx.x; i < banned_start; i += blockDim.x) {  // distinct tokens: no write conflicts
        const float v = x[lists[i]];
        x[lists[i]] = v < 0.0f ? v * penalty : v / penalty;
    }
    __syncthreads();
    for (int i = banned_start + threadIdx.x; i < banned_end; i += blockDim.x) x[lists[i]] = -CUDART_INF_F;
    __syncthreads();

    // Greedy: the first index of the largest value.
    float best = -CUDART_INF_F;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) best = fmaxf(best, x[j]);
    best = block_max(best);
    if (!do_sample) {
        int first = 0x7fffffff;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            if (x[j] == best) first = min(first, j);
        first = block_min_index(first);
        if (threadIdx.x == 0) out[row] = first == 0x7fffffff ? 0 : first;
        return;
    }

    if (temperature != 1.0f) {
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) x[j] = x[j] / temperature;
        __syncthreads();
        best = block_max(threadIdx.x == 0 ? best / temperature : -CUDART_INF_F);
    }
    if (top_k > 0 && top_k < vocab) {
        // The k-th largest value's key: the largest K with #(key >= K) >= k,
        // built bit by bit from the top.
        unsigned kth = 0;
        for (int bit = 31; bit >= 0; bit--) {
            const unsigned cand = kth | (1u << bit);
            float count = 0.0f;
            for (int j = threadIdx.x; j < vocab; j += blockDim.x) count += order_key(x[j]) >= cand ? 1.0f : 0.0f;
            if (block_sum(count) >= (float)top_k) kth = cand;
        }
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            if (order_key(x[j]) < kth) x[j] = -CUDART_INF_F;
        __syncthreads();
    }
    // Softmax normaliser over what is left.
    float z = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) z += x[j] == -CUDART_INF_F ? 0.0f : expf(x[j] - best);
    z = block_sum(z);
    if (top_p < 1.0f) {
        // transformers sorts ascending (stably: ties by index) and drops the
        // prefix whose cumulative probability stays <= 1 - p. In that order a
        // token's rank is its (value key, index) pair: find the largest K with
        // mass(pair < K) <= 1 - p, bit by bit over 64 bits, and drop pairs < K.
        const float limit = 1.0f - top_p;
        unsigned long long cut = 0;
        for (int bit = 63; bit >= 0; bit--) {
            const unsigned long long cand = cut | (1ull << bit);
            float mass = 0.0f;
            for (int j = threadIdx.x; j < vocab; j += blockDim.x)
                if (x[j] != -CUDART_INF_F && rank_key(x[j], j) < cand) mass += expf(x[j] - best) / z;
            if (block_sum(mass) <= limit) cut = cand;
        }
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            if (rank_key(x[j], j) < cut) x[j] = -CUDART_INF_F;
        __syncthreads();
        z = 0.0f;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) z += x[j] == -CUDART_INF_F ? 0.0f : expf(x[j] - best);
        z = block_sum(z);
    }
    // Sample: each thread scans a contiguous chunk, after the chunks before it.
    __shared__ float chunk_mass[SAMPLE_THREADS];
    const int chunk = (vocab + blockDim.x - 1) / blockDim.x;
    const int begin = min(vocab, (int)threadIdx.x * chunk), end = min(vocab, begin + chunk);
    float mine = 0.0f;
    for (int j = begin; j < end; j++) mine += x[j] == -CUDART_INF_F ? 0.0f : expf(x[j] - best) / z;
    chunk_mass[threadIdx.x] = mine;
    __syncthreads();
    float before = 0.0f;
    for (int t = 0; t < (int)threadIdx.x; t++) before += chunk_mass[t];
    const float u = uniforms[row];
    int found = 0x7fffffff;
    float cum = before;
    for (int j = begin; j < end; j++) {
        cum += x[j] == -CUDART_INF_F ? 0.0f : expf(x[j] - best) / z;
        if (u < cum) {
            found = j;
            break;
        }
    }
    found = block_min_index(found);
    if (found == 0x7fffffff) {  // rounding left u above the total: the argmax, as on the host
        int first = 0x7fffffff;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            if (x[j] == best) first = min(first, j);
        found = block_min_index(first);
    }
    if (threadIdx.x == 0) out[row] = found;
}

// A beam candidate's place in descending order: value first, then the lower
// index — distinct for distinct indices, so the n best are the n largest keys.
__device__ __forceinline__ unsigned long long beam_key(float f, int index) {
    return ((unsigned long long)order_key(f) << 32) | (0xffffffffu - (unsigned)index);
}

// Beam search's step for one row (mirrors src/generate/candidates.rs): the
// log-softmax of the row's logits (into `work`), banned tokens (lists[bounds[2r]
// .. bounds[2r+1]]) at -inf, plus the row's running score; then the n best by
// beam_key, found digit by digit (8 bits at a time from the top, a histogram
// of the keys that share the digits found so far) and written to the row's n
// slots of out_scores/out_tokens in no particular order (token -1 in slots
// past the vocabulary: the host sorts the n).
template <typename T>
__device__ void beam_candidates(float* out_scores, int* out_tokens, float* work, const T* logits, int vocab, const int* lists, const int* bounds,
                                const float* running, int n) {
    __shared__ unsigned hist[256];
    __shared__ unsigned long long found_prefix;
    __shared__ unsigned found_remaining, slots;
    const int row = blockIdx.x;
    float* x = work + (int64_t)row * vocab;
    const T* in = logits + (int64_t)row * vocab;
    float best = -CUDART_INF_F;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        x[j] = to_f32(in[j]);
        best = fmaxf(best, x[j]);
    }
    best = block_max(best);
    float z = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) z += expf(x[j] - best);
    const float log_z = best + logf(block_sum(z)), score = running[row];
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) x[j] = (x[j] - log_z) + score;
    __syncthreads();
    for (int i = bounds[2 * row] + threadIdx.x; i < bounds[2 * row + 1]; i += blockDim.x) x[lists[i]] = -CUDART_INF_F;
    for (int i = threadIdx.x; i < n; i += blockDim.x) out_tokens[(int64_t)row * n + i] = -1;
    __syncthreads();

    // The n-th largest key: its digits from the top, each the digit at which
    // the keys sharing the digits so far, counted from the largest, reach the
    // number still wanted.
    unsigned long long prefix = 0, mask = 0;
    unsigned remaining = (unsigned)min(n, vocab);
    for (int shift = 56; shift >= 0 && remaining > 0; shift -= 8) {
        for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
        __syncthreads();
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
            const unsigned long long key = beam_key(x[j], j);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned above = 0;
            int d = 255;
            for (; d > 0 && above + hist[d] < remaining; d--) above += hist[d];
            found_prefix = prefix | ((unsigned long long)d << shift);
            found_remaining = remaining - above;
        }
        __syncthreads();
        prefix = found_prefix;
        remaining = found_remaining;
        mask |= 255ull << shift;
    }
    if (threadIdx.x == 0) slots = 0;
    __syncthreads();
    if (remaining == 0) return;  // n == 0
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        if (beam_key(x[j], j) >= prefix) {
            const unsigned slot = atomicAdd(&slots, 1u);
            out_scores[(int64_t)row * n + slot] = x[j];
            out_tokens[(int64_t)row * n + slot] = j;
        }
}

// ---- launchers ------------------------------------------------------------------

#define FOR_DTYPE(T, S)                                                                                                       \
    extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)                                                              \
        select_tokens_##S(int* out, float* work, const T* logits, int vocab, const int* lists, const int* bounds,             \
                          const float* uniforms, const int* active, float penalty, int do_sample, float temperature,         \
                          int top_k, float top_p) {                                                                           \
        select_tokens<T>(out, work, logits, vocab, lists, bounds, uniforms, active, penalty, do_sample, temperature, top_k, \
                         top_p);                                                                                              \
    }

FOR_DTYPE(float, f32)
FOR_DTYPE(bf16, bf16)

#define FOR_DTYPE_BEAM(T, S)                                                                                                  \
    extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)                                                              \
        beam_candidates_##S(float* out_scores, int* out_tokens, float* work, const T* logits, int vocab, const int* lists,    \
                            const int* bounds, const float* running, int n) {                                                  \
        beam_candidates<T>(out_scores, out_tokens, work, logits, vocab, lists, bounds, running, n);                           \
    }

FOR_DTYPE_BEAM(float, f32)
FOR_DTYPE_BEAM(bf16, bf16)
