//! The language-model training loop: warmup + cosine learning rate, AdamW
//! with gradient clipping, periodic held-out loss, a JSONL loss log, and
//! checkpoints (HF folder + resumable state) written atomically.

use super::data::TokenData;
use super::optimizer::{clip_grad_norm, default_decay, lr_at, Optimizer};
use super::state::{TrainState, TRAIN_STATE};
use crate::backend::{AdamW, Backend};
use crate::io::checkpoint::save_gpt2;
use crate::models::gpt2::{Activations, Gpt2, Mode};
use crate::nn::Parameters;
use crate::rng::Rng;
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch: usize,
    pub seq: usize,
    pub lr: f32,
    pub warmup: u64,
    pub weight_decay: f32,
    pub clip: f32,
    pub eval_every: u64,
    pub eval_batches: usize,
    pub seed: u64,
    /// End this invocation at this step (checkpointed, resumable) even if
    /// `steps` is further away.
    pub stop_at: Option<u64>,
}

/// What one step reports to the caller (progress bars, logs).
#[derive(Clone, Debug)]
pub struct StepLog {
    pub step: u64,
    pub loss: f32,
    pub lr: f32,
    pub grad_norm: f32,
    pub eval_loss: Option<f32>,
    pub tokens_per_s: f64,
}

pub struct Trainer<'a, B: Backend> {
    pub be: &'a B,
    pub model: Gpt2<B>,
    pub opt: Optimizer<B>,
    grads: B::Buf,
    acts: Activations<B>,
    rng: Rng,
    cfg: TrainConfig,
}

impl<'a, B: Backend> Trainer<'a, B> {
    pub fn new(be: &'a B, model: Gpt2<B>, cfg: TrainConfig) -> Result<Self> {
        if cfg.seq > model.cfg.n_positions {
            return Err(Error::Invalid(format!("--seq {} exceeds the model's n_positions {}", cfg.seq, model.cfg.n_positions)));
        }
        let hyper = AdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: cfg.weight_decay };
        let opt = Optimizer::new(be, &model.layout, hyper, default_decay)?;
        Ok(Trainer { grads: be.zeros_f32(model.layout.total)?, acts: Activations::new(be, &model, cfg.batch, cfg.seq)?, rng: Rng::new(cfg.seed), be, model, opt, cfg })
    }

    pub fn set_stop_at(&mut self, step: Option<u64>) {
        self.cfg.stop_at = step;
    }

    /// Continues from a saved state (parameters, moments, step, data order).
    pub fn restore(&mut self, s: TrainState) -> Result<()> {
        self.model.params = self.be.upload(&s.params)?;
        if self.model.master.is_some() {
            self.model.master = Some(self.be.upload_f32(&s.params)?);
        }
        self.opt.m = self.be.upload_f32(&s.m)?;
        self.opt.v = self.be.upload_f32(&s.v)?;
        self.opt.step = s.step;
        self.rng = s.rng;
        Ok(())
    }

    pub fn state(&self) -> Result<TrainState> {
        let be = self.be;
        Ok(TrainState {
            params: be.download(B::view(self.model.full_precision()))?,
            m: be.download(B::view(&self.opt.m))?,
            v: be.download(B::view(&self.opt.v))?,
            step: self.opt.step,
            rng: self.rng.clone(),
        })
    }

    /// One optimisation step on a fresh batch; returns (loss, grad norm, lr).
    pub fn step(&mut self, tokens: &[u32]) -> Result<(f32, f32, f32)> {
        let be = self.be;
        let batch = TokenData::batch(tokens, self.cfg.batch, self.cfg.seq, &mut self.rng);
        be.fill(B::view_mut(&mut self.grads), 0.0);
        let loss = self.model.forward(be, &mut self.acts, &batch, Mode::Train)?.unwrap_or(f32::NAN);
        self.model.backward(be, &mut self.acts, B::view_mut(&mut self.grads));
        let (norm, factor) = clip_grad_norm(be, &self.grads, self.cfg.clip);
        let lr = lr_at(self.opt.step, self.cfg.steps, self.cfg.warmup, self.cfg.lr);
        self.opt.update(be, &mut self.model.params, self.model.master.as_mut(), &self.grads, lr, factor);
        Ok((loss, norm, lr))
    }

    /// Mean loss over `eval_batches` windows of the held-out stream (a fixed
    /// generator, so every evaluation sees the same windows).
    pub fn eval_loss(&mut self, tokens: &[u32]) -> Result<f32> {
        let mut rng = Rng::new(self.cfg.seed ^ 0x5EED_E7A1);
        let mut sum = 0.0;
        for _ in 0..self.cfg.eval_batches {
            let batch = TokenData::batch(tokens, self.cfg.batch, self.cfg.seq, &mut rng);
            sum += self.model.forward(self.be, &mut self.acts, &batch, Mode::Eval)?.unwrap_or(f32::NAN);
        }
        Ok(sum / self.cfg.eval_batches as f32)
    }
}

/// Writes the HF model folder and the resumable state into `out`.
pub fn checkpoint<B: Backend>(t: &Trainer<B>, out: &Path, original_config: Option<&serde_json::Value>) -> Result<()> {
    save_gpt2(t.be, &t.model, out, original_config)?;
    t.state()?.save(&out.join(TRAIN_STATE))
}

/// Runs training to `cfg.steps`, logging each step to `out/log.jsonl`.
pub fn train<B: Backend>(t: &mut Trainer<B>, data: &TokenData, out: &Path, original_config: Option<&serde_json::Value>, mut on_step: impl FnMut(&StepLog)) -> Result<()> {
    let log_path: PathBuf = out.join("log.jsonl");
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let tokens_per_step = (t.cfg.batch * t.cfg.seq) as f64;
    let last = t.cfg.stop_at.unwrap_or(t.cfg.steps).min(t.cfg.steps);
    while t.opt.step < last {
        let start = std::time::Instant::now();
        let (loss, grad_norm, lr) = t.step(&data.train)?;
        let tokens_per_s = tokens_per_step / start.elapsed().as_secs_f64();
        let step = t.opt.step;
        let at_eval = t.cfg.eval_every > 0 && (step.is_multiple_of(t.cfg.eval_every) || step == t.cfg.steps);
        let eval_loss = if at_eval && !data.eval.is_empty() { Some(t.eval_loss(&data.eval)?) } else { None };
        let entry = StepLog { step, loss, lr, grad_norm, eval_loss, tokens_per_s };
        let json = serde_json::json!({"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "eval_loss": eval_loss, "tokens_per_s": tokens_per_s});
        writeln!(log, "{json}").map_err(|e| Error::io(&log_path, e))?;
        if at_eval || step == last {
            checkpoint(t, out, original_config)?;
        }
        on_step(&entry);
    }
    Ok(())
}
