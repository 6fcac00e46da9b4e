#!/usr/bin/env python3
"""Write small random-weight encoder classifiers (Hugging Face directories) plus
float64 PyTorch/transformers reference tensors for tests/test_encoder.c.

Usage (from the repository root):
    python3 tests/parity/make_encoder_fixtures.py            # all configurations
    python3 tests/parity/make_encoder_fixtures.py bert_tiny  # only the named ones

For each configuration NAME it writes tests/fixtures/encoder/NAME/:
    config.json, model.safetensors     as save_pretrained writes them (float32 weights)
    ref.safetensors                    input_ids, token_type_ids, attention_mask, labels [B,T]/[B] (I32),
                                       logits [B,K], loss [1], grad.<hf name> for every parameter
References are computed by the float64 copy of the model (eager attention, dropout 0), so the
C side is compared against exact values. Everything is seeded: reruns give identical files.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification)
import transformers

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "encoder")
NORM_BIAS_JITTER = 0.1  # 1-D params (norm weights, biases) get +N(0, 0.1^2)


def bert():
    return BertConfig(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, hidden_act="gelu", max_position_embeddings=16,
                      type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      classifier_dropout=0.0, initializer_range=0.2, num_labels=3, pad_token_id=0,
                      layer_norm_eps=1e-12)


def distilbert():
    return DistilBertConfig(vocab_size=100, dim=16, n_layers=2, n_heads=4, hidden_dim=32,
                            activation="gelu", max_position_embeddings=16, dropout=0.0,
                            attention_dropout=0.0, seq_classif_dropout=0.0, initializer_range=0.2,
                            num_labels=3, pad_token_id=0)


def roberta():
    return RobertaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=32, hidden_act="gelu", max_position_embeddings=18,
                         type_vocab_size=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         classifier_dropout=0.0, initializer_range=0.2, num_labels=3, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)


# (bert_tiny: width 64, 4 heads, FFN 128; the other two are narrower (width 16, head size 4) so that
# tests/fixtures/encoder stays under 1 MB)
# name -> (config factory, model class, B, T, token types?)
CONFIGS = {
    "bert_tiny": (bert, BertForSequenceClassification, 3, 12, True),
    "distilbert_tiny": (distilbert, DistilBertForSequenceClassification, 3, 12, False),
    "roberta_tiny": (roberta, RobertaForSequenceClassification, 3, 12, False),
}


def make_batch(config, B, T, types, pad, seed):
    g = torch.Generator().manual_seed(seed + 1)
    V = config.vocab_size
    ids = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    lengths = [T, T - 4, T - 7][:B]
    for b, n in enumerate(lengths):
        mask[b, n:] = 0
        ids[b, n:] = pad
    tt = torch.zeros(B, T, dtype=torch.long)
    if types:
        for b, n in enumerate(lengths):
            tt[b, n // 2:n] = 1
    labels = torch.randint(0, config.num_labels, (B,), generator=g)
    return ids, tt, mask, labels


def make_fixture(name, seed):
    make_cfg, cls, B, T, types = CONFIGS[name]
    config = make_cfg()
    config._attn_implementation = "eager"
    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * NORM_BIAS_JITTER)
    model.save_pretrained(d, safe_serialization=True)
    ckpt = load_file(os.path.join(d, "model.safetensors"))

    model64 = cls(config).double().eval()
    model64.load_state_dict(model.state_dict())
    pad = config.pad_token_id
    ids, tt, mask, labels = make_batch(config, B, T, types, pad, seed)
    kw = dict(input_ids=ids, attention_mask=mask, labels=labels)
    if types:
        kw["token_type_ids"] = tt
    out = model64(**kw)
    out.loss.backward()
    ref = {
        "input_ids": ids.to(torch.int32), "token_type_ids": tt.to(torch.int32),
        "attention_mask": mask.to(torch.int32), "labels": labels.to(torch.int32),
        "logits": out.logits.detach().float(), "loss": out.loss.detach().float().reshape(1),
    }
    for n, p in model64.named_parameters():
        assert n in ckpt, f"{name}: parameter {n} not in model.safetensors"
        ref["grad." + n] = (p.grad if p.grad is not None else torch.zeros_like(p)).float().contiguous()
    from safetensors.torch import save_file
    save_file(dict(sorted(ref.items())), os.path.join(d, "ref.safetensors"), metadata={"format": "pt"})
    print(f"{name}: B={B} T={T} loss={out.loss.item():.6f} params={len(list(model64.parameters()))}")


def main(argv):
    names = argv[1:] or list(CONFIGS)
    for i, n in enumerate(names):
        make_fixture(n, 1234 + 17 * i)


if __name__ == "__main__":
    main(sys.argv)
