#!/usr/bin/env python3
"""make_bias_fixtures.py — references for tests/test_bias.c (include/finetune/bias.h).

Writes into tests/fixtures/bias/:
  tiny_bert_mlm/   a BertForMaskedLM (2 layers, hidden 32, seeded random weights, initializer_range 0.2) with the
                   WordPiece tokenizer of tests/fixtures/train_encoder/tiny_bert (700 tokens)
  ref.json         for every pair of crows_small.csv:
                   * causal: the embedded stories260K (models/stories260K, LlamaForCausalLM in float64) —
                     lm-evaluation-harness' crows_pairs log-likelihood: ids = tokenizer(text, add_special_tokens=False),
                     preceded by BOS, ll = sum of log_softmax(logits)[next id] over the text's tokens;
                     the same for a context + continuation (the harness' joint encoding split at len(enc(context)))
                   * mlm: the CrowS-Pairs paper's metric.py (mask_unigram / get_log_prob_unigram) re-implemented on
                     tiny_bert_mlm in float64: difflib "equal" spans of the two [CLS] ... [SEP] id sequences, each
                     shared position but the first and last masked in turn, log_softmax at the original id summed
                   * difflib: SequenceMatcher(None, a, b).get_matching_blocks() on seeded random id lists (lengths
                     0..300, small alphabets, so autojunk's "popular" rule is exercised for len(b) >= 200)

Needs torch and transformers (scripts/setup.sh --python). Deterministic. From the repository root:

    python3 tests/parity/make_bias_fixtures.py
"""
import csv
import difflib
import json
import os
import random
import shutil
import sys

import torch
import transformers
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, LlamaForCausalLM

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "bias")
TOK_SRC = os.path.join(ROOT, "tests", "fixtures", "train_encoder", "tiny_bert")
STORIES = os.path.join(ROOT, "models", "stories260K")


def make_mlm(d):
    torch.manual_seed(1234)
    cfg = BertConfig(vocab_size=700, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64, initializer_range=0.2, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, pad_token_id=0)
    model = BertForMaskedLM(cfg).eval()
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK_SRC, f), os.path.join(d, f))
    return model


def causal_ll(model, tok, context, continuation):
    """lm-evaluation-harness: empty context -> [prefix token] + enc(continuation); else split the joint encoding."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if context:
        n_sp = len(context) - len(context.rstrip(" "))
        if n_sp:
            continuation = context[-n_sp:] + continuation
            context = context[:-n_sp]
        whole = tok(context + continuation, add_special_tokens=False).input_ids
        nctx = len(tok(context, add_special_tokens=False).input_ids)
        ids = [bos] + whole
        first = nctx + 1
    else:
        ids = [bos] + tok(continuation, add_special_tokens=False).input_ids
        first = 1
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]])).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1)
    ll = sum(float(lp[t - 1, ids[t]]) for t in range(first, len(ids)))
    return ids, ll


def get_span(seq1, seq2):
    """the paper's get_span: positions in 'equal' opcodes"""
    matcher = difflib.SequenceMatcher(None, [str(x) for x in seq1], [str(x) for x in seq2])
    t1, t2 = [], []
    for op in matcher.get_opcodes():
        if op[0] == "equal":
            t1 += list(range(op[1], op[2]))
            t2 += list(range(op[3], op[4]))
    return t1, t2


def pll_pair(model, tok, s1, s2):
    a = tok.encode(s1)
    b = tok.encode(s2)
    t1, t2 = get_span(a, b)
    mask_id = tok.mask_token_id
    sc = [0.0, 0.0]
    for i in range(1, len(t1) - 1):
        for k, (ids, pos) in enumerate(((a, t1[i]), (b, t2[i]))):
            m = list(ids)
            m[pos] = mask_id
            with torch.no_grad():
                h = model(torch.tensor([m])).logits[0].double()
            sc[k] += float(torch.log_softmax(h[pos], dim=-1)[ids[pos]])
    return a, b, t1, t2, sc


def difflib_cases():
    rng = random.Random(99)
    cases = []
    for c in range(40):
        la, lb = rng.randint(0, 40), rng.randint(0, 40)
        alpha = rng.randint(2, 12)
        a = [rng.randrange(alpha) for _ in range(la)]
        b = list(a) if c % 3 == 0 else [rng.randrange(alpha) for _ in range(lb)]
        if c % 3 == 0 and b:
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.randrange(alpha)
        cases.append((a, b))
    for la, lb, alpha in ((250, 240, 6), (210, 300, 3), (30, 220, 4)):
        cases.append(([rng.randrange(alpha) for _ in range(la)], [rng.randrange(alpha) for _ in range(lb)]))
    out = []
    for a, b in cases:
        ia, ib = [], []
        for blk in difflib.SequenceMatcher(None, a, b).get_matching_blocks():
            ia += list(range(blk.a, blk.a + blk.size))
            ib += list(range(blk.b, blk.b + blk.size))
        out.append({"a": a, "b": b, "ia": ia, "ib": ib})
    return out


def main():
    mlm = make_mlm(os.path.join(OUT, "tiny_bert_mlm")).double()
    mtok = AutoTokenizer.from_pretrained(os.path.join(OUT, "tiny_bert_mlm"))
    dec = LlamaForCausalLM.from_pretrained(STORIES, dtype=torch.float64).eval()
    dtok = AutoTokenizer.from_pretrained(STORIES)
    pairs = []
    with open(os.path.join(OUT, "crows_small.csv"), newline="") as f:
        for row in csv.DictReader(f):
            ids_more, ll_more = causal_ll(dec, dtok, "", row["sent_more"])
            ids_less, ll_less = causal_ll(dec, dtok, "", row["sent_less"])
            a, b, t1, t2, (p1, p2) = pll_pair(mlm, mtok, row["sent_more"], row["sent_less"])
            pairs.append({"sent_more": row["sent_more"], "sent_less": row["sent_less"], "bias_type": row["bias_type"],
                          "causal_ids_more": ids_more, "causal_ids_less": ids_less,
                          "causal_ll_more": ll_more, "causal_ll_less": ll_less,
                          "mlm_ids_more": a, "mlm_ids_less": b, "mlm_shared_more": t1, "mlm_shared_less": t2,
                          "mlm_pll_more": p1, "mlm_pll_less": p2})
    contexts = []
    for ctx, cont in (("Once upon a time, there was a", " little girl."),
                      ("Tom said \"he\" refers to the ", "dog."),
                      ("Lily", " was happy.")):
        ids, ll = causal_ll(dec, dtok, ctx, cont)
        contexts.append({"context": ctx, "continuation": cont, "ids": ids, "ll": ll})
    doc = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "pairs": pairs, "contexts": contexts, "difflib": difflib_cases()}
    with open(os.path.join(OUT, "ref.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}/ref.json: {len(pairs)} pairs, {len(contexts)} contexts, {len(doc['difflib'])} difflib cases")


if __name__ == "__main__":
    sys.exit(main())
