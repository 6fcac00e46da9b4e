#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 for tests/test_serve_engine.c (ft_engine_embed).

Usage (from the repository root):
    python3 tests/parity/make_embed_fixture.py [MODEL_DIR]

This is sentence-transformers' pipeline for this model (modules.json: Transformer -> Pooling(mean) ->
Normalize), written out with transformers so that the sentence-transformers package is not needed:
  Transformer  AutoTokenizer with truncation at max_seq_length (sentence_bert_config.json: 256), padding to
               the longest text; AutoModel's last_hidden_state, float32, eval mode
  Pooling      mean over the tokens where attention_mask is 1: sum(h * mask) / clamp(sum(mask), min=1e-9)
  Normalize    torch.nn.functional.normalize(x, p=2, dim=1) (x / max(||x||, 1e-12))
It is run once in float32 (what a sentence-transformers deployment computes; the C test must match it within
1e-5) and once in float64 (the exact values, for information).

Writes tests/fixtures/serve/minilm_embed.safetensors:
    input_ids, attention_mask   I32 [B,T]
    embeddings                  F32 [B,C]   float32 pipeline
    embeddings_f64              F32 [B,C]   float64 pipeline (stored as F32)
The metadata records the sentences (JSON), max_seq_length and the versions used.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer

transformers.logging.set_verbosity_error()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "serve", "minilm_embed.safetensors")
SENTENCES = [
    "A man is eating food.",
    "The new movie is awesome!",
    "Serving fine-tuned models from one C binary, many adapters batched together.",
    "Ünïcödé, emojis 🚀 and CJK 漢字 go through WordPiece too.",
    "ok",
    # longer than max_seq_length (256 tokens): sentence-transformers truncates it
    " ".join(["The quick brown fox jumps over the lazy dog while the cat watches."] * 24),
]


def embed(model, enc, dtype):
    m = model.to(dtype)
    with torch.no_grad():
        h = m(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
              token_type_ids=enc["token_type_ids"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
    pooled = (h * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
    return F.normalize(pooled, p=2, dim=1)


def main(argv):
    model_dir = argv[1] if len(argv) > 1 else os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
    with open(os.path.join(model_dir, "sentence_bert_config.json")) as f:
        max_len = json.load(f)["max_seq_length"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    e32 = embed(model, enc, torch.float32)
    e64 = embed(model, enc, torch.float64)
    print(f"float32 vs float64 pipeline: max |d| = {(e32.double() - e64).abs().max().item():.3e}")
    ref = {
        "input_ids": enc["input_ids"].to(torch.int32).contiguous(),
        "attention_mask": enc["attention_mask"].to(torch.int32).contiguous(),
        "embeddings": e32.float().contiguous(),
        "embeddings_f64": e64.float().contiguous(),
    }
    meta = {"format": "pt", "sentences": json.dumps(SENTENCES), "max_seq_length": str(max_len),
            "torch_version": torch.__version__, "transformers_version": transformers.__version__}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(dict(sorted(ref.items())), OUT, metadata=meta)
    B, T = enc["input_ids"].shape
    print(f"{OUT}: B={B} T={T} C={e32.shape[-1]} ({os.path.getsize(OUT)} bytes)")
    for s, n in zip(SENTENCES, enc["attention_mask"].sum(1).tolist()):
        print(f"  {n:3d} tokens  {s[:60]!r}")


if __name__ == "__main__":
    main(sys.argv)
