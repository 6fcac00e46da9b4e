#!/usr/bin/env python3
"""make_metrics_fixtures.py — reference values for tests/test_metrics.c (include/finetune/metrics.h).

Writes tests/fixtures/metrics/metrics.json: inputs and the values scikit-learn and seqeval give
for them (classification scores, confusion matrices, log loss, ROC-AUC, Brier, NER entity
scores and entities), plus an explicit ECE reference (scikit-learn has none; the definition is
the one in metrics.h) and numpy's mean / std(ddof=1) for the k-fold helper.

Needs numpy, scikit-learn and seqeval (pip install scikit-learn seqeval). Deterministic:
rerunning rewrites a byte-identical file. Usage, from the repository root:

    python3 tests/parity/make_metrics_fixtures.py            # write the fixture
    python3 tests/parity/make_metrics_fixtures.py --check    # also print a summary of each case
"""
import json
import math
import os
import sys
import warnings

import numpy as np
import seqeval
import sklearn
from seqeval.metrics import accuracy_score as seq_accuracy
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support as seq_prfs
from sklearn.metrics import (accuracy_score, brier_score_loss, confusion_matrix, log_loss,
                             precision_recall_fscore_support, roc_auc_score)

warnings.filterwarnings("ignore")  # UndefinedMetricWarning, seqeval's "seems not to be NE tag"

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "metrics", "metrics.json")


def num(x):
    """float for JSON; NaN / inf become None (null)."""
    x = float(x)
    return None if not math.isfinite(x) else x


# ------------------------------------------------------------------ classification

