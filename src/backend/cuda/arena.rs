//! Device memory as one arena: every buffer the CUDA backend makes
//! (parameters, master weights, gradients, moments, activations, scratch)
//! is carved out of a few large driver allocations ("chunks") and returns to
//! the arena when dropped, for the next buffer that fits. A model's setup
//! makes its buffers once; its training and decoding steps then ask the
//! driver for nothing (tests/arena.rs counts the arena's buffers across the
//! steps of every training and decoding loop).
//!
//! Carved ranges are 256-byte aligned (cuBLAS and the kernels' 16-byte packs
//! need less). A range can be handed out again the moment its buffer is
//! dropped: one in-order queue orders every launch and copy, so whatever is
//! queued on the new buffer runs after what was queued on the old one.
//! Free ranges are kept by address and merged with free neighbours in the
//! same chunk; a request takes the smallest free range that holds it (best
//! fit), else a new chunk of at least half what the arena holds already, so
//! a model's memory comes in a handful of chunks. When the driver refuses a
//! chunk, chunks with nothing in use go back and the request is retried at
//! its own size.
//!
//! Outside it: what the libraries allocate for themselves (cuBLAS's
//! workspace, and the 32 MiB cuBLASLt workspace `nvidia.rs` makes with the
//! first bias-epilogue product).
//!
//! The kernel emulator gives each buffer its own driver allocation instead
//! (`Arena::exact`), so that every buffer still ends at a guard page
//! (guarded.rs); the pooled arena is tested on the emulator as well.

use super::driver::Driver;
use crate::backend::MemoryStats;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The alignment of every carved range.
const ALIGN: usize = 256;
/// Chunks are whole multiples of this (the driver's large-page size).
const CHUNK_GRANULE: usize = 2 << 20;

pub struct Arena {
    driver: Arc<dyn Driver>,
    /// The smallest chunk asked of the driver; `None`: one allocation per buffer.
    min_chunk: Option<usize>,
    state: Mutex<State>,
}

/// A range of device memory inside chunk `chunk` (the chunk's base address).
#[derive(Clone, Copy, Debug)]
struct Range {
    bytes: usize,
    chunk: u64,
}

#[derive(Default)]
struct State {
    /// Chunks by base address → their size.
    chunks: BTreeMap<u64, usize>,
    /// Free ranges by start address (never two adjacent in one chunk).
    free: BTreeMap<u64, Range>,
    /// Live buffers by address.
    live: HashMap<u64, Range>,
    stats: MemoryStats,
}

impl Arena {
    /// Buffers carved from chunks of at least `min_chunk` bytes.
    pub fn pooled(driver: Arc<dyn Driver>, min_chunk: usize) -> Self {
        Arena { driver, min_chunk: Some(min_chunk.next_multiple_of(CHUNK_GRANULE)), state: Mutex::default() }
    }

    /// One driver allocation per buffer, of exactly its size.
    pub fn exact(driver: Arc<dyn Driver>) -> Self {
        Arena { driver, min_chunk: None, state: Mutex::default() }
    }

    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    pub fn stats(&self) -> MemoryStats {
        self.state.lock().unwrap().stats
    }

    /// The address of `bytes` zeroed bytes (at least one), 256-byte aligned
    /// when pooled.
    pub fn alloc(&self, bytes: usize) -> Result<u64> {
        let bytes = bytes.max(1);
        let mut s = self.state.lock().unwrap();
        let Some(min_chunk) = self.min_chunk else {
            let ptr = self.driver.alloc(bytes)?;
            s.chunks.insert(ptr, bytes);
            s.stats.reserved += bytes;
            s.stats.chunks += 1;
            s.stats.driver_allocations += 1;
            s.take(ptr, Range { bytes, chunk: ptr });
            return Ok(ptr);
        };
        let size = bytes.next_multiple_of(ALIGN);
        let (start, found) = match s.take_best_fit(size) {
            Some(fit) => fit,
            None => self.grow(&mut s, size, min_chunk)?,
        };
        if found.bytes > size {
            s.free.insert(start + size as u64, Range { bytes: found.bytes - size, chunk: found.chunk });
        }
        s.take(start, Range { bytes: size, chunk: found.chunk });
        drop(s);
        self.driver.zero(start, size)?;
        Ok(start)
    }

