#!/usr/bin/env python3
"""PyTorch eager baseline for `hhi bench train`: the same training step
(forward, backward, grad-norm clip 1.0, AdamW betas (0.9, 0.95), wd 0.1) on
random tokens with a GPT2LMHeadModel built from the same config.json.
Prints one JSON line like hhi's: tokens_per_s, step_ms (median), peak_rss_mb."""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ap = argparse.ArgumentParser()
ap.add_argument("model_dir")
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
cfg = GPT2Config.from_pretrained(args.model_dir)
cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = 0.0
cfg._attn_implementation = "eager"
model = GPT2LMHeadModel(cfg).float().train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq))
times = []
for i in range(args.warmup + args.steps):
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    ms = (time.perf_counter() - start) * 1e3
    print(f"step {i:>3}  {ms:8.1f} ms  loss {loss.item():.4f}", file=sys.stderr)
    if i >= args.warmup:
        times.append(ms)
step_ms = statistics.median(times)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"tokens_per_s": args.batch * args.seq / (step_ms / 1e3), "step_ms": step_ms, "peak_rss_mb": peak}))
