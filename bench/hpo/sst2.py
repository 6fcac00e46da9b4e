#!/usr/bin/env python3
"""The real sweep of issue 15: all-MiniLM-L6-v2 on an SST-2 subset, learning rate x batch size x epochs,
grid (bench/hpo/sst2_grid.json, 18 trials) vs Hyperband over epochs (bench/hpo/sst2_hyperband.json,
R = 3 epochs, eta = 3: one pass, 6 trials). Compute is counted in training examples seen
(sum over trials of epochs x training examples); the goal is Hyperband's best validation accuracy within
1 point of the grid's best with <= 1/3 of the grid's compute.

  python3 bench/hpo/sst2.py --bin build/finetune --sst2 ../shared/data/sst2 --out build/hpo-sst2
      [--train-every 300] [--val-every 32] [--only grid|hyperband] [--jobs 2]

Subsets (deterministic): every --train-every-th line of train.tsv, every --val-every-th line of dev.tsv
(the 6,735 held-out phrases). Both sweeps run at the same time (the grid with --jobs trials at once), each
trial with one thread; their logs are OUT/grid.log and OUT/hyperband.log, each trial's OUT/sweeps/NAME/trial-N.log.
Prints a markdown table (the BENCHMARKS.md one) and writes OUT/result.json."""
import argparse, json, os, sqlite3, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def subset(src, dst, every):
    n = 0
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i == 0:
                g.write(line)  # header
            elif i % every == 0:
                g.write(line)
                n += 1
    return n


def config(name, out, data_dir, model):
    with open(os.path.join(ROOT, "bench", "hpo", name)) as f:
        c = json.load(f)
    t = c["train"]
    t["data"] = os.path.join(data_dir, "train.tsv")
    t["val_data"] = os.path.join(data_dir, "val.tsv")
    t["model"] = model
    path = os.path.join(out, name)
    with open(path, "w") as f:
        json.dump(c, f, indent=1)
    return c["name"], path


def trials(db, sweep):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT t.idx, t.budget, t.params, t.status, t.value, t.started, t.finished, t.run_id "
                       "FROM trials t JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ? ORDER BY t.idx", (sweep,)).fetchall()
    con.close()
    out = []
    for idx, budget, params, status, value, started, finished, run_id in rows:
        p = json.loads(params)
        epochs = float(budget) if budget and budget > 0 else float(p["epochs"])
        out.append(dict(idx=idx, params=p, epochs=epochs, status=status, value=value,
                        seconds=(finished or 0) - (started or 0), run_id=run_id))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "finetune"))
    ap.add_argument("--sst2", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "sst2"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "hpo-sst2"))
    ap.add_argument("--train-every", type=int, default=300)
    ap.add_argument("--val-every", type=int, default=32)
    ap.add_argument("--only", choices=["grid", "hyperband"])
    ap.add_argument("--jobs", type=int, default=2, help="trials of the grid run at once")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    out = os.path.abspath(a.out)
    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    n_train = subset(os.path.join(a.sst2, "train.tsv"), os.path.join(data, "train.tsv"), a.train_every)
    n_val = subset(os.path.join(a.sst2, "dev.tsv"), os.path.join(data, "val.tsv"), a.val_every)
    print(f"SST-2 subset: {n_train} training phrases (every {a.train_every}th of train.tsv), "
          f"{n_val} validation phrases (every {a.val_every}th of dev.tsv)", file=sys.stderr)
    db = os.path.join(out, "finetune.db")
    res = {"n_train": n_train, "n_val": n_val, "load_before": os.getloadavg()}
    # both sweeps at once (the grid with --jobs JOBS): wall time is not what is compared, compute is
    procs = {}
    for kind, name in (("grid", "sst2_grid.json"), ("hyperband", "sst2_hyperband.json")):
        sweep, path = config(name, out, data, os.path.abspath(a.model))
        if a.only and a.only != kind:
            continue
        cmd = [a.bin, "sweep", "--config", path, "--db", db, "--jobs", str(a.jobs if kind == "grid" else 1)]
        with open(os.path.join(out, kind + ".log"), "w") as log:
            procs[kind] = (sweep, time.time(), subprocess.Popen(cmd, cwd=out, stdout=log))
    ends = {}
    while len(ends) < len(procs):   # each sweep's own end time (they run at once)
        for kind, (sweep, t0, p) in procs.items():
            if kind not in ends and p.poll() is not None:
                ends[kind] = time.time()
        time.sleep(1)
    for kind, (sweep, t0, p) in procs.items():
        rc = p.returncode
        wall = ends[kind] - t0
        if rc != 0:
            print(f"sweep {sweep} failed (exit {rc}); resume it with: {a.bin} sweep --resume {sweep} --db {db}", file=sys.stderr)
            sys.exit(1)
        ts = trials(db, sweep)
        fin = [t for t in ts if t["status"] == "finished"]
        best = max(fin, key=lambda t: t["value"])
        res[kind] = dict(sweep=sweep, wall_s=wall, trials=len(ts), finished=len(fin),
                         examples=sum(t["epochs"] * n_train for t in ts), epochs=sum(t["epochs"] for t in ts),
                         best=best["value"], best_trial=best["idx"], best_params=best["params"], best_epochs=best["epochs"],
                         all=[(t["idx"], t["params"], t["epochs"], t["value"]) for t in ts])
    res["load_after"] = os.getloadavg()
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    if "grid" not in res or "hyperband" not in res:
        return
    g, h = res["grid"], res["hyperband"]
    ratio = h["examples"] / g["examples"]
    gap = 100 * (g["best"] - h["best"])
    print(f"\n| search | trials | best val. accuracy | best config | compute (examples seen) | wall s (concurrent) |")
    print(f"|---|---|---|---|---|---|")
    for k in ("grid", "hyperband"):
        r = res[k]
        p = ", ".join(f"{n} {v:.3g}" if isinstance(v, float) else f"{n} {v}" for n, v in r["best_params"].items())
        if "epochs" not in r["best_params"]:
            p += f", epochs {r['best_epochs']:g}"
        print(f"| {k} | {r['trials']} | {100 * r['best']:.2f}% (trial {r['best_trial']}) | {p} | {r['examples']:,.0f} ({r['epochs']:g} epochs of {n_train}) | {r['wall_s']:.0f} |")
    ok = gap <= 1.0 and ratio <= 1 / 3 + 1e-9
    print(f"\nhyperband / grid compute: {ratio:.3f}; accuracy gap (grid - hyperband): {gap:+.2f} points; "
          f"goal (gap <= 1 point, ratio <= 1/3): {'met' if ok else 'MISSED'}")
    print(f"load average before {res['load_before'][0]:.2f}, after {res['load_after'][0]:.2f}")


if __name__ == "__main__":
    main()
