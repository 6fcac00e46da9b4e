#!/usr/bin/env python3
"""Reference trajectories of torch.optim optimizers and transformers' LR schedules for tests/test_optim.c.

Writes tests/fixtures/optim/optim_ref.safetensors (about 90 KB). Run from the repository root:

    python3 tests/parity/make_optim_fixtures.py

Deterministic: seeded, tensors and metadata written with a sorted header, so reruns are byte-identical.

Optimizer runs. Two parameters, as two torch param groups:
  w: F32 [8,8]  (a matrix; group 0 with weight_decay = wd)
  b: F32 [8]    (a vector; group 1 with weight_decay = 0)
Both start from init.w / init.b, and at step s (0-based) get the gradients grad.w[s] / grad.b[s].
The learning rate comes from transformers' get_*_schedule_with_warmup on top of the optimizer
(LambdaLR), stepped after every optimizer step as the HF Trainer does: the lr used at step s is
base_lr * lambda(s). <name>.lr[s] is that lr, <name>.w[s] / <name>.b[s] the parameters after step s.

Precision: the runs are made in float32, the precision of our optimizer (f32 parameters, moments and
arithmetic). A float32 reference differs from our code only by the rounding of individual operations,
so a tolerance near f32 epsilon is meaningful; a float64 reference would add the (larger, and
direction-free) accumulated f32 rounding of our own state to the comparison. The same runs are also
made in float64 from the same f32 inputs, and for each run max|f32 - f64| / max|f64| is stored in the
metadata (<name>.f32_vs_f64) as the scale of the f32 rounding itself.

Hyperparameters are the decimal values a user types (0.999, 1e-8, ...), passed to torch as Python
floats; our C side receives them as floats (as parsed from a config file).

Schedules. For each entry of the metadata list "schedules" ({tensor, kind, warmup, total,
min_lr_ratio}) the tensor holds the multiplier lambda(step) for step = 0..total (total + 1 values)
from transformers' schedule function. The trainer only asks for steps 0..total-1.

Layout (all F32):
  init.w [8,8], init.b [8], grad.w [S,8,8], grad.b [S,8]
  <name>.lr [S], <name>.w [S,8,8], <name>.b [S,8]       one per entry of the metadata list "runs"
  sched.<i> [total+1]                                    one per entry of "schedules"
Metadata (strings): runs (JSON list), schedules (JSON list), steps, torch_version,
transformers_version, seed, dtype.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import transformers
from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_cosine_with_min_lr_schedule_with_warmup, get_linear_schedule_with_warmup)

SEED = 1234
STEPS = 20
OUT = os.path.join("tests", "fixtures", "optim", "optim_ref.safetensors")

# name, optimizer kind (our ft_optim_kind name), torch constructor arguments, weight decay of the
# matrix group, schedule (kind, warmup). base lr is args["lr"].
RUNS = [
    ("adamw", "adamw", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8), 0.1, ("cosine", 4)),
    ("adamw_const", "adamw", dict(lr=5e-2, betas=(0.9, 0.999), eps=1e-8), 0.01, ("constant", 0)),
    ("adamw_nowarm", "adamw", dict(lr=3e-2, betas=(0.8, 0.95), eps=1e-6), 0.3, ("linear", 0)),
    ("adam_l2", "adam", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8), 0.05, ("linear", 3)),
    ("sgd", "sgd", dict(lr=5e-2, momentum=0.0), 0.01, ("constant", 0)),
    ("sgd_momentum", "sgd", dict(lr=5e-2, momentum=0.9), 0.01, ("cosine", 0)),
    ("sgd_nesterov", "sgd", dict(lr=5e-2, momentum=0.9, nesterov=True), 0.01, ("linear", 2)),
    ("adagrad", "adagrad", dict(lr=5e-2, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10), 0.01,
     ("constant", 3)),
    ("rmsprop", "rmsprop", dict(lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False), 0.01,
     ("cosine", 2)),
    ("rmsprop_momentum", "rmsprop", dict(lr=5e-3, alpha=0.9, eps=1e-8, momentum=0.9, centered=False), 0.01,
     ("linear", 0)),
]

# (kind, warmup, total, min_lr_ratio); min_lr_ratio > 0 only for cosine
# (get_cosine_with_min_lr_schedule_with_warmup, min_lr_rate).
SCHEDULES = []
for kind in ("constant", "linear", "cosine"):
    for warmup, total in ((0, 10), (3, 10), (10, 10), (0, 1), (1, 1), (8, 5), (5, 37), (100, 1000)):
        SCHEDULES.append((kind, warmup, total, 0.0))
for warmup, total in ((0, 10), (3, 17), (17, 17)):
    SCHEDULES.append(("cosine", warmup, total, 0.1))


def make_inputs():
    g = torch.Generator().manual_seed(SEED)
    # Small initial values (|p| ~ 0.05, first updates ~ lr): the parameters soon consist mostly of
    # the updates, so a relative error in the update shows in max|d| / max|ref| instead of being
    # hidden under the rounding of a large parameter.
    init_w = torch.randn(8, 8, generator=g) * 0.05
    init_b = torch.randn(8, generator=g) * 0.05
    # Gradients with per-element scales from 0.01 to 1 (and a drifting mean), so that the adaptive
    # optimizers' per-element normalisation matters; no exact zeros.
    scale_w = torch.exp(torch.empty(8, 8).uniform_(math.log(0.01), 0.0, generator=g))
    scale_b = torch.exp(torch.empty(8).uniform_(math.log(0.01), 0.0, generator=g))
    grad_w = torch.stack([(torch.randn(8, 8, generator=g) + 0.3 * math.sin(s)) * scale_w for s in range(STEPS)])
    grad_b = torch.stack([(torch.randn(8, generator=g) - 0.2) * scale_b for s in range(STEPS)])
    return init_w.float(), init_b.float(), grad_w.float(), grad_b.float()


def make_optimizer(kind, params_groups, args):
    if kind == "adamw":
        return torch.optim.AdamW(params_groups, foreach=False, **args)
    if kind == "adam":
        return torch.optim.Adam(params_groups, foreach=False, **args)
    if kind == "sgd":
        return torch.optim.SGD(params_groups, foreach=False, **args)
    if kind == "adagrad":
        return torch.optim.Adagrad(params_groups, foreach=False, **args)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params_groups, foreach=False, **args)
    raise ValueError(kind)


def make_schedule(opt, kind, warmup, total, min_lr_ratio=0.0):
    if kind == "constant":
        return get_constant_schedule_with_warmup(opt, warmup)
    if kind == "linear":
        return get_linear_schedule_with_warmup(opt, warmup, total)
    if kind == "cosine" and min_lr_ratio == 0.0:
        return get_cosine_schedule_with_warmup(opt, warmup, total)
    if kind == "cosine":
        return get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr_rate=min_lr_ratio)
    raise ValueError(kind)


def run(kind, args, wd, sched, dtype, init_w, init_b, grad_w, grad_b):
    w = torch.nn.Parameter(init_w.to(dtype).clone())
    b = torch.nn.Parameter(init_b.to(dtype).clone())
    groups = [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]
    opt = make_optimizer(kind, groups, args)
    lr_sched = make_schedule(opt, sched[0], sched[1], STEPS)
    lrs, ws, bs = [], [], []
    for s in range(STEPS):
        lr = opt.param_groups[0]["lr"]
        assert opt.param_groups[1]["lr"] == lr
        lrs.append(lr)
        w.grad = grad_w[s].to(dtype).clone()
        b.grad = grad_b[s].to(dtype).clone()
        opt.step()
        lr_sched.step()
        ws.append(w.detach().clone())
        bs.append(b.detach().clone())
    return lrs, torch.stack(ws), torch.stack(bs)


def schedule_multipliers(kind, warmup, total, min_lr_ratio):
    """lambda(step) for step = 0..total, read from the schedule's own lr_lambda."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    lr_sched = make_schedule(opt, kind, warmup, total, min_lr_ratio)
    (fn,) = lr_sched.lr_lambdas
    vals = [float(fn(step)) for step in range(total + 1)]
    # Cross-check the LambdaLR path (what a training loop sees) for the steps it visits.
    for step in range(total + 1):
        assert abs(opt.param_groups[0]["lr"] - vals[step]) < 1e-15, (kind, warmup, total, step)
        opt.step()
        lr_sched.step()
    return vals


