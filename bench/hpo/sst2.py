#!/usr/bin/env python3
"""The real sweep of issue 15: all-MiniLM-L6-v2 on an SST-2 subset, learning rate x batch size x epochs,
grid (bench/hpo/sst2_grid.json, 18 trials) vs Hyperband over epochs with trial continuation
(bench/hpo/sst2_hyperband.json, R = 3 epochs, eta = 3: one pass per seed, seeds 0, 1, 2). Compute is
counted in training examples seen (grid: sum of epochs x training examples; Hyperband: sum of the epochs
each trial actually trained, i.e. its `cost` in the sweep database, x training examples); the goal is
Hyperband's best validation accuracy within 1 point of the grid's best with <= 1/3 of the grid's compute,
for the median over the seeds (and each seed reported).

  python3 bench/hpo/sst2.py --bin build/finetune --sst2 ../shared/data/sst2 --out build/hpo-sst2
      [--train-every 50] [--val-file test.tsv] [--val-every 1] [--seeds 0,1,2] [--only grid|hyperband] [--jobs 2]

Data (deterministic): every --train-every-th line of train.tsv (default 50: 1,212 phrases), and every
--val-every-th line of --val-file (default: all of test.tsv, which in ../shared/data/sst2 is the GLUE SST-2
dev set, 872 sentences). The grid (--jobs trials at once) and the Hyperband seeds (one after the other,
one trial at a time) run at the same time, each trial with one thread; logs OUT/grid.log,
OUT/hyperband-sS.log, each trial's OUT/sweeps/NAME/trial-N.log. Prints a markdown table (the BENCHMARKS.md
one) and writes OUT/result.json."""
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
    rows = con.execute("SELECT t.idx, t.budget, t.params, t.status, t.value, t.started, t.finished, t.run_id, t.cost, t.parent "
                       "FROM trials t JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ? ORDER BY t.idx", (sweep,)).fetchall()
    con.close()
    out = []
    for idx, budget, params, status, value, started, finished, run_id, cost, parent in rows:
        p = json.loads(params)
        epochs = float(budget) if budget and budget > 0 else float(p["epochs"])          # the model's epochs
        trained = float(cost) if budget and budget > 0 and cost is not None else epochs  # what this trial trained
        out.append(dict(idx=idx, params=p, epochs=epochs, trained=trained, parent=parent, status=status, value=value,
                        seconds=(finished or 0) - (started or 0), run_id=run_id))
    return out


def summary(db, sweep, n_train, wall):
    ts = trials(db, sweep)
    fin = [t for t in ts if t["status"] == "finished"]
    top = max(t["epochs"] for t in fin)
    # the sweep's own answer (ft_hpo_best): the best trial at the highest budget reached; the grid's epochs are
    # a parameter, so every grid trial counts. The best at any budget is reported beside it, for information.
    best = max((t for t in fin if t["epochs"] == top or "epochs" in t["params"]), key=lambda t: t["value"])
    best_any = max(fin, key=lambda t: t["value"])
    return dict(sweep=sweep, wall_s=wall, trials=len(ts), finished=len(fin),
                examples=sum(t["trained"] * n_train for t in ts), epochs=sum(t["trained"] for t in ts),
                trial_seconds=sum(t["seconds"] for t in ts),
                best=best["value"], best_trial=best["idx"], best_any=best_any["value"], best_any_trial=best_any["idx"],
                best_any_epochs=best_any["epochs"], best_params=best["params"], best_epochs=best["epochs"],
                all=[(t["idx"], t["params"], t["epochs"], t["trained"], t["parent"], t["value"]) for t in ts])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "finetune"))
    ap.add_argument("--sst2", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "sst2"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "hpo-sst2"))
    ap.add_argument("--train-every", type=int, default=50)
    ap.add_argument("--val-file", default="test.tsv", help="file of --sst2 validated on (test.tsv = GLUE SST-2 dev, 872)")
    ap.add_argument("--val-every", type=int, default=1)
    ap.add_argument("--seeds", default="0,1,2", help="Hyperband seeds (one pass each)")
    ap.add_argument("--only", choices=["grid", "hyperband"])
    ap.add_argument("--jobs", type=int, default=2, help="trials of the grid run at once")
    ap.add_argument("--table-only", action="store_true", help="print the table of the sweeps already in OUT/finetune.db (OUT/result.json)")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    out = os.path.abspath(a.out)
    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    if a.table_only:
        with open(os.path.join(out, "result.json")) as f:
            res = json.load(f)
        db = os.path.join(out, "finetune.db")
        g_old = res["grid"]
        res["grid"] = summary(db, g_old["sweep"], res["n_train"], g_old["wall_s"])
        res["hyperband"] = {sd: summary(db, h["sweep"], res["n_train"], None) for sd, h in res["hyperband"].items()}
        table(res, [int(x) for x in res["hyperband"]], res["n_train"])
        return
    n_train = subset(os.path.join(a.sst2, "train.tsv"), os.path.join(data, "train.tsv"), a.train_every)
    n_val = subset(os.path.join(a.sst2, a.val_file), os.path.join(data, "val.tsv"), a.val_every)
    print(f"SST-2 subset: {n_train} training phrases (every {a.train_every}th of train.tsv), "
          f"{n_val} validation sentences (every {a.val_every}th of {a.val_file})", file=sys.stderr)
    db = os.path.join(out, "finetune.db")
    seeds = [int(x) for x in a.seeds.split(",") if x != ""]
    res = {"n_train": n_train, "n_val": n_val, "seeds": seeds, "load_before": os.getloadavg(), "started": time.time()}
    gname, gpath = config("sst2_grid.json", out, data, os.path.abspath(a.model))
    hname, hpath = config("sst2_hyperband.json", out, data, os.path.abspath(a.model))
    # the grid (--jobs JOBS) and the Hyperband seeds (one after the other) at once: wall time is not what
    # is compared, compute is
    procs = {}
    if a.only != "hyperband":
        cmd = [a.bin, "sweep", "--config", gpath, "--db", db, "--jobs", str(a.jobs)]
        procs["grid"] = (gname, time.time(), subprocess.Popen(cmd, cwd=out, stdout=open(os.path.join(out, "grid.log"), "w")))
    if a.only != "grid":
        chain = " && ".join(f"'{a.bin}' sweep --config '{hpath}' --db '{db}' --seed {sd} --name {hname}-s{sd} --jobs 1 "
                            f"> '{out}/hyperband-s{sd}.log'" for sd in seeds)
        procs["hyperband"] = (hname, time.time(), subprocess.Popen(["sh", "-c", chain], cwd=out))
    ends = {}
    while len(ends) < len(procs):   # each side's own end time (they run at once)
        for kind, (sweep, t0, p) in procs.items():
            if kind not in ends and p.poll() is not None:
                ends[kind] = time.time()
        time.sleep(1)
    for kind, (sweep, t0, p) in procs.items():
        if p.returncode != 0:
            print(f"{kind} failed (exit {p.returncode}); resume a sweep with: {a.bin} sweep --resume NAME --db {db}", file=sys.stderr)
            sys.exit(1)
        wall = ends[kind] - t0
        if kind == "grid":
            res["grid"] = summary(db, sweep, n_train, wall)
        else:
            res["hyperband"] = {str(sd): summary(db, f"{hname}-s{sd}", n_train, None) for sd in seeds}
            res["hyperband_wall_s"] = wall
    res["load_after"] = os.getloadavg()
    res["ended"] = time.time()
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    if "grid" not in res or "hyperband" not in res:
        return
    table(res, seeds, n_train)


