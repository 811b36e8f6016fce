//! The kernel images `build.rs` compiled from `kernels/*.cu` (one fatbin per
//! file: compute_80 PTX plus sm_80 and sm_90a SASS), or why there are none.

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
