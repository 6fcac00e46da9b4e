#!/usr/bin/env python3
"""make_balance_fixtures.py — imbalanced-learn's results on small labelled point sets, for tests/test_balance.c.

    pip install imbalanced-learn        # 0.14 (scikit-learn, numpy)
    python3 tests/parity/make_balance_fixtures.py tests/fixtures/balance

Writes one JSON file per case: the input X (float32 values) and y, the method and its parameters, what
imblearn computes deterministically (nearest-neighbour sets, Borderline-SMOTE's danger rows, ADASYN's new
rows per input row, Tomek links and the rows kept) and imblearn's resampled X and y.

Random draws: numpy's RandomState and our xoshiro stream cannot give the same numbers, so this script also
writes the draws imblearn makes, in the order it makes them ("ints": every index drawn, "uniforms": every
uniform in [0, 1)), replaying imblearn's own calls: with an int random_state, each SMOTE / Borderline
_make_samples call starts a fresh RandomState(seed) (randint for the base/neighbour pairs, then uniform for
the steps), and Borderline-SMOTE-2's _generate_samples another fresh one for the factors in [0, 0.5); ADASYN
uses one RandomState for the whole fit (choice of the neighbour, then uniform steps). The C test feeds these
through ft_balance_draws; when this replay and imblearn disagree, its rows differ from imblearn's and the
test fails, so the replay is checked too."""
import json
import os
import sys

import numpy as np
import imblearn
from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE
from imblearn.under_sampling import TomekLinks
from sklearn.neighbors import NearestNeighbors


def points(seed, sizes, dim, spread):
    """Gaussian blobs, one per class, overlapping (centres 1.5 apart), rounded to float32."""
    rs = np.random.RandomState(seed)
    X, y = [], []
    for k, n in enumerate(sizes):
        centre = np.zeros(dim)
        centre[k % dim] = 1.5
        X.append(centre + spread * rs.randn(n, dim))
        y += [k] * n
    X = np.vstack(X).astype(np.float32)
    y = np.array(y, dtype=np.int64)
    perm = rs.permutation(len(y))
    return X[perm], y[perm]


def knn(data, queries, k):
    """k neighbours of each query, the query itself dropped (the first column), as imblearn does."""
    nn = NearestNeighbors(n_neighbors=k + 1).fit(data)
    return nn.kneighbors(queries, return_distance=False)[:, 1:]


def case(name, method, X, y, seed, ratio, k=5, m=10):
    out = {"name": name, "method": method, "seed": seed, "ratio": ratio, "k_neighbors": k, "m_neighbors": m,
           "imblearn": imblearn.__version__, "X": X.tolist(), "y": y.tolist()}
    strategy = "auto" if ratio == 1.0 else ratio
    ints, unif = [], []
    if method == "tomek":
        s = TomekLinks(sampling_strategy="auto")
        Xr, yr = s.fit_resample(X, y)
        nn = knn(X, X, 1)[:, 0]
        out["nn1"] = nn.tolist()
        out["links"] = [i for i in range(len(y)) if y[nn[i]] != y[i] and nn[nn[i]] == i]
        out["kept"] = s.sample_indices_.tolist()
    else:
        if method == "smote":
            s = SMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k)
        elif method.startswith("borderline"):
            s = BorderlineSMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k, m_neighbors=m,
                                kind="borderline-1" if method.endswith("1") else "borderline-2")
        else:
            s = ADASYN(sampling_strategy=strategy, random_state=seed, n_neighbors=k)
        Xr, yr = s.fit_resample(X, y)
        plan = s.sampling_strategy_
        out["new_per_class"] = {str(c): int(n) for c, n in plan.items()}
        ada_rs = np.random.RandomState(seed)
        danger_all, per_row = [], [0] * len(y)
        for c, n in sorted(plan.items()):
            if n == 0:
                continue
            idx = np.flatnonzero(y == c)
            Xc = X[idx]
            if method == "smote":
                nns = knn(Xc, Xc, k)
                out.setdefault("class_nn", {})[str(c)] = idx[nns].tolist()
                rs = np.random.RandomState(seed)
                ints += rs.randint(0, nns.size, size=n).tolist()
                unif += rs.uniform(size=n).tolist()
            elif method.startswith("borderline"):
                nm = knn(X, Xc, m)
                other = (y[nm] != c).sum(axis=1)
                danger = (other >= m / 2) & (other < m)
                danger_all += idx[danger].tolist()
                if not danger.any():
                    continue
                whole = method.endswith("2")
                data = X if whole else Xc
                nns = knn(data, Xc[danger], k)
                rs = np.random.RandomState(seed)
                pick = rs.randint(0, nns.size, size=n)
                ints += pick.tolist()
                unif += rs.uniform(size=n).tolist()
                if whole:
                    rows, cols = pick // nns.shape[1], pick % nns.shape[1]
                    mask = y[nns[rows, cols]] != c
                    unif += np.random.RandomState(seed).random_sample(size=int(mask.sum())).tolist()
            else:
                nns = knn(X, Xc, k)
                ratio_nn = np.sum(y[nns] != c, axis=1) / k
                ratio_nn /= np.sum(ratio_nn)
                gen = np.rint(ratio_nn * n).astype(int)
                for i, g in zip(idx, gen):
                    per_row[i] = int(g)
                total = int(gen.sum())
                ints += ada_rs.choice(k, size=total).tolist()
                unif += ada_rs.uniform(size=(total, 1))[:, 0].tolist()
        if method.startswith("borderline"):
            out["danger"] = sorted(danger_all)
            check = sorted(int(i) for v in s.in_danger_indices.values() for i in v)
            assert check == out["danger"], (check, out["danger"])
        if method == "adasyn":
            out["per_row"] = per_row
    out["ints"] = [int(v) for v in ints]
    out["uniforms"] = unif
    out["X_res"] = np.asarray(Xr, dtype=np.float32).tolist()
    out["y_res"] = np.asarray(yr).tolist()
    return out


def main():
    dst = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/balance"
    os.makedirs(dst, exist_ok=True)
    X2, y2 = points(1, [60, 15], 6, 0.9)
    X3, y3 = points(2, [50, 20, 12], 5, 0.8)
    cases = [
        case("smote_binary", "smote", X2, y2, 7, 0.6),
        case("smote_3class", "smote", X3, y3, 3, 1.0),
        case("borderline1", "borderline-smote-1", X2, y2, 11, 1.0),
        case("borderline2", "borderline-smote-2", X2, y2, 5, 1.0),
        case("adasyn", "adasyn", X2, y2, 13, 0.8),
        case("adasyn_3class", "adasyn", X3, y3, 17, 1.0),
        case("tomek", "tomek", X3, y3, 0, 1.0),
    ]
    for c in cases:
        with open(os.path.join(dst, c["name"] + ".json"), "w") as f:
            json.dump(c, f)
        print(f"{c['name']}: {len(c['y'])} rows -> {len(c['y_res'])}, {len(c['ints'])} int draws, {len(c['uniforms'])} uniforms")


if __name__ == "__main__":
    main()
