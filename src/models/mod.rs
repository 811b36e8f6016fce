//! Hand-written model graphs. Each follows its `modeling_*.py` in
//! transformers, top to bottom, with an explicit backward.

pub mod bart;
pub mod bert;
pub mod clip;
pub mod clipcap;
pub mod config;
pub mod gpt2;
pub mod gpt_neo;
pub mod t5;

pub use config::{causal_lm_config, read_model_type, ModelType};

/// `default_fn! { name: Type = value; … }` defines `fn name() -> Type`, the
/// serde defaults of a config's missing fields.
macro_rules! default_fn {
    ($($name:ident: $t:ty = $v:expr;)*) => { $(fn $name() -> $t { $v })* };
}
pub(crate) use default_fn;

use crate::backend::Backend;
use crate::{invalid, Result};

/// Beam reselection in a KV cache: every buffer holds one block of `block`
/// floats per row, of which the first `filled` are in use; row r takes row
/// `parents[r]`'s block (gathered into `spare`, then swapped in).
pub(crate) fn reorder_cache_rows<'a, B: Backend>(
    be: &B,
    bufs: impl Iterator<Item = &'a mut B::Buf>,
    spare: &mut B::Buf,
    parents: &[usize],
    block: usize,
    filled: usize,
) -> Result<()>
where
    B::Buf: 'a,
{
    let rows = parents.len();
    if parents.iter().any(|&p| p >= rows) {
        return invalid!("reorder: a parent row outside the {rows} rows");
    }
    if parents.iter().enumerate().all(|(r, &p)| r == p) {
        return Ok(());
    }
    for buf in bufs {
        for (r, &p) in parents.iter().enumerate() {
            be.copy_rows(B::slice_mut(B::view_mut(spare), r * block, filled), 0, B::slice(B::view(buf), p * block, filled), 0, 1, filled);
        }
        std::mem::swap(buf, spare);
    }
    Ok(())
}
