//! Every parity tolerance, in one place (values from PARITY.md).

use crate::tensor::DType;

#[derive(Clone, Copy, Debug)]
pub struct Tolerances {
    pub forward: f64,
    pub backward: f64,
    pub optimizer: f64,
    /// Share of greedy ids that must match (1.0: all).
    pub ids_match: f64,
}

pub fn for_dtype(dtype: DType) -> Tolerances {
    match dtype {
        DType::BF16 | DType::F16 => Tolerances { forward: 2e-2, backward: 5e-2, optimizer: 5e-2, ids_match: 0.9 },
        _ => Tolerances { forward: 1e-4, backward: 1e-4, optimizer: 2e-3, ids_match: 1.0 },
    }
}

/// Floor of the backward error's denominator, as a share of the largest gradient.
pub const BACKWARD_FLOOR: f64 = 0.01;
