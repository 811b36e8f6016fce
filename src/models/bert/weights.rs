//! The BERT encoder's parameter set (`BertModel` without its pooler, or
//! BLEURT's scorer: names under `bleurt.`, an embedding projection where the
//! embeddings are narrower, the pooler and the classifier), declared once in
//! buffer order with Hugging Face names; each layer's query/key/value weights
//! are stacked into one fused [3C, C] matrix.

use super::config::{BertConfig, Variant};

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

/// BLEURT's scoring head: tanh(pooler(h[CLS])) → classifier.
pub struct Head<T> {
    pub pooler_w: T,     // [C, C]
    pub pooler_b: T,     // [C]
    pub classifier_w: T, // [labels, C]
    pub classifier_b: T, // [labels]
}

pub struct Weights<T> {
    pub word_embeddings: T,       // [V, E], E the embedding width
    pub position_embeddings: T,   // [P, E]
    pub token_type_embeddings: T, // [types, E]
    pub emb_ln_w: T,              // [E]
    pub emb_ln_b: T,              // [E]
    /// [C, E] and [C], where E ≠ C (BLEURT-20).
    pub projection: Option<(T, T)>,
    pub layers: Vec<Layer<T>>,
    pub head: Option<Head<T>>,
}

/// Declares every tensor in buffer order; `take(name, shape)` makes one `T`.
pub fn declare<T>(cfg: &BertConfig, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let (c, i, e) = (cfg.hidden_size, cfg.intermediate_size, cfg.embedding_width());
    let bleurt = cfg.variant == Variant::Bleurt;
    let prefix = if bleurt { "bleurt." } else { "" };
    // Every name under the prefix but the classifier's, which sits outside `bleurt.`.
    let mut t = |name: &str, shape: Vec<usize>| take(if name.starts_with("classifier.") { name.to_string() } else { format!("{prefix}{name}") }, shape);
    Weights {
        word_embeddings: t("embeddings.word_embeddings.weight", vec![cfg.vocab_size, e]),
        position_embeddings: t("embeddings.position_embeddings.weight", vec![cfg.max_position_embeddings, e]),
        token_type_embeddings: t("embeddings.token_type_embeddings.weight", vec![cfg.type_vocab_size, e]),
        emb_ln_w: t("embeddings.LayerNorm.weight", vec![e]),
        emb_ln_b: t("embeddings.LayerNorm.bias", vec![e]),
        projection: cfg.embedding_size.map(|_| (t("encoder.embedding_projection.weight", vec![c, e]), t("encoder.embedding_projection.bias", vec![c]))),
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
        head: bleurt.then(|| Head {
            pooler_w: t("pooler.dense.weight", vec![c, c]),
            pooler_b: t("pooler.dense.bias", vec![c]),
            classifier_w: t("classifier.weight", vec![cfg.num_labels, c]),
            classifier_b: t("classifier.bias", vec![cfg.num_labels]),
        }),
    }
}
