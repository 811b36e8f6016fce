//! Token selection on the device (kernels/sampling.cu): the host packs each
//! row's seen and banned tokens and its random number, one block per row
//! chooses, and only the ids come back.

use super::buffer::CuView;
use super::runtime::KernelArg;
use super::{alloc, kernel, upload_raw, Cuda};
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
        let uniforms: Vec<f32> = plan.rows.iter().map(|r| r.uniform).collect();
        let active: Vec<i32> = plan.rows.iter().map(|r| r.active as i32).collect();
        let (lists, bounds) = (upload_raw(&self.rt, &lists, DType::I32)?, upload_raw(&self.rt, &bounds, DType::I32)?);
        let (uniforms, active) = (upload_raw(&self.rt, &uniforms, DType::F32)?, upload_raw(&self.rt, &active, DType::I32)?);
        let out = alloc(&self.rt, rows, DType::I32)?;

        let mut work = self.select_work.lock().unwrap();
        if work.as_ref().is_none_or(|w| w.len() < rows * vocab) {
            *work = Some(alloc(&self.rt, rows * vocab, DType::F32)?);
        }
        let work = work.as_ref().unwrap().address();
        let c = &plan.cfg;
        let args: [&dyn KernelArg; 13] = [
            &out.address(),
            &work,
            &logits.ptr,
            &(vocab as i32),
            &lists.address(),
            &bounds.address(),
            &uniforms.address(),
            &active.address(),
            &c.repetition_penalty,
            &(c.do_sample as i32),
            &c.temperature,
            &(c.top_k as i32),
            &c.top_p,
        ];
        self.rt.launch(&kernel("select_tokens", logits.dtype), (rows as u32, 1, 1), (1024, 1, 1), &args);
        self.rt.sync()?;
        let mut ids = vec![0i32; rows];
        self.rt.driver.download(bytemuck::cast_slice_mut(&mut ids), out.address())?;
        Ok(ids.into_iter().map(|t| t as u32).collect())
    }
}
