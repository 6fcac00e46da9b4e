#!/usr/bin/env python3
"""A tweet-like 3-class sentiment set for the defaults experiment (BENCHMARKS.md, "Defaults by task").

2,000 chat utterances of at most 140 characters from DailyDialog's training split
(../shared/data/dailydialog/train: dialogues_train.txt, one dialogue per line, turns separated by
__eou__; dialogues_emotion_train.txt, one emotion id per turn): neutral (emotion 0) 900, happy
(4: happiness) 650, negative (1 anger, 2 disgust, 3 fear, 5 sadness) 450 — the majority class is 45%,
as in the user's tweets report. Duplicates dropped, fixed seed. Writes CSV with header text,label.
usage: bench/experiments/make_emotion3.py [DAILYDIALOG_TRAIN_DIR] [OUT_CSV]
"""
import csv, os, random, sys

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../shared/data/dailydialog/train")
dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "emotion3.csv")
want = {"neutral": 900, "happy": 650, "negative": 450}
label_of = {0: "neutral", 4: "happy", 1: "negative", 2: "negative", 3: "negative", 5: "negative"}

by = {k: [] for k in want}
seen = set()
with open(os.path.join(src, "dialogues_train.txt"), encoding="utf-8") as fd, \
     open(os.path.join(src, "dialogues_emotion_train.txt"), encoding="utf-8") as fe:
    for dl, el in zip(fd, fe):
        turns = [" ".join(t.split()) for t in dl.split("__eou__")]
        turns = [t for t in turns if t]
        emos = [int(x) for x in el.split()]
        if len(turns) != len(emos):
            continue
        for t, e in zip(turns, emos):
            lab = label_of.get(e)
            if lab and 3 <= len(t) <= 140 and t.lower() not in seen:
                seen.add(t.lower())
                by[lab].append(t)
rng = random.Random(20261206)
rows = []
for k, n in want.items():
    rng.shuffle(by[k])
    rows += [(t, k) for t in by[k][:n]]
rng.shuffle(rows)
with open(dst, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["text", "label"])
    w.writerows(rows)
print(f"{dst}: {len(rows)} rows, " + ", ".join(f"{k} {n} (of {len(by[k])})" for k, n in want.items()), file=sys.stderr)
