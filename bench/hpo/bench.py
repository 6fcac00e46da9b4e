#!/usr/bin/env python3
"""bench/hpo.sh's driver: Branin and Hartmann-6 through `finetune sweep --objective-cmd`, the median over seeds
of the best value after 20 and 50 evaluations for our random, tpe and bayes strategies and for Optuna's
TPESampler (defaults, seeded) on the same functions (evaluated in Python, same formulas).

    python3 bench/hpo/bench.py --bin build/finetune [--seeds 10] [--trials 50] [--out DIR]
"""
import argparse
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

FUNCS = {
    "branin": {
        "cmd": os.path.join(HERE, "branin.sh"),
        "params": {"x": {"type": "uniform", "low": -5, "high": 10}, "y": {"type": "uniform", "low": 0, "high": 15}},
        "min": 0.397887357729738,
    },
    "hartmann6": {
        "cmd": os.path.join(HERE, "hartmann6.sh"),
        "params": {f"x{i}": {"type": "uniform", "low": 0, "high": 1} for i in range(1, 7)},
        "min": -3.32236801141551,
    },
}


def branin(p):
    x, y = p["x"], p["y"]
    t = y - 5.1 / (4 * math.pi**2) * x * x + 5 / math.pi * x - 6
    return t * t + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


H_ALPHA = [1.0, 1.2, 3.0, 3.2]
H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(p):
    x = [p[f"x{i}"] for i in range(1, 7)]
    f = 0.0
    for i in range(4):
        s = sum(H_A[i][j] * (x[j] - H_P[i][j] * 1e-4) ** 2 for j in range(6))
        f -= H_ALPHA[i] * math.exp(-s)
    return f


PYFUNCS = {"branin": branin, "hartmann6": hartmann6}


def ours(binary, func, strategy, seed, trials, workdir):
    spec = FUNCS[func]
    cfg = {"name": f"{func}-{strategy}-{seed}", "strategy": strategy, "seed": seed, "budget": {"trials": trials},
           "params": spec["params"]}
    path = os.path.join(workdir, f"{func}-{strategy}-{seed}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    db = os.path.join(workdir, "bench.db")
    t0 = time.time()
    subprocess.run([binary, "sweep", "--config", path, "--objective-cmd", spec["cmd"], "--db", db, "--quiet", "--no-report"],
                   check=True, stdout=subprocess.DEVNULL)
    dt = time.time() - t0
    con = sqlite3.connect(db)
    vals = [r[0] for r in con.execute("SELECT t.value FROM trials t JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ? "
                                      "ORDER BY t.idx", (cfg["name"],))]
    con.close()
    return vals, dt


def optuna_tpe(func, seed, trials):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec, f = FUNCS[func], PYFUNCS[func]

    def objective(trial):
        p = {k: trial.suggest_float(k, v["low"], v["high"]) for k, v in spec["params"].items()}
        return f(p)

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="minimize")
    t0 = time.time()
    study.optimize(objective, n_trials=trials)
    return [t.value for t in study.trials], time.time() - t0


def best_after(vals, k):
    v = [x for x in vals[:k] if x is not None]
    return min(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/finetune")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--budgets", default="20,50")
    ap.add_argument("--methods", default="random,tpe,bayes,optuna-tpe", help="comma-separated subset")
    ap.add_argument("--out", default=None, help="work directory (default: a fresh one under /tmp)")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    work = args.out or os.path.join("/tmp", f"ft_hpo_bench_{os.getpid()}")
    os.makedirs(work, exist_ok=True)
    if os.path.exists(os.path.join(work, "bench.db")):
        os.remove(os.path.join(work, "bench.db"))
    try:
        import optuna
        have_optuna = optuna.__version__
    except ImportError:
        have_optuna = None
        print("optuna not installed (./scripts/setup.sh --python): its column is left out", file=sys.stderr)
    methods = [m for m in args.methods.split(",") if m != "optuna-tpe" or have_optuna]
    rows = []
    for func in FUNCS:
        res = {m: [] for m in methods}
        secs = {m: 0.0 for m in methods}
        for seed in range(args.seeds):
            for m in methods:
                if m == "optuna-tpe":
                    vals, dt = optuna_tpe(func, seed, args.trials)
                else:
                    vals, dt = ours(args.bin, func, m, seed, args.trials, work)
                res[m].append(vals)
                secs[m] += dt
            print(f"{func} seed {seed}: " + ", ".join(f"{m} {best_after(res[m][-1], args.trials):.5f}" for m in methods), file=sys.stderr)
        for b in budgets:
            med = {m: statistics.median(best_after(v, b) for v in res[m]) for m in methods}
            rows.append((func, b, med))
        rows.append((func, "time", {m: secs[m] / args.seeds for m in methods}))
    print(f"\nmedian over {args.seeds} seeds of the best value found (lower is better); "
          f"optimum: branin {FUNCS['branin']['min']:.6f}, hartmann6 {FUNCS['hartmann6']['min']:.5f}"
          + (f"; optuna {have_optuna}" if have_optuna else ""))
    print("| function | evaluations | " + " | ".join(("finetune " + m) if m != "optuna-tpe" else "Optuna TPESampler" for m in methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for func, b, med in rows:
        if b == "time":
            print(f"| {func} | seconds per sweep ({args.trials} evaluations) | " + " | ".join(f"{med[m]:.2f}" for m in methods) + " |")
        else:
            print(f"| {func} | {b} | " + " | ".join(f"{med[m]:.5f}" for m in methods) + " |")


if __name__ == "__main__":
    main()
