#!/usr/bin/env python3
"""PyTorch eager baselines for `hhi bench`, one JSON line each, same fields.

train:    the same training step as `hhi bench train` (forward, backward,
          grad-norm clip 1.0, AdamW betas (0.9, 0.95), wd 0.1) on random
          tokens, GPT2LMHeadModel built from the same config.json;
generate: greedy `generate` with the KV cache, like `hhi bench generate`.

--device cuda runs on the GPU (timings end with a synchronisation; peak
memory is torch.cuda.max_memory_allocated); --dtype bf16 uses bf16 autocast
with f32 master weights, as llm.c's PyTorch reference does."""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["train", "generate"])
ap.add_argument("model_dir")
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--prompt-len", type=int, default=16)
ap.add_argument("--new-tokens", type=int, default=32)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu")
ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
args = ap.parse_args()
gpu = args.device.startswith("cuda")
if gpu:
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 means f32, as in hhi
    torch.backends.cudnn.allow_tf32 = False
autocast = torch.autocast(device_type="cuda" if gpu else "cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")

torch.set_num_threads(args.threads)
torch.manual_seed(0)
cfg = GPT2Config.from_pretrained(args.model_dir)
cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = 0.0
cfg._attn_implementation = "eager"
model = GPT2LMHeadModel(cfg).float().to(args.device)


def peak_mb():
    if gpu:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync():
    if gpu:
        torch.cuda.synchronize()


def timed(n, f):
    times = []
    for i in range(n + 1):  # the first run is warmup
        sync()
        start = time.perf_counter()
        f()
        sync()
        ms = (time.perf_counter() - start) * 1e3
        print(f"run {i:>3}  {ms:8.1f} ms{'  (warmup)' if i == 0 else ''}", file=sys.stderr)
        if i:
            times.append(ms)
    return statistics.median(times)


if args.mode == "train":
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device=args.device)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    ms = timed(args.steps, step)
    print(json.dumps({"tokens_per_s": args.batch * args.seq / (ms / 1e3), "step_ms": ms, "peak_rss_mb": peak_mb(),
                      "device": args.device, "dtype": args.dtype}))
else:
    model.eval()
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.prompt_len), device=args.device)

    def gen():
        with torch.no_grad(), autocast:
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)

    ms = timed(3, gen)
    print(json.dumps({"tokens_per_s": args.batch * args.new_tokens / (ms / 1e3), "ms_per_token": ms / args.new_tokens,
                      "peak_rss_mb": peak_mb()}))
