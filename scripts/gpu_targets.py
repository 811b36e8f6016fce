#!/usr/bin/env python3
"""Issue 3's speed targets, read from a scripts/gpu-check output folder, one
line each with its verdict, so a short GPU lease ends with the answer on
screen rather than in the logs:

  - GPT-2 124M bf16 training at >= 1.0x PyTorch's tokens/s (against the
    default attention, sdpa, and against eager where both ran), for the
    defaults and for the alternatives timed (cuBLASLt's epilogues; the
    attention on wgmma);
  - LayerNorm forward/backward, embedding forward/backward, AdamW and the
    fused classifier at >= 70% of the device's memory bandwidth (bf16 op
    microbenchmarks, `hhi bench ops`);
  - attention forward (T = 1024, head dim 64) at >= 50% of cuBLAS's TFLOP/s,
    in both readings: against the largest GEMMs of the same run, and against
    cuBLAS on attention's own Q·Kᵀ product; the default kernel, and the
    wgmma ones (tuning alternatives attn_forward=wgmma|wgmma2|wgmma_overlap) where timed;
    and, with no target, the attention backward's TFLOP/s beside its wgmma
    alternatives (attn_backward=wgmma|wgmma_fused) and its one-pass
    mma.sync alternative (attn_backward=fused).

    python3 scripts/gpu_targets.py OUT_DIR
"""
import json
import os
import re
import sys

# A line of `hhi bench ops`: name, median ms, rate, and the share of peak bandwidth where the device reports one.
OP_LINE = re.compile(r"^(?P<name>.+?)\s+(?P<ms>[\d.]+)\s+(?P<rate>[\d.]+) (?P<unit>TFLOP/s|GB/s)\s*(?:(?P<pct>[\d.]+)% of peak)?")

BANDWIDTH_TARGET = 70.0
BANDWIDTH_OPS = ["layernorm forward", "layernorm backward", "embedding forward", "embedding backward", "adamw", "softmax_cross_entropy padded"]


def ops(path):
    """{op name: (rate, unit, % of peak or None)} of one bench-ops log."""
    found = {}
    try:
        for line in open(path):
            m = OP_LINE.match(line.rstrip())
            if m:
                pct = float(m["pct"]) if m["pct"] else None
                found[m["name"].strip()] = (float(m["rate"]), m["unit"], pct)
    except OSError:
        pass
    return found


def last_json(out, name):
    try:
        lines = [line for line in open(os.path.join(out, name + ".log")) if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def verdict(ok):
    return "MET" if ok else "NOT MET"


# The training logs of hhi: the defaults, then the alternatives gpu-check times.
TRAINING_RUNS = [
    ("train-hhi-bf16", ""),
    ("train-hhi-bf16-epilogues", " (gemm epilogues)"),
    ("train-hhi-bf16-wgmma", " (attention on wgmma)"),
    ("train-hhi-bf16-wgmma-fused", " (attention on wgmma, one-pass backward)"),
    ("train-hhi-bf16-fused", " (one-pass mma.sync attention backward)"),
]


def training(out):
    baselines = [t for t in (last_json(out, log) for log in ("train-torch-bf16", "train-torch-bf16-eager")) if t]
    lines = []
    for log, label in TRAINING_RUNS:
        h = last_json(out, log)
        if not h:
            lines.append(f"training{label}: not run")
            continue
        for t in baselines:
            ratio = h["tokens_per_s"] / t["tokens_per_s"]
            impl = t.get("attn_implementation", "eager")
            lines.append(f"training GPT-2 bf16{label} vs torch ({impl}): {ratio:.2f}x (target >= 1.0x): {verdict(ratio >= 1.0)}")
    return lines if baselines else lines + ["training: no PyTorch baseline ran"]


def bandwidth(found):
    lines = []
    for prefix in BANDWIDTH_OPS:
        hits = [(name, v) for name, v in found.items() if name == prefix or name.startswith(prefix + " ")]
        if not hits:
            lines.append(f"{prefix}: not in the op log")
            continue
        name, (_, _, pct) = hits[0]
        if pct is None:
            lines.append(f"{name}: the device reports no peak bandwidth")
        else:
            lines.append(f"{name}: {pct:.1f}% of peak (target >= {BANDWIDTH_TARGET:.0f}%): {verdict(pct >= BANDWIDTH_TARGET)}")
    return lines


def attention(found, label="", tuned=None):
    """The verdicts for the forward in `tuned` (an alternative's op log, its
    name in `label`), or in `found`, against the GEMMs of `found`."""
    fwd = [(name, v[0]) for name, v in (tuned or found).items() if re.match(r"attention B\d+ T1024 H\d+ d64 forward$", name)]
    gemms = [v[0] for name, v in found.items() if name.startswith("matmul ") and v[1] == "TFLOP/s"]
    own = [v[0] for name, v in found.items() if name.startswith("matmul attention-shaped") and v[1] == "TFLOP/s"]
    if not fwd or not gemms:
        return [f"attention forward{label}: not in the op log"]
    name, tflops = fwd[0]
    lines = [f"{name}{label}: {tflops:.1f} TFLOP/s"]
    best = max(gemms)
    lines.append(f"  vs the largest GEMMs ({best:.1f} TFLOP/s): {100 * tflops / best:.0f}% (target >= 50%): {verdict(tflops >= 0.5 * best)}")
    if own:
        qk = own[0]
        lines.append(f"  vs cuBLAS on its own Q·Kᵀ ({qk:.1f} TFLOP/s): {100 * tflops / qk:.0f}% (target >= 50%): {verdict(tflops >= 0.5 * qk)}")
    return lines


def attention_backward(found, tuned):
    """The backward's TFLOP/s at T = 1024, head dim 64: the default kernels,
    then each alternative in `tuned` ({tuning: its op log})."""
    lines = []
    for label, log in [("", found)] + [(f" ({tune})", log) for tune, log in tuned.items()]:
        hits = [(name, v[0]) for name, v in log.items() if re.match(r"attention B\d+ T1024 H\d+ d64 backward$", name)]
        lines += [f"{hits[0][0]}{label}: {hits[0][1]:.1f} TFLOP/s (no target)"] if hits else []
    return lines


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    found = ops(os.path.join(out, "bench-ops-bf16.log"))
    print("-- issue 3 targets (bf16)")
    alternative = []
    for tune in ("attn_forward=wgmma", "attn_forward=wgmma2", "attn_forward=wgmma_overlap"):
        tuned = ops(os.path.join(out, f"tune-{tune}.log"))
        alternative += attention(found, f" ({tune})", tuned) if tuned else []
    backward = attention_backward(found, {tune: ops(os.path.join(out, f"tune-{tune}.log")) for tune in ("attn_backward=wgmma", "attn_backward=wgmma_fused", "attn_backward=fused")})
    for line in training(out) + bandwidth(found) + attention(found) + alternative + backward:
        print(line)


if __name__ == "__main__":
    main()
