//! Finite-difference checks of every backward op, in f64 on tiny shapes: the
//! CPU kernels are generic over the float type, so these run the very kernels
//! the f32 backend runs. For an op y = f(x) we take the scalar
//! L = Σ r ⊙ y with fixed random r; the analytic gradient of L (the op's
//! backward fed with dout = r) must match central differences.

use hhi::backend::cpu::attention::{Grads, Inputs};
use hhi::backend::cpu::{attention, elementwise, embedding, layernorm, loss, matmul, rmsnorm};
use hhi::backend::{Act, AttnShape, Gemm};
use hhi::rng::Rng;

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks `analytic` against central differences of `loss` w.r.t. `x`.
fn check(name: &str, x: &mut [f64], analytic: &[f64], mut loss: impl FnMut(&[f64]) -> f64) {
    let mut worst = 0.0f64;
    for i in 0..x.len() {
        let orig = x[i];
        x[i] = orig + H;
        let up = loss(x);
        x[i] = orig - H;
        let down = loss(x);
        x[i] = orig;
        let numeric = (up - down) / (2.0 * H);
        let err = (numeric - analytic[i]).abs() / (1.0 + numeric.abs());
        worst = worst.max(err);
    }
    println!("{name:<40} max error {worst:.2e}");
    assert!(worst < TOL, "{name}: finite differences disagree (max error {worst:.2e})");
}

#[test]
fn matmul_backward_all_layouts() {
    let mut rng = Rng::new(1);
    let (m, n, k) = (5, 3, 4);
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let g = Gemm { trans_a: ta, trans_b: tb, ..Gemm::new(m, n, k) };
        let (mut a, mut b, mut bias) = (random(m * k, &mut rng), random(k * n, &mut rng), random(n, &mut rng));
        let r = random(m * n, &mut rng);
        let f = |a: &[f64], b: &[f64], bias: &[f64]| {
            let mut out = vec![0.0; m * n];
            matmul::matmul(&mut out, a, b, Some(bias), g);
            dot(&out, &r)
        };
        // dL/da = r · op(b)ᵀ (in a's storage layout), dL/db = op(a)ᵀ · r, dL/dbias = Σ rows r.
        let mut da = vec![0.0; m * k];
        if ta {
            matmul::matmul(&mut da, &b, &r, None, Gemm { trans_a: tb, trans_b: true, ..Gemm::new(k, m, n) });
        } else {
            matmul::matmul(&mut da, &r, &b, None, Gemm { trans_b: !tb, ..Gemm::new(m, k, n) });
        }
        let mut db = vec![0.0; k * n];
        if tb {
            matmul::matmul(&mut db, &r, &a, None, Gemm { trans_a: true, trans_b: ta, ..Gemm::new(n, k, m) });
        } else {
            matmul::matmul(&mut db, &a, &r, None, Gemm { trans_a: !ta, ..Gemm::new(k, n, m) });
        }
        let mut dbias = vec![0.0; n];
        matmul::bias_backward(&mut dbias, &r, m, n);
        let (b0, bias0) = (b.clone(), bias.clone());
        check(&format!("matmul ta={ta} tb={tb}: a"), &mut a, &da, |a| f(a, &b0, &bias0));
        let a0 = a.clone();
        check(&format!("matmul ta={ta} tb={tb}: b"), &mut b, &db, |b| f(&a0, b, &bias0));
        let b0 = b.clone();
        check(&format!("matmul ta={ta} tb={tb}: bias"), &mut bias, &dbias, |bias| f(&a0, &b0, bias));
    }
}

#[test]
fn layernorm_backward() {
    let mut rng = Rng::new(2);
    // 19 columns: two full 8-lane chunks of the row sums and a remainder.
    let (rows, c) = (3, 19);
    let (mut x, mut w, mut b) = (random(rows * c, &mut rng), random(c, &mut rng), random(c, &mut rng));
    let r = random(rows * c, &mut rng);
    let f = |x: &[f64], w: &[f64], b: &[f64]| {
        let (mut out, mut mean, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows], vec![0.0; rows]);
        layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, x, w, b, rows, c, 1e-5);
        dot(&out, &r)
    };
    let (mut out, mut mean, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows], vec![0.0; rows]);
    layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, &x, &w, &b, rows, c, 1e-5);
    let (mut dx, mut dw, mut db) = (vec![0.0; rows * c], vec![0.0; c], vec![0.0; c]);
    layernorm::layernorm_backward(&mut dx, &mut dw, &mut db, &r, &x, &w, &mean, &rstd, rows, c);
    let (w0, b0) = (w.clone(), b.clone());
    check("layernorm: inp", &mut x, &dx, |x| f(x, &w0, &b0));
    let x0 = x.clone();
    check("layernorm: weight", &mut w, &dw, |w| f(&x0, w, &b0));
    check("layernorm: bias", &mut b, &db, |b| f(&x0, &w0, b));
}

