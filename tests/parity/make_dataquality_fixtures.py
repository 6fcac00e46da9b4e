#!/usr/bin/env python3
"""Fixtures of tests/test_dataquality.c (finetune data inspect / clean), written to tests/fixtures/dataquality/.

Real data (subsets of ../shared/data, copied so the tests do not depend on ../shared):
  sst2_train.tsv    the first 2400 rows of SST-2 train and every row whose sentence occurs twice or more in it
  sst2_dev.tsv      the first 600 rows of SST-2 dev, plus 10 rows copied from sst2_train (planted leakage)
  dailydialog.txt   the first 300 dialogues of DailyDialog train (turns separated by __eou__)
  bitext.csv        the first 400 records of the Bitext customer-support CSV (multi-line quoted fields)
  tweets.txt        the first 400 tweets of WNUT17 train (CC BY 4.0), their tokens joined by spaces, one a line:
                    real @mentions, #hashtags and URLs
Constructed:
  planted.jsonl     tweet-like records with URLs, e-mails, phone numbers, mentions, hashtags, HTML, one invalid
                    UTF-8 byte and one control character at known lines, and texts in French / German / Spanish
Expected values, computed here independently of the C code (plain Python: set(), collections.Counter, a
brute-force Jaccard over every pair of 3-word shingles of lower-cased [^\\W_]+ words):
  expected.json
Stemming reference:
  snowball_en.tsv   word<TAB>stem of NLTK's SnowballStemmer("english") for every distinct lower-case alphabetic
                    word of sst2_train.tsv and dailydialog.txt plus the special cases of the Porter2 definition

Needs nltk (PyPI; setup.sh --python installs it with rouge-score). Run from the repository root:
    python3 tests/parity/make_dataquality_fixtures.py [--shared ../shared]
"""
import argparse
import collections
import csv
import io
import itertools
import json
import os
import re

from nltk.stem.snowball import SnowballStemmer

OUT = "tests/fixtures/dataquality"


def words(text):
    return re.findall(r"[^\W_]+", text.lower())


def shingles(text, k=3):
    w = words(text)
    if not w:
        return frozenset()
    if len(w) < k:
        return frozenset([" ".join(w)])
    return frozenset(" ".join(w[i:i + k]) for i in range(len(w) - k + 1))


def jaccard(a, b):
    return len(a & b) / len(a | b) if a or b else 0.0


