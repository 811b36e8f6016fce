//! The GPT-2 parameter set (GPT-Neo's: models/gpt_neo.rs), declared once in buffer order with Hugging Face
//! names (as `save_pretrained` writes them, `transformer.`-prefixed). The same
//! declaration gives the flat layout, parameter views and gradient views.

use super::Gpt2Config;

/// One transformer block (Conv1D weights are [in, out]; see nn::block).
pub use crate::nn::block::BlockWeights as Block;

pub struct Weights<T> {
    pub wte: T, // [V, C]
    pub wpe: T, // [P, C]
    pub blocks: Vec<Block<T>>,
    pub ln_f_w: T, // [C]
    pub ln_f_b: T, // [C]
    /// `lm_head.weight` [V, C] when the head is not tied to `wte`.
    pub lm_head: Option<T>,
}

impl<T> Weights<T> {
    /// The LM head: `lm_head` when untied, else the token embedding.
    pub fn head(&self) -> &T {
        self.lm_head.as_ref().unwrap_or(&self.wte)
    }
}

/// Declares every tensor in buffer order; `take(name, shape)` makes one `T`.
pub fn declare<T>(cfg: &Gpt2Config, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    if cfg.neo.is_some() {
        return crate::models::gpt_neo::declare(cfg, take);
    }
    let (c, i, v, p) = (cfg.n_embd, cfg.inner(), cfg.vocab_size, cfg.n_positions);
    let wte = take("transformer.wte.weight".into(), vec![v, c]);
    let wpe = take("transformer.wpe.weight".into(), vec![p, c]);
    let blocks = (0..cfg.n_layer)
        .map(|l| {
            let mut t = |suffix: &str, shape: Vec<usize>| take(format!("transformer.h.{l}.{suffix}"), shape);
            Block {
                ln_1_w: t("ln_1.weight", vec![c]),
                ln_1_b: t("ln_1.bias", vec![c]),
                c_attn_w: t("attn.c_attn.weight", vec![c, 3 * c]),
                c_attn_b: Some(t("attn.c_attn.bias", vec![3 * c])),
                attn_proj_w: t("attn.c_proj.weight", vec![c, c]),
                attn_proj_b: t("attn.c_proj.bias", vec![c]),
                ln_2_w: t("ln_2.weight", vec![c]),
                ln_2_b: t("ln_2.bias", vec![c]),
                c_fc_w: t("mlp.c_fc.weight", vec![c, i]),
                c_fc_b: t("mlp.c_fc.bias", vec![i]),
                mlp_proj_w: t("mlp.c_proj.weight", vec![i, c]),
                mlp_proj_b: t("mlp.c_proj.bias", vec![c]),
            }
        })
        .collect();
    let ln_f_w = take("transformer.ln_f.weight".into(), vec![c]);
    let ln_f_b = take("transformer.ln_f.bias".into(), vec![c]);
    let lm_head = (!cfg.tie_word_embeddings).then(|| take("lm_head.weight".into(), vec![v, c]));
    Weights { wte, wpe, blocks, ln_f_w, ln_f_b, lm_head }
}
