#!/usr/bin/env python3
"""PyTorch eager baselines for `hhi bench`, one JSON line each, same fields.

train:    the same training step as `hhi bench train` (forward, backward,
          grad-norm clip 1.0, AdamW betas (0.9, 0.95), wd 0.1) on random
          data, with the model config.json names (GPT2LMHeadModel,
          GPTNeoForCausalLM; T5ForConditionalGeneration on --seq input and
          --target-seq label tokens; CLIPModel contrastively on images and
          texts of --seq tokens);
generate: greedy `generate` with the KV cache, like `hhi bench generate`
          (T5: from inputs of --prompt-len tokens; --beams K: beam search,
          every beam running --new-tokens steps);
encode:   CLIP image features (vision tower + projection), like `hhi bench encode`.

--device cuda runs on the GPU (timings end with a synchronisation; peak
memory is torch.cuda.max_memory_allocated); --dtype bf16 uses bf16 autocast
with f32 master weights, as llm.c's PyTorch reference does. --attn picks
transformers' attention implementation: by default the one transformers
itself picks (`sdpa`, PyTorch's fused scaled_dot_product_attention — flash
kernels on a GPU — for GPT-2, T5 and CLIP; `eager` for GPT-Neo, which has
no sdpa path); `eager` materialises the T x T scores. Every JSON line names
the implementation that ran."""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
from transformers import AutoConfig, CLIPModel, GPT2LMHeadModel, GPTNeoForCausalLM, T5ForConditionalGeneration

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["train", "generate", "encode"])
ap.add_argument("model_dir")
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--target-seq", type=int, default=None)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--prompt-len", type=int, default=16)
ap.add_argument("--new-tokens", type=int, default=32)
ap.add_argument("--beams", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu")
ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
ap.add_argument("--attn", choices=["default", "sdpa", "eager"], default="default")
args = ap.parse_args()
gpu = args.device.startswith("cuda")
if gpu:
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 means f32, as in hhi
    torch.backends.cudnn.allow_tf32 = False
autocast = torch.autocast(device_type="cuda" if gpu else "cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")

torch.set_num_threads(args.threads)
torch.manual_seed(0)
cfg = AutoConfig.from_pretrained(args.model_dir)
for key in ["resid_pdrop", "embd_pdrop", "attn_pdrop", "resid_dropout", "embed_dropout", "attention_dropout", "dropout_rate"]:
    if hasattr(cfg, key):
        setattr(cfg, key, 0.0)
kind = cfg.model_type
model_class = {"gpt2": GPT2LMHeadModel, "gpt_neo": GPTNeoForCausalLM, "t5": T5ForConditionalGeneration, "clip": CLIPModel}[kind]
# Made where it runs: on a GPU its random initialisation takes a moment,
# where GPT-Neo 1.3B's took 19 s on the host (2 threads, before the copy).
with torch.device(args.device):
    model = model_class._from_config(cfg, **({} if args.attn == "default" else {"attn_implementation": args.attn})).float()
attn = model.config._attn_implementation


def emit(fields):
    """The JSON line `hhi bench` prints, plus what PyTorch ran."""
    print(json.dumps({**fields, "attn_implementation": attn, "torch": torch.__version__}))


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


def random_ids(vocab, *shape):
    return torch.randint(0, vocab, shape, device=args.device)


def images(n):
    v = cfg.vision_config
    return torch.randn(n, v.num_channels, v.image_size, v.image_size, device=args.device)


if args.mode == "train":
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    if kind == "t5":
        tgt = args.target_seq or max(args.seq // 4, 1)
        ids, labels = random_ids(cfg.vocab_size, args.batch, args.seq), random_ids(cfg.vocab_size, args.batch, tgt)
        forward = lambda: model(input_ids=ids, labels=labels).loss
        extra = {"tokens_per_s_factor": args.seq + tgt}
    elif kind == "clip":
        seq = min(args.seq, cfg.text_config.max_position_embeddings)
        ids, pixels = random_ids(cfg.text_config.vocab_size, args.batch, seq), images(args.batch)
        forward = lambda: model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        extra = {"tokens_per_s_factor": None}
    else:
        ids = random_ids(cfg.vocab_size, args.batch, args.seq)
        forward = lambda: model(input_ids=ids, labels=ids).loss
        extra = {"tokens_per_s_factor": args.seq}

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = forward()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    ms = timed(args.steps, step)
    out = {"model": kind, "step_ms": ms, "pairs_per_s": args.batch / (ms / 1e3), "peak_rss_mb": peak_mb(), "device": args.device,
           "dtype": args.dtype}
    if extra["tokens_per_s_factor"]:
        out["tokens_per_s"] = args.batch * extra["tokens_per_s_factor"] / (ms / 1e3)
    emit(out)
elif args.mode == "encode":
    model.eval()
    pixels = images(args.batch)

    def encode():
        with torch.no_grad(), autocast:
            model.get_image_features(pixel_values=pixels)

    ms = timed(args.steps, encode)
    emit({"model": kind, "encode_ms": ms, "images_per_s": args.batch / (ms / 1e3), "peak_rss_mb": peak_mb()})
else:
    model.eval()
    ids = random_ids(cfg.vocab_size, args.batch, args.prompt_len)

    def gen():
        with torch.no_grad(), autocast:
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, num_beams=args.beams, pad_token_id=0)

    ms = timed(3, gen)
    emit({"tokens_per_s": args.batch * args.new_tokens / (ms / 1e3), "ms_per_token": ms / args.new_tokens, "beams": args.beams,
          "peak_rss_mb": peak_mb()})