def brute_pairs(texts, thr=0.7, cross=None):
    sh = [shingles(t) for t in texts]
    out = []
    if cross is None:
        idx = itertools.combinations(range(len(texts)), 2)
    else:
        idx = ((a, b) for a in range(cross) for b in range(cross, len(texts)))
    for a, b in idx:
        if sh[a] and sh[b] and jaccard(sh[a], sh[b]) >= thr:
            out.append([a, b])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    args = ap.parse_args()
    data = os.path.join(args.shared, "data")
    os.makedirs(OUT, exist_ok=True)
    exp = {}

    # SST-2 train / dev
    with open(os.path.join(data, "sst2/train.tsv"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    body = [l for l in lines[1:] if l]
    count = collections.Counter(l.split("\t")[0] for l in body)
    # the first 2400 rows and every row whose text occurs more than once in the whole file (real duplicates,
    # some with conflicting labels), in file order
    train = [l for i, l in enumerate(body) if i < 2400 or count[l.split("\t")[0]] > 1]
    with open(os.path.join(OUT, "sst2_train.tsv"), "w", encoding="utf-8") as f:
        f.write(lines[0] + "\n" + "\n".join(train) + "\n")
    with open(os.path.join(data, "sst2/dev.tsv"), encoding="utf-8") as f:
        dlines = f.read().split("\n")
    dev = dlines[1:601] + [train[i] for i in range(5, 300, 30)]
    with open(os.path.join(OUT, "sst2_dev.tsv"), "w", encoding="utf-8") as f:
        f.write(dlines[0] + "\n" + "\n".join(dev) + "\n")
    tt = [l.split("\t")[0] for l in train]
    tl = [l.split("\t")[1] for l in train]
    dt = [l.split("\t")[0] for l in dev]
    seen = set()
    exact = 0
    for t in tt:
        exact += t in seen
        seen.add(t)
    pairs = brute_pairs(tt)
    # labels of identical texts
    by_text = collections.defaultdict(set)
    for t, l in zip(tt, tl):
        by_text[t].add(l)
    conflicts = sum(1 for v in by_text.values() if len(v) > 1)
    leak_exact = sum(1 for t in dt if t in seen)
    leak_pairs = brute_pairs(tt + dt, cross=len(tt))
    leaked = {b - len(tt) for a, b in leak_pairs}
    exp["sst2"] = {"records": len(tt), "exact": exact, "labels": dict(collections.Counter(tl)),
                   "conflicting_texts": conflicts, "pairs": pairs,
                   "valid_records": len(dt), "leak_exact": leak_exact,
                   "leak_near": len([j for j in leaked if dt[j] not in seen]), "leak_pairs": len(leak_pairs)}

    # DailyDialog
    with open(os.path.join(data, "dailydialog/train/dialogues_train.txt"), encoding="utf-8") as f:
        dd = f.read().split("\n")[:300]
    with open(os.path.join(OUT, "dailydialog.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(dd) + "\n")
    turns = [[t.strip() for t in l.split("__eou__") if t.strip()] for l in dd]
    texts = ["\n".join(t) for t in turns]
    seen = set()
    exact = 0
    for t in texts:
        exact += t in seen
        seen.add(t)
    exp["dailydialog"] = {"records": len(dd), "exact": exact, "turns": sum(len(t) for t in turns),
                          "pairs": brute_pairs(texts)}

    # Bitext
    with open(os.path.join(data, "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"),
              encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:401]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(body)
    with open(os.path.join(OUT, "bitext.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    ii = head.index("intent")
    ins = head.index("instruction")
    seen = set()
    exact = 0
    for r in body:
        exact += r[ins] in seen
        seen.add(r[ins])
    exp["bitext"] = {"records": len(body), "fields": head, "intents": dict(collections.Counter(r[ii] for r in body)),
                     "exact_instruction": exact,
                     "categories": dict(collections.Counter(r[head.index("category")] for r in body))}

    # WNUT17 tweets: tokens of each sentence joined by spaces; expectations from the tokens themselves
    tweets, cur = [], []
    with open(os.path.join(data, "wnut17/wnut17train.conll"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if cur:
                    tweets.append(cur)
                cur = []
                if len(tweets) == 400:
                    break
                continue
            cur.append(line.split("\t")[0])
    with open(os.path.join(OUT, "tweets.txt"), "w", encoding="utf-8") as f:
        for t in tweets:
            f.write(" ".join(t) + "\n")
    is_url = lambda w: re.match(r"(https?|ftp)://|www\.", w, re.I) is not None
    # a token that starts with a mention / hashtag ("#pow#pow@x" is one tag followed by text)
    is_mention = lambda w: re.match(r"@\w", w) is not None
    is_tag = lambda w: re.match(r"#[^\W\d_]", w) is not None
    exp["tweets"] = {"records": len(tweets),
                     "url_records": sum(any(is_url(w) for w in t) for t in tweets),
                     "url_matches": sum(is_url(w) for t in tweets for w in t),
                     "mention_records": sum(any(is_mention(w) for w in t) for t in tweets),
                     "hashtag_records": sum(any(is_tag(w) for w in t) for t in tweets)}

    # planted: one JSON object a line; line numbers are 1-based
    planted = [
        {"text": "Loving the new release! Details at https://example.com/release-notes. #launch #AI", "label": "pos"},
        {"text": "@support my order never arrived, mail me at jane.doe@example.org", "label": "neg"},
        {"text": "Call us on +1 555-123-4567 or (020) 7946 0958 for help", "label": "neu"},
        {"text": "<p>Great <b>service</b> &amp; fast delivery</p>", "label": "pos"},
        {"text": "Order 113542617735902 shipped on 2020-10-12", "label": "neu"},
        {"text": "bad byte here: \udcff end", "label": "neg"},
        {"text": "a bell \u0007 rings", "label": "neu"},
        {"text": "Le film est une belle surprise et je le recommande à tous", "label": "pos"},
        {"text": "Der Film war nicht so gut, aber die Musik ist schön", "label": "neg"},
        {"text": "La película es muy buena y los actores son excelentes", "label": "pos"},
        {"text": "The movie was great and the actors were excellent", "label": "pos"},
        {"text": "The movie was great and the actors were excellent", "label": "neg"},
        {"text": "The movie was great and the actors were excellent", "label": "pos"},
        {"text": "visit www.example.net today, or @bob_smith will be sad #sad", "label": "neg"},
        {"text": "", "label": "neu"},
    ]
    with open(os.path.join(OUT, "planted.jsonl"), "wb") as f:
        for r in planted:
            line = json.dumps(r, ensure_ascii=False)
            b = line.encode("utf-8", "surrogateescape")
            f.write(b + b"\n")
    exp["planted"] = {"records": len(planted), "url_lines": [1, 14], "email_lines": [2], "phone_lines": [3],
                      "invalid_utf8_lines": [6], "control_lines": [7], "mention_lines": [2, 14],
                      "hashtag_lines": [1, 14], "empty_text": 1,
                      "langs": {"fr": [8], "de": [9], "es": [10]}, "conflicting_texts": 1}

    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False)
        f.write("\n")

    # stemming reference
    special = ["generously", "skies", "sky", "dying", "lying", "tying", "news", "innings", "inning", "outings",
               "cannings", "howe", "proceed", "exceed", "succeed", "andes", "atlas", "bias", "cosmos", "gently",
               "singly", "early", "only", "ugly", "idly", "commune", "communism", "arsenal", "gener", "general",
               "consign", "consigned", "consigning", "consignment", "knightly", "knights", "herring", "earring",
               "fluently", "fly", "flies", "dies", "ties", "cried", "cries", "hoping", "hopped", "hopping",
               "agreed", "feed", "plastered", "sized", "caresses", "ponies", "controlling", "rolling"]
    vocab = set(special)
    for t in tt + texts:
        for wd in re.findall(r"[a-z]+", t.lower()):
            vocab.add(wd)
    st = SnowballStemmer("english")
    with open(os.path.join(OUT, "snowball_en.tsv"), "w", encoding="utf-8") as f:
        for wd in sorted(vocab):
            f.write(f"{wd}\t{st.stem(wd)}\n")
    print(f"sst2: {exp['sst2']['records']} records, {exp['sst2']['exact']} exact, {len(exp['sst2']['pairs'])} pairs; "
          f"leak exact {leak_exact}, near {exp['sst2']['leak_near']}; dailydialog {len(dd)}; bitext {len(body)}; "
          f"{len(vocab)} stem words")


if __name__ == "__main__":
    main()
