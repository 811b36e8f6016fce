//! The T5 parameter set, declared once in buffer order with Hugging Face
//! names (`T5ForConditionalGeneration.save_pretrained`). Attention
//! projections that read the same input are stacked (`{q,k,v}`, `{k,v}`; see
//! `ParamSpec::parts`) so each is one GEMM. All weights are `nn.Linear`
//! ([out, in]) without bias.

use super::T5Config;

/// Self-attention of a block (`layer.0.SelfAttention`).
pub struct SelfAttn<T> {
    pub qkv: T, // [3I, D]
    pub o: T,   // [D, I]
    pub ln: T,  // [D] (layer.0.layer_norm)
}

/// Cross-attention of a decoder block (`layer.1.EncDecAttention`).
pub struct CrossAttn<T> {
    pub q: T,  // [I, D]
    pub kv: T, // [2I, D]
    pub o: T,  // [D, I]
    pub ln: T, // [D]
}

/// The feed-forward (`DenseReluDense`): `wo(act(wi x))`, or gated
/// `wo(act(wi_0 x) ⊙ wi_1 x)`.
pub struct FeedForward<T> {
    pub wi: T,           // [F, D] (wi, or wi_0 when gated)
    pub wi_1: Option<T>, // [F, D]
    pub wo: T,           // [D, F]
    pub ln: T,           // [D]
}

pub struct Block<T> {
    pub attn: SelfAttn<T>,
    pub cross: Option<CrossAttn<T>>,
    pub ff: FeedForward<T>,
}

/// An encoder or decoder: its blocks, the relative position bias table of
/// block 0 (shared by every block), and the final RMS norm.
pub struct Stack<T> {
    pub blocks: Vec<Block<T>>,
    pub rel_bias: T, // [num_buckets, H]
    pub final_ln: T, // [D]
}

pub struct Weights<T> {
    pub shared: T, // [V, D]
    pub encoder: Stack<T>,
    pub decoder: Stack<T>,
    /// `lm_head.weight` [V, D] of checkpoints that store one.
    pub lm_head: Option<T>,
}

impl<T> Weights<T> {
    pub fn head(&self) -> &T {
        self.lm_head.as_ref().unwrap_or(&self.shared)
    }
}

/// Declares every tensor in buffer order; `take(name, shape)` makes one `T`.
pub fn declare<T>(cfg: &T5Config, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let (d, v) = (cfg.d_model, cfg.vocab_size);
    let shared = take("shared.weight".into(), vec![v, d]);
    let encoder = stack(cfg, "encoder", cfg.num_layers, false, take);
    let decoder = stack(cfg, "decoder", cfg.num_decoder_layers, true, take);
    let lm_head = cfg.separate_head.then(|| take("lm_head.weight".into(), vec![v, d]));
    Weights { shared, encoder, decoder, lm_head }
}

fn stack<T>(cfg: &T5Config, name: &str, layers: usize, decoder: bool, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Stack<T> {
    let (d, i, f) = (cfg.d_model, cfg.inner(), cfg.d_ff);
    let mut rel_bias = None;
    let blocks = (0..layers)
        .map(|l| {
            let mut t = |suffix: &str, shape: Vec<usize>| take(format!("{name}.block.{l}.layer.{suffix}"), shape);
            let qkv = t("0.SelfAttention.{q,k,v}.weight", vec![3 * i, d]);
            let o = t("0.SelfAttention.o.weight", vec![d, i]);
            if l == 0 {
                rel_bias = Some(t("0.SelfAttention.relative_attention_bias.weight", vec![cfg.num_buckets, cfg.num_heads]));
            }
            let attn = SelfAttn { qkv, o, ln: t("0.layer_norm.weight", vec![d]) };
            let cross = decoder.then(|| CrossAttn {
                q: t("1.EncDecAttention.q.weight", vec![i, d]),
                kv: t("1.EncDecAttention.{k,v}.weight", vec![2 * i, d]),
                o: t("1.EncDecAttention.o.weight", vec![d, i]),
                ln: t("1.layer_norm.weight", vec![d]),
            });
            let ff_at = if decoder { 2 } else { 1 };
            let ff = if cfg.gated {
                FeedForward {
                    wi: t(&format!("{ff_at}.DenseReluDense.wi_0.weight"), vec![f, d]),
                    wi_1: Some(t(&format!("{ff_at}.DenseReluDense.wi_1.weight"), vec![f, d])),
                    wo: t(&format!("{ff_at}.DenseReluDense.wo.weight"), vec![d, f]),
                    ln: t(&format!("{ff_at}.layer_norm.weight"), vec![d]),
                }
            } else {
                FeedForward {
                    wi: t(&format!("{ff_at}.DenseReluDense.wi.weight"), vec![f, d]),
                    wi_1: None,
                    wo: t(&format!("{ff_at}.DenseReluDense.wo.weight"), vec![d, f]),
                    ln: t(&format!("{ff_at}.layer_norm.weight"), vec![d]),
                }
            };
            Block { attn, cross, ff }
        })
        .collect();
    let final_ln = take(format!("{name}.final_layer_norm.weight"), vec![d]);
    Stack { blocks, rel_bias: rel_bias.expect("at least one block"), final_ln }
}
