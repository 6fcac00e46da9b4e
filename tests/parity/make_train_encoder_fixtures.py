#!/usr/bin/env python3
"""Fixtures for tests/test_train_encoder.c: a tiny BERT sequence classifier (2 labels, "negative" /
"positive", random weights from transformers with a fixed seed) whose WordPiece vocabulary is built from
the small SST-2 / AG News / WNUT17 subsets, saved with save_pretrained (config.json, model.safetensors,
vocab.txt, tokenizer.json, tokenizer_config.json), plus the small data files the trainer tests read.

    python3 tests/parity/make_train_encoder_fixtures.py      # writes tests/fixtures/train_encoder/

Sources (all already in tests/fixtures/classify, copied from ../shared/data): sst2_dev200.tsv (SST-2 dev,
first 200 rows), agnews120.tsv (AG News test, 120 rows, 4 topics), wnut17_dev.conll."""
import collections, csv, os, re, sys

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
OUT = os.path.join(FIX, "train_encoder")


def words(text):
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def main():
    os.makedirs(OUT, exist_ok=True)
    sst = list(csv.reader(open(os.path.join(FIX, "classify", "sst2_dev200.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    ag = list(csv.reader(open(os.path.join(FIX, "classify", "agnews120.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
    conll = [l.split("\t")[0] for l in open(os.path.join(FIX, "classify", "wnut17_dev.conll")) if "\t" in l]
    # data files: SST-2 as train (first 160) / dev (last 40), with names; a 3-class AG News subset; regression
    names = {"0": "negative", "1": "positive"}
    with open(os.path.join(OUT, "sst_train.tsv"), "w") as f:
        f.write("sentence\tlabel\n")
        for s, l in sst[:160]:
            f.write(f"{s.strip()}\t{names[l]}\n")
    with open(os.path.join(OUT, "sst_dev.tsv"), "w") as f:
        f.write("sentence\tlabel\n")
        for s, l in sst[160:]:
            f.write(f"{s.strip()}\t{names[l]}\n")
    with open(os.path.join(OUT, "topics3.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "topic"])
        for t, l in ag:
            if l in ("World", "Sports", "Business"):
                w.writerow([t, l])
    with open(os.path.join(OUT, "sst_score.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "score"])
        for i, (s, l) in enumerate(sst[:120]):
            w.writerow([s.strip(), f"{float(l) * 4 + (i % 3) * 0.5:.1f}"])
    with open(os.path.join(OUT, "mlm.txt"), "w") as f:
        for s, _ in sst[:120]:
            f.write(s.strip() + "\n")
    # vocabulary: specials, characters (and ## continuations), then the most frequent words
    cnt = collections.Counter()
    for s, _ in sst:
        cnt.update(words(s))
    for t, _ in ag:
        cnt.update(words(t))
    cnt.update(w for t in conll for w in words(t))
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()&$%#@/\\*+=<>[]{}_|~`^"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars if c.isalnum()]
    seen = set(vocab)
    for w_, _ in cnt.most_common():
        if len(vocab) >= 700:
            break
        if w_ not in seen:
            vocab.append(w_)
            seen.add(w_)
    model_dir = os.path.join(OUT, "tiny_bert")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(os.path.join(model_dir, "vocab.txt"), do_lower_case=True, model_max_length=128)
    tok.save_pretrained(model_dir)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, type_vocab_size=2,
                     id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(model_dir, safe_serialization=True)
    print(f"wrote {OUT}: vocab {len(vocab)}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    sys.exit(main())
