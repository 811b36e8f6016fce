//! The `BartForSequenceClassification` parameter set, declared once in buffer
//! order with Hugging Face names. Attention projections are stacked: self
//! attention's q/k/v into one [3D, D] matrix, cross attention's k/v into one
//! [2D, D] (its queries apart: they come from the decoder).

use super::BartConfig;

pub struct Attention<T> {
    pub qkv_w: T, // [3D, D] self-attention; cross: q [D, D]
    pub qkv_b: T, // [3D] / [D]
    pub out_w: T, // [D, D]
    pub out_b: T, // [D]
    pub ln_w: T,  // [D] the LayerNorm after the residual
    pub ln_b: T,  // [D]
}

pub struct Layer<T> {
    pub self_attn: Attention<T>,
    /// Cross-attention, with its fused k/v projection [2D, D] and [2D].
    pub cross_attn: Option<(Attention<T>, (T, T))>,
    pub fc1_w: T, // [F, D]
    pub fc1_b: T, // [F]
    pub fc2_w: T, // [D, F]
    pub fc2_b: T, // [D]
    pub ln_w: T,  // [D] final_layer_norm
    pub ln_b: T,  // [D]
}

pub struct Stack<T> {
    pub positions: T, // [P + 2, D] (BART offsets positions by 2)
    pub emb_ln_w: T,  // [D] layernorm_embedding
    pub emb_ln_b: T,  // [D]
    pub layers: Vec<Layer<T>>,
}

pub struct Weights<T> {
    pub shared: T, // [V, D] both stacks' token embeddings
    pub encoder: Stack<T>,
    pub decoder: Stack<T>,
    pub head_dense_w: T, // [D, D]
    pub head_dense_b: T, // [D]
    pub head_out_w: T,   // [labels, D]
    pub head_out_b: T,   // [labels]
}

fn attention<T>(p: &str, d: usize, cross: bool, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Attention<T> {
    let (name, ln) = if cross { ("encoder_attn", "encoder_attn_layer_norm") } else { ("self_attn", "self_attn_layer_norm") };
    let (proj, width) = if cross { ("q_proj", d) } else { ("{q,k,v}_proj", 3 * d) };
    Attention {
        qkv_w: take(format!("{p}.{name}.{proj}.weight"), vec![width, d]),
        qkv_b: take(format!("{p}.{name}.{proj}.bias"), vec![width]),
        out_w: take(format!("{p}.{name}.out_proj.weight"), vec![d, d]),
        out_b: take(format!("{p}.{name}.out_proj.bias"), vec![d]),
        ln_w: take(format!("{p}.{ln}.weight"), vec![d]),
        ln_b: take(format!("{p}.{ln}.bias"), vec![d]),
    }
}

/// Cross-attention: its queries and output as [`attention`], keys and values fused.
fn cross_attention<T>(p: &str, d: usize, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> (Attention<T>, (T, T)) {
    let attn = attention(p, d, true, take);
    let kv = (take(format!("{p}.encoder_attn.{{k,v}}_proj.weight"), vec![2 * d, d]), take(format!("{p}.encoder_attn.{{k,v}}_proj.bias"), vec![2 * d]));
    (attn, kv)
}

fn stack<T>(which: &str, cfg: &BartConfig, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Stack<T> {
    let d = cfg.d_model;
    let (layers, ffn, decoder) = if which == "decoder" { (cfg.decoder_layers, cfg.decoder_ffn_dim, true) } else { (cfg.encoder_layers, cfg.encoder_ffn_dim, false) };
    let p = format!("model.{which}");
    Stack {
        positions: take(format!("{p}.embed_positions.weight"), vec![cfg.max_position_embeddings + 2, d]),
        emb_ln_w: take(format!("{p}.layernorm_embedding.weight"), vec![d]),
        emb_ln_b: take(format!("{p}.layernorm_embedding.bias"), vec![d]),
        layers: (0..layers)
            .map(|l| {
                let lp = format!("{p}.layers.{l}");
                Layer {
                    self_attn: attention(&lp, d, false, take),
                    cross_attn: decoder.then(|| cross_attention(&lp, d, take)),
                    fc1_w: take(format!("{lp}.fc1.weight"), vec![ffn, d]),
                    fc1_b: take(format!("{lp}.fc1.bias"), vec![ffn]),
                    fc2_w: take(format!("{lp}.fc2.weight"), vec![d, ffn]),
                    fc2_b: take(format!("{lp}.fc2.bias"), vec![d]),
                    ln_w: take(format!("{lp}.final_layer_norm.weight"), vec![d]),
                    ln_b: take(format!("{lp}.final_layer_norm.bias"), vec![d]),
                }
            })
            .collect(),
    }
}

/// Declares every tensor in buffer order; `take(name, shape)` makes one `T`.
pub fn declare<T>(cfg: &BartConfig, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let d = cfg.d_model;
    Weights {
        shared: take("model.shared.weight".into(), vec![cfg.vocab_size, d]),
        encoder: stack("encoder", cfg, take),
        decoder: stack("decoder", cfg, take),
        head_dense_w: take("classification_head.dense.weight".into(), vec![d, d]),
        head_dense_b: take("classification_head.dense.bias".into(), vec![d]),
        head_out_w: take("classification_head.out_proj.weight".into(), vec![cfg.labels.len(), d]),
        head_out_b: take("classification_head.out_proj.bias".into(), vec![cfg.labels.len()]),
    }
}
