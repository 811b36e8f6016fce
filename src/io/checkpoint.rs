//! Hugging Face model folders (`config.json` + `model.safetensors`): loading
//! weights by their HF names into the flat parameter buffer, and saving them
//! back so that `from_pretrained` loads the result.

use super::safetensors::{self as st, TensorRef};
use super::safetensors_file::SafetensorsFile;
use crate::backend::Backend;
use crate::models::bart::{Bart, BartConfig};
use crate::models::bert::{Bert, BertConfig, Variant};
use crate::models::clip::{Clip, ClipConfig};
use crate::models::clipcap::{ClipCap, ClipCapConfig};
use crate::models::gpt2::{Gpt2, Gpt2Config};
use crate::models::t5::{T5Config, T5};
use crate::models::{read_model_type, ModelType};
use crate::nn::{Layout, Parameters};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";

/// A model folder's config, read and typed.
pub struct ModelDir {
    pub dir: PathBuf,
    pub json: serde_json::Value,
    pub model_type: ModelType,
}

impl ModelDir {
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "model folder not found")));
        }
        let (json, model_type) = read_model_type(&dir.join(CONFIG))?;
        Ok(ModelDir { dir: dir.to_path_buf(), json, model_type })
    }

    /// Opens a folder that `who` (a command or flag, for the error) needs to
    /// hold a model of one of `kinds`.
    pub fn open_kind(dir: &Path, kinds: &[ModelType], who: &str) -> Result<Self> {
        let md = Self::open(dir)?;
        if !kinds.contains(&md.model_type) {
            let wanted: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            return Err(Error::config(dir.join(CONFIG), format!("{who} needs a model of type {}, this is `{}`", wanted.join(" or "), md.model_type.name())));
        }
        Ok(md)
    }

    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(WEIGHTS)
    }

    pub fn has_weights(&self) -> bool {
        self.weights_path().exists()
    }

    /// The weights file, opened: its header read, its tensors on disk until asked for.
    pub fn weights(&self) -> Result<SafetensorsFile> {
        SafetensorsFile::open(&self.weights_path())
    }

    /// The config of a GPT-2 or GPT-Neo folder (one graph serves both).
    pub fn gpt2_config(&self) -> Result<Gpt2Config> {
        crate::models::causal_lm_config(&self.dir.join(CONFIG), &self.json, self.model_type)
    }

    /// Loads GPT-2 weights; a folder with only `config.json` gets a seeded
    /// random initialisation when `random_if_missing` is set.
    pub fn load_gpt2<B: Backend>(&self, be: &B, random_if_missing: Option<u64>) -> Result<Gpt2<B>> {
        let cfg = self.gpt2_config()?;
        match random_if_missing {
            Some(seed) if !self.has_weights() => Gpt2::init_random(be, cfg, seed),
            _ => {
                let flat = read_flat(&Gpt2::<B>::layout(&cfg), &mut self.weights()?)?;
                Gpt2::from_flat(be, cfg, flat)
            }
        }
    }
}

impl ModelDir {
    pub fn t5_config(&self) -> Result<T5Config> {
        T5Config::from_json(&self.dir.join(CONFIG), &self.json)
    }

    /// Loads a T5. The head is `shared` unless the checkpoint stores its own
    /// `lm_head.weight` and the config says `tie_word_embeddings: false`
    /// (T5 v1.1 as saved before transformers 5, which always ties).
    pub fn load_t5<B: Backend>(&self, be: &B, random_if_missing: Option<u64>) -> Result<T5<B>> {
        let mut cfg = self.t5_config()?;
        match random_if_missing {
            Some(seed) if !self.has_weights() => T5::init_random(be, cfg, seed),
            _ => {
                let mut weights = self.weights()?;
                let untied = self.json.get("tie_word_embeddings").and_then(|v| v.as_bool()) == Some(false);
                cfg.separate_head = untied && weights.contains("lm_head.weight");
                let flat = read_flat(&T5::<B>::layout(&cfg), &mut weights)?;
                T5::from_flat(be, cfg, flat)
            }
        }
    }
}

impl ModelDir {
    pub fn clip_config(&self) -> Result<ClipConfig> {
        ClipConfig::from_json(&self.dir.join(CONFIG), &self.json)
    }

    /// Loads a CLIP; a folder with only `config.json` gets a seeded random
    /// initialisation when `random_if_missing` is set.
    pub fn load_clip<B: Backend>(&self, be: &B, random_if_missing: Option<u64>) -> Result<Clip<B>> {
        let cfg = self.clip_config()?;
        match random_if_missing {
            Some(seed) if !self.has_weights() => Clip::init_random(be, cfg, seed),
            _ => {
                let flat = read_flat(&Clip::<B>::layout(&cfg), &mut self.weights()?)?;
                Clip::from_flat(be, cfg, flat)
            }
        }
    }
}

