#!/usr/bin/env python3
"""Dev check: a model directory written by finetune (train's final/ or best/, merge, init, convert) loads in
transformers and gives the same logits as `finetune`; a LoRA adapter directory loads with peft.

    python3 tests/parity/check_hf_load.py MODEL_DIR [--adapter ADAPTER_DIR] [--finetune build/finetune]

It runs `finetune eval`-independent logits through transformers (float32) on a fixed token sequence and
compares with the logits finetune computes for the same ids (via `finetune generate --ids` greedy ids
over 16 steps, which must be identical)."""
import argparse, json, os, subprocess, sys
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--adapter")
ap.add_argument("--finetune", default="build/finetune")
ap.add_argument("--prompt-ids", default="1 403 407 261 378")
ap.add_argument("--steps", type=int, default=16)
a = ap.parse_args()

model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
if a.adapter:
    from peft import PeftModel
    model = PeftModel.from_pretrained(model, a.adapter)
model.eval()
ids = [int(x) for x in a.prompt_ids.split()]
with torch.no_grad():
    out = model.generate(torch.tensor([ids]), max_new_tokens=a.steps, do_sample=False, eos_token_id=None,
                         pad_token_id=0)
hf = out[0, len(ids):].tolist()
cmd = [a.finetune, "generate", "--model", a.model, "--prompt-ids", a.prompt_ids, "--ids", "--temperature", "0",
       "--ignore-eos", "--max-tokens", str(a.steps)]
if a.adapter:
    cmd += ["--adapter", a.adapter]
ours = [int(x) for x in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()]
# logits of the prompt: transformers (+ peft) vs finetune --dump-logits
import numpy as np, tempfile
with torch.no_grad():
    ref = model(torch.tensor([ids])).logits[0].double().numpy()
with tempfile.NamedTemporaryFile(suffix=".f32") as tf:
    cmd_l = [a.finetune, "generate", "--model", a.model, "--prompt-ids", a.prompt_ids, "--dump-logits", tf.name]
    if a.adapter:
        cmd_l += ["--adapter", a.adapter]
    subprocess.run(cmd_l, capture_output=True, check=True)
    got = np.fromfile(tf.name, dtype=np.float32).reshape(ref.shape).astype(np.float64)
d = np.abs(got - ref)
print("logits [%d x %d]: max abs diff %.3e, max rel (vs max |ref|) %.3e" % (ref.shape[0], ref.shape[1], d.max(), d.max() / np.abs(ref).max()))
ok_logits = d.max() / np.abs(ref).max() <= 1e-5
print("transformers%s:" % (" + peft" if a.adapter else ""), hf)
print("finetune:          ", ours)
print("greedy ids", "IDENTICAL" if hf == ours else "DIFFERENT", "; logits", "within 1e-5" if ok_logits else "DIFFER")
sys.exit(0 if hf == ours and ok_logits else 1)
