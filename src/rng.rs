//! A small seeded PRNG (xoshiro256** seeded by splitmix64) so that sampling,
//! data order and initialisation are reproducible across runs and platforms
//! without a dependency. Its state serialises to four u64 for `--resume`.

use rayon::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng { s: [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)] }
    }

    pub fn from_state(s: [u64; 4]) -> Self {
        Rng { s }
    }

    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// Standard normal by Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let first = self.next_u64();
        box_muller(first, self.next_u64())
    }

    /// `x = (self.normal() * std) as f32` for every x of `dst` in turn — the
    /// same values from the same draws — with the logarithms and cosines
    /// spread over threads: initialising GPT-Neo 1.3B's 1.3 billion weights
    /// one by one took a minute.
    pub fn fill_normal(&mut self, dst: &mut [f32], std: f64) {
        const CHUNK: usize = 1 << 18;
        let mut draws = vec![0u64; 2 * CHUNK.min(dst.len())];
        for part in dst.chunks_mut(CHUNK) {
            let draws = &mut draws[..2 * part.len()];
            draws.iter_mut().for_each(|d| *d = self.next_u64());
            part.par_iter_mut().with_min_len(4096).zip(draws.par_chunks(2)).for_each(|(x, d)| *x = (box_muller(d[0], d[1]) * std) as f32);
        }
    }
}

/// A draw as a uniform value in [0, 1) with 53 random bits.
fn unit(draw: u64) -> f64 {
    (draw >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Box-Muller's cosine half from two draws.
fn box_muller(first: u64, second: u64) -> f64 {
    let u1 = 1.0 - unit(first); // (0, 1]
    let u2 = unit(second);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn fill_normal_draws_what_normal_draws_one_by_one() {
        for len in [0, 1, 4095, 4097, (1 << 18) + 3, 2 << 18] {
            let (mut bulk, mut single) = (Rng::new(7), Rng::new(7));
            let mut filled = vec![0f32; len];
            bulk.fill_normal(&mut filled, 0.02);
            let one_by_one: Vec<f32> = (0..len).map(|_| (single.normal() * 0.02) as f32).collect();
            assert!(filled.iter().zip(&one_by_one).all(|(a, b)| a.to_bits() == b.to_bits()), "length {len}");
            assert_eq!(bulk, single, "the generator's state after {len} values");
        }
    }
}