#[test]
fn activation_backward_every_kind() {
    for (act, seed) in [(Act::GeluTanh, 3), (Act::GeluErf, 31), (Act::QuickGelu, 32), (Act::Relu, 33), (Act::Tanh, 34)] {
        let mut rng = Rng::new(seed);
        let mut x: Vec<f64> = random(40, &mut rng).iter().map(|v| 3.0 * v).collect();
        let r = random(40, &mut rng);
        let mut dx = vec![f64::NAN; 40]; // overwritten, not added to
        elementwise::activation_backward(act, &mut dx, &x, &r);
        check(&format!("{act:?}"), &mut x, &dx, |x| {
            let mut y = vec![0.0; x.len()];
            elementwise::activation_forward(act, &mut y, x);
            dot(&y, &r)
        });
    }
}

#[test]
fn rmsnorm_backward() {
    let mut rng = Rng::new(34);
    let (rows, c) = (3, 7);
    let (mut x, mut w) = (random(rows * c, &mut rng), random(c, &mut rng));
    let r = random(rows * c, &mut rng);
    let f = |x: &[f64], w: &[f64]| {
        let (mut y, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows]);
        rmsnorm::rmsnorm_forward(&mut y, &mut rstd, x, w, rows, c, 1e-6);
        dot(&y, &r)
    };
    let (mut y, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows]);
    rmsnorm::rmsnorm_forward(&mut y, &mut rstd, &x, &w, rows, c, 1e-6);
    let (mut dx, mut dw) = (vec![0.0; rows * c], vec![0.0; c]);
    rmsnorm::rmsnorm_backward(&mut dx, &mut dw, &r, &x, &w, &rstd, rows, c);
    let w0 = w.clone();
    check("rmsnorm: input", &mut x, &dx, |x| f(x, &w0));
    let x0 = x.clone();
    check("rmsnorm: weight", &mut w, &dw, |w| f(&x0, w));
}

#[test]
fn embedding_backward_accumulates_repeated_ids() {
    let mut rng = Rng::new(4);
    let (v, p, c) = (5, 4, 3);
    let ids = [1, 3, 1, 0, 4, 1];
    let pos = [0, 1, 2, 3, 0, 1];
    let (mut wte, mut wpe) = (random(v * c, &mut rng), random(p * c, &mut rng));
    let r = random(ids.len() * c, &mut rng);
    let f = |wte: &[f64], wpe: Option<&[f64]>| {
        let mut out = vec![0.0; ids.len() * c];
        embedding::embedding_forward(&mut out, &ids, wte, wpe.map(|w| (&pos[..], w)), c);
        dot(&out, &r)
    };
    let (mut dwte, mut dwpe) = (vec![0.0; v * c], vec![0.0; p * c]);
    embedding::embedding_backward(&mut dwte, Some((&pos[..], &mut dwpe[..])), &r, &ids, c);
    let wpe0 = wpe.clone();
    check("embedding: wte", &mut wte, &dwte, |w| f(w, Some(&wpe0)));
    let wte0 = wte.clone();
    check("embedding: wpe", &mut wpe, &dwpe, |w| f(&wte0, Some(w)));
    // Without positions (T5): only the token table.
    let mut dwte = vec![0.0; v * c];
    embedding::embedding_backward(&mut dwte, None, &r, &ids, c);
    check("embedding without positions", &mut wte, &dwte, |w| f(w, None));
}

#[test]
fn position_bias_backward_accumulates_shared_buckets() {
    let mut rng = Rng::new(35);
    let (buckets, heads) = ([0, 2, 2, 1, 3, 0, 2], 3);
    let mut table = random(4 * heads, &mut rng);
    let r = random(heads * buckets.len(), &mut rng);
    let mut dtable = vec![0.0; table.len()];
    embedding::position_bias_backward(&mut dtable, &r, &buckets, heads);
    check("position bias", &mut table, &dtable, |t| {
        let mut out = vec![0.0; heads * buckets.len()];
        embedding::position_bias_forward(&mut out, t, &buckets, heads);
        dot(&out, &r)
    });
}

#[test]
fn softmax_cross_entropy_backward_with_ignored_rows() {
    let mut rng = Rng::new(5);
    let (rows, v) = (4, 6);
    let targets = [2, -100, 5, 0];
    let mut logits = random(rows * v, &mut rng);
    let mean_loss = |l: &[f64]| {
        let (mut losses, mut work) = (vec![0.0; rows], l.to_vec());
        loss::softmax_cross_entropy(&mut losses, &mut work, &targets, rows, v, v, None);
        losses.iter().sum::<f64>() / 3.0
    };
    let (mut losses, mut grad) = (vec![0.0; rows], logits.clone());
    loss::softmax_cross_entropy(&mut losses, &mut grad, &targets, rows, v, v, Some(1.0 / 3.0));
    assert_eq!(losses[1], 0.0);
    check("softmax_cross_entropy", &mut logits, &grad, mean_loss);
}