    /// Gives back the buffer at `ptr` (an address `alloc` returned).
    pub fn release(&self, ptr: u64) {
        let mut s = self.state.lock().unwrap();
        let Some(range) = s.live.remove(&ptr) else { return };
        s.stats.in_use -= range.bytes;
        if self.min_chunk.is_none() {
            s.chunks.remove(&ptr);
            s.stats.reserved -= range.bytes;
            s.stats.chunks -= 1;
            drop(s);
            self.driver.free(ptr);
            return;
        }
        let (mut start, mut range) = (ptr, range);
        let end = start + range.bytes as u64;
        if let Some(next) = s.free.get(&end).copied().filter(|n| n.chunk == range.chunk) {
            s.free.remove(&end);
            range.bytes += next.bytes;
        }
        let before = s.free.range(..start).next_back().map(|(&at, &r)| (at, r));
        if let Some((at, prev)) = before.filter(|(at, p)| p.chunk == range.chunk && at + p.bytes as u64 == start) {
            start = at;
            range.bytes += prev.bytes;
        }
        s.free.insert(start, range);
    }

    /// A new chunk of at least `size` bytes (its base and its whole range,
    /// not entered as free): half what the arena holds, or the minimum, when
    /// the driver has that much; else `size` after idle chunks go back.
    fn grow(&self, s: &mut State, size: usize, min_chunk: usize) -> Result<(u64, Range)> {
        let wanted = size.max(min_chunk).max(s.stats.reserved / 2).next_multiple_of(CHUNK_GRANULE);
        let (base, bytes) = match self.driver.alloc(wanted) {
            Ok(base) => (base, wanted),
            Err(_) => {
                self.trim(s);
                let least = size.next_multiple_of(CHUNK_GRANULE);
                let base = self.driver.alloc(least).map_err(|e| {
                    let mib = |b: usize| b as f64 / (1 << 20) as f64;
                    let (used, held) = (mib(s.stats.in_use), mib(s.stats.reserved));
                    Error::Device(format!("out of device memory for a buffer of {:.1} MiB ({used:.1} MiB in use, {held:.1} MiB held by the arena): {e}", mib(size)))
                })?;
                (base, least)
            }
        };
        s.chunks.insert(base, bytes);
        s.stats.reserved += bytes;
        s.stats.chunks += 1;
        s.stats.driver_allocations += 1;
        Ok((base, Range { bytes, chunk: base }))
    }

    /// Returns every chunk with nothing in use to the driver.
    fn trim(&self, s: &mut State) {
        let idle: Vec<(u64, usize)> = s.chunks.iter().filter(|(base, bytes)| s.free.get(base).is_some_and(|r| r.bytes == **bytes)).map(|(&b, &n)| (b, n)).collect();
        for (base, bytes) in idle {
            s.free.remove(&base);
            s.chunks.remove(&base);
            s.stats.reserved -= bytes;
            s.stats.chunks -= 1;
            self.driver.free(base);
        }
    }
}

impl State {
    /// The smallest free range of at least `size` bytes (the lowest such
    /// address among equals), taken out of the free map.
    fn take_best_fit(&mut self, size: usize) -> Option<(u64, Range)> {
        let (&at, _) = self.free.iter().filter(|(_, r)| r.bytes >= size).min_by_key(|(&at, r)| (r.bytes, at))?;
        self.free.remove(&at).map(|r| (at, r))
    }

