#!/usr/bin/env python3
"""How close does PyTorch itself get in float32? For every decoder and LoRA fixture, run the stock
transformers (+ peft) model in float32 on the fixture's batch, compare its gradients with the fixture's
float64 references, and write tests/fixtures/<kind>/<NAME>/f32_floor.safetensors holding, per gradient
tensor, PyTorch-f32's relative errors:  l2.<key> = ||g32 - g64|| / ||g64||,  max.<key> = max|g32 - g64| / max|g64|.

The C parity tests accept a tensor when its error is <= 1e-5, or no worse than 2x what PyTorch's own
float32 computation achieves on that tensor (the float32 floor: q/k gradients through RoPE and the softmax
backward lose ~1e-5 in any float32 implementation).

    python3 tests/parity/make_f32_floor.py          # ~20 s
"""
import glob, os, sys
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def grads_f32(model, ref_batch):
    ids = ref_batch["input_ids"].long()
    tg = ref_batch["targets"].long()
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tg.reshape(-1), ignore_index=-100)
    loss.backward()


def floor(pairs):
    out = {}
    for key, g32, g64 in pairs:
        g32 = g32.double(); g64 = g64.double()
        out["l2." + key] = torch.tensor([((g32 - g64).norm() / g64.norm().clamp_min(1e-300)).item()], dtype=torch.float32)
        out["max." + key] = torch.tensor([((g32 - g64).abs().max() / g64.abs().max().clamp_min(1e-300)).item()], dtype=torch.float32)
    return out


def decoder(name):
    d = os.path.join(ROOT, "decoder", name)
    ref = load_file(os.path.join(d, "ref.safetensors"))
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    grads_f32(m, ref)
    sd_names = {}
    pairs = []
    for n, p in m.named_parameters():
        if p.grad is None:
            continue
        for key in ("grad." + n, "grad." + n.replace("transformer.", "", 1)):
            if key in ref:
                g = p.grad
                pairs.append((key[5:], g, ref[key]))
                break
    return d, floor(pairs)


def lora(name):
    from peft import PeftModel
    d = os.path.join(ROOT, "lora", name)
    base = open(os.path.join(d, "base.txt")).read().strip()
    bdir = os.path.join(ROOT, base)
    ref = load_file(os.path.join(d, "ref.safetensors"))
    bref = load_file(os.path.join(bdir, "ref.safetensors"))
    m = AutoModelForCausalLM.from_pretrained(bdir, dtype=torch.float32)
    m = PeftModel.from_pretrained(m, os.path.join(d, "adapter"), is_trainable=True)
    grads_f32(m, bref)
    pairs = []
    for n, p in m.named_parameters():
        if p.grad is None:
            continue
        key = "grad." + n.replace(".default", "")
        if key in ref:
            pairs.append((key[5:], p.grad, ref[key]))
    return d, floor(pairs)


def main():
    torch.manual_seed(0)
    for kind, fn in (("decoder", decoder), ("lora", lora)):
        for path in sorted(glob.glob(os.path.join(ROOT, kind, "*", "ref.safetensors"))):
            name = os.path.basename(os.path.dirname(path))
            d, fl = fn(name)
            worst = max((v.item() for k, v in fl.items() if k.startswith("l2.")), default=0)
            save_file(dict(sorted(fl.items())), os.path.join(d, "f32_floor.safetensors"))
            print("%-8s %-24s %3d tensors, PyTorch float32 worst l2_rel %.3e" % (kind, name, len(fl) // 2, worst))


if __name__ == "__main__":
    main()