def table(res, seeds, n_train):
    g = res["grid"]

    def pstr(r):
        p = ", ".join(f"{n} {v:.3g}" if isinstance(v, float) else f"{n} {v}" for n, v in r["best_params"].items())
        if "epochs" not in r["best_params"]:
            p += f", epochs {r['best_epochs']:g}"
        return p

    print(f"\n| search | trials | best val. accuracy | best config | compute (examples seen) | / grid | gap (points) | trial-seconds |")
    print(f"|---|---|---|---|---|---|---|---|")
    print(f"| grid | {g['trials']} | {100 * g['best']:.2f}% (trial {g['best_trial']}) | {pstr(g)} | {g['examples']:,.0f} "
          f"({g['epochs']:g} epochs of {n_train}) | 1 | - | {g['trial_seconds']:.0f} |")
    gaps, oks = [], []
    for sd in seeds:
        h = res["hyperband"][str(sd)]
        ratio = h["examples"] / g["examples"]
        gap = 100 * (g["best"] - h["best"])
        gaps.append(gap)
        oks.append(gap <= 1.0 and ratio <= 1 / 3 + 1e-9)
        print(f"| Hyperband seed {sd} | {h['trials']} | {100 * h['best']:.2f}% (trial {h['best_trial']}) | {pstr(h)} | {h['examples']:,.0f} "
              f"({h['epochs']:g} epochs) | {ratio:.3f} | {gap:+.2f} | {h['trial_seconds']:.0f} |")
    for sd in seeds:
        h = res["hyperband"][str(sd)]
        print(f"(seed {sd}: best at any budget {100 * h['best_any']:.2f}%, trial {h['best_any_trial']} at {h['best_any_epochs']:g} epochs)")
    med = sorted(gaps)[len(gaps) // 2]
    ratio = max(res["hyperband"][str(sd)]["examples"] for sd in seeds) / g["examples"]
    print(f"\nmedian gap (grid - hyperband) over seeds {seeds}: {med:+.2f} points; compute ratio {ratio:.3f}; "
          f"goal (median gap <= 1 point, ratio <= 1/3): {'met' if med <= 1.0 and ratio <= 1 / 3 + 1e-9 else 'MISSED'}; "
          f"seeds within 1 point: {sum(oks)} of {len(seeds)}")
    print(f"load average before {res['load_before'][0]:.2f}, after {res['load_after'][0]:.2f}; "
          f"wall: grid {g['wall_s']:.0f} s, hyperband seeds {res['hyperband_wall_s']:.0f} s (at the same time)")


if __name__ == "__main__":
    main()
