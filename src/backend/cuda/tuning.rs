//! Launch shapes that kernel tuning runs may override: `HHI_CUDA_TUNE`
//! holds `key=value` pairs separated by commas, e.g.
//! `HHI_CUDA_TUNE=xent_threads=256,ln_backward=cached`. `scripts/gpu-check`
//! times the alternatives with `hhi bench ops` on each GPU it gets, so the
//! defaults below are the measured best (on an H100, 2026-11-26: the bf16
//! classifier 76% of peak bandwidth at 1024 threads × 8 packs against 61% at
//! 512 × 4; the LayerNorm backward 62% pipelined at 2 blocks an SM against
//! 55–56% for the cached kernel; the attention forward 129.5 TFLOP/s at
//! 4 × 16 against 110.6 for 8 × 16, 129.6 for 4 × 32 — the same, and 4 × 16
//! covers head_dim 128 too — and 125.0 for 4 × 16 at 4 blocks an SM);
//! everyone else leaves it unset.

use crate::{Error, Result};

/// How the bf16 LayerNorm backward of rows up to 768 wide in 16-byte packs runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LnBackward {
    /// Rows staged through shared memory by cp.async (layernorm_backward_pipelined): 4 warps × 2 slots.
    Pipelined,
    /// The same as 2 warps × 3 slots (two rows in flight a warp).
    Pipelined3,
    /// The same as 2 warps × 4 slots (three rows in flight a warp).
    Pipelined4,
    /// `Pipelined` with the blocks' dw/db sums added by global atomics, not
    /// by a second launch (their order, and so dw/db's last bits, vary).
    PipelinedAtomic,
    /// Rows read straight into registers (layernorm_backward_cached).
    Cached,
}

/// The bf16 attention forward on Hopper's wgmma (kernels/attention_wgmma.cu,
/// head_dim <= 64, sm_90 devices; elsewhere the 4×16 mma.sync kernel), or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgmmaForward {
    Off,
    /// One warpgroup of 64 query rows a block.
    OneGroup,
    /// Two warpgroups sharing each K/V tile.
    TwoGroups,
    /// One warpgroup, each tile's P·V running under the next tile's softmax.
    Overlap,
}

/// Which kernels run the bf16 attention backward's two passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttnBackward {
    /// attention_mma.cu's, with the registers ptxas picks (2 blocks an SM).
    B2,
    /// The same capped at 168 registers for 3 blocks an SM (a few spills).
    B3,
    /// attention_wgmma_backward.cu's on Hopper's wgmma (head_dim <= 64, sm_90
    /// devices; `B2` elsewhere).
    Wgmma,
    /// The same in one pass over the keys (FlashAttention-2's scheme), dQ
    /// summed by f32 atomics: 5 products a tile pair where the two passes
    /// take 7; dQ's last bits can vary run to run.
    WgmmaFused,
    /// attention_mma.cu's key pass in one pass the same way (head_dim <= 64,
    /// any device; `B2` for wider heads).
    Fused,
}

