#!/usr/bin/env python3
"""PEFT LoRA references for encoders (tests/test_encoder_lora.c).

Base models: the sequence-classification fixtures tests/fixtures/encoder/{bert_tiny,roberta_tiny,distilbert_tiny}
(3 labels, dropout 0). For each, peft.get_peft_model(LoraConfig(task_type=SEQ_CLS, r=4, lora_alpha=8,
target_modules=<family default>, lora_dropout=0)) wraps it; lora_B is set to small random values (PEFT
initialises it to zero, which would leave the lora_A gradients zero) and the classification head
(modules_to_save) is perturbed, everything rounded to float32. Then, in float64, on the batch of the base
fixture (ref.safetensors):
  logits, loss and the gradient of every trainable tensor (lora_A / lora_B of each adapted module, the
  head) -> tests/fixtures/encoder_lora/NAME/ref.safetensors (gradients named by their PEFT adapter keys),
  merged_logits: the logits of merge_and_unload() (same as the adapted model's),
and the adapter itself with save_pretrained (adapter_config.json + adapter_model.safetensors, float32) in
tests/fixtures/encoder_lora/NAME/adapter/.

    python3 tests/parity/make_encoder_lora_fixtures.py
"""
import json, os, sys

import torch
from safetensors.torch import load_file, save_file
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
CASES = {"bert_tiny": ["query", "value"], "roberta_tiny": ["query", "value"], "distilbert_tiny": ["q_lin", "v_lin"]}


def make(name, targets, seed):
    base_dir = os.path.join(FIX, "encoder", name)
    out = os.path.join(FIX, "encoder_lora", name)
    os.makedirs(out, exist_ok=True)
    ref = load_file(os.path.join(base_dir, "ref.safetensors"))
    model = AutoModelForSequenceClassification.from_pretrained(base_dir, torch_dtype=torch.float32)
    cfg = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0)
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.requires_grad and "lora_A" not in n:   # the head (modules_to_save)
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    pm.save_pretrained(os.path.join(out, "adapter"))
    # relative base path (resolved from the adapter directory by finetune); no model card
    acfg = os.path.join(out, "adapter", "adapter_config.json")
    d = json.load(open(acfg))
    d["base_model_name_or_path"] = "../../../encoder/" + name
    json.dump(d, open(acfg, "w"), indent=2)
    if os.path.exists(os.path.join(out, "adapter", "README.md")):
        os.remove(os.path.join(out, "adapter", "README.md"))
    pm = pm.double()
    pm.eval()
    ids = ref["input_ids"].long()
    mask = ref["attention_mask"].long()
    labels = ref["labels"].long()
    kw = {"input_ids": ids, "attention_mask": mask}
    if name.startswith("bert"):
        kw["token_type_ids"] = ref["token_type_ids"].long()
    res = pm(**kw, labels=labels)
    res.loss.backward()
    tensors = {"logits": res.logits.detach().float(), "loss": res.loss.detach().float().reshape(1)}
    for n, p in pm.named_parameters():
        if p.requires_grad:
            key = n.replace(".default", "").replace("modules_to_save.", "")
            tensors["grad." + key] = p.grad.detach().float().contiguous()
    merged = pm.merge_and_unload()
    with torch.no_grad():
        tensors["merged_logits"] = merged(**kw).logits.float()
    save_file(tensors, os.path.join(out, "ref.safetensors"))
    keys = sorted(k for k in tensors if k.startswith("grad."))
    print(f"{name}: {len(keys)} gradients, loss {tensors['loss'].item():.6f}; adapter keys:",
          sorted(load_file(os.path.join(out, 'adapter', 'adapter_model.safetensors')).keys())[:3], "...")


def main():
    for i, (name, targets) in enumerate(CASES.items()):
        make(name, targets, 1000 + i)


if __name__ == "__main__":
    sys.exit(main())
