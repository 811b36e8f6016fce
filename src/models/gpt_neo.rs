//! GPT-Neo (`GPTNeoForCausalLM`), following transformers'
//! models/gpt_neo/modeling_gpt_neo.py. It is GPT-2's graph (models/gpt2/)
//! with three changes, carried by [`NeoAttention`]:
//! - attention scores are not scaled by 1/√d;
//! - q, k, v are separate `nn.Linear` layers ([out, in]) without bias, the
//!   output projection and the MLP are `nn.Linear` with bias;
//! - `attention_types` (e.g. `[[["global", "local"], 12]]`) makes every
//!   other layer local: a query sees only the last `window_size` positions,
//!   itself included (in the KV cache too).
//!
//! This file reads and writes GPT-Neo's `config.json` and names its
//! tensors; q, k and v are declared as one stacked [3C, C] parameter
//! (`{q,k,v}_proj`, see `ParamSpec::parts`), so the graph runs one fused GEMM.

use super::gpt2::{Block, Gpt2Config, NeoAttention, Weights};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

fn d_vocab() -> usize {
    50257
}
fn d_positions() -> usize {
    2048
}
fn d_hidden() -> usize {
    2048
}
fn d_layers() -> usize {
    24
}
fn d_heads() -> usize {
    16
}
fn d_window() -> usize {
    256
}
fn d_act() -> String {
    "gelu_new".into()
}
fn d_eps() -> f32 {
    1e-5
}
fn d_true() -> bool {
    true
}
fn d_token() -> Option<serde_json::Value> {
    Some(50256.into())
}
fn d_types() -> Vec<(Vec<String>, usize)> {
    vec![(vec!["global".into(), "local".into()], 12)]
}

/// `GPTNeoConfig`'s fields with its defaults (configuration_gpt_neo.py).
#[derive(Deserialize)]
struct GptNeoConfig {
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_positions")]
    max_position_embeddings: usize,
    #[serde(default = "d_hidden")]
    hidden_size: usize,
    #[serde(default = "d_layers")]
    num_layers: usize,
    #[serde(default = "d_heads")]
    num_heads: usize,
    #[serde(default)]
    intermediate_size: Option<usize>,
    #[serde(default = "d_window")]
    window_size: usize,
    #[serde(default = "d_act")]
    activation_function: String,
    #[serde(default = "d_eps")]
    layer_norm_epsilon: f32,
    #[serde(default = "d_types")]
    attention_types: Vec<(Vec<String>, usize)>,
    #[serde(default = "d_true")]
    tie_word_embeddings: bool,
    #[serde(default = "d_token")]
    bos_token_id: Option<serde_json::Value>,
    #[serde(default = "d_token")]
    eos_token_id: Option<serde_json::Value>,
}

/// A token id, or the first of a list of them (`eos_token_id` may be either).
fn first_id(v: &Option<serde_json::Value>) -> Option<u32> {
    match v {
        Some(serde_json::Value::Array(ids)) => ids.first().and_then(|x| x.as_u64()).map(|x| x as u32),
        Some(x) => x.as_u64().map(|x| x as u32),
        None => None,
    }
}

/// Parses a GPT-Neo `config.json` into the shared decoder config.
pub fn config_from_json(path: &Path, json: &serde_json::Value) -> Result<Gpt2Config> {
    let neo: GptNeoConfig = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid GPT-Neo config: {e}")))?;
    let mut local = Vec::new();
    for (pattern, repeat) in &neo.attention_types {
        for _ in 0..*repeat {
            for kind in pattern {
                match kind.as_str() {
                    "global" => local.push(false),
                    "local" => local.push(true),
                    other => return Err(Error::config(path, format!("unknown attention type `{other}` (expected global or local)"))),
                }
            }
        }
    }
    let cfg = Gpt2Config {
        vocab_size: neo.vocab_size,
        n_positions: neo.max_position_embeddings,
        n_embd: neo.hidden_size,
        n_layer: neo.num_layers,
        n_head: neo.num_heads,
        n_inner: neo.intermediate_size,
        activation_function: neo.activation_function,
        layer_norm_epsilon: neo.layer_norm_epsilon,
        scale_attn_weights: false,
        scale_attn_by_inverse_layer_idx: false,
        tie_word_embeddings: neo.tie_word_embeddings,
        bos_token_id: first_id(&neo.bos_token_id),
        eos_token_id: first_id(&neo.eos_token_id),
        neo: Some(NeoAttention { window_size: neo.window_size, local }),
    };
    cfg.validate().map_err(|msg| Error::config(path, msg))?;
    Ok(cfg)
}

