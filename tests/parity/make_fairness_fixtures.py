#!/usr/bin/env python3
"""make_fairness_fixtures.py — reference values for tests/test_fairness.c (include/finetune/fairness.h).

Writes tests/fixtures/fairness/fairness.json: seeded prediction sets (binary and multiclass labels,
2 to 5 groups, a group with no positive example, a group with no negative example, a set where nothing
is selected) and what fairlearn gives for them:
  MetricFrame(metrics={count, accuracy_score, selection_rate, true_positive_rate, false_positive_rate})
  .by_group and .overall, demographic_parity_difference / _ratio, equal_opportunity_difference / _ratio,
  equalized_odds_difference / _ratio (method="between_groups", agg="worst_case") and
  MetricFrame(accuracy_score).difference().
Multiclass sets are given to fairlearn's rate functions one-vs-rest (y == pos as 0/1, pos_label=1);
selection_rate gets the raw labels with pos_label=pos, accuracy_score the raw labels.

Also usable as a live check: `--live SEED` prints one random case and its fairlearn values as JSON
(test_fairness.c runs it when fairlearn is importable).

Needs numpy, pandas, scikit-learn, fairlearn (scripts/setup.sh installs fairlearn). Deterministic:
rerunning rewrites a byte-identical file. From the repository root:

    python3 tests/parity/make_fairness_fixtures.py
"""
import json
import math
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import fairlearn  # noqa: E402
import sklearn  # noqa: E402
from fairlearn.metrics import (MetricFrame, count, demographic_parity_difference,  # noqa: E402
                               demographic_parity_ratio, equal_opportunity_difference,
                               equal_opportunity_ratio, equalized_odds_difference,
                               equalized_odds_ratio, false_positive_rate, selection_rate,
                               true_positive_rate)
from sklearn.metrics import accuracy_score  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "fairness", "fairness.json")


def num(x):
    x = float(x)
    return None if not math.isfinite(x) else x


def reference(y, p, g, pos):
    """fairlearn's values for labels y, predictions p, group ids g, positive label pos."""
    yb = (y == pos).astype(int)
    pb = (p == pos).astype(int)
    mf = MetricFrame(
        metrics={
            "count": lambda a, b: count(a, b),
            "accuracy": accuracy_score,
        },
        y_true=y, y_pred=p, sensitive_features=g)
    rates = MetricFrame(
        metrics={
            "tpr": lambda a, b: true_positive_rate(a, b, pos_label=1),
            "fpr": lambda a, b: false_positive_rate(a, b, pos_label=1),
        },
        y_true=yb, y_pred=pb, sensitive_features=g)
    sel = MetricFrame(metrics={"selection_rate": lambda a, b: selection_rate(a, b, pos_label=pos)},
                      y_true=y, y_pred=p, sensitive_features=g)
    groups = []
    for k in sorted(set(g.tolist())):
        groups.append({
            "group": int(k),
            "count": int(mf.by_group.loc[k, "count"]),
            "accuracy": num(mf.by_group.loc[k, "accuracy"]),
            "selection_rate": num(sel.by_group.loc[k, "selection_rate"]),
            "tpr": num(rates.by_group.loc[k, "tpr"]),
            "fpr": num(rates.by_group.loc[k, "fpr"]),
        })
    overall = {
        "count": int(mf.overall["count"]), "accuracy": num(mf.overall["accuracy"]),
        "selection_rate": num(sel.overall["selection_rate"]),
        "tpr": num(rates.overall["tpr"]), "fpr": num(rates.overall["fpr"]),
    }
    acc_only = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=g)
    return {
        "groups": groups,
        "overall": overall,
        # selection rate is computed on the binarised labels (the same numbers: p == pos)
        "dp_difference": num(demographic_parity_difference(yb, pb, sensitive_features=g)),
        "dp_ratio": num(demographic_parity_ratio(yb, pb, sensitive_features=g)),
        "eopp_difference": num(equal_opportunity_difference(yb, pb, sensitive_features=g)),
        "eopp_ratio": num(equal_opportunity_ratio(yb, pb, sensitive_features=g)),
        "eqodds_difference": num(equalized_odds_difference(yb, pb, sensitive_features=g)),
        "eqodds_ratio": num(equalized_odds_ratio(yb, pb, sensitive_features=g)),
        "accuracy_difference": num(acc_only.difference(method="between_groups")),
    }


def make_case(name, rng, n, n_classes, n_groups, pos, flip=0.3, tweak=None):
    y = rng.integers(0, n_classes, size=n)
    g = rng.integers(0, n_groups, size=n)
    noise = rng.random(n) < flip
    p = np.where(noise, rng.integers(0, n_classes, size=n), y)
    if tweak:
        y, p, g = tweak(y, p, g)
    case = {"name": name, "pos_label": int(pos), "y_true": [int(v) for v in y], "y_pred": [int(v) for v in p],
            "group": [int(v) for v in g]}
    case.update(reference(np.asarray(y), np.asarray(p), np.asarray(g), pos))
    return case


def no_positives_in_group_1(y, p, g):
    y = y.copy()
    y[(g == 1) & (y == 1)] = 0
    return y, p, g


def no_negatives_in_group_2(y, p, g):
    y = y.copy()
    y[g == 2] = 1
    return y, p, g


def nothing_selected(y, p, g):
    return y, np.zeros_like(p), g


def sparse_group_ids(y, p, g):
    return y, p, np.where(g == 0, 7, g * 3)   # ids 3, 6, 7: gaps in between, not present


def cases():
    rng = np.random.default_rng(20261206)
    out = [
        make_case("binary_2groups", rng, 200, 2, 2, 1),
        make_case("binary_3groups", rng, 300, 2, 3, 1),
        make_case("binary_5groups_pos0", rng, 500, 2, 5, 0),
        make_case("binary_no_positives_in_a_group", rng, 120, 2, 3, 1, tweak=no_positives_in_group_1),
        make_case("binary_no_negatives_in_a_group", rng, 120, 2, 3, 1, tweak=no_negatives_in_group_2),
        make_case("binary_nothing_selected", rng, 60, 2, 3, 1, tweak=nothing_selected),
        make_case("binary_sparse_group_ids", rng, 150, 2, 3, 1, tweak=sparse_group_ids),
        make_case("multiclass_4labels_pos2", rng, 400, 4, 3, 2),
        make_case("tiny_1_per_group", rng, 4, 2, 4, 1, flip=0.5, tweak=lambda y, p, g: (y, p, np.arange(len(g)))),
        make_case("one_group", rng, 50, 2, 1, 1),
    ]
    return out


def main(argv):
    if len(argv) > 2 and argv[1] == "--live":
        rng = np.random.default_rng(int(argv[2]))
        case = make_case("live", rng, int(rng.integers(20, 400)), int(rng.integers(2, 4)), int(rng.integers(2, 6)), 1)
        print(json.dumps(case))
        return 0
    doc = {"versions": {"fairlearn": fairlearn.__version__, "sklearn": sklearn.__version__,
                        "numpy": np.__version__}, "cases": cases()}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(doc['cases'])} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
