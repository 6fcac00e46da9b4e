#!/usr/bin/env python3
"""A tweet-like 3-class set for the defaults experiment (BENCHMARKS.md, "Defaults by task").

2,000 short texts from AG News (../shared/data/agnews_test/test.tsv): World 900, Business 650,
Sci/Tech 450 (the majority class is 45%, as in the user's tweets report), each cut to at most
140 characters at a word boundary, shuffled with a fixed seed. Writes CSV with header text,label.
usage: bench/experiments/make_news3.py [AGNEWS_TSV] [OUT_CSV]
"""
import csv, os, random, sys

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../shared/data/agnews_test/test.tsv")
dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "news3.csv")
want = {"World": 900, "Business": 650, "Sci/Tech": 450}

def short(t, n=140):
    t = " ".join(t.replace("\\", " ").split())
    if len(t) <= n:
        return t
    cut = t[:n].rsplit(" ", 1)[0]
    return cut if cut else t[:n]

by = {k: [] for k in want}
with open(src, encoding="utf-8") as f:
    for line in f:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 2 and parts[1] in by:
            by[parts[1]].append(short(parts[0]))
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
print(f"{dst}: {len(rows)} rows, " + ", ".join(f"{k} {n}" for k, n in want.items()), file=sys.stderr)