def ece_reference(y, probs, bins):
    """ECE as metrics.h defines it: bins (e_b, e_{b+1}] on the max probability, e = linspace(0, 1, M+1),
    bin 0 also holds conf == 0; accuracy of argmax (first index on ties)."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece, table = 0.0, []
    for b in range(bins):
        inb = (conf > edges[b]) & (conf <= edges[b + 1])
        if b == 0:
            inb |= conf == 0.0
        cnt = int(inb.sum())
        if cnt:
            acc, cf = float(correct[inb].mean()), float(conf[inb].mean())
            ece += cnt / len(y) * abs(acc - cf)
        else:
            acc, cf = 0.0, 0.0
        table.append([cnt, acc, cf])
    return ece, table


def classification_case(name, K, y_true, y_pred, probs=None, f32=False, all_labels=False, bins=15):
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if f32:  # the C side gets float32; the references use exactly those values
            probs = probs.astype(np.float32).astype(np.float64)
    labels_arg = list(range(K)) if all_labels else None
    label_set = list(range(K)) if all_labels else sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels_arg, average=None, zero_division=0)
    exp = {
        "accuracy": accuracy_score(y_true, y_pred),
        "labels": label_set,
        "per_class": {"precision": [num(v) for v in p], "recall": [num(v) for v in r],
                      "f1": [num(v) for v in f], "support": [int(v) for v in s]},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(range(K))).tolist(),
    }
    for avg in ("macro", "micro", "weighted"):
        pa, ra, fa, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels_arg, average=avg,
                                                        zero_division=0)
        exp["precision_" + avg], exp["recall_" + avg], exp["f1_" + avg] = num(pa), num(ra), num(fa)
    if probs is not None:
        exp["ece"], exp["calib"] = ece_reference(y_true, probs, bins)
        exp["log_loss"] = log_loss(y_true, probs, labels=list(range(K)))
        if K == 2:
            exp["roc_auc"] = num(roc_auc_score(y_true, probs[:, 1]))
            exp["brier"] = brier_score_loss(y_true, probs[:, 1], pos_label=1)
    return {
        "name": name, "num_classes": K, "ece_bins": bins, "all_labels": all_labels, "f32": f32,
        "y_pred_is_argmax": bool(probs is not None and np.array_equal(probs.argmax(axis=1), y_pred)),
        "y_true": y_true.tolist(), "y_pred": y_pred.tolist(),
        "probs": None if probs is None else probs.tolist(),
        "expected": {k: (num(v) if isinstance(v, (float, np.floating)) else v) for k, v in exp.items()},
    }


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def noisy_probs(rng, y, K, signal=1.5, scale=1.0):
    """Softmax of random logits with a bonus on the true class (a half-decent classifier)."""
    z = rng.normal(size=(len(y), K)) * scale
    z[np.arange(len(y)), y] += signal
    return softmax(z)


def classification_cases():
    rng = np.random.default_rng(20240611)
    cases = []

    y = rng.integers(0, 2, 200)
    pr = noisy_probs(rng, y, 2)
    cases.append(classification_case("binary_random", 2, y, pr.argmax(1), pr))

    y = rng.integers(0, 2, 150)
    p1 = np.round(noisy_probs(rng, y, 2, signal=1.0)[:, 1], 1)  # multiples of 0.1: many ROC ties
    pr = np.stack([1.0 - p1, p1], axis=1)
    cases.append(classification_case("binary_ties_threshold", 2, y, (p1 >= 0.3).astype(int), pr))

    y = rng.integers(0, 3, 300)
    pr = noisy_probs(rng, y, 3)
    cases.append(classification_case("multi3_random", 3, y, pr.argmax(1), pr))

    y = rng.integers(0, 3, 257)
    pr = noisy_probs(rng, y, 3, signal=2.0)
    cases.append(classification_case("multi3_f32", 3, y, pr.astype(np.float32).argmax(1), pr, f32=True))

    y = rng.choice(4, size=500, p=[0.85, 0.10, 0.04, 0.01])
    pr = noisy_probs(rng, y, 4, signal=1.0)
    pr = softmax(np.log(pr) + np.log([[8.0, 1.0, 1.0, 1.0]]))  # biased towards the majority class
    cases.append(classification_case("imbalanced4", 4, y, pr.argmax(1), pr))

    y = rng.choice(2, size=300, p=[0.93, 0.07])
    pr = noisy_probs(rng, y, 2, signal=1.2)
    cases.append(classification_case("imbalanced_binary_f32", 2, y, pr.astype(np.float32).argmax(1), pr, f32=True))

    y = rng.integers(0, 3, 120)
    yp = np.where(y == 2, rng.integers(0, 2, 120), y)
    yp = np.where(rng.random(120) < 0.2, rng.integers(0, 2, 120), yp)  # class 2 is never predicted
    cases.append(classification_case("never_predicted", 3, y, yp))

    y = rng.choice([0, 2], size=90)  # class 1 is never true, but predicted
    pr = noisy_probs(rng, y, 3, signal=0.8)
    yp = pr.argmax(1)
    assert (yp == 1).any()
    cases.append(classification_case("never_true", 3, y, yp, pr))

    y = rng.integers(0, 4, 100)  # K = 5, class 4 never occurs
    yp = np.where(rng.random(100) < 0.6, y, rng.integers(0, 4, 100))
    cases.append(classification_case("absent_class_default", 5, y, yp))
    cases.append(classification_case("absent_class_all_labels", 5, y, yp, all_labels=True))

    y = rng.integers(0, 3, 60)
    pr = np.full((60, 3), 0.05)
    pr[np.arange(60), y] = 0.9
    cases.append(classification_case("perfect", 3, y, y.copy(), pr))

    y = rng.integers(0, 3, 45)
    yp = (y + 1) % 3
    pr = np.zeros((45, 3))
    pr[np.arange(45), yp] = 1.0  # hard one-hot on the wrong class: log loss -log(eps)
    cases.append(classification_case("all_wrong", 3, y, yp, pr))

    y = np.ones(40, dtype=int)  # ROC-AUC undefined
    pr = noisy_probs(rng, y, 2)
    cases.append(classification_case("binary_one_true_class", 2, y, pr.argmax(1), pr))

    cases.append(classification_case("single_sample", 2, [1], [0], [[0.75, 0.25]]))

    y = rng.integers(0, 10, 400)
    pr = noisy_probs(rng, y, 10, signal=2.5)
    cases.append(classification_case("multi10_bins10", 10, y, pr.argmax(1), pr, bins=10))

    # confidences on bin edges of 15 bins (0.2 = 3/15, 0.4, 0.6, 0.8, 1/3, 1), argmax ties
    rows = [[0.2] * 5, [0.6, 0.1, 0.1, 0.1, 0.1], [0.1, 0.4, 0.15, 0.15, 0.2], [0, 0, 1, 0, 0],
            [0.05, 0.05, 0.05, 0.05, 0.8], [1 / 3, 1 / 3, 1 / 3, 0, 0], [0.4, 0.4, 0.2, 0, 0],
            [0.25, 0.25, 0.25, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0], [0.2] * 5]
    pr = np.array(rows)
    pr = pr / pr.sum(axis=1, keepdims=True)
    y = np.array([0, 0, 1, 2, 3, 1, 1, 3, 4, 2])
    cases.append(classification_case("bin_edges", 5, y, pr.argmax(1), pr))
    cases.append(classification_case("bin_edges_3bins", 5, y, pr.argmax(1), pr, bins=3))

    y = rng.integers(0, 2, 80)
    yp = np.where(rng.random(80) < 0.7, y, 1 - y)
    cases.append(classification_case("binary_no_probs", 2, y, yp))
    return cases


def roc_cases():
    rng = np.random.default_rng(7)
    out = []

    def add(name, y, s):
        y = np.asarray(y, dtype=np.int64)
        s = np.asarray(s, dtype=np.float64)
        out.append({"name": name, "y_true": y.tolist(),
                    "score": [float(v) for v in s],
                    "expected": num(roc_auc_score(y, s))})

    y = rng.integers(0, 2, 100)
    add("logits", y, rng.normal(size=100) + 0.8 * y)
    y = rng.integers(0, 2, 200)
    add("heavy_ties", y, rng.integers(0, 4, 200) + (y * (rng.random(200) < 0.3)))
    add("all_tied", rng.integers(0, 2, 30), np.full(30, 0.5))
    add("perfect", [0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.9, 0.8])
    add("inverted", [1, 1, 0, 0], [0.1, 0.2, 0.3, 0.9])
    add("huge_scores", [0, 1, 0, 1, 1, 0], [-1.7e308, 1.7e308, 0.0, 1.7e308, -1.0, -1.7e308])  # sklearn refuses inf
    add("one_class", [0, 0, 0], [0.1, 0.5, 0.2])
    return out


# ------------------------------------------------------------------ NER

def ner_case(name, y_true, y_pred):
    types = sorted({t for t, _, _ in get_entities(y_true)} | {t for t, _, _ in get_entities(y_pred)})
    p, r, f, s = seq_prfs(y_true, y_pred, average=None, zero_division=0)
    exp = {"types": types,
           "per_type": {"precision": [num(v) for v in p], "recall": [num(v) for v in r],
                        "f1": [num(v) for v in f], "support": [int(v) for v in s]},
           "accuracy": num(seq_accuracy(y_true, y_pred)) if sum(map(len, y_true)) else None,
           "entities_true": [[list(e) for e in get_entities(list(x))] for x in y_true],
           "entities_pred": [[list(e) for e in get_entities(list(x))] for x in y_pred]}
    for avg in ("micro", "macro", "weighted"):
        pa, ra, fa, _ = seq_prfs(y_true, y_pred, average=avg, zero_division=0)
        exp["precision_" + avg], exp["recall_" + avg], exp["f1_" + avg] = num(pa), num(ra), num(fa)
    return {"name": name, "y_true": y_true, "y_pred": y_pred, "expected": exp}


def random_bio(rng, n_sent, types):
    sents = []
    for _ in range(n_sent):
        L = int(rng.integers(1, 15))
        s, i = [], 0
        while i < L:
            if rng.random() < 0.35:
                t = types[int(rng.integers(len(types)))]
                span = int(rng.integers(1, 4))
                for k in range(min(span, L - i)):
                    s.append(("B-" if k == 0 else "I-") + t)
                i += span
            else:
                s.append("O")
                i += 1
        sents.append(s[:L])
    return sents


def corrupt(rng, sents, types):
    tags = ["O"] + [p + t for t in types for p in ("B-", "I-")]
    return [[tags[int(rng.integers(len(tags)))] if rng.random() < 0.15 else t for t in s] for s in sents]


def ner_cases():
    rng = np.random.default_rng(99)
    c = []
    c.append(ner_case("seqeval_doc",
                      [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
                      [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]))
    c.append(ner_case("i_after_o",
                      [["B-PER", "I-PER", "O", "O", "B-LOC"], ["O", "I-ORG", "I-ORG", "O"]],
                      [["I-PER", "I-PER", "O", "I-LOC", "I-LOC"], ["O", "B-ORG", "I-ORG", "O"]]))
    c.append(ner_case("type_switch",
                      [["B-PER", "I-PER", "I-LOC", "O", "B-ORG", "I-PER"], ["I-LOC", "I-PER", "B-PER"]],
                      [["B-PER", "I-LOC", "I-LOC", "O", "B-ORG", "I-ORG"], ["I-LOC", "I-PER", "I-PER"]]))
    c.append(ner_case("entity_at_end",
                      [["O", "B-PER", "I-PER"], ["I-PER", "I-PER"], ["B-LOC"], ["O", "I-LOC"]],
                      [["O", "B-PER", "I-PER"], ["I-PER", "O"], ["B-LOC"], ["O", "B-LOC"]]))
    c.append(ner_case("adjacent_b",
                      [["B-PER", "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-LOC"]],
                      [["B-PER", "I-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC"]]))
    c.append(ner_case("type_only_in_one_side",
                      [["B-ORG", "I-ORG", "O", "B-PER"], ["B-ORG"]],
                      [["B-MISC", "I-MISC", "O", "B-PER"], ["O"]]))
    c.append(ner_case("iobes",
                      [["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-ORG", "E-ORG", "E-ORG"]],
                      [["S-PER", "O", "B-LOC", "E-LOC", "E-LOC", "B-LOC", "I-ORG", "E-ORG", "S-ORG"]]))
    c.append(ner_case("no_entities", [["O", "O"], ["O"]], [["O", "O"], ["O"]]))
    c.append(ner_case("untyped_and_dashes",
                      [["B", "I", "O", "B-A-B", "I-A-B", "I-", "B-", "O", "I", "B-X-"]],
                      [["B", "O", "I", "B-A-B", "I-A", "I-", "I", "O", "B", "B-X-"]]))
    c.append(ner_case("odd_tags",
                      [["X-FOO", "X-FOO", "O", ".-A", "I-A", "O", "U-LOC", "L-LOC", "O", "OTHER"]],
                      [["B-FOO", "I-FOO", "O", "B-A", "I-A", "O", "U-LOC", "I-LOC", "O", "O"]]))
    c.append(ner_case("stale_begin_across_sentences",
                      [["B-A", "I-A"], [".-A", "I-A", "O"], ["X"]],
                      [["B-A", "I-A"], ["O", "I-A", "O"], ["B-_"]]))
    c.append(ner_case("unicode",
                      [["B-Ünï", "I-Ünï", "O", "B-人名", "I-人名"], ["É-PER", "I-PER", "ÉPER"]],
                      [["B-Ünï", "I-Ünï", "O", "B-人名", "O"], ["B-PER", "I-PER", "ÉPER"]]))
    c.append(ner_case("empty_sentences",
                      [[], ["B-PER"], [], ["O", "B-LOC", "I-LOC"], []],
                      [[], ["B-PER"], [], ["O", "I-LOC", "I-LOC"], []]))
    types = ["PER", "LOC", "ORG", "MISC"]
    yt = random_bio(rng, 60, types)
    c.append(ner_case("random_bio", yt, corrupt(rng, yt, types)))
    return c


def ner_ids_case():
    """Tag ids with -100 on sub-word positions (dropped before scoring, as transformers' run_ner does)."""
    rng = np.random.default_rng(5)
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    ids_true, ids_pred, tags_true, tags_pred = [], [], [], []
    for _ in range(25):
        L = int(rng.integers(1, 12))
        t = rng.integers(0, 5, L)
        p = np.where(rng.random(L) < 0.75, t, rng.integers(0, 5, L))
        mask = rng.random(L) < 0.25
        t_ids = np.where(mask, -100, t)
        p_ids = np.where(mask, rng.integers(0, 5, L), p)  # predictions at dropped positions are ignored
        ids_true.append(t_ids.tolist())
        ids_pred.append(p_ids.tolist())
        tags_true.append([names[i] for i in t_ids if i >= 0])
        tags_pred.append([names[j] for i, j in zip(t_ids, p_ids) if i >= 0])
    case = ner_case("ids_minus100", tags_true, tags_pred)
    case.update({"names": names, "ids_true": ids_true, "ids_pred": ids_pred})
    return case


def kfold_cases():
    rng = np.random.default_rng(3)
    out = []
    for name, v in [("five", rng.random(5)), ("ten", 0.8 + 0.01 * rng.normal(size=10)), ("two", [0.5, 0.75]),
                    ("one", [0.9]), ("constant", [0.25] * 4)]:
        v = np.asarray(v, dtype=np.float64)
        out.append({"name": name, "values": v.tolist(), "mean": float(np.mean(v)),
                    "std": num(np.std(v, ddof=1)) if len(v) > 1 else None})
    return out


def main():
    data = {
        "generator": "tests/parity/make_metrics_fixtures.py",
        "versions": {"numpy": np.__version__, "sklearn": sklearn.__version__,
                     "seqeval": getattr(seqeval, "__version__", "1.2.2")},
        "classification": classification_cases(),
        "roc": roc_cases(),
        "ner": ner_cases() + [ner_ids_case()],
        "kfold": kfold_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("{\n")
        keys = list(data)
        for ki, k in enumerate(keys):
            v = data[k]
            if isinstance(v, list):  # one case per line
                f.write(json.dumps(k) + ": [\n")
                f.write(",\n".join(json.dumps(x, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
                                   for x in v))
                f.write("\n]")
            else:
                f.write(json.dumps(k) + ": " + json.dumps(v, allow_nan=False))
            f.write(",\n" if ki + 1 < len(keys) else "\n")
        f.write("}\n")
    print(f"wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes): "
          f"{len(data['classification'])} classification, {len(data['roc'])} roc, "
          f"{len(data['ner'])} ner, {len(data['kfold'])} kfold cases")
    if "--check" in sys.argv:
        for c in data["classification"]:
            e = c["expected"]
            print(f"  {c['name']:<26} K={c['num_classes']} n={len(c['y_true']):<4} acc={e['accuracy']:.4f} "
                  f"f1_macro={e['f1_macro']:.4f} ece={e.get('ece')} roc={e.get('roc_auc')}")
        for c in data["ner"]:
            e = c["expected"]
            print(f"  {c['name']:<28} types={e['types']} f1_micro={e['f1_micro']} f1_macro={e['f1_macro']}")


if __name__ == "__main__":
    main()
