#!/usr/bin/env python3
"""Dev check: does PEFT accept a LoRA adapter directory (e.g. one written by
`finetune`), and do its logits match ours?

Usage (from the repository root; needs `pip install peft`):
    python3 tests/parity/check_peft_adapter.py BASE_DIR ADAPTER_DIR [LOGITS_FILE]
        [--key logits] [--tol 1e-4] [--merged MERGED_DIR]

BASE_DIR     Hugging Face model directory (e.g. tests/fixtures/decoder/gpt2_tiny)
ADAPTER_DIR  adapter_config.json + adapter_model.safetensors
LOGITS_FILE  optional safetensors file with `logits` [B,T,V] (name via --key)
             and optionally `input_ids` [B,T], `targets` [B,T] and `loss` [1]
             (tests/fixtures/lora/NAME/ref.safetensors has this layout). Without
             `input_ids` the batch of BASE_DIR/ref.safetensors is used.
--merged DIR optional merged checkpoint (`finetune merge` output): its tensors
             are compared with PEFT's merge_and_unload() weights.

The model runs in float64 (Llama family with the same full-float64 patches as
make_decoder_fixtures.py), the adapter loaded with PeftModel.from_pretrained.
Checks that every tensor in adapter_model.safetensors was actually loaded
(PEFT only *warns* about keys it cannot place and leaves those LoRA weights at
their init, B = 0), prints the max abs difference of the logits, and exits 1
when it exceeds --tol (or when loading is incomplete).
"""
import argparse
import os
import sys
import warnings

import torch
from safetensors.torch import load_file
import transformers
from transformers import AutoModelForCausalLM
from peft import PeftModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_decoder_fixtures import IGNORE, ce_loss, full_float64  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def load_peft(base_dir, adapter_dir):
    base = AutoModelForCausalLM.from_pretrained(base_dir, attn_implementation="eager",
                                                dtype=torch.float64)
    base.eval()
    full_float64(base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = PeftModel.from_pretrained(base, adapter_dir)
    msgs = [str(w.message) for w in caught
            if "gradient_checkpointing" not in str(w.message)]
    pm.double()
    pm.eval()
    return pm, msgs


def check_loaded(pm, adapter_dir):
    """Every tensor in the file must land on a LoRA parameter, unchanged, and
    every LoRA parameter must come from the file."""
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    params = {n.replace(".default.", "."): p for n, p in pm.named_parameters() if "lora_" in n}
    ok = True
    unplaced = sorted(k.replace(".default.", ".") for k in saved
                      if k.replace(".default.", ".") not in params)
    missing = sorted(k for k in params if k not in {s.replace(".default.", ".") for s in saved})
    if unplaced:
        ok = False
        print(f"FAIL: {len(unplaced)} file tensors match no LoRA parameter, e.g. {unplaced[:3]}")
    if missing:
        ok = False
        print(f"FAIL: {len(missing)} LoRA parameters not in the file, e.g. {missing[:3]}")
    worst = 0.0
    for k, v in saved.items():
        p = params.get(k.replace(".default.", "."))
        if p is None:
            continue
        if tuple(p.shape) != tuple(v.shape):
            ok = False
            print(f"FAIL: {k}: file shape {list(v.shape)} vs model {list(p.shape)}")
            continue
        worst = max(worst, (p.detach() - v.double()).abs().max().item())
    if worst != 0.0:
        ok = False
        print(f"FAIL: loaded LoRA values differ from the file by {worst:.3g}")
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in saved.values()})
    print(f"adapter: {len(saved)} tensors ({', '.join(dtypes)}), "
          f"{sum(v.numel() for v in saved.values())} values, all loaded: {ok}")
    return ok


def describe(pm):
    cfg = pm.peft_config["default"]
    scalings = sorted({m.scaling["default"] for m in pm.modules()
                       if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling})
    print(f"config: r={cfg.r} lora_alpha={cfg.lora_alpha} use_rslora={cfg.use_rslora} "
          f"fan_in_fan_out={cfg.fan_in_fan_out} target_modules={sorted(cfg.target_modules)} "
          f"-> scaling {scalings}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base_dir")
    ap.add_argument("adapter_dir")
    ap.add_argument("logits_file", nargs="?")
    ap.add_argument("--key", default="logits")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--merged")
    a = ap.parse_args()

    pm, msgs = load_peft(a.base_dir, a.adapter_dir)
    for m in msgs:
        print("peft warning:", m[:300])
    describe(pm)
    ok = check_loaded(pm, a.adapter_dir)

    ours = load_file(a.logits_file) if a.logits_file else {}
    if "input_ids" in ours:
        batch = ours
    else:
        batch = load_file(os.path.join(a.base_dir, "ref.safetensors"))
    input_ids = batch["input_ids"].long()
    targets = batch["targets"].long() if "targets" in batch else None

    with torch.no_grad():
        logits = pm(input_ids).logits
        with pm.disable_adapter():
            base_logits = pm(input_ids).logits
    print(f"batch {list(input_ids.shape)}; adapter effect on logits "
          f"(max |with - without|): {(logits - base_logits).abs().max().item():.4g}")
    if targets is not None:
        loss = ce_loss(logits, targets).item()
        print(f"PEFT loss (float64): {loss:.8f} (ignore_index {IGNORE})")
        if "loss" in ours:
            d = abs(loss - ours["loss"].double().item())
            print(f"loss: ours {ours['loss'].item():.8f} |diff| {d:.3g}")
            ok &= d <= a.tol

    if a.logits_file:
        mine = ours[a.key].double()
        if tuple(mine.shape) != tuple(logits.shape):
            print(f"FAIL: {a.key} shape {list(mine.shape)} vs PEFT {list(logits.shape)}")
            return 1
        diff = (mine - logits).abs().max().item()
        rel = diff / max(1e-30, logits.abs().max().item())
        print(f"{a.key}: max abs diff vs PEFT {diff:.4g} (rel to max |logit| {rel:.3g}), "
              f"tol {a.tol:g}")
        ok &= diff <= a.tol

    if a.merged:
        merged = pm.merge_and_unload().state_dict()
        files = sorted(f for f in os.listdir(a.merged)
                       if f.startswith("model") and f.endswith(".safetensors"))
        theirs = {}
        for f in files:
            theirs.update(load_file(os.path.join(a.merged, f)))
        worst, worst_key = 0.0, None
        for k, v in theirs.items():
            if k not in merged:
                print(f"FAIL: merged tensor {k} is not a model parameter")
                ok = False
                continue
            d = (v.double() - merged[k]).abs().max().item()
            if d > worst:
                worst, worst_key = d, k
        print(f"merged: {len(theirs)} tensors, max abs diff vs PEFT merge_and_unload "
              f"{worst:.4g} ({worst_key}), tol {a.tol:g}")
        ok &= worst <= a.tol

    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
