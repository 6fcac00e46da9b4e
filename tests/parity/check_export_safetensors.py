#!/usr/bin/env python3
"""check_export_safetensors.py — transformers loads what `finetune export --format safetensors` writes.

For stories260K (Llama) and a tiny random GPT-2 (`finetune init`, real GPT-2 tokenizer), in f32 (one file), f16 and bf16
(sharded with a small --max-shard-size, so model.safetensors.index.json is used): AutoModelForCausalLM
.from_pretrained loads the directory, its torch_dtype is the exported one, and its logits on a prompt match
finetune's f32 logits (--dump-logits) within the dtype's rounding (max |diff| / max |logit|: f32 1e-5, f16 1e-2,
bf16 5e-2). Needs torch + transformers (scripts/setup.sh --python).

    python3 tests/parity/check_export_safetensors.py [--finetune build/finetune]
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import torch
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--finetune", default=os.path.join(ROOT, "build", "finetune"))
    a = ap.parse_args()
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        cfg, g2 = os.path.join(tmp, "gpt2.json"), os.path.join(tmp, "gpt2_tiny")
        with open(cfg, "w") as f:
            json.dump({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 50257, "n_positions": 128,
                       "n_embd": 64, "n_layer": 2, "n_head": 4, "layer_norm_epsilon": 1e-5, "initializer_range": 0.2,
                       "bos_token_id": 50256, "eos_token_id": 50256}, f)
        subprocess.run([a.finetune, "init", "--config", cfg, "--out", g2, "--tokenizer",
                        os.path.join(ROOT, "tests", "fixtures", "tokenizer", "gpt2", "encoder.json")], check=True, capture_output=True)
        for name, model, prompt in (("stories260K", os.path.join(ROOT, "models", "stories260K"), [1, 403, 407, 261, 300]),
                                    ("gpt2_tiny", g2, [15496, 11, 995, 318])):
            lg = os.path.join(tmp, "logits.bin")
            subprocess.run([a.finetune, "generate", "--model", model, "--prompt-ids", " ".join(map(str, prompt)),
                            "--dump-logits", lg], check=True, capture_output=True)
            ref = np.fromfile(lg, dtype=np.float32).reshape(len(prompt), -1)
            for dtype, tol, shard in (("f32", 1e-5, None), ("f16", 1e-2, "100KB"), ("bf16", 5e-2, "100KB")):
                out = os.path.join(tmp, f"{name}-{dtype}")
                cmd = [a.finetune, "export", "--model", model, "--format", "safetensors", "--dtype", dtype, "--out", out]
                if shard:
                    cmd += ["--max-shard-size", shard]
                subprocess.run(cmd, check=True, capture_output=True)
                m = AutoModelForCausalLM.from_pretrained(out)
                with torch.no_grad():
                    got = m(torch.tensor([prompt])).logits[0].float().numpy()
                err = float(np.abs(got - ref).max() / np.abs(ref).max())
                shards = len([f for f in os.listdir(out) if f.endswith(".safetensors")])
                ok = err <= tol and str(m.dtype).endswith({"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype])
                print(f"{'OK  ' if ok else 'FAIL'} {name} {dtype}: {shards} file(s), transformers dtype {m.dtype}, "
                      f"logits max |diff| / max |logit| {err:.2e} (tolerance {tol:g})")
                fails += not ok
    print(f"{fails} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
