//! CLIP configuration, as `CLIPConfig` / `CLIPTextConfig` /
//! `CLIPVisionConfig` in transformers (models/clip/configuration_clip.py),
//! with their defaults for missing fields.

use crate::backend::Act;
use crate::models::default_fn;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

default_fn! {
    d_text_vocab: usize = 49408;
    d_text_hidden: usize = 512;
    d_text_inner: usize = 2048;
    d_text_layers: usize = 12;
    d_text_heads: usize = 8;
    d_text_positions: usize = 77;
    d_vision_hidden: usize = 768;
    d_vision_inner: usize = 3072;
    d_vision_layers: usize = 12;
    d_vision_heads: usize = 12;
    d_channels: usize = 3;
    d_image: usize = 224;
    d_patch: usize = 32;
    d_act: String = "quick_gelu".into();
    d_eps: f32 = 1e-5;
    d_eos: Option<u32> = Some(49407);
    d_projection: usize = 512;
    d_logit_scale: f32 = 2.6592;
}

#[derive(Clone, Debug, Deserialize)]
pub struct TextConfig {
    #[serde(default = "d_text_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_text_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_text_inner")]
    pub intermediate_size: usize,
    #[serde(default = "d_text_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_text_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_text_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "d_eos")]
    pub eos_token_id: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "d_vision_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_vision_inner")]
    pub intermediate_size: usize,
    #[serde(default = "d_vision_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_vision_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_channels")]
    pub num_channels: usize,
    #[serde(default = "d_image")]
    pub image_size: usize,
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ClipConfig {
    #[serde(default = "empty")]
    pub text_config: TextConfig,
    #[serde(default = "empty")]
    pub vision_config: VisionConfig,
    #[serde(default = "d_projection")]
    pub projection_dim: usize,
    #[serde(default = "d_logit_scale")]
    pub logit_scale_init_value: f32,
}

/// A sub-config from `{}`: every field at its default.
fn empty<T: serde::de::DeserializeOwned>() -> T {
    serde_json::from_str("{}").expect("defaults")
}

impl ClipConfig {
    pub fn from_json(path: &Path, json: &serde_json::Value) -> Result<Self> {
        let cfg: ClipConfig = serde_json::from_value(json.clone()).map_err(|e| Error::config(path, format!("invalid CLIP config: {e}")))?;
        let (t, v) = (&cfg.text_config, &cfg.vision_config);
        for (what, act) in [("text_config", &t.hidden_act), ("vision_config", &v.hidden_act)] {
            if Act::from_hf(act).is_none() {
                return Err(Error::config(path, format!("{what}.hidden_act `{act}` is not supported (supported: {})", Act::SUPPORTED)));
            }
        }
        for (what, width, heads) in [("text_config", t.hidden_size, t.num_attention_heads), ("vision_config", v.hidden_size, v.num_attention_heads)] {
            if width == 0 || heads == 0 || !width.is_multiple_of(heads) {
                return Err(Error::config(path, format!("{what}: hidden_size {width} is not a positive multiple of num_attention_heads {heads}")));
            }
        }
        if v.patch_size == 0 || v.image_size % v.patch_size != 0 || v.num_channels == 0 {
            return Err(Error::config(path, format!("vision_config: image_size {} is not a multiple of patch_size {}", v.image_size, v.patch_size)));
        }
        if [t.num_hidden_layers, v.num_hidden_layers, t.vocab_size, t.max_position_embeddings, cfg.projection_dim].contains(&0) {
            return Err(Error::config(path, "layer counts, vocab_size, max_position_embeddings and projection_dim must be positive"));
        }
        Ok(cfg)
    }

    /// Patches per image side, and per image.
    pub fn patches(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size;
        side * side
    }

    /// Values per patch (channels · patch²): the patch embedding's input width.
    pub fn patch_values(&self) -> usize {
        let v = &self.vision_config;
        v.num_channels * v.patch_size * v.patch_size
    }

    /// Text pooling: `true` pools at argmax(input_ids) (configs whose
    /// `eos_token_id` is 2, from before transformers PR #24773), else at the
    /// first `eos_token_id`.
    pub fn legacy_eos_pooling(&self) -> bool {
        self.text_config.eos_token_id == Some(2)
    }
}