/// Attention computed the obvious way (full score matrix), for reference.
fn naive_attention(q: &[f64], k: &[f64], v: &[f64], mask: Option<&[f64]>, bias: Option<&[f64]>, s: &AttnShape) -> Vec<f64> {
    let (d, c) = (s.head_dim, s.heads * s.head_dim);
    let mut out = vec![0.0; s.batch * s.q_len * c];
    for b in 0..s.batch {
        for h in 0..s.heads {
            for i in 0..s.q_len {
                let qi = &q[(b * s.q_len + i) * s.q_stride + h * d..][..d];
                let at = s.kv_len - s.q_len + i; // the query's absolute position
                let visible: Vec<usize> = (0..s.kv_len)
                    .filter(|&j| !s.causal || j <= at)
                    .filter(|&j| s.window == 0 || j + s.window > at)
                    .filter(|&j| mask.is_none_or(|m| m[b * s.kv_cap + j] != 0.0))
                    .collect();
                let bias_of = |j: usize| bias.map_or(0.0, |bias| bias[(h * s.q_len + i) * s.kv_len + j]);
                let scores: Vec<f64> = visible.iter().map(|&j| s.scale as f64 * dot(qi, &k[(b * s.kv_cap + j) * s.kv_stride + h * d..][..d]) + bias_of(j)).collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|x| (x - max).exp()).sum();
                for (&j, sc) in visible.iter().zip(&scores) {
                    let p = (sc - max).exp() / z;
                    for e in 0..d {
                        out[(b * s.q_len + i) * c + h * d + e] += p * v[(b * s.kv_cap + j) * s.kv_stride + h * d + e];
                    }
                }
            }
        }
    }
    out
}

fn fused_attention_case(b: usize, t: usize, heads: usize, d: usize, padded: bool, seed: u64) {
    windowed_attention_case(b, t, heads, d, padded, 0, seed)
}

/// Padding mask [b, t]: row r keeps its first t − 1 − r positions.
fn padding(b: usize, t: usize) -> Vec<f64> {
    (0..b * t).map(|i| if i % t < t - 1 - (i / t) { 1.0 } else { 0.0 }).collect()
}

fn windowed_attention_case(b: usize, t: usize, heads: usize, d: usize, padded: bool, window: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let c = heads * d;
    let s = AttnShape { window, ..AttnShape::fused_self(b, t, heads, d, 1.0 / (d as f32).sqrt()) };
    let mut qkv = random(b * t * 3 * c, &mut rng);
    let mask: Option<Vec<f64>> = padded.then(|| padding(b, t));
    let r = random(b * t * c, &mut rng);
    let inputs = |qkv: &[f64]| -> (Vec<f64>, Vec<f64>, Vec<f64>) { (qkv.to_vec(), qkv[c..].to_vec(), qkv[2 * c..].to_vec()) };
    let forward = |qkv: &[f64]| {
        let (q, k, v) = inputs(qkv);
        let (mut out, mut lse) = (vec![0.0; b * t * c], vec![0.0; b * heads * t]);
        attention::attention_forward(&mut out, &mut lse, &Inputs { q: &q, k: &k, v: &v, mask: mask.as_deref(), bias: None }, &s);
        (out, lse)
    };
    let (out, lse) = forward(&qkv);
    let naive = naive_attention(&qkv, &qkv[c..], &qkv[2 * c..], mask.as_deref(), None, &s);
    let diff = out.iter().zip(&naive).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-12, "attention forward differs from the naive computation by {diff:.2e}");
    let mut dqkv = vec![0.0; qkv.len()];
    let (q, k, v) = inputs(&qkv);
    let inp = Inputs { q: &q, k: &k, v: &v, mask: mask.as_deref(), bias: None };
    attention::attention_backward(Grads::Fused(&mut dqkv), None, &r, &out, &lse, &inp, &s);
    check(&format!("attention b={b} t={t} heads={heads} padded={padded} window={window}"), &mut qkv, &dqkv, |x| dot(&forward(x).0, &r));
}