/// The `config.json` `save_pretrained` would write, merged over the original.
pub fn to_json(cfg: &Gpt2Config, neo: &NeoAttention, original: Option<&serde_json::Value>) -> serde_json::Value {
    let mut out = original.cloned().unwrap_or_else(|| serde_json::json!({}));
    // Runs of identical layer pairs, as attention_types spells them.
    let types: Vec<serde_json::Value> = neo.local.iter().map(|&l| serde_json::json!([[if l { "local" } else { "global" }], 1])).collect();
    let ours = serde_json::json!({
        "model_type": "gpt_neo",
        "architectures": ["GPTNeoForCausalLM"],
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.n_positions,
        "hidden_size": cfg.n_embd,
        "num_layers": cfg.n_layer,
        "num_heads": cfg.n_head,
        "intermediate_size": cfg.n_inner,
        "window_size": neo.window_size,
        "activation_function": cfg.activation_function,
        "layer_norm_epsilon": cfg.layer_norm_epsilon,
        "attention_types": types,
        "attention_layers": neo.local.iter().map(|&l| if l { "local" } else { "global" }).collect::<Vec<_>>(),
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
    });
    if let (Some(o), Some(ours)) = (out.as_object_mut(), ours.as_object()) {
        for (k, v) in ours {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Declares GPT-Neo's tensors in buffer order, with their HF names.
pub fn declare<T>(cfg: &Gpt2Config, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let (c, i, v, p) = (cfg.n_embd, cfg.inner(), cfg.vocab_size, cfg.n_positions);
    let wte = take("transformer.wte.weight".into(), vec![v, c]);
    let wpe = take("transformer.wpe.weight".into(), vec![p, c]);
    let blocks = (0..cfg.n_layer)
        .map(|l| {
            let mut t = |suffix: &str, shape: Vec<usize>| take(format!("transformer.h.{l}.{suffix}"), shape);
            Block {
                ln_1_w: t("ln_1.weight", vec![c]),
                ln_1_b: t("ln_1.bias", vec![c]),
                c_attn_w: t("attn.attention.{q,k,v}_proj.weight", vec![3 * c, c]),
                c_attn_b: None,
                attn_proj_w: t("attn.attention.out_proj.weight", vec![c, c]),
                attn_proj_b: t("attn.attention.out_proj.bias", vec![c]),
                ln_2_w: t("ln_2.weight", vec![c]),
                ln_2_b: t("ln_2.bias", vec![c]),
                c_fc_w: t("mlp.c_fc.weight", vec![i, c]),
                c_fc_b: t("mlp.c_fc.bias", vec![i]),
                mlp_proj_w: t("mlp.c_proj.weight", vec![c, i]),
                mlp_proj_b: t("mlp.c_proj.bias", vec![c]),
            }
        })
        .collect();
    let ln_f_w = take("transformer.ln_f.weight".into(), vec![c]);
    let ln_f_b = take("transformer.ln_f.bias".into(), vec![c]);
    let lm_head = (!cfg.tie_word_embeddings).then(|| take("lm_head.weight".into(), vec![v, c]));
    Weights { wte, wpe, blocks, ln_f_w, ln_f_b, lm_head }
}
