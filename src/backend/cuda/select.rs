//! Token selection on the device (kernels/sampling.cu): the host packs each
//! row's seen and banned tokens and its random number into one staging
//! buffer (kept between steps), one block per row chooses, and only the ids
//! come back.

use super::buffer::CuView;
use super::runtime::KernelArg;
use super::{alloc, kernel, Cuda};
use crate::generate::TokenPlan;
use crate::tensor::DType;
use crate::{Error, Result};

impl Cuda {
    pub(super) fn select_on_device(&self, logits: CuView<'_>, vocab: usize, plan: &TokenPlan) -> Result<Vec<u32>> {
        let rows = plan.rows.len();
        assert!(logits.len >= rows * vocab, "select_tokens: logits shorter than {rows} rows of {vocab}");
        if rows == 0 {
            return Ok(Vec::new());
        }
        // Each row's seen tokens, then its banned tokens; bounds = (seen start, banned start, banned end).
        let (mut lists, mut bounds) = (Vec::new(), Vec::with_capacity(3 * rows));
        for row in &plan.rows {
            bounds.push(lists.len() as i32);
            lists.extend(row.seen.iter().map(|&t| t as i32));
            bounds.push(lists.len() as i32);
            lists.extend(row.banned.iter().map(|&t| t as i32));
            bounds.push(lists.len() as i32);
        }
        if let Some(&bad) = lists.iter().find(|&&t| t < 0 || t as usize >= vocab) {
            return Err(Error::Invalid(format!("token id {bad} is outside the vocabulary (size {vocab})")));
        }
        // One staging buffer, uploaded once: [bounds | active | lists | uniforms (f32 bits) | out].
        let n_lists = lists.len();
        let mut io: Vec<i32> = bounds;
        io.extend(plan.rows.iter().map(|r| r.active as i32));
        io.extend(lists);
        io.extend(plan.rows.iter().map(|r| r.uniform.to_bits() as i32));
        io.extend(std::iter::repeat_n(0, rows));
        let addr = |base: u64, offset: usize| base + 4 * offset as u64;
        let (active_at, lists_at, uniforms_at, out_at) = (3 * rows, 4 * rows, 4 * rows + n_lists, 5 * rows + n_lists);

        let mut staging = self.select_io.lock().unwrap();
        if staging.as_ref().is_none_or(|b| b.len() < io.len()) {
            *staging = Some(alloc(&self.rt, io.len().next_power_of_two(), DType::I32)?);
        }
        let base = staging.as_ref().unwrap().address();
        self.rt.driver.upload(base, bytemuck::cast_slice(&io))?;
        let mut work = self.select_work.lock().unwrap();
        if work.as_ref().is_none_or(|w| w.len() < rows * vocab) {
            *work = Some(alloc(&self.rt, rows * vocab, DType::F32)?);
        }
        let work = work.as_ref().unwrap().address();
        let c = &plan.cfg;
        let args: [&dyn KernelArg; 13] = [
            &addr(base, out_at),
            &work,
            &logits.ptr,
            &(vocab as i32),
            &addr(base, lists_at),
            &base,
            &addr(base, uniforms_at),
            &addr(base, active_at),
            &c.repetition_penalty,
            &(c.do_sample as i32),
            &c.temperature,
            &(c.top_k as i32),
            &c.top_p,
        ];
        self.rt.launch(&kernel("select_tokens", logits.dtype), (rows as u32, 1, 1), (1024, 1, 1), &args);
        self.rt.sync()?;
        let mut ids = vec![0i32; rows];
        self.rt.driver.download(bytemuck::cast_slice_mut(&mut ids), addr(base, out_at))?;
        Ok(ids.into_iter().map(|t| t as u32).collect())
    }
}