def save_sorted_safetensors(tensors, path, metadata):
    """A safetensors file whose header lists "__metadata__" then the tensors sorted by name, data in
    that order (safetensors.torch.save_file writes the metadata map in hash order)."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f4"))
        data = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for d in blobs:
            f.write(d)
    os.replace(tmp, path)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    init_w, init_b, grad_w, grad_b = make_inputs()
    tensors = {"init.w": init_w, "init.b": init_b, "grad.w": grad_w, "grad.b": grad_b}
    runs_meta = []
    print(f"{'run':18s} {'schedule':12s} {'w[0] after':>12s} {'max|dw|':>9s} {'f32 vs f64 (w, b)':>22s}")
    for name, kind, args, wd, sched in RUNS:
        lrs, ws, bs = run(kind, args, wd, sched, torch.float32, init_w, init_b, grad_w, grad_b)
        lrs64, ws64, bs64 = run(kind, args, wd, sched, torch.float64, init_w, init_b, grad_w, grad_b)
        assert lrs == lrs64
        dev_w = float((ws.double() - ws64).abs().max() / ws64.abs().max())
        dev_b = float((bs.double() - bs64).abs().max() / bs64.abs().max())
        tensors[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float32)
        tensors[f"{name}.w"] = ws
        tensors[f"{name}.b"] = bs
        entry = {"name": name, "kind": kind, "lr": args["lr"], "weight_decay": wd,
                 "schedule": sched[0], "warmup": sched[1], "total": STEPS,
                 "f32_vs_f64": [dev_w, dev_b]}
        if kind in ("adamw", "adam"):
            entry.update(beta1=args["betas"][0], beta2=args["betas"][1], eps=args["eps"])
        elif kind == "sgd":
            entry.update(momentum=args["momentum"], nesterov=int(args.get("nesterov", False)))
        elif kind == "adagrad":
            entry.update(eps=args["eps"])
        elif kind == "rmsprop":
            entry.update(alpha=args["alpha"], eps=args["eps"], momentum=args["momentum"])
        runs_meta.append(entry)
        moved = float((ws[-1] - init_w).abs().max())
        print(f"{name:18s} {sched[0]:8s} w{sched[1]:<3d} {float(ws[-1, 0, 0]):12.6f} {moved:9.3e} "
              f"{dev_w:11.2e} {dev_b:10.2e}")
    sched_meta = []
    for i, (kind, warmup, total, mlr) in enumerate(SCHEDULES):
        vals = schedule_multipliers(kind, warmup, total, mlr)
        tensors[f"sched.{i}"] = torch.tensor(vals, dtype=torch.float32)
        sched_meta.append({"tensor": f"sched.{i}", "kind": kind, "warmup": warmup, "total": total,
                           "min_lr_ratio": mlr})
    meta = {
        "runs": json.dumps(runs_meta),
        "schedules": json.dumps(sched_meta),
        "steps": str(STEPS),
        "seed": str(SEED),
        "dtype": "float32 runs (float64 deviation in runs[].f32_vs_f64)",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    save_sorted_safetensors(tensors, OUT, meta)
    print(f"{len(SCHEDULES)} schedules; wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