impl ModelDir {
    /// Loads a BERT encoder (`BertModel` weights, bare or under `bert.`), or
    /// a BLEURT scorer (`model_type: bleurt`).
    pub fn load_bert<B: Backend>(&self, be: &B) -> Result<Bert<B>> {
        let variant = if self.model_type == ModelType::Bleurt { Variant::Bleurt } else { Variant::Bert };
        let cfg = BertConfig::from_json(&self.dir.join(CONFIG), &self.json, variant)?;
        let flat = read_flat(&Bert::<B>::layout(&cfg), &mut self.weights()?)?;
        Bert::from_flat(be, cfg, flat)
    }
}

impl ModelDir {
    /// Loads a `BartForSequenceClassification` (NLI models such as bart-large-mnli).
    pub fn load_bart<B: Backend>(&self, be: &B) -> Result<Bart<B>> {
        let cfg = BartConfig::from_json(&self.dir.join(CONFIG), &self.json)?;
        let flat = read_flat(&Bart::<B>::layout(&cfg), &mut self.weights()?)?;
        Bart::from_flat(be, cfg, flat)
    }
}

impl ModelDir {
    pub fn clipcap_config(&self) -> Result<ClipCapConfig> {
        ClipCapConfig::from_json(&self.dir.join(CONFIG), &self.json)
    }

    /// Loads a ClipCap captioner (config.json + model.safetensors).
    pub fn load_clipcap<B: Backend>(&self, be: &B) -> Result<ClipCap<B>> {
        let cfg = self.clipcap_config()?;
        let flat = read_flat(&ClipCap::<B>::layout(&cfg), &mut self.weights()?)?;
        ClipCap::from_flat(be, cfg, flat)
    }
}

/// Saves a ClipCap captioner as `config.json` + `model.safetensors` (the
/// official state-dict names).
pub fn save_clipcap<B: Backend>(be: &B, model: &ClipCap<B>, dir: &Path) -> Result<()> {
    save_model(be, model, dir, &model.cfg.to_json())
}

/// Saves any model as `config.json` (the given JSON) + `model.safetensors`
/// (f32, HF names, from the f32 master weights where the model has them).
pub fn save_model<B: Backend>(be: &B, model: &impl Parameters<B>, dir: &Path, config: &serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let flat = be.download(B::view(model.full_precision()))?;
    let tensors = model.param_layout().tensors().into_iter().map(|s| (s.name.clone(), TensorRef::f32(s.shape.clone(), &flat[s.offset..s.offset + s.numel()])));
    st::save_refs(&dir.join(WEIGHTS), tensors.collect())?;
    let text = serde_json::to_string_pretty(config).expect("config serialises");
    super::atomic::write_atomic(&dir.join(CONFIG), text.as_bytes())
}

/// The name a checkpoint stores parameter `name` (its HF name) under, given
/// which names it `has`: the name itself, or the bare names of the published
/// `gpt2` checkpoints (no `transformer.` prefix), a BERT encoder's names
/// inside a task model (`bert.` prefix) and, for T5's `shared.weight` and
/// BART's `model.shared.weight`, the encoder's copy of it.
pub fn stored_name(has: impl Fn(&str) -> bool, name: &str) -> Option<String> {
    let encoder_copy = match name {
        "shared.weight" => Some("encoder.embed_tokens.weight".to_string()),
        "model.shared.weight" => Some("model.encoder.embed_tokens.weight".to_string()),
        _ => None,
    };
    [Some(name.to_string()), Some(format!("bert.{name}")), name.strip_prefix("transformer.").map(String::from), encoder_copy].into_iter().flatten().find(|candidate| has(candidate))
}

/// Reads every tensor of `layout` from `file` into one flat f32 buffer, in
/// place (the model is held once), checking names, shapes and types.
pub fn read_flat(layout: &Layout, file: &mut SafetensorsFile) -> Result<Vec<f32>> {
    let mut flat = vec![0f32; layout.total];
    for spec in &layout.tensors() {
        let name = stored_name(|n| file.contains(n), &spec.name).ok_or_else(|| Error::MissingTensor { path: file.path().into(), name: spec.name.clone() })?;
        let shape = file.shape(&name).unwrap_or_default();
        if shape != spec.shape {
            return Err(Error::Shape { path: file.path().into(), name: spec.name.clone(), expected: spec.shape.clone(), got: shape.to_vec() });
        }
        file.read_f32_into(&name, &mut flat[spec.offset..spec.offset + spec.numel()])?;
    }
    Ok(flat)
}

/// Saves a GPT-2 as `config.json` + `model.safetensors` (f32, HF names; a
/// tied head is stored once, as `save_pretrained` does).
/// The f32 master weights are saved where the model has them.
pub fn save_gpt2<B: Backend>(be: &B, model: &Gpt2<B>, dir: &Path, original_config: Option<&serde_json::Value>) -> Result<()> {
    save_model(be, model, dir, &model.cfg.to_json(original_config))
}