#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Threads per block (one row each) of the fused softmax + cross-entropy.
    pub xent_threads: u32,
    /// 16-byte packs each of its threads loads at once: 2 (at two blocks an
    /// SM), 4 or 8; 0 picks by dtype (bf16 8, f32 4: the best of each on an H100).
    pub xent_unroll: u32,
    pub ln_backward: LnBackward,
    /// Blocks per multiprocessor of the register-sum LayerNorm backwards (0: the kernel's default).
    pub ln_backward_blocks_per_sm: u32,
    /// The tensor-core attention forward's block: warps × query rows a warp
    /// × blocks an SM its registers must allow (0: the kernel's own cap, 3
    /// for 4×16): 4×16, 8×16, and for head_dim ≤ 64 4×32 and 4×16 at 4
    /// blocks (wider heads fall back to 4×16).
    pub attn_forward: (u32, u32, u32),
    /// The bf16 attention forward (head_dim <= 64) on Hopper's wgmma where the device is sm_90.
    pub attn_forward_wgmma: WgmmaForward,
    /// The tensor-core attention backward's kernels.
    pub attn_backward: AttnBackward,
    /// GEMM biases added by cuBLASLt's bias epilogue instead of a broadcast
    /// kernel that the GEMM then accumulates onto.
    pub gemm_bias_epilogue: bool,
    /// GELU (tanh) after a GEMM, and its derivative in the backward, applied
    /// by cuBLASLt's GELU_AUX_BIAS / DGELU epilogues instead of separate
    /// activation kernels (`Backend::matmul_act`).
    pub gemm_gelu_epilogue: bool,
    /// Decoding steps (fewer than 16 queries) through attention.cu's
    /// query-tiled forward instead of attention_decode.cu's key-split one.
    pub attn_decode_tiled: bool,
    /// f32 attention (head_dim <= 64) through attention.cu's kernels, a warp
    /// a row, instead of attention_fma.cu's register-blocked ones.
    pub attn_f32_warp: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            xent_threads: 1024,
            xent_unroll: 0,
            ln_backward: LnBackward::Pipelined,
            ln_backward_blocks_per_sm: 0,
            attn_forward: (4, 16, 0),
            attn_forward_wgmma: WgmmaForward::Off,
            attn_backward: AttnBackward::B2,
            gemm_bias_epilogue: false,
            gemm_gelu_epilogue: false,
            attn_decode_tiled: false,
            attn_f32_warp: false,
        }
    }
}

impl Tuning {
    /// The defaults with `HHI_CUDA_TUNE`'s overrides; an unknown key or a bad value is an error naming it.
    pub fn from_env() -> Result<Self> {
        match std::env::var("HHI_CUDA_TUNE") {
            Ok(spec) => Self::parse(&spec),
            Err(_) => Ok(Self::default()),
        }
    }

