//! Tokenizers: `tokenizer.json` through the `tokenizers` crate, and training a
//! byte-level BPE (GPT-2 style) on text files, since no pretrained vocabulary
//! can be downloaded here.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer, TruncationParams};

pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Token rows right-padded with `pad` to the longest (at least 1): the ids
/// [rows, len] as the models take them, the mask (1 token, 0 padding), len.
pub fn pad_right(rows: &[Vec<u32>], pad: u32) -> (Vec<i32>, Vec<f32>, usize) {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut ids, mut mask) = (vec![pad as i32; rows.len() * len], vec![0f32; rows.len() * len]);
    for (r, row) in rows.iter().enumerate() {
        for (j, &id) in row.iter().enumerate() {
            ids[r * len + j] = id as i32;
            mask[r * len + j] = 1.0;
        }
    }
    (ids, mask, len)
}

pub struct Tokenizer {
    inner: HfTokenizer,
    path: PathBuf,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self> {
        let inner = HfTokenizer::from_file(path).map_err(|e| Error::Tokenizer { path: path.into(), msg: e.to_string() })?;
        Ok(Tokenizer { inner, path: path.into() })
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Tokenizer { path: self.path.clone(), msg: e.to_string() }
    }

    /// Token ids without special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, false).map_err(|e| self.err(e))?.get_ids().to_vec())
    }

    /// Token ids with the tokenizer's special tokens (T5: the closing `</s>`),
    /// as `tokenizer(text)` gives them in transformers.
    pub fn encode_with_special(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, true).map_err(|e| self.err(e))?.get_ids().to_vec())
    }

    /// A pair `(a, b)` with the tokenizer's special tokens (BERT:
    /// `[CLS] a [SEP] b [SEP]`): ids and token type ids.
    pub fn encode_pair(&self, a: &str, b: &str) -> Result<(Vec<u32>, Vec<u32>)> {
        let e = self.inner.encode((a, b), true).map_err(|e| self.err(e))?;
        Ok((e.get_ids().to_vec(), e.get_type_ids().to_vec()))
    }

    /// [`Self::encode_with_special`], then `eos` appended where the ids do not
    /// already end with it (a byte-level BPE adds no closing token; models
    /// that pool or stop there need it), cut to `max` tokens (0: no limit)
    /// keeping the last one.
    pub fn encode_with_eos(&self, text: &str, eos: Option<u32>, max: usize) -> Result<Vec<u32>> {
        let mut ids = self.encode_with_special(text)?;
        if let Some(eos) = eos.filter(|&e| ids.last() != Some(&e)) {
            ids.push(eos);
        }
        if max > 0 && ids.len() > max {
            let last = *ids.last().expect("non-empty");
            ids.truncate(max);
            ids[max - 1] = last;
        }
        Ok(ids)
    }

    /// For an encoder's inputs: no padding (tokenizer.json files of
    /// sentence-transformers models carry a fixed one), and truncation to
    /// `max_len` tokens, special tokens included, as transformers truncates
    /// with `max_length`.
    pub fn for_encoder(mut self, max_len: usize) -> Result<Self> {
        let truncation = TruncationParams { max_length: max_len, ..Default::default() };
        self.inner.with_padding(None).with_truncation(Some(truncation)).map_err(|e| Error::Tokenizer { path: self.path.clone(), msg: e.to_string() })?;
        Ok(self)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| self.err(e))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.inner.to_string(true).map_err(|e| self.err(e))?;
        super::atomic::write_atomic(path, json.as_bytes())
    }

    /// Trains a byte-level BPE with `<|endoftext|>` as its first (id 0) token.
    pub fn train_bpe(files: &[PathBuf], vocab_size: usize) -> Result<Self> {
        let first = files.first().cloned().unwrap_or_default();
        let terr = |e: tokenizers::Error| Error::Tokenizer { path: first.clone(), msg: e.to_string() };
        if vocab_size < 257 {
            return Err(Error::Invalid(format!("--vocab-size {vocab_size} is too small for byte-level BPE (at least 257)")));
        }
        for f in files {
            let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
            if let Err(e) = std::str::from_utf8(&bytes) {
                return Err(Error::data(f, format!("invalid UTF-8 at byte {}", e.valid_up_to())));
            }
        }
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut inner = HfTokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
        inner.with_decoder(Some(ByteLevel::default()));
        inner.with_post_processor(Some(ByteLevel::default().trim_offsets(false)));
        let names: Vec<String> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
        inner.train_from_files(&mut trainer, names).map_err(terr)?;
        Ok(Tokenizer { inner, path: first })
    }
}
