//! Building blocks shared by the model graphs: the flat parameter layout and
//! the linear-layer helper (forward and backward as backend GEMM calls).

pub mod linear;
pub mod params;

pub use linear::{Linear, WeightLayout};
pub use params::{carve, carve_mut, upload_params, Layout, ParamSpec, Parameters};
