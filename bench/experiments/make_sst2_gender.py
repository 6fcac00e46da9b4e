#!/usr/bin/env python3
"""make_sst2_gender.py — the labelled set with a group column of the fairness experiment (BENCHMARKS.md,
"Fairness of an SST-2 classifier across a derived gender group").

SST-2 has no demographic annotation, so the group is DERIVED FROM THE TEXT: a phrase of ../shared/data/sst2
dev.tsv (6,735 phrases) or test.tsv (872 sentences, GLUE dev) is
  "male"    when it contains a male term (he, him, his, man, men, boy, father, actor, ...) and no female term,
  "female"  when it contains a female term (she, her, woman, girl, mother, actress, ...) and no male term,
  "none"    when it contains neither (phrases with both are left out).
This measures how the classifier treats text ABOUT men vs women (as written by the reviewers), not the authors'
gender; the groups differ in content and size, so gaps mix model bias with what the phrases say.

Also writes the short training set: the first N phrases of train.tsv (default 8,000).
usage: make_sst2_gender.py OUT_DIR [N_TRAIN]
"""
import os
import re
import sys

MALE = {"he", "him", "his", "himself", "man", "men", "boy", "boys", "guy", "guys", "father", "fathers", "dad", "son",
        "sons", "husband", "brother", "brothers", "actor", "actors", "king", "mr.", "gentleman", "gentlemen", "uncle",
        "nephew", "grandfather", "boyfriend", "male", "males", "masculine", "hero", "heroes"}
FEMALE = {"she", "her", "hers", "herself", "woman", "women", "girl", "girls", "gal", "mother", "mothers", "mom",
          "daughter", "daughters", "wife", "sister", "sisters", "actress", "actresses", "queen", "mrs.", "ms.", "lady",
          "ladies", "aunt", "niece", "grandmother", "girlfriend", "female", "females", "feminine", "heroine"}


def rows(path):
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            text, label = line.rstrip("\n").rsplit("\t", 1)
            yield text.strip(), label.strip()


def main(argv):
    out = argv[1]
    n_train = int(argv[2]) if len(argv) > 2 else 8000
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.environ.get("SST2_DIR", os.path.join(here, "..", "..", "..", "shared", "data", "sst2"))
    os.makedirs(out, exist_ok=True)
    counts = {}
    with open(os.path.join(out, "eval_gender.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\tgroup\n")
        for split in ("dev.tsv", "test.tsv"):
            for text, label in rows(os.path.join(data, split)):
                words = set(re.findall(r"[a-z]+\.?|[a-z]+", text.lower()))
                m, w = bool(words & MALE), bool(words & FEMALE)
                if m and w:
                    continue
                g = "male" if m else "female" if w else "none"
                counts[(g, label)] = counts.get((g, label), 0) + 1
                f.write(f"{text}\t{label}\t{g}\n")
    with open(os.path.join(out, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for i, (text, label) in enumerate(rows(os.path.join(data, "train.tsv"))):
            if i >= n_train:
                break
            f.write(f"{text}\t{label}\n")
    for g in ("male", "female", "none"):
        print(f"{g:7s} negative {counts.get((g, '0'), 0):5d}  positive {counts.get((g, '1'), 0):5d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
