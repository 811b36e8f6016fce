//! The parameter plumbing every model graph shares, generated once per
//! model: a struct holding the config, the flat layout, the parameters in
//! the compute type and (for a narrower compute type) their f32 master copy,
//! with constructors, parameter and gradient views, and [`super::Parameters`].
//!
//! `flat_model!(Gpt2, Gpt2Config, declare, Weights, "GPT-2")` expects
//! `declare(&cfg, take) -> Weights<T>` in scope.

#[macro_export]
macro_rules! flat_model {
    ($model:ident, $cfg:ty, $declare:path, $weights:ident, $label:literal) => {
        pub struct $model<B: $crate::backend::Backend> {
            pub cfg: $cfg,
            pub layout: $crate::nn::Layout,
            /// Every parameter, flat, in `layout` order, in the compute type.
            pub params: B::Buf,
            /// The same in f32 when the backend computes in a narrower type
            /// (bf16): what AdamW updates and checkpoints save (llm.c's master
            /// weights). Inference does not need them: see `drop_master`.
            pub master: Option<B::Buf>,
        }

        impl<B: $crate::backend::Backend> $model<B> {
            pub fn layout(cfg: &$cfg) -> $crate::nn::Layout {
                $crate::nn::Layout::record(|take| $declare(cfg, take)).0
            }

            /// A model from a flat host buffer in `layout` order.
            pub fn from_flat(be: &B, cfg: $cfg, flat: Vec<f32>) -> $crate::Result<Self> {
                let layout = Self::layout(&cfg);
                assert_eq!(flat.len(), layout.total, concat!("flat parameter buffer does not match the ", $label, " layout"));
                let (params, master) = $crate::nn::upload_params(be, flat)?;
                Ok($model { cfg, layout, params, master })
            }

            /// Frees the f32 master weights (for inference in a narrow type).
            pub fn drop_master(&mut self) {
                self.master = None;
            }

            /// Read-only views of every parameter.
            pub fn weights(&self) -> $weights<B::View<'_>> {
                $crate::nn::carve::<B, _>(B::view(&self.params), |take| $declare(&self.cfg, take))
            }

            /// Writable views of a gradient buffer laid out like the parameters.
            pub fn grad_views<'a>(&self, grads: B::ViewMut<'a>) -> $weights<B::ViewMut<'a>> {
                $crate::nn::carve_mut::<B, _>(grads, |take| $declare(&self.cfg, take))
            }

            pub fn num_params(&self) -> usize {
                self.layout.total
            }
        }

        impl<B: $crate::backend::Backend> $crate::nn::Parameters<B> for $model<B> {
            fn param_layout(&self) -> &$crate::nn::Layout {
                &self.layout
            }
            fn params_mut(&mut self) -> (&mut B::Buf, Option<&mut B::Buf>) {
                (&mut self.params, self.master.as_mut())
            }
            fn full_precision(&self) -> &B::Buf {
                self.master.as_ref().unwrap_or(&self.params)
            }
        }
    };
}
