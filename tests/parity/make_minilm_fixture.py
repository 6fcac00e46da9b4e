#!/usr/bin/env python3
"""Reference outputs of the real all-MiniLM-L6-v2 (models/all-MiniLM-L6-v2, made by scripts/setup.sh)
for tests/test_minilm.c.

Usage (from the repository root):
    python3 tests/parity/make_minilm_fixture.py [MODEL_DIR]

Tokenizes SENTENCES with transformers' BertTokenizerFast from the model directory (one padded batch),
runs BertModel in float64 (eager attention, eval mode) and writes
tests/fixtures/encoder/minilm_ref.safetensors:
    input_ids, attention_mask, token_type_ids   I32 [B,T]
    last_hidden_state                           F32 [B,T,C]  (float64 forward, stored as F32)
    embeddings                                  F32 [B,C]    mean over the real tokens (sentence-transformers'
                                                             Pooling(mean), before its Normalize module)
The metadata records the sentences (JSON) and the versions used.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizerFast

transformers.logging.set_verbosity_error()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "encoder", "minilm_ref.safetensors")
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning encoders in plain C is surprisingly fun!",
    "Café crème, naïve résumé: tokenizers strip ACCENTS.",
    "Short one.",
]


def main(argv):
    model_dir = argv[1] if len(argv) > 1 else os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
    tok = BertTokenizerFast.from_pretrained(model_dir)
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager", add_pooling_layer=False)
    model = model.double().eval()
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                  token_type_ids=enc["token_type_ids"]).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).double()
    emb = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    ref = {
        "input_ids": enc["input_ids"].to(torch.int32), "attention_mask": enc["attention_mask"].to(torch.int32),
        "token_type_ids": enc["token_type_ids"].to(torch.int32),
        "last_hidden_state": h.float().contiguous(), "embeddings": emb.float().contiguous(),
    }
    meta = {"format": "pt", "sentences": json.dumps(SENTENCES), "torch_version": torch.__version__,
            "transformers_version": transformers.__version__}
    save_file(dict(sorted(ref.items())), OUT, metadata=meta)
    B, T = enc["input_ids"].shape
    print(f"{OUT}: B={B} T={T} C={h.shape[-1]} ({os.path.getsize(OUT)} bytes)")
    for s, ids in zip(SENTENCES, enc["input_ids"].tolist()):
        print(f"  {s!r}: {ids}")


if __name__ == "__main__":
    main(sys.argv)