    /// Records `range` at `ptr` as a live buffer.
    fn take(&mut self, ptr: u64, range: Range) {
        self.live.insert(ptr, range);
        let st = &mut self.stats;
        st.buffers += 1;
        st.in_use += range.bytes;
        st.peak = st.peak.max(st.in_use);
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let chunks = self.state.get_mut().map(|s| std::mem::take(&mut s.chunks)).unwrap_or_default();
        for base in chunks.into_keys() {
            self.driver.free(base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::driver::{DeviceInfo, GemmEx};
    use crate::rng::Rng;
    use std::ffi::c_void;

    /// A device of `capacity` bytes that hands out addresses and records
    /// allocations; no memory behind them (the arena never touches it).
    struct Ledger {
        info: DeviceInfo,
        capacity: usize,
        held: Mutex<HashMap<u64, usize>>,
        next: Mutex<u64>,
    }

    impl Ledger {
        fn new(capacity: usize) -> Arc<Self> {
            let info = DeviceInfo { ordinal: 0, name: "ledger".into(), compute_capability: (9, 0), multiprocessors: 1, total_memory: capacity, peak_bandwidth: 0.0 };
            Arc::new(Ledger { info, capacity, held: Mutex::default(), next: Mutex::new(1 << 40) })
        }
        fn held(&self) -> usize {
            self.held.lock().unwrap().values().sum()
        }
    }

    impl Driver for Ledger {
        fn info(&self) -> &DeviceInfo {
            &self.info
        }
        fn alloc(&self, bytes: usize) -> Result<u64> {
            if self.held() + bytes > self.capacity {
                return Err(Error::Device("ledger: out of memory".into()));
            }
            // Allocations back to back, as a real driver often places them:
            // the arena must not merge free ranges across them.
            let mut next = self.next.lock().unwrap();
            let ptr = *next;
            *next += bytes.next_multiple_of(ALIGN) as u64;
            self.held.lock().unwrap().insert(ptr, bytes);
            Ok(ptr)
        }
        fn free(&self, ptr: u64) {
            assert!(self.held.lock().unwrap().remove(&ptr).is_some(), "freed {ptr:#x}, which the ledger never handed out (or freed twice)");
        }
        fn upload(&self, _: u64, _: &[u8]) -> Result<()> {
            Err(Error::Device("ledger: the arena does not copy".into()))
        }
        fn download(&self, _: &mut [u8], _: u64) -> Result<()> {
            Err(Error::Device("ledger: the arena does not copy".into()))
        }
        fn zero(&self, ptr: u64, bytes: usize) -> Result<()> {
            let held = self.held.lock().unwrap();
            let inside = held.iter().any(|(&base, &n)| base <= ptr && ptr + bytes as u64 <= base + n as u64);
            assert!(inside, "zeroed [{ptr:#x}, +{bytes}) outside every allocation");
            Ok(())
        }
        fn launch(&self, _: &str, _: (u32, u32, u32), _: (u32, u32, u32), _: u32, _: &mut [*mut c_void], _: &[usize]) -> Result<()> {
            Err(Error::Device("ledger: the arena does not launch".into()))
        }
        fn gemm(&self, _: &GemmEx) -> Result<()> {
            Err(Error::Device("ledger: the arena does not multiply".into()))
        }
        fn synchronize(&self) -> Result<()> {
            Ok(())
        }
    }

    const MIB: usize = 1 << 20;

    /// Live ranges are aligned, inside one chunk each, and disjoint; the
    /// free ranges and live ranges tile every chunk exactly.
    fn check_layout(arena: &Arena) {
        let s = arena.state.lock().unwrap();
        let mut ranges: Vec<(u64, Range, bool)> = s.live.iter().map(|(&a, &r)| (a, r, true)).chain(s.free.iter().map(|(&a, &r)| (a, r, false))).collect();
        ranges.sort_by_key(|r| r.0);
        let mut covered: HashMap<u64, usize> = HashMap::new();
        for w in ranges.windows(2) {
            assert!(w[0].0 + w[0].1.bytes as u64 <= w[1].0, "ranges overlap: {:?} and {:?}", w[0], w[1]);
            let adjacent_free = !w[0].2 && !w[1].2 && w[0].1.chunk == w[1].1.chunk && w[0].0 + w[0].1.bytes as u64 == w[1].0;
            assert!(!adjacent_free, "two adjacent free ranges left unmerged: {:?} and {:?}", w[0], w[1]);
        }
        for (at, r, live) in &ranges {
            let chunk = s.chunks[&r.chunk];
            assert!(*at >= r.chunk && at + r.bytes as u64 <= r.chunk + chunk as u64, "range {at:#x} +{} outside its chunk", r.bytes);
            if *live {
                assert_eq!(at % ALIGN as u64, 0, "a live range at {at:#x} is not {ALIGN}-byte aligned");
            }
            *covered.entry(r.chunk).or_default() += r.bytes;
        }
        for (base, bytes) in &s.chunks {
            assert_eq!(covered.get(base).copied().unwrap_or(0), *bytes, "chunk {base:#x} is not tiled by its ranges");
        }
        assert_eq!(s.stats.in_use, s.live.values().map(|r| r.bytes).sum::<usize>());
        assert_eq!(s.stats.reserved, s.chunks.values().sum::<usize>());
    }

    #[test]
    fn random_buffers_stay_disjoint_and_every_chunk_is_whole_again_when_all_are_dropped() {
        let ledger = Ledger::new(1 << 40);
        let arena = Arena::pooled(ledger.clone(), 4 * MIB);
        let mut rng = Rng::new(7);
        let mut live = Vec::new();
        for round in 0..3000 {
            if live.is_empty() || rng.below(5) < 3 {
                // Mostly small buffers, now and then one larger than a chunk.
                let bytes = match rng.below(20) {
                    0 => 5 * MIB + rng.below(MIB),
                    _ => rng.below(64 << 10),
                };
                live.push(arena.alloc(bytes).unwrap());
            } else {
                let at = rng.below(live.len());
                arena.release(live.swap_remove(at));
            }
            if round % 50 == 0 {
                check_layout(&arena);
            }
        }
        for ptr in live.drain(..) {
            arena.release(ptr);
        }
        check_layout(&arena);
        let s = arena.stats();
        assert_eq!((s.in_use, arena.state.lock().unwrap().free.len()), (0, s.chunks), "each chunk one free range again");
        assert!(s.chunks <= 12, "{} chunks for a peak of {} bytes", s.chunks, s.peak);
        drop(arena);
        assert_eq!(ledger.held(), 0, "dropping the arena gives every chunk back");
    }

    #[test]
    fn a_dropped_buffer_is_reused_without_asking_the_driver() {
        let arena = Arena::pooled(Ledger::new(1 << 30), 4 * MIB);
        let first = arena.alloc(MIB).unwrap();
        let second = arena.alloc(MIB).unwrap();
        arena.release(first);
        assert_eq!(arena.alloc(MIB - 100).unwrap(), first, "the freed range fits best");
        arena.release(second);
        let s = arena.stats();
        assert_eq!((s.driver_allocations, s.buffers, s.in_use, s.peak), (1, 3, MIB, 2 * MIB));
    }

    #[test]
    fn chunks_grow_by_half_of_what_is_held_and_fall_back_to_the_request_when_memory_is_short() {
        let ledger = Ledger::new(40 * MIB);
        let arena = Arena::pooled(ledger.clone(), 4 * MIB);
        let sizes: Vec<usize> = (0..4).map(|_| arena.alloc(3 * MIB).unwrap()).map(|_| arena.stats().reserved).collect();
        // Each 3 MiB buffer needs a new chunk (1 MiB is left in each): the
        // minimum 4 MiB while half the holding is less, then 18 / 2 = 6 MiB.
        assert_eq!(sizes, [4 * MIB, 8 * MIB, 12 * MIB, 18 * MIB]);
        // 22 MiB are left on the device: 20 MiB fit; 4 MiB more do not, nor
        // the 20 MiB chunk (half the holding) asked for them.
        let big = arena.alloc(20 * MIB).unwrap();
        let err = arena.alloc(4 * MIB).unwrap_err().to_string();
        assert!(err.contains("out of device memory for a buffer of 4.0 MiB"), "{err}");
        arena.release(big);
        // The idle 20 MiB chunk goes back so that a differently sized one fits.
        arena.alloc(21 * MIB).unwrap();
        assert!(ledger.held() <= 40 * MIB);
    }

    #[test]
    fn exact_arenas_give_each_buffer_its_own_allocation() {
        let ledger = Ledger::new(1 << 30);
        let arena = Arena::exact(ledger.clone());
        let (a, b) = (arena.alloc(100).unwrap(), arena.alloc(0).unwrap());
        assert_eq!(ledger.held(), 101, "exact sizes, an empty buffer one byte");
        arena.release(a);
        assert_eq!(ledger.held(), 1);
        let s = arena.stats();
        assert_eq!((s.in_use, s.peak, s.reserved, s.chunks, s.buffers, s.driver_allocations), (1, 101, 1, 1, 2, 2));
        arena.release(b);
        assert_eq!(ledger.held(), 0);
    }
}
