#!/usr/bin/env python3
"""Times sentence-transformers embedding the texts `hhi bench evaluate
--write-texts FILE` wrote, for the ratio against `hhi bench evaluate`
(same texts, same machine, same thread count):

    hhi bench evaluate --sentence-model DIR --write-texts /tmp/texts.txt
    python scripts/bench_sentence_torch.py /tmp/texts.txt DIR [--threads 2 --batch 64 --repeats 3]
"""
import argparse
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("texts")
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    texts = open(a.texts, encoding="utf-8").read().split("\n")
    model = SentenceTransformer(a.model, device="cpu")
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        model.encode(texts, batch_size=a.batch)
        times.append(time.perf_counter() - start)
    print(f'{{"texts": {len(texts)}, "seconds_median": {statistics.median(times):.2f}, "seconds": {[round(t, 2) for t in times]}, '
          f'"torch": "{torch.__version__}", "threads": {a.threads}}}')


if __name__ == "__main__":
    main()
