#!/usr/bin/env python3
"""Data of the issue-18 multi-task and continual-learning experiments (bench/experiments/multitask_sst2_agnews.sh,
continual_sst2_dailydialog.sh), written into OUT_DIR (default runs/mt-data), all seeded samples of ../shared/data:

  sst2.tsv          N SST-2 training phrases of 3+ words (sentence, label 0/1 as negative/positive)
  sst2_old_eval.tsv N_OLD SST-2 dev sentences: the old task of the continual-learning runs (never trained on)
  agnews.tsv        N AG News articles (text, label: World / Sports / Business / Sci/Tech) from agnews_test
  dd_sentiment.tsv  N_DD DailyDialog utterances with an emotion annotation read as sentiment, half each:
                    happiness -> positive; anger, disgust, fear, sadness -> negative (no-emotion and surprise
                    utterances are left out) — the "new" sentiment data of the continual-learning runs

Sizes from the environment: N (default 1000), N_OLD (300), N_DD (600); the machine these ran on was shared and
loaded, so the sets are small (each run <= 10 minutes).
usage: bench/experiments/make_multitask_data.py [OUT_DIR]"""
import os
import random
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
shared = os.environ.get("SHARED_DATA", os.path.join(root, "..", "shared", "data"))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "runs", "mt-data")
os.makedirs(out, exist_ok=True)
rng = random.Random(18)
N = int(os.environ.get("N", "1000"))
N_OLD = int(os.environ.get("N_OLD", "300"))
N_DD = int(os.environ.get("N_DD", "600"))
names = {"0": "negative", "1": "positive"}


def tsv_rows(path, header=True):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows = [l.split("\t") for l in (lines[1:] if header else lines) if l.strip()]
    return [r for r in rows if len(r) >= 2 and r[0].strip()]


def write(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        for a, b in rows:
            # double quotes become single ones: the TSV reader treats a leading '"' as a quoted field
            f.write(a.strip().replace("\t", " ").replace('"', "'") + "\t" + b.strip() + "\n")
    print(f"{path}: {len(rows)} rows")


sst = tsv_rows(os.path.join(shared, "sst2", "train.tsv"))
sst = [r for r in sst if len(r[0].split()) >= 3]   # phrases of at least three words
write(os.path.join(out, "sst2.tsv"), "sentence\tlabel", [(r[0], names[r[1].strip()]) for r in rng.sample(sst, N)])
dev = tsv_rows(os.path.join(shared, "sst2", "dev.tsv"))
dev = [r for r in dev if len(r[0].split()) >= 3]
write(os.path.join(out, "sst2_old_eval.tsv"), "sentence\tlabel", [(r[0], names[r[1].strip()]) for r in rng.sample(dev, N_OLD)])
ag = tsv_rows(os.path.join(shared, "agnews_test", "test.tsv"), header=False)
write(os.path.join(out, "agnews.tsv"), "text\tlabel", [(r[0].replace("\\", " "), r[1]) for r in rng.sample(ag, N)])

dd = os.path.join(shared, "dailydialog", "train")
pos, neg = [], []
with open(os.path.join(dd, "dialogues_train.txt"), encoding="utf-8") as ft, open(os.path.join(dd, "dialogues_emotion_train.txt")) as fe:
    for text, emo in zip(ft, fe):
        utts = [u.strip() for u in text.split("__eou__") if u.strip()]
        es = emo.split()
        if len(utts) != len(es):
            continue
        for u, e in zip(utts, es):
            if len(u.split()) < 3:
                continue
            if e == "4":
                pos.append(u)
            elif e in ("1", "2", "3", "5"):
                neg.append(u)
rows = [(u, "positive") for u in rng.sample(pos, N_DD // 2)] + [(u, "negative") for u in rng.sample(neg, N_DD - N_DD // 2)]
rng.shuffle(rows)
write(os.path.join(out, "dd_sentiment.tsv"), "sentence\tlabel", rows)
