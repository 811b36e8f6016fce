//! The HHI method's stages (../shared/DESIGN.md, "The pipeline"), each a
//! function from files to files. So far: the text rules the stages share and the
//! captioner (training and prediction).

pub mod captioner;
pub mod rules;
