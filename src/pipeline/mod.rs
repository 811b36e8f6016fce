//! The HHI method's stages (../shared/DESIGN.md, "The pipeline"), each a
//! function from files to files. So far: the text rules the stages share and the
//! summarizer's distillation (stage 4), pseudo-labelling (stage 5) and the
//! captioner (stages 6 and 7).

pub mod captioner;
pub mod clip_train;
pub mod partial;
pub mod pseudo_label;
pub mod rules;
pub mod summarizer;
pub mod synthetic;
