#!/usr/bin/env python3
"""PyTorch baseline for encoder fine-tuning (CPU, float32): BertForSequenceClassification from a model
directory (default models/all-MiniLM-L6-v2, 2 labels, train mode with the config's dropout), AdamW(lr 5e-5,
weight decay 0.01), gradient clipping at 1.0, on batches of B texts from a TSV (column 1 = text, column 2 =
0/1 label, header row), tokenized with the model's BertTokenizerFast, truncated and padded to exactly T tokens.
--warmup untimed steps, then the median of --steps steps. Prints `pytorch encoder-train: X examples/s`
and `pytorch peak_rss: X MB` — the same setting as bench/encoder.sh's finetune side."""
import argparse, csv, os, resource, statistics, sys, time

import torch
from transformers import BertForSequenceClassification, BertTokenizerFast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    rows = list(csv.reader(open(a.data), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    tok = BertTokenizerFast.from_pretrained(a.model)
    model = BertForSequenceClassification.from_pretrained(a.model, num_labels=2)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, B {a.batch_size} x T {a.seq_len}", file=sys.stderr)
    times = []
    B = a.batch_size
    for s in range(a.warmup + a.steps):
        batch = [rows[(s * B + i) % len(rows)] for i in range(B)]
        enc = tok([r[0] for r in batch], truncation=True, max_length=a.seq_len, padding="max_length", return_tensors="pt")
        labels = torch.tensor([int(r[1]) for r in batch])
        t0 = time.perf_counter()
        out = model(**enc, labels=labels)
        opt.zero_grad(set_to_none=False)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
    med = statistics.median(times)
    print(f"pytorch encoder-train: {B / med:.1f} examples/s ({B * a.seq_len / med:.0f} tok/s, median step {med * 1000:.0f} ms)")
    print(f"pytorch peak_rss: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