/// Attention of `tq` queries against a fused KV buffer of `tk` rows with an
/// additive bias (T5): cross-attention (not causal, padded keys) or causal
/// self-attention with its position bias. Checks dQ, dK/dV and d bias.
fn biased_attention_case(b: usize, tq: usize, tk: usize, heads: usize, d: usize, causal: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let c = heads * d;
    let s = AttnShape { batch: b, heads, head_dim: d, q_len: tq, kv_len: tk, kv_cap: tk, q_stride: c, kv_stride: 2 * c, causal, window: 0, scale: 1.0 };
    let (mut q, mut kv, mut bias) = (random(b * tq * c, &mut rng), random(b * tk * 2 * c, &mut rng), random(heads * tq * tk, &mut rng));
    let mask: Option<Vec<f64>> = (!causal).then(|| padding(b, tk));
    let r = random(b * tq * c, &mut rng);
    let forward = |q: &[f64], kv: &[f64], bias: &[f64]| {
        let (mut out, mut lse) = (vec![0.0; b * tq * c], vec![0.0; b * heads * tq]);
        attention::attention_forward(&mut out, &mut lse, &Inputs { q, k: kv, v: &kv[c..], mask: mask.as_deref(), bias: Some(bias) }, &s);
        (out, lse)
    };
    let (out, lse) = forward(&q, &kv, &bias);
    let naive = naive_attention(&q, &kv, &kv[c..], mask.as_deref(), Some(&bias), &s);
    let diff = out.iter().zip(&naive).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-12, "biased attention differs from the naive computation by {diff:.2e}");
    let (mut dq, mut dkv, mut dbias) = (vec![0.0; q.len()], vec![0.0; kv.len()], vec![0.0; bias.len()]);
    let inp = Inputs { q: &q, k: &kv, v: &kv[c..], mask: mask.as_deref(), bias: Some(&bias) };
    attention::attention_backward(Grads::Split { dq: &mut dq, dkv: &mut dkv }, Some(&mut dbias), &r, &out, &lse, &inp, &s);
    let name = format!("biased attention b={b} tq={tq} tk={tk} causal={causal}");
    let (kv0, bias0) = (kv.clone(), bias.clone());
    check(&format!("{name}: q"), &mut q, &dq, |q| dot(&forward(q, &kv0, &bias0).0, &r));
    let q0 = q.clone();
    check(&format!("{name}: kv"), &mut kv, &dkv, |kv| dot(&forward(&q0, kv, &bias0).0, &r));
    check(&format!("{name}: bias"), &mut bias, &dbias, |bias| dot(&forward(&q0, &kv0, bias).0, &r));
}

#[test]
fn attention_backward_cross_attention_with_bias() {
    biased_attention_case(2, 5, 7, 2, 3, false, 12);
    // More queries than a query block, fewer keys.
    biased_attention_case(1, 70, 4, 1, 2, false, 13);
}

#[test]
fn attention_backward_causal_with_position_bias() {
    biased_attention_case(2, 6, 6, 3, 2, true, 14);
}

#[test]
fn attention_backward_local_window() {
    // GPT-Neo's local layers: a query sees itself and the window - 1 keys before it.
    windowed_attention_case(2, 9, 2, 3, true, 3, 10);
    // Longer than a query block, so whole tiles fall outside the window.
    windowed_attention_case(1, 70, 1, 2, false, 5, 11);
}

#[test]
fn attention_backward_causal_and_padded() {
    fused_attention_case(2, 5, 3, 2, false, 6);
    fused_attention_case(2, 6, 2, 3, true, 7);
}

#[test]
fn attention_backward_crosses_query_blocks() {
    // T > 64 exercises several query blocks of the tiled kernel.
    fused_attention_case(1, 70, 1, 2, true, 8);
}

#[test]
fn attention_with_kv_cache_layout_matches_naive() {
    // Two new queries against a cache of capacity 9 holding 7 keys, one padded.
    let mut rng = Rng::new(9);
    let (b, heads, d, cap) = (2, 2, 3, 9);
    let c = heads * d;
    let q = random(b * 2 * 3 * c, &mut rng);
    let (k, v) = (random(b * cap * c, &mut rng), random(b * cap * c, &mut rng));
    let mut mask = vec![1.0; b * cap];
    mask[cap] = 0.0; // row 1's first position is left padding
    for window in [0, 3] {
        let s = AttnShape { batch: b, heads, head_dim: d, q_len: 2, kv_len: 7, kv_cap: cap, q_stride: 3 * c, kv_stride: c, causal: true, window, scale: 0.5 };
        let (mut out, mut lse) = (vec![0.0; b * 2 * c], vec![0.0; b * heads * 2]);
        attention::attention_forward(&mut out, &mut lse, &Inputs { q: &q, k: &k, v: &v, mask: Some(&mask), bias: None }, &s);
        let naive = naive_attention(&q, &k, &v, Some(&mask), None, &s);
        let diff = out.iter().zip(&naive).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-12, "cached attention (window {window}) differs from the naive computation by {diff:.2e}");
    }
}
