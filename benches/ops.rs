//! Microbenchmarks of the CPU backend's ops at GPT-2 124M training shapes
//! (B·T = 512 rows). Prints the median time and throughput of each op:
//!     cargo bench --bench ops [-- FILTER]

use hhi::backend::cpu::Cpu;
use hhi::backend::{AdamW, AttnShape, Backend, DecaySegment, Gemm};
use std::time::Instant;

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn filled(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 2000) as f32 / 1000.0 - 1.0).collect()
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    let be = Cpu;
    let rows = 512;
    println!("{:<40} {:>10} {:>14}", "op", "median ms", "throughput");
    let gemms = [("c_attn", 2304, 768), ("attn.c_proj", 768, 768), ("c_fc", 3072, 768), ("mlp.c_proj", 768, 3072), ("lm_head", 50257, 768)];
    for (name, n, k) in gemms {
        for (tag, g, a_len, b_len) in [
            ("forward  x·W", Gemm::new(rows, n, k), rows * k, k * n),
            ("backward dy·Wᵀ", Gemm::new(rows, k, n).tb(), rows * n, k * n),
            ("backward xᵀ·dy", Gemm::new(k, n, rows).ta().acc(), rows * k, rows * n),
        ] {
            let label = format!("matmul {name} {tag}");
            if !label.contains(&filter) {
                continue;
            }
            let (a, b) = (filled(a_len, 1), filled(b_len, 2));
            let mut out = vec![0f32; g.m * g.n];
            let ms = median_ms(5, || be.matmul(&mut out, &a, &b, None, g));
            println!("{label:<40} {ms:>10.2} {:>9.1} GFLOP/s", 2.0 * (g.m * g.n * g.k) as f64 / ms / 1e6);
        }
    }
    let c = 768;
    let qkv = filled(rows * 3 * c, 3);
    let s = AttnShape::fused_self(4, 128, 12, 64, 0.125);
    let (mut out, mut lse, mut dqkv) = (vec![0f32; rows * c], vec![0f32; 4 * 12 * 128], vec![0f32; rows * 3 * c]);
    let dout = filled(rows * c, 4);
    if "attention".contains(&filter) || filter.is_empty() {
        let ms = median_ms(5, || be.attention_forward(&mut out, &mut lse, &qkv, &qkv[c..], &qkv[2 * c..], None, &s));
        println!("{:<40} {ms:>10.2}", "attention forward B4 T128 H12");
        let ms = median_ms(5, || be.attention_backward(&mut dqkv, &dout, &qkv, &out, &lse, None, &s));
        println!("{:<40} {ms:>10.2}", "attention backward B4 T128 H12");
    }
    let x = filled(rows * 3072, 5);
    let mut y = vec![0f32; rows * 3072];
    if "gelu".contains(&filter) || filter.is_empty() {
        let ms = median_ms(9, || be.gelu_forward(&mut y, &x));
        println!("{:<40} {ms:>10.2} {:>9.2} Gelem/s", "gelu forward 512×3072", x.len() as f64 / ms / 1e6);
    }
    if "layernorm".contains(&filter) || filter.is_empty() {
        let (w, bias) = (filled(c, 6), filled(c, 7));
        let (mut mean, mut rstd) = (vec![0f32; rows], vec![0f32; rows]);
        let ms = median_ms(9, || be.layernorm_forward(&mut y[..rows * c], &mut mean, &mut rstd, &x[..rows * c], &w, &bias, rows, c, 1e-5));
        println!("{:<40} {ms:>10.2}", "layernorm forward 512×768");
    }
    if "cross_entropy".contains(&filter) || filter.is_empty() {
        let v = 50257;
        let mut logits = filled(rows * v, 8);
        let targets: Vec<i32> = (0..rows as i32).collect();
        let mut losses = vec![0f32; rows];
        let ms = median_ms(5, || be.softmax_cross_entropy(&mut losses, &mut logits, &targets, rows, v, Some(1.0 / rows as f32)));
        println!("{:<40} {ms:>10.2}", "softmax_cross_entropy 512×50257");
    }
    if "adamw".contains(&filter) || filter.is_empty() {
        let n = 124_439_808;
        let (mut p, g, mut m, mut v) = (filled(n, 9), filled(n, 10), vec![0f32; n], vec![0f32; n]);
        let seg = [DecaySegment { offset: 0, len: n, decay: true }];
        let mut step = 0;
        let ms = median_ms(3, || {
            step += 1;
            be.adamw(&mut p, &g, &mut m, &mut v, &seg, &AdamW::default(), step, 1.0)
        });
        println!("{:<40} {ms:>10.2} {:>9.2} GB/s", "adamw 124M params", 7.0 * 4.0 * n as f64 / ms / 1e6);
    }
}