    /// The defaults with the overrides in `spec`.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut t = Self::default();
        let bad = |what: &str| {
            Error::Invalid(format!(
                "HHI_CUDA_TUNE: {what} (keys: xent_threads=32..1024 in 32s, xent_unroll=2|4|8, ln_backward=pipelined|pipelined3|pipelined4|pipelined_atomic|cached, ln_backward_blocks_per_sm=N, attn_forward=4x16|8x16|4x32|4x16b4|wgmma|wgmma2|wgmma_overlap, attn_backward=b2|b3|wgmma|wgmma_fused|fused, gemm_bias=broadcast|epilogue, gemm_gelu=kernel|epilogue, attn_decode=split|tiled, attn_f32=fma|warp)"
            ))
        };
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| bad(&format!("`{pair}` is not key=value")))?;
            let number = || value.parse::<u32>().map_err(|_| bad(&format!("`{key}` wants a number, got `{value}`")));
            match key {
                "xent_threads" => {
                    t.xent_threads = number()?;
                    if !(32..=1024).contains(&t.xent_threads) || t.xent_threads % 32 != 0 {
                        return Err(bad(&format!("xent_threads={value} is not a multiple of 32 in 32..=1024")));
                    }
                }
                "xent_unroll" => {
                    t.xent_unroll = number()?;
                    if ![2, 4, 8].contains(&t.xent_unroll) {
                        return Err(bad(&format!("xent_unroll={value} is not 2, 4 or 8")));
                    }
                }
                "ln_backward" => {
                    t.ln_backward = match value {
                        "pipelined" => LnBackward::Pipelined,
                        "pipelined3" => LnBackward::Pipelined3,
                        "pipelined4" => LnBackward::Pipelined4,
                        "pipelined_atomic" => LnBackward::PipelinedAtomic,
                        "cached" => LnBackward::Cached,
                        _ => return Err(bad(&format!("ln_backward={value}"))),
                    }
                }
                "ln_backward_blocks_per_sm" => t.ln_backward_blocks_per_sm = number()?,
                "attn_forward" => {
                    t.attn_forward_wgmma = match value {
                        "wgmma" => WgmmaForward::OneGroup,
                        "wgmma2" => WgmmaForward::TwoGroups,
                        "wgmma_overlap" => WgmmaForward::Overlap,
                        _ => WgmmaForward::Off,
                    };
                    t.attn_forward = match value {
                        "4x16" | "wgmma" | "wgmma2" | "wgmma_overlap" => (4, 16, 0), // the latter where a device lacks wgmma
                        "8x16" => (8, 16, 0),
                        "4x32" => (4, 32, 0),
                        "4x16b4" => (4, 16, 4),
                        _ => return Err(bad(&format!("attn_forward={value}"))),
                    }
                }
                "attn_backward" => {
                    t.attn_backward = match value {
                        "b2" => AttnBackward::B2,
                        "b3" => AttnBackward::B3,
                        "wgmma" => AttnBackward::Wgmma,
                        "wgmma_fused" => AttnBackward::WgmmaFused,
                        "fused" => AttnBackward::Fused,
                        _ => return Err(bad(&format!("attn_backward={value}"))),
                    }
                }
                "gemm_bias" => {
                    t.gemm_bias_epilogue = match value {
                        "broadcast" => false,
                        "epilogue" => true,
                        _ => return Err(bad(&format!("gemm_bias={value}"))),
                    }
                }
                "gemm_gelu" => {
                    t.gemm_gelu_epilogue = match value {
                        "kernel" => false,
                        "epilogue" => true,
                        _ => return Err(bad(&format!("gemm_gelu={value}"))),
                    }
                }
                "attn_decode" => {
                    t.attn_decode_tiled = match value {
                        "split" => false,
                        "tiled" => true,
                        _ => return Err(bad(&format!("attn_decode={value}"))),
                    }
                }
                "attn_f32" => {
                    t.attn_f32_warp = match value {
                        "fma" => false,
                        "warp" => true,
                        _ => return Err(bad(&format!("attn_f32={value}"))),
                    }
                }
                _ => return Err(bad(&format!("unknown key `{key}`"))),
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overrides_and_names_bad_ones() {
        let t = Tuning::parse(
            "xent_threads=256, ln_backward=cached,ln_backward_blocks_per_sm=3,attn_forward=4x32,attn_backward=b3,gemm_bias=epilogue,gemm_gelu=epilogue,attn_decode=tiled,attn_f32=warp",
        )
        .unwrap();
        assert_eq!(
            (
                t.xent_threads,
                t.ln_backward,
                t.ln_backward_blocks_per_sm,
                t.attn_forward,
                t.attn_backward,
                t.gemm_bias_epilogue,
                t.gemm_gelu_epilogue,
                t.attn_decode_tiled,
                t.attn_f32_warp
            ),
            (256, LnBackward::Cached, 3, (4, 32, 0), AttnBackward::B3, true, true, true, true)
        );
        assert_eq!(Tuning::parse("").unwrap().xent_threads, 1024);
        let wgmma = Tuning::parse("attn_forward=wgmma2").unwrap();
        assert_eq!((wgmma.attn_forward_wgmma, wgmma.attn_forward), (WgmmaForward::TwoGroups, (4, 16, 0)));
        assert_eq!(Tuning::parse("attn_forward=wgmma_overlap").unwrap().attn_forward_wgmma, WgmmaForward::Overlap);
        assert_eq!(Tuning::parse("attn_forward=wgmma,attn_forward=8x16").unwrap().attn_forward_wgmma, WgmmaForward::Off);
        assert_eq!(Tuning::parse("attn_backward=wgmma").unwrap().attn_backward, AttnBackward::Wgmma);
        assert_eq!(Tuning::parse("attn_backward=wgmma_fused").unwrap().attn_backward, AttnBackward::WgmmaFused);
        assert_eq!(Tuning::parse("attn_backward=fused").unwrap().attn_backward, AttnBackward::Fused);
        for (spec, named) in [
            ("xent_threads=100", "xent_threads=100"),
            ("ln_backward=fast", "ln_backward=fast"),
            ("attn_forward=2x16", "attn_forward=2x16"),
            ("attn_backward=b4", "attn_backward=b4"),
            ("gemm_bias=fused", "gemm_bias=fused"),
            ("gemm_gelu=fused", "gemm_gelu=fused"),
            ("attn_decode=fast", "attn_decode=fast"),
            ("attn_f32=fast", "attn_f32=fast"),
            ("xent_unroll=3", "xent_unroll=3"),
            ("warp=4", "`warp`"),
            ("oops", "`oops`"),
        ] {
            let e = Tuning::parse(spec).unwrap_err().to_string();
            assert!(e.contains(named), "{spec}: {e}");
        }
    }
}
