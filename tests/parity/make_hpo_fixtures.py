#!/usr/bin/env python3
"""Reference values for tests/test_hpo.c: a Gaussian process with a Matérn-5/2 ARD kernel (posterior mean and
variance, log marginal likelihood) and the acquisitions EI / PI / UCB, computed with numpy / scipy on fixed data
and fixed kernel hyperparameters. Writes tests/fixtures/hpo/gp_reference.json.

    python3 tests/parity/make_hpo_fixtures.py

The model (as src/hpo/gp.c documents it): y standardised with its mean and population std; K = k(X, X) + n2 I;
k(a, b) = s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r), r = |(a - b) / l|; mean = k*^T K^-1 y;
var = s2 - k*^T K^-1 k*; EI / PI / UCB of a minimisation on the standardised scale."""
import json
import os

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.spatial.distance import cdist
from scipy.stats import norm


def matern52(a, b, s2, ls):
    r = cdist(a / ls, b / ls)  # scaled Euclidean distances
    return s2 * (1 + np.sqrt(5) * r + 5.0 / 3.0 * r**2) * np.exp(-np.sqrt(5) * r)


def case(rng, n, d, theta, nq, xi, kappa):
    X = rng.uniform(size=(n, d))
    y = np.sin(3 * X).sum(axis=1) + 0.3 * X[:, 0] ** 2 + 0.05 * rng.standard_normal(n)
    ym, ys = y.mean(), y.std()
    z = (y - ym) / ys
    s2, n2, ls = np.exp(theta[0]), np.exp(theta[1]), np.exp(np.asarray(theta[2:]))
    K = matern52(X, X, s2, ls) + n2 * np.eye(n)
    c = cho_factor(K, lower=True)
    alpha = cho_solve(c, z)
    L = np.linalg.cholesky(K)
    lml = -0.5 * z @ alpha - np.log(np.diag(L)).sum() - 0.5 * n * np.log(2 * np.pi)
    Q = rng.uniform(size=(nq, d))
    Q[0] = X[0]  # at a data point: small variance
    ks = matern52(Q, X, s2, ls)
    mean = ks @ alpha
    var = s2 - np.einsum("ij,ij->i", ks, cho_solve(c, ks.T).T)
    best = z.min()
    sd = np.sqrt(var)
    imp = best - mean - xi
    zz = imp / sd
    ei = imp * norm.cdf(zz) + sd * norm.pdf(zz)
    pi = norm.cdf(zz)
    ucb = -(mean - kappa * sd)
    return {
        "n": n, "d": d, "x": X.ravel().tolist(), "y": y.tolist(), "theta": list(theta), "lml": float(lml),
        "xq": Q.ravel().tolist(), "mean_std": mean.tolist(), "var_std": var.tolist(),
        "mean": (mean * ys + ym).tolist(), "var": (var * ys * ys).tolist(),
        "best": float(best), "xi": xi, "kappa": kappa, "ei": ei.tolist(), "pi": pi.tolist(), "ucb": ucb.tolist(),
    }


def main():
    rng = np.random.default_rng(15)
    cases = [
        case(rng, 12, 2, [0.3, np.log(1e-4), np.log(0.3), np.log(0.6)], 9, 0.01, 2.0),
        case(rng, 30, 4, [-0.2, np.log(1e-2), np.log(0.5), np.log(0.2), np.log(1.5), np.log(0.8)], 12, 0.0, 1.5),
        case(rng, 7, 1, [0.0, np.log(1e-6), np.log(0.1)], 6, 0.05, 3.0),
    ]
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hpo", "gp_reference.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"generator": "tests/parity/make_hpo_fixtures.py", "cases": cases}, f, indent=1)
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
