#!/usr/bin/env python3
"""Write the attribution fixtures of tests/test_explain.c: a small random-weight BERT classifier (a Hugging Face
directory with the WordPiece tokenizer of tests/fixtures/train_encoder/tiny_bert) and float64 references.

Usage (from the repository root; needs torch, transformers, captum: ./scripts/setup.sh --python):
    python3 tests/parity/make_explain_fixtures.py

Writes tests/fixtures/explain/bert_cls/:
    config.json, model.safetensors, vocab.txt, tokenizer.json, tokenizer_config.json
    ref.json: {"mask_token", "cases": [...]}, each case (numbers as Python's repr writes doubles):
        text, unit ("token" / "word"), output ("prob" / "logit")
        ids [T]          the tokenizer's ids ([CLS] ... [SEP]), checked against ours
        feature [T]      feature of each token (-1 special)
        target           the class explained (the predicted one)
        shap [n]         exact Shapley values by brute force (itertools over all coalitions), float64
        f [2]            f(x), f(all masked)
        ig [T]           Captum LayerIntegratedGradients on bert.embeddings.word_embeddings (method
                         gausslegendre, n_steps 50, baselines = the masked ids), summed over the hidden dim
        attention        [L][NH][T][T] the attention probabilities (output_attentions, eager)

Masking rule (the same as explain.h): a feature outside the coalition has all its tokens replaced by [MASK];
[CLS] / [SEP] are never features. f = softmax probability of the target class (or its logit).
Everything is seeded: reruns give identical files.
"""
import itertools
import json
import math
import os
import shutil

import torch
from captum.attr import LayerIntegratedGradients
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
import transformers

transformers.logging.set_verbosity_error()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK_DIR = os.path.join(ROOT, "tests", "fixtures", "train_encoder", "tiny_bert")
OUT = os.path.join(ROOT, "tests", "fixtures", "explain", "bert_cls")

# (text, unit, output): output 0 = probability of the target, 1 = its logit
CASES = [
    ("a great movie , not bad", "token", 0),
    ("the movie was not good but the actors were great", "token", 0),
    ("an unbelievable , overwrought story", "word", 0),
    ("a great movie , not bad", "token", 1),
]


def features(tok, ids, unit):
    feat, n, prev = [], 0, False
    for i in ids:
        if i in tok.all_special_ids:
            feat.append(-1)
            prev = False
            continue
        s = tok.convert_ids_to_tokens(i)
        if unit == "word" and prev and s.startswith("##"):
            feat.append(n - 1)
        else:
            feat.append(n)
            n += 1
        prev = True
    return feat, n


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK_DIR, f), os.path.join(OUT, f))
    tok = BertTokenizerFast.from_pretrained(OUT)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0,
                        initializer_range=0.3, num_labels=3, pad_token_id=0, layer_norm_eps=1e-12,
                        id2label={0: "negative", 1: "neutral", 2: "positive"},
                        label2id={"negative": 0, "neutral": 1, "positive": 2})
    config._attn_implementation = "eager"
    torch.manual_seed(12)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(OUT, safe_serialization=True)
    m64 = BertForSequenceClassification(config).double().eval()
    m64.load_state_dict(model.state_dict())
    mask_id = tok.mask_token_id

    cases = []
    for ci, (text, unit, output) in enumerate(CASES):
        c = f"c{ci}"
        ids = tok(text)["input_ids"]
        T = len(ids)
        feat, n = features(tok, ids, unit)
        x = torch.tensor([ids])
        with torch.no_grad():
            out = m64(input_ids=x, output_attentions=True)
        target = int(out.logits[0].argmax())

        def f_of(batch):
            logits = m64(input_ids=batch).logits
            return logits[:, target] if output == 1 else torch.softmax(logits, -1)[:, target]

        # brute force: v(S) for every coalition, phi_i = sum_S |S|!(n-|S|-1)!/n! (v(S+i) - v(S))
        v = {}
        rows, keys = [], []
        for k in range(n + 1):
            for S in itertools.combinations(range(n), k):
                row = [i if f < 0 or f in S else mask_id for i, f in zip(ids, feat)]
                rows.append(row)
                keys.append(frozenset(S))
        with torch.no_grad():
            vals = f_of(torch.tensor(rows))
        for key, val in zip(keys, vals.tolist()):
            v[key] = val
        phi = []
        for i in range(n):
            s = 0.0
            others = [j for j in range(n) if j != i]
            for k in range(n):
                for S in itertools.combinations(others, k):
                    w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                    s += w * (v[frozenset(S) | {i}] - v[frozenset(S)])
            phi.append(s)
        full, empty = v[frozenset(range(n))], v[frozenset()]
        assert abs(sum(phi) - (full - empty)) < 1e-12

        base = torch.tensor([[i if f < 0 else mask_id for i, f in zip(ids, feat)]])
        lig = LayerIntegratedGradients(f_of, m64.bert.embeddings.word_embeddings)
        attr = lig.attribute(inputs=x, baselines=base, n_steps=50, method="gausslegendre")
        ig = attr.sum(-1)[0]

        att = torch.stack([a[0] for a in out.attentions])   # [L, NH, T, T]
        cases.append({"name": c, "text": text, "unit": unit, "output": "logit" if output else "prob",
                      "ids": ids, "feature": feat, "target": target, "shap": phi, "f": [full, empty],
                      "ig": ig.detach().double().tolist(), "attention": att.tolist()})
        print(f"{c}: {text!r} ({unit}, {'logit' if output else 'prob'}) T={T} n={n} target={target} f={full:.6f} "
              f"f_masked={empty:.6f} ig_sum={float(ig.sum()):.6f}")
    with open(os.path.join(OUT, "ref.json"), "w") as fh:
        json.dump({"mask_token": tok.mask_token, "cases": cases}, fh)
        fh.write("\n")


if __name__ == "__main__":
    main()
