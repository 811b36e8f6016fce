//! Building blocks shared by the model graphs: the flat parameter layout,
//! the linear-layer helper (forward and backward as backend GEMM calls) and
//! the pre-LayerNorm transformer block.

pub mod block;
pub mod flat_model;
pub mod linear;
pub mod params;

pub use linear::{Linear, WeightLayout};
pub use params::{carve, carve_mut, upload_params, Layout, ParamSpec, Parameters};
