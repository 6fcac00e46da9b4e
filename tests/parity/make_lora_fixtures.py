#!/usr/bin/env python3
"""Write LoRA reference fixtures (PEFT adapters + float64 references) for the
C parity tests. Layout and conventions: tests/parity/LORA.md.

Usage (from the repository root; needs `pip install peft`):
    python3 tests/parity/make_lora_fixtures.py                 # all cases
    python3 tests/parity/make_lora_fixtures.py llama_gqa_qv    # only the named ones

For each case NAME it writes tests/fixtures/lora/NAME/:
    base.txt                  which decoder fixture is the base, e.g. "decoder/gpt2_tiny"
    adapter/adapter_config.json, adapter/adapter_model.safetensors
                              as PeftModel.save_pretrained writes them (F32); the
                              model card README.md peft also writes is dropped
    ref.safetensors           float64 references stored as F32 (logits, loss,
                              grad.<adapter key>, merged_logits, adamw_losses)
    merged/                   (gpt2_tiny_all only) merge_and_unload() model,
                              save_pretrained, F32

The base models are the existing tests/fixtures/decoder/* checkpoints, used
unchanged; the batch (input_ids, targets) is read from the base fixture's
ref.safetensors. Everything is seeded and written with sorted headers / sorted
lists, so rerunning rewrites byte-identical files.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file
import transformers
from transformers import AutoModelForCausalLM
import peft
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_decoder_fixtures import (IGNORE, ce_loss, full_float64,  # noqa: E402
                                   save_sorted_safetensors)

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT_DIR = os.path.join(FIX, "lora")

INIT_STD = 0.1          # lora_A and lora_B ~ N(0, 0.1^2) (PEFT itself would init B = 0)
ADAMW_STEPS = 5
ADAMW = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
MERGE_TOL = 1e-11       # |merged_logits - logits| in float64

LLAMA_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name -> base decoder fixture, LoraConfig arguments, write merged/?
CASES = {
    "gpt2_tiny_attn": dict(base="gpt2_tiny", r=4, alpha=8, target=["c_attn"],
                           rslora=False, fan_in_fan_out=True, merged=False),
    "gpt2_tiny_all": dict(base="gpt2_tiny", r=8, alpha=16, target=["c_attn", "c_proj", "c_fc"],
                          rslora=False, fan_in_fan_out=True, merged=True),
    "llama_gqa_qv": dict(base="llama_gqa", r=8, alpha=16, target=["q_proj", "v_proj"],
                         rslora=False, fan_in_fan_out=False, merged=False),
    "llama_gqa_all_rslora": dict(base="llama_gqa", r=4, alpha=8, target=LLAMA_ALL,
                                 rslora=True, fan_in_fan_out=False, merged=False),
    "qwen2_all": dict(base="qwen2", r=4, alpha=4, target="all-linear",
                      rslora=False, fan_in_fan_out=False, merged=False),
}


def base_rel(case):
    return "tests/fixtures/decoder/" + case["base"]


def load_base(case, dtype):
    model = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, base_rel(case)),
                                                 attn_implementation="eager", dtype=dtype)
    model.eval()
    return model


def saved_key(param_name):
    """named_parameters() name -> key in adapter_model.safetensors (PEFT drops
    the adapter name: `.lora_A.default.weight` -> `.lora_A.weight`)."""
    assert ".default." in param_name, param_name
    return param_name.replace(".default.", ".")


def lora_params(model):
    return [(n, p) for n, p in model.named_parameters() if "lora_" in n]


def make_adapter(case, adapter_dir, seed):
    """Create the PEFT model on the float32 base, randomise A and B, save."""
    base = load_base(case, torch.float32)
    cfg = LoraConfig(r=case["r"], lora_alpha=case["alpha"], target_modules=case["target"],
                     lora_dropout=0.0, bias="none", use_rslora=case["rslora"],
                     fan_in_fan_out=case["fan_in_fan_out"])
    pm = get_peft_model(base, cfg)
    pcfg = pm.peft_config["default"]
    # peft keeps target_modules as a set and save_pretrained writes list(set):
    # the order would follow Python's per-process string hash. Sort it, and
    # record the base model by its path relative to the repository root.
    pcfg.target_modules = sorted(pcfg.target_modules)
    pcfg.base_model_name_or_path = base_rel(case)
    g = torch.Generator().manual_seed(seed)
    params = lora_params(pm)
    assert params and all(p.requires_grad for _, p in params)
    assert all(p.requires_grad == ("lora_" in n) for n, p in pm.named_parameters())
    with torch.no_grad():
        for _, p in params:          # named_parameters order: module order, A before B
            p.copy_(INIT_STD * torch.randn(p.shape, generator=g, dtype=torch.float64))
    pm.save_pretrained(adapter_dir)
    os.remove(os.path.join(adapter_dir, "README.md"))  # model card, not needed
    values = {saved_key(n): p.detach().clone() for n, p in params}
    return values, pcfg


def ref_model(case, adapter_dir):
    """Float64 base (with the decoder fixtures' full-float64 patches) + the
    saved adapter loaded by PeftModel.from_pretrained, trainable."""
    base = full_float64(load_base(case, torch.float64))
    pm = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
    pm.double()  # adapter weights are F32 on disk; exact in float64
    pm.eval()
    return pm


def adamw_losses(pm, input_ids, targets):
    params = [p for _, p in lora_params(pm)]
    assert all(p.requires_grad == ("lora_" in n) for n, p in pm.named_parameters())
    opt = torch.optim.AdamW(params, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]),
                            eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"],
                            foreach=False)
    losses = []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        loss = ce_loss(pm(input_ids).logits, targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses


def write_merged(case, adapter_dir, merged64, merged_dir, input_ids):
    """merged/: a float32 model from merge_and_unload() whose weights are the
    float64 merge rounded once to F32, saved with save_pretrained."""
    pm32 = PeftModel.from_pretrained(load_base(case, torch.float32), adapter_dir)
    m32 = pm32.merge_and_unload()
    sd64 = merged64.state_dict()
    worst_f32_merge = 0.0
    with torch.no_grad():
        for n, p in m32.named_parameters():
            ref = sd64[n]
            worst_f32_merge = max(worst_f32_merge, (p.double() - ref).abs().max().item())
            p.copy_(ref.float())
    m32.save_pretrained(merged_dir, safe_serialization=True)
    # the merged checkpoint has exactly the base checkpoint's keys and config
    base_dir = os.path.join(ROOT, base_rel(case))
    base_sd = load_file(os.path.join(base_dir, "model.safetensors"))
    merged_sd = load_file(os.path.join(merged_dir, "model.safetensors"))
    assert sorted(base_sd) == sorted(merged_sd), "merged keys differ from the base checkpoint"
    changed = sorted(k for k in base_sd if not torch.equal(base_sd[k], merged_sd[k]))
    for f in ("config.json", "generation_config.json"):
        a = json.load(open(os.path.join(base_dir, f)))
        b = json.load(open(os.path.join(merged_dir, f)))
        assert a == b, f"merged {f} differs from base: {a} vs {b}"
    # reload with transformers: float64 logits of the F32 merged weights
    re64 = AutoModelForCausalLM.from_pretrained(merged_dir, attn_implementation="eager",
                                                dtype=torch.float64)
    re64.eval()
    with torch.no_grad():
        logits = re64(input_ids).logits
    return worst_f32_merge, changed, logits


def make_case(name, seed):
    case = CASES[name]
    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "base.txt"), "w") as f:
        f.write("decoder/" + case["base"] + "\n")
    adapter_dir = os.path.join(d, "adapter")

    base_ref = load_file(os.path.join(ROOT, base_rel(case), "ref.safetensors"))
    input_ids = base_ref["input_ids"].long()
    targets = base_ref["targets"].long()
    B, T = input_ids.shape

    # --- adapter (float32, as peft saves it)
    values, pcfg = make_adapter(case, adapter_dir, seed)
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    assert sorted(saved) == sorted(values), (sorted(saved), sorted(values))
    for k, v in saved.items():
        assert v.dtype == torch.float32 and torch.equal(v, values[k]), k
    adapter_cfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    resolved = sorted(adapter_cfg["target_modules"])
    assert adapter_cfg["fan_in_fan_out"] == case["fan_in_fan_out"]

    # --- float64 references: forward, loss, grads of the LoRA parameters
    pm = ref_model(case, adapter_dir)
    state = get_peft_model_state_dict(pm)
    assert sorted(state) == sorted(saved), "get_peft_model_state_dict keys != saved keys"
    for n, p in lora_params(pm):
        assert p.dtype == torch.float64 and torch.equal(p, saved[saved_key(n)].double()), n
    scalings = set()
    for mod in pm.modules():
        if hasattr(mod, "scaling") and isinstance(mod.scaling, dict) and "default" in mod.scaling:
            scalings.add(mod.scaling["default"])
    expect_scale = case["alpha"] / (case["r"] ** 0.5 if case["rslora"] else case["r"])
    assert scalings == {expect_scale}, (scalings, expect_scale)

    with torch.no_grad(), pm.disable_adapter():
        base_logits = pm(input_ids).logits
    base_diff = (base_logits.float() - base_ref["logits"]).abs().max().item()
    assert base_diff < 1e-5, f"{name}: base logits differ from decoder fixture by {base_diff}"

    logits = pm(input_ids).logits
    loss = ce_loss(logits, targets)
    pm.zero_grad(set_to_none=True)
    loss.backward()
    effect = (logits.detach() - base_logits).abs().max().item()
    assert effect > 0.1, f"{name}: adapter barely changes the logits ({effect})"

    ref = {
        "input_ids": input_ids.to(torch.int32),
        "targets": targets.to(torch.int32),
        "logits": logits.detach().float(),
        "loss": loss.detach().float().reshape(1),
    }
    for n, p in lora_params(pm):
        ref["grad." + saved_key(n)] = p.grad.detach().float().contiguous()
    for n, p in pm.named_parameters():
        assert p.grad is None or "lora_" in n, n

    # --- merge_and_unload (fresh float64 model)
    merged64 = ref_model(case, adapter_dir).merge_and_unload()
    assert not any("lora_" in n for n, _ in merged64.named_parameters())
    with torch.no_grad():
        merged_logits = merged64(input_ids).logits
    merge_diff = (merged_logits - logits.detach()).abs().max().item()
    assert merge_diff < MERGE_TOL, f"{name}: merged vs unmerged logits differ by {merge_diff}"
    ref["merged_logits"] = merged_logits.float()

    merged_info = ""
    if case["merged"]:
        worst, changed, re_logits = write_merged(case, adapter_dir, merged64,
                                                 os.path.join(d, "merged"), input_ids)
        re_diff = (re_logits - logits.detach()).abs().max().item()
        assert re_diff < 1e-4, re_diff
        merged_info = (f" merged/: {len(changed)} tensors changed, f32-merge vs rounded-f64 "
                       f"max {worst:.3g}, reloaded f64 logits vs ref {re_diff:.3g}")

    # --- AdamW on the LoRA parameters only (fresh float64 model)
    losses = adamw_losses(ref_model(case, adapter_dir), input_ids, targets)
    assert abs(losses[0] - loss.item()) < 1e-12
    ref["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)

    keys = sorted(saved)
    meta = {
        "case_name": name,
        "base": "decoder/" + case["base"],
        "B": str(B), "T": str(T), "vocab_size": str(logits.shape[-1]),
        "ignore_index": str(IGNORE),
        "r": str(case["r"]), "lora_alpha": str(case["alpha"]),
        "use_rslora": "true" if case["rslora"] else "false",
        "scaling": repr(expect_scale),
        "scaling_rule": "lora_alpha/sqrt(r)" if case["rslora"] else "lora_alpha/r",
        "fan_in_fan_out": "true" if case["fan_in_fan_out"] else "false",
        "target_modules_requested": json.dumps(case["target"]),
        "target_modules_saved": json.dumps(resolved),
        "lora_keys": json.dumps(keys),
        "n_lora_params": str(sum(v.numel() for v in saved.values())),
        "init": f"lora_A, lora_B ~ N(0, {INIT_STD}^2) from torch.Generator seed {seed}, "
                "in named_parameters order",
        "loss_f64": repr(loss.item()),
        "adamw_losses_f64": json.dumps(losses),
        "lr": repr(ADAMW["lr"]), "beta1": repr(ADAMW["beta1"]),
        "beta2": repr(ADAMW["beta2"]), "eps": repr(ADAMW["eps"]),
        "weight_decay": repr(ADAMW["weight_decay"]),
        "adamw_steps": str(ADAMW_STEPS),
        "adamw_params": "LoRA A/B only (base frozen), one group, torch.optim.AdamW",
        "merge_max_abs_diff_f64": repr(merge_diff),
        "adapter_effect_max_abs_logit": repr(effect),
        "seed": str(seed),
        "peft_version": peft.__version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    ref_path = os.path.join(d, "ref.safetensors")
    save_sorted_safetensors(ref, ref_path, meta)
    back = load_file(ref_path)
    assert set(back) == set(ref) and all(torch.equal(back[k], ref[k]) for k in ref)

    files = []
    for root, _, fs in os.walk(d):
        for f in fs:
            p = os.path.join(root, f)
            files.append((os.path.relpath(p, d), os.path.getsize(p)))
    files.sort()
    total = sum(s for _, s in files)
    print(f"{name}: base={case['base']} r={case['r']} alpha={case['alpha']} "
          f"scale={expect_scale:g} lora tensors={len(keys)} "
          f"params={meta['n_lora_params']} loss={loss.item():.6f} "
          f"adamw[{ADAMW_STEPS - 1}]={losses[-1]:.6f} effect={effect:.3g} "
          f"merge diff={merge_diff:.3g} base diff={base_diff:.3g}{merged_info} total={total}")
    for f, s in files:
        print(f"    {s:9d}  {f}")
    return total


def main(argv):
    names = argv[1:] or list(CASES)
    for n in names:
        if n not in CASES:
            sys.exit(f"unknown case {n}; known: {', '.join(CASES)}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"peft {peft.__version__}")
    grand = 0
    for i, n in enumerate(CASES):
        if n in names:
            grand += make_case(n, seed=2000 + 31 * i)
    print(f"total fixture size: {grand} bytes ({grand / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(sys.argv)
