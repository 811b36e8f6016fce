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

/// Beam reselection in a KV cache, where every buffer holds one block of
/// `block` floats per row: a gather target as large as one buffer and the
/// rows' parents on the device (both kept: reordering allocates nothing).
pub(crate) struct CacheGather<B: Backend> {
    spare: B::Buf,
    parents: B::Ids,
}

impl<B: Backend> CacheGather<B> {
    pub fn new(be: &B, rows: usize, block: usize) -> Result<Self> {
        Ok(CacheGather { spare: be.zeros(rows * block)?, parents: be.upload_ids(&vec![0; rows])? })
    }

    /// Row r of every buffer takes row `parents[r]`'s first `filled` floats
    /// (one gather a buffer into the spare, then swapped in).
    pub fn reorder<'a>(&mut self, be: &B, bufs: impl Iterator<Item = &'a mut B::Buf>, parents: &[usize], block: usize, filled: usize) -> Result<()>
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
        be.write_ids(&mut self.parents, &parents.iter().map(|&p| p as i32).collect::<Vec<_>>())?;
        for buf in bufs {
            be.gather_rows(B::view_mut(&mut self.spare), block, B::view(buf), block, &self.parents, rows, filled);
            std::mem::swap(buf, &mut self.spare);
        }
        Ok(())
    }
}
