//! The BERT encoder's parameter set (`BertModel` without its pooler),
//! declared once in buffer order with Hugging Face names; each layer's
//! query/key/value weights are stacked into one fused [3C, C] matrix.

use super::BertConfig;

pub struct Layer<T> {
    pub qkv_w: T,      // [3C, C] query, key, value stacked
    pub qkv_b: T,      // [3C]
    pub attn_out_w: T, // [C, C]
    pub attn_out_b: T, // [C]
    pub attn_ln_w: T,  // [C]
    pub attn_ln_b: T,  // [C]
    pub inter_w: T,    // [I, C]
    pub inter_b: T,    // [I]
    pub out_w: T,      // [C, I]
    pub out_b: T,      // [C]
    pub out_ln_w: T,   // [C]
    pub out_ln_b: T,   // [C]
}

pub struct Weights<T> {
    pub word_embeddings: T,       // [V, C]
    pub position_embeddings: T,   // [P, C]
    pub token_type_embeddings: T, // [types, C]
    pub emb_ln_w: T,              // [C]
    pub emb_ln_b: T,              // [C]
    pub layers: Vec<Layer<T>>,
}

/// Declares every tensor in buffer order; `take(name, shape)` makes one `T`.
pub fn declare<T>(cfg: &BertConfig, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let (c, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut t = |name: &str, shape: Vec<usize>| take(name.to_string(), shape);
    Weights {
        word_embeddings: t("embeddings.word_embeddings.weight", vec![cfg.vocab_size, c]),
        position_embeddings: t("embeddings.position_embeddings.weight", vec![cfg.max_position_embeddings, c]),
        token_type_embeddings: t("embeddings.token_type_embeddings.weight", vec![cfg.type_vocab_size, c]),
        emb_ln_w: t("embeddings.LayerNorm.weight", vec![c]),
        emb_ln_b: t("embeddings.LayerNorm.bias", vec![c]),
        layers: (0..cfg.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                Layer {
                    qkv_w: t(&format!("{p}.attention.self.{{query,key,value}}.weight"), vec![3 * c, c]),
                    qkv_b: t(&format!("{p}.attention.self.{{query,key,value}}.bias"), vec![3 * c]),
                    attn_out_w: t(&format!("{p}.attention.output.dense.weight"), vec![c, c]),
                    attn_out_b: t(&format!("{p}.attention.output.dense.bias"), vec![c]),
                    attn_ln_w: t(&format!("{p}.attention.output.LayerNorm.weight"), vec![c]),
                    attn_ln_b: t(&format!("{p}.attention.output.LayerNorm.bias"), vec![c]),
                    inter_w: t(&format!("{p}.intermediate.dense.weight"), vec![i, c]),
                    inter_b: t(&format!("{p}.intermediate.dense.bias"), vec![i]),
                    out_w: t(&format!("{p}.output.dense.weight"), vec![c, i]),
                    out_b: t(&format!("{p}.output.dense.bias"), vec![c]),
                    out_ln_w: t(&format!("{p}.output.LayerNorm.weight"), vec![c]),
                    out_ln_b: t(&format!("{p}.output.LayerNorm.bias"), vec![c]),
                }
            })
            .collect(),
    }
}
