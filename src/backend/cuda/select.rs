//! Decoding choices on the device (kernels/sampling.cu): the host packs each
//! row's inputs (seen and banned tokens, random numbers, running scores)
//! into one staging buffer (kept between steps), one block per row chooses,
//! and only the choices come back — a sampled or greedy token per row, or a
//! beam-search row's best candidates — never the logits.

use super::buffer::CuView;
use super::runtime::KernelArg;
use super::{alloc, kernel, Cuda};
use crate::backend::check_rows;
use crate::generate::candidates::BeamPlan;
use crate::generate::TokenPlan;
use crate::tensor::DType;
use crate::{Error, Result};

/// The address of i32 slot `offset` of a staging buffer at `base`.
fn addr(base: u64, offset: usize) -> u64 {
    base + 4 * offset as u64
}

/// Every row's token lists back to back, and their bounds: per row the
/// start of its first list, then the end of each. Fails on a token outside
/// the vocabulary (a kernel would write out of bounds).
fn pack_lists<'a, const N: usize>(rows: impl Iterator<Item = [&'a [u32]; N]>, vocab: usize) -> Result<(Vec<i32>, Vec<i32>)> {
    let (mut bounds, mut lists) = (Vec::new(), Vec::new());
    for row in rows {
        bounds.push(lists.len() as i32);
        for list in row {
            if let Some(bad) = list.iter().find(|&&t| t as usize >= vocab) {
                return Err(Error::Invalid(format!("token id {bad} is outside the vocabulary (size {vocab})")));
            }
            lists.extend(list.iter().map(|&t| t as i32));
            bounds.push(lists.len() as i32);
        }
    }
    Ok((bounds, lists))
}

impl Cuda {
    pub(super) fn select_on_device(&self, logits: CuView<'_>, vocab: usize, plan: &TokenPlan) -> Result<Vec<u32>> {
        let rows = plan.rows.len();
        check_rows("select_tokens", logits.len, rows, vocab)?;
        if rows == 0 {
            return Ok(Vec::new());
        }
        // Each row's seen tokens, then its banned tokens; bounds = (seen start, banned start, banned end).
        let (bounds, lists) = pack_lists(plan.rows.iter().map(|r| [&r.seen[..], &r.banned[..]]), vocab)?;
        // One upload: [bounds | active | lists | uniforms (f32 bits) | out].
        let n_lists = lists.len();
        let mut io: Vec<i32> = bounds;
        io.extend(plan.rows.iter().map(|r| r.active as i32));
        io.extend(lists);
        io.extend(plan.rows.iter().map(|r| r.uniform.to_bits() as i32));
        io.extend(std::iter::repeat_n(0, rows));
        let (active_at, lists_at, uniforms_at, out_at) = (3 * rows, 4 * rows, 4 * rows + n_lists, 5 * rows + n_lists);
        let mut ids = vec![0i32; rows];
        self.staged(&io, rows * vocab, &mut ids, out_at, |base, work| {
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
        })?;
        Ok(ids.into_iter().map(|t| t as u32).collect())
    }

    /// Each row's best `plan.n` candidates (kernels/sampling.cu's
    /// beam_candidates), sorted here as `candidates_on_host` returns them.
    pub(super) fn beam_candidates_on_device(&self, logits: CuView<'_>, vocab: usize, plan: &BeamPlan) -> Result<Vec<Vec<(f32, u32)>>> {
        let (rows, n) = (plan.rows.len(), plan.n);
        check_rows("beam_candidates", logits.len, rows, vocab)?;
        if rows == 0 || n == 0 {
            return Ok(vec![Vec::new(); rows]);
        }
        // Each row's banned tokens; bounds = (start, end).
        let (bounds, lists) = pack_lists(plan.rows.iter().map(|r| [&r.banned[..]]), vocab)?;
        // One upload: [bounds | lists | running scores (f32 bits) | out scores (f32) | out tokens].
        let n_lists = lists.len();
        let mut io: Vec<i32> = bounds;
        io.extend(lists);
        io.extend(plan.rows.iter().map(|r| r.score.to_bits() as i32));
        io.extend(std::iter::repeat_n(0, 2 * rows * n));
        let (lists_at, running_at, out_at) = (2 * rows, 2 * rows + n_lists, 3 * rows + n_lists);
        let mut out = vec![0i32; 2 * rows * n];
        self.staged(&io, rows * vocab, &mut out, out_at, |base, work| {
            let args: [&dyn KernelArg; 9] =
                [&addr(base, out_at), &addr(base, out_at + rows * n), &work, &logits.ptr, &(vocab as i32), &addr(base, lists_at), &base, &addr(base, running_at), &(n as i32)];
            self.rt.launch(&kernel("beam_candidates", logits.dtype), (rows as u32, 1, 1), (1024, 1, 1), &args);
        })?;
        let (scores, tokens) = out.split_at(rows * n);
        let mut per_row = Vec::with_capacity(rows);
        for (s, t) in scores.chunks(n).zip(tokens.chunks(n)) {
            let mut row: Vec<(f32, u32)> = s.iter().zip(t).filter(|(_, &t)| t >= 0).map(|(&s, &t)| (f32::from_bits(s as u32), t as u32)).collect();
            row.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            per_row.push(row);
        }
        Ok(per_row)
    }

    /// Uploads `io` into the kept staging buffer (grown to fit), makes sure
    /// the kept f32 scratch holds `work` values, queues `launch(staging,
    /// scratch)` with both held, waits, and downloads `out.len()` values from
    /// slot `out_at` of the staging buffer.
    fn staged(&self, io: &[i32], work: usize, out: &mut [i32], out_at: usize, launch: impl FnOnce(u64, u64)) -> Result<()> {
        let mut staging = self.select_io.lock().unwrap();
        if staging.as_ref().is_none_or(|b| b.len() < io.len()) {
            *staging = Some(alloc(&self.rt, io.len().next_power_of_two(), DType::I32)?);
        }
        let base = staging.as_ref().map_or(0, |b| b.address());
        self.rt.driver.upload(base, bytemuck::cast_slice(io))?;
        let mut scratch = self.select_work.lock().unwrap();
        if scratch.as_ref().is_none_or(|w| w.len() < work) {
            *scratch = Some(alloc(&self.rt, work, DType::F32)?);
        }
        launch(base, scratch.as_ref().map_or(0, |w| w.address()));
        self.rt.sync()?;
        self.rt.driver.download(bytemuck::cast_slice_mut(out), addr(base, out_at))
    }
}
