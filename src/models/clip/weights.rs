//! The CLIP parameter set (`CLIPModel`), declared once in buffer order with
//! Hugging Face names. Blocks are `nn::block::BlockWeights` with
//! `nn.Linear` layouts; q/k/v weights and biases are stacked (`{q,k,v}_proj`).

use super::ClipConfig;
use crate::nn::block::BlockWeights;

pub struct TextTower<T> {
    pub token_embedding: T,    // [V, Dt]
    pub position_embedding: T, // [Pt, Dt]
    pub blocks: Vec<BlockWeights<T>>,
    pub final_ln_w: T, // [Dt]
    pub final_ln_b: T, // [Dt]
}

pub struct VisionTower<T> {
    pub class_embedding: T,    // [Dv]
    pub patch_embedding: T,    // [Dv, C, P, P]: a [Dv, C·P·P] matrix
    pub position_embedding: T, // [N + 1, Dv]
    pub pre_ln_w: T,           // [Dv]
    pub pre_ln_b: T,           // [Dv]
    pub blocks: Vec<BlockWeights<T>>,
    pub post_ln_w: T, // [Dv]
    pub post_ln_b: T, // [Dv]
}

pub struct Weights<T> {
    pub text: TextTower<T>,
    pub vision: VisionTower<T>,
    pub visual_projection: T, // [Pd, Dv]
    pub text_projection: T,   // [Pd, Dt]
    pub logit_scale: T,       // []
}

/// Declares every tensor in buffer order; `take(name, shape)` makes one `T`.
pub fn declare<T>(cfg: &ClipConfig, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> Weights<T> {
    let (t, v) = (&cfg.text_config, &cfg.vision_config);
    let text = TextTower {
        token_embedding: take("text_model.embeddings.token_embedding.weight".into(), vec![t.vocab_size, t.hidden_size]),
        position_embedding: take("text_model.embeddings.position_embedding.weight".into(), vec![t.max_position_embeddings, t.hidden_size]),
        blocks: (0..t.num_hidden_layers).map(|l| block(&format!("text_model.encoder.layers.{l}"), t.hidden_size, t.intermediate_size, take)).collect(),
        final_ln_w: take("text_model.final_layer_norm.weight".into(), vec![t.hidden_size]),
        final_ln_b: take("text_model.final_layer_norm.bias".into(), vec![t.hidden_size]),
    };
    let dv = v.hidden_size;
    let vision = VisionTower {
        class_embedding: take("vision_model.embeddings.class_embedding".into(), vec![dv]),
        patch_embedding: take("vision_model.embeddings.patch_embedding.weight".into(), vec![dv, v.num_channels, v.patch_size, v.patch_size]),
        position_embedding: take("vision_model.embeddings.position_embedding.weight".into(), vec![cfg.patches() + 1, dv]),
        pre_ln_w: take("vision_model.pre_layrnorm.weight".into(), vec![dv]),
        pre_ln_b: take("vision_model.pre_layrnorm.bias".into(), vec![dv]),
        blocks: (0..v.num_hidden_layers).map(|l| block(&format!("vision_model.encoder.layers.{l}"), dv, v.intermediate_size, take)).collect(),
        post_ln_w: take("vision_model.post_layernorm.weight".into(), vec![dv]),
        post_ln_b: take("vision_model.post_layernorm.bias".into(), vec![dv]),
    };
    Weights {
        text,
        vision,
        visual_projection: take("visual_projection.weight".into(), vec![cfg.projection_dim, dv]),
        text_projection: take("text_projection.weight".into(), vec![cfg.projection_dim, t.hidden_size]),
        logit_scale: take("logit_scale".into(), vec![]),
    }
}

fn block<T>(prefix: &str, d: usize, inner: usize, take: &mut dyn FnMut(String, Vec<usize>) -> T) -> BlockWeights<T> {
    let mut t = |suffix: &str, shape: Vec<usize>| take(format!("{prefix}.{suffix}"), shape);
    BlockWeights {
        ln_1_w: t("layer_norm1.weight", vec![d]),
        ln_1_b: t("layer_norm1.bias", vec![d]),
        c_attn_w: t("self_attn.{q,k,v}_proj.weight", vec![3 * d, d]),
        c_attn_b: Some(t("self_attn.{q,k,v}_proj.bias", vec![3 * d])),
        attn_proj_w: t("self_attn.out_proj.weight", vec![d, d]),
        attn_proj_b: t("self_attn.out_proj.bias", vec![d]),
        ln_2_w: t("layer_norm2.weight", vec![d]),
        ln_2_b: t("layer_norm2.bias", vec![d]),
        c_fc_w: t("mlp.fc1.weight", vec![inner, d]),
        c_fc_b: t("mlp.fc1.bias", vec![inner]),
        mlp_proj_w: t("mlp.fc2.weight", vec![d, inner]),
        mlp_proj_b: t("mlp.fc2.bias", vec![d]),
    }
}
