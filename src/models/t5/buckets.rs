//! T5's relative position buckets (`T5Attention._relative_position_bucket`
//! in models/t5/modeling_t5.py): the distance from query to key, key − query,
//! mapped to one of `num_buckets` buckets, exact for small distances and
//! logarithmic up to `max_distance`. The encoder is bidirectional (half the
//! buckets for keys after the query); the decoder is causal. Computed in f32
//! as PyTorch does, so bucket boundaries land where transformers puts them.

/// The bucket of relative position `rel` = key − query.
pub fn bucket(rel: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> i32 {
    let mut buckets = num_buckets as i64;
    let mut base = 0i64;
    let distance = if bidirectional {
        buckets /= 2;
        if rel > 0 {
            base = buckets;
        }
        rel.abs()
    } else {
        (-rel).max(0)
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        return (base + distance) as i32;
    }
    // max_exact + log(d / max_exact) / log(max_distance / max_exact) · (buckets − max_exact),
    // in f32 (torch.log on a float tensor, divided by a Python float).
    let ratio = (distance as f32 / max_exact as f32).ln();
    let scale = ((max_distance as f64 / max_exact as f64).ln()) as f32;
    let large = max_exact + (ratio / scale * (buckets - max_exact) as f32) as i64;
    (base + large.min(buckets - 1)) as i32
}

/// Buckets of queries at positions `q0..q0+q_len` against keys `0..k_len`,
/// row-major [q_len, k_len].
pub fn grid(q0: usize, q_len: usize, k_len: usize, bidirectional: bool, num_buckets: usize, max_distance: usize) -> Vec<i32> {
    let mut out = Vec::with_capacity(q_len * k_len);
    for i in q0..q0 + q_len {
        for j in 0..k_len {
            out.push(bucket(j as i64 - i as i64, bidirectional, num_buckets, max_distance));
        }
    }
    out
}
