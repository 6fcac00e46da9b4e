#!/usr/bin/env python3
"""check_fairness_fairlearn.py — the recorded fairness run checked end to end with fairlearn: the predictions of the
classifier (finetune predict, one line each, in PRED_FILE as JSON lines) and the group column of EVAL_TSV go through
fairlearn's MetricFrame / demographic_parity_* / equalized_odds_*; the numbers are compared with the `fairness` object
of `finetune eval --group-column group --json` (EVAL_JSON).
usage: check_fairness_fairlearn.py EVAL_TSV PRED_JSONL EVAL_JSON"""
import json
import sys

import numpy as np
from fairlearn.metrics import (MetricFrame, demographic_parity_difference, demographic_parity_ratio,
                               equal_opportunity_difference, equalized_odds_difference, equalized_odds_ratio,
                               false_positive_rate, selection_rate, true_positive_rate)
from sklearn.metrics import accuracy_score

tsv, preds, ev = sys.argv[1:4]
rows = [l.rstrip("\n").split("\t") for l in open(tsv, encoding="utf-8")][1:]
y = np.array([int(r[1]) for r in rows])
g = np.array([r[2] for r in rows])
p = np.array([int(json.loads(l)["label"]) for l in open(preds, encoding="utf-8")])
assert len(p) == len(y), (len(p), len(y))
mf = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                          "tpr": true_positive_rate, "fpr": false_positive_rate}, y_true=y, y_pred=p, sensitive_features=g)
ref = {"demographic_parity_difference": demographic_parity_difference(y, p, sensitive_features=g),
       "demographic_parity_ratio": demographic_parity_ratio(y, p, sensitive_features=g),
       "equal_opportunity_difference": equal_opportunity_difference(y, p, sensitive_features=g),
       "equalized_odds_difference": equalized_odds_difference(y, p, sensitive_features=g),
       "equalized_odds_ratio": equalized_odds_ratio(y, p, sensitive_features=g)}
ours = json.load(open(ev))["fairness"]
worst = 0.0
for k, v in ref.items():
    worst = max(worst, abs(ours[k] - v))
    print(f"{k:32s} finetune {ours[k]:.12f}  fairlearn {v:.12f}")
for gr in ours["groups"]:
    for k in ("accuracy", "selection_rate", "tpr", "fpr"):
        worst = max(worst, abs(gr[k] - mf.by_group.loc[gr["group"], k]))
print(f"max |difference| over the gaps and the per-group table: {worst:.3g}")
sys.exit(0 if worst < 1e-12 else 1)
