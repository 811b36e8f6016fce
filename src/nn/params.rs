//! Parameters live in one flat buffer (and gradients in another of the same
//! layout), so AdamW, zeroing and clipping are single launches. A model
//! declares its tensors once, in order, through a builder closure; the same
//! closure yields the layout (names, shapes, offsets), read-only views of the
//! parameters, and writable views of the gradients.

use crate::backend::{Backend, DecaySegment};

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Hugging Face name, e.g. `transformer.h.0.attn.c_attn.weight`.
    pub name: String,
    pub shape: Vec<usize>,
    /// Offset in floats into the flat buffer.
    pub offset: usize,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The checkpoint tensors this parameter holds. A name with a group
    /// `{a,b,c}` stands for that many tensors stacked along the first
    /// dimension (GPT-Neo's q/k/v projections, held as one fused matrix):
    /// `attn.{q,k,v}_proj.weight` [3C, C] is `attn.q_proj.weight` [C, C], then k, then v.
    pub fn parts(&self) -> Vec<ParamSpec> {
        let (Some(open), Some(close)) = (self.name.find('{'), self.name.find('}')) else {
            return vec![self.clone()];
        };
        let members: Vec<&str> = self.name[open + 1..close].split(',').collect();
        let mut shape = self.shape.clone();
        shape[0] /= members.len();
        let numel: usize = shape.iter().product();
        members
            .iter()
            .enumerate()
            .map(|(i, m)| ParamSpec { name: format!("{}{m}{}", &self.name[..open], &self.name[close + 1..]), shape: shape.clone(), offset: self.offset + i * numel })
            .collect()
    }
}

/// Names, shapes and offsets of every parameter of a model, in buffer order.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub specs: Vec<ParamSpec>,
    pub total: usize,
}

impl Layout {
    /// Runs a model's declaration closure, recording each tensor it takes.
    pub fn record<W>(declare: impl FnOnce(&mut dyn FnMut(String, Vec<usize>) -> ParamSpec) -> W) -> (Layout, W) {
        let mut layout = Layout::default();
        let w = declare(&mut |name, shape| {
            let spec = ParamSpec { name, offset: layout.total, shape };
            layout.total += spec.numel();
            layout.specs.push(spec.clone());
            spec
        });
        (layout, w)
    }

    /// Every checkpoint tensor, in buffer order (fused parameters split, see [`ParamSpec::parts`]).
    pub fn tensors(&self) -> Vec<ParamSpec> {
        self.specs.iter().flat_map(ParamSpec::parts).collect()
    }

    pub fn get(&self, name: &str) -> Option<&ParamSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Segments for AdamW: `decay(spec)` says which tensors get weight decay.
    pub fn decay_segments(&self, decay: impl Fn(&ParamSpec) -> bool) -> Vec<DecaySegment> {
        let mut segs: Vec<DecaySegment> = Vec::new();
        for s in &self.specs {
            let d = decay(s);
            match segs.last_mut() {
                Some(last) if last.decay == d && last.offset + last.len == s.offset => last.len += s.numel(),
                _ => segs.push(DecaySegment { offset: s.offset, len: s.numel(), decay: d }),
            }
        }
        segs
    }
}

/// A model's flat parameters, as optimisers and checkpoints see them.
pub trait Parameters<B: Backend> {
    fn param_layout(&self) -> &Layout;
    /// The compute-type parameters and, for a narrow compute type, their f32 master copy.
    fn params_mut(&mut self) -> (&mut B::Buf, Option<&mut B::Buf>);
    /// The parameters at full precision: the master weights, or the parameters.
    fn full_precision(&self) -> &B::Buf;
}

/// Uploads a flat parameter buffer in the compute type, with f32 master
/// weights beside it when the compute type is narrower (bf16).
pub fn upload_params<B: Backend>(be: &B, flat: Vec<f32>) -> crate::Result<(B::Buf, Option<B::Buf>)> {
    let master = match be.compute_dtype() {
        crate::tensor::DType::F32 => None,
        _ => Some(be.upload_f32(&flat)?),
    };
    Ok((be.upload_owned(flat)?, master))
}

/// Read-only views of each declared tensor, carved from `flat` in order.
pub fn carve<'a, B: Backend, W>(flat: B::View<'a>, declare: impl FnOnce(&mut dyn FnMut(String, Vec<usize>) -> B::View<'a>) -> W) -> W {
    let mut offset = 0;
    declare(&mut |_, shape| {
        let n: usize = shape.iter().product();
        let v = B::slice(flat, offset, n);
        offset += n;
        v
    })
}

/// Writable views of each declared tensor, carved from `flat` in order.
pub fn carve_mut<'a, B: Backend, W>(flat: B::ViewMut<'a>, declare: impl FnOnce(&mut dyn FnMut(String, Vec<usize>) -> B::ViewMut<'a>) -> W) -> W {
    let mut rest = Some(flat);
    declare(&mut |_, shape| {
        let n: usize = shape.iter().product();
        let (head, tail) = B::split_mut(rest.take().expect("carve_mut: buffer exhausted"), n);
        rest = Some(tail);
        head
    })
}
