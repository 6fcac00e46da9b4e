#!/usr/bin/env python3
"""Makes, once, the model directories bench/serve.sh serves from both servers (the very same files):

  DIR/gpt2-124m/        GPT2LMHeadModel(GPT2Config()) random init (seed 0): the GPT-2 124M shape, with the
                        real GPT-2 tokenizer files (tests/fixtures/tokenizer/gpt2: vocab.json, merges.txt)
  DIR/minilm-cls/       all-MiniLM-L6-v2 (models/all-MiniLM-L6-v2) with a 2-label sequence-classification
                        head (seed 0; labels negative / positive), saved by transformers with its tokenizer
  DIR/adapters/a0..a7/  8 PEFT LoRA adapters for gpt2-124m (r 8, alpha 16, c_attn; random A and B, seeds
                        0..7), saved by peft (adapter_config.json + adapter_model.safetensors)

usage: serve_models.py DIR [--adapters 8]     (skips what is already there)
"""
import os
import shutil
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    n_adapters = int(sys.argv[sys.argv.index("--adapters") + 1]) if "--adapters" in sys.argv else 8
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    gpt2 = os.path.join(out, "gpt2-124m")
    if not os.path.exists(os.path.join(gpt2, "model.safetensors")):
        torch.manual_seed(0)
        m = GPT2LMHeadModel(GPT2Config())
        m.save_pretrained(gpt2, safe_serialization=True)
        tdir = os.path.join(root, "tests", "fixtures", "tokenizer", "gpt2")
        shutil.copy(os.path.join(tdir, "encoder.json"), os.path.join(gpt2, "vocab.json"))
        shutil.copy(os.path.join(tdir, "vocab.bpe"), os.path.join(gpt2, "merges.txt"))
        # vocab.json + merges.txt only: transformers and finetune both read them (no tokenizer.json needed)
        ids = AutoTokenizer.from_pretrained(gpt2)("Once upon a time").input_ids
        assert ids == [7454, 2402, 257, 640], ids
        print(f"made {gpt2}", file=sys.stderr)

    cls = os.path.join(out, "minilm-cls")
    if not os.path.exists(os.path.join(cls, "model.safetensors")):
        src = os.path.join(root, "models", "all-MiniLM-L6-v2")
        if not os.path.exists(os.path.join(src, "model.safetensors")):
            sys.exit("serve_models.py: models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh")
        torch.manual_seed(0)
        m = AutoModelForSequenceClassification.from_pretrained(
            src, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
        m.save_pretrained(cls, safe_serialization=True)
        AutoTokenizer.from_pretrained(src).save_pretrained(cls)
        print(f"made {cls}", file=sys.stderr)

    from peft import LoraConfig, get_peft_model
    base = None
    for i in range(n_adapters):
        d = os.path.join(out, "adapters", f"a{i}")
        if os.path.exists(os.path.join(d, "adapter_model.safetensors")):
            continue
        if base is None:
            base = GPT2LMHeadModel.from_pretrained(gpt2)
        torch.manual_seed(i)
        cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn"], lora_dropout=0.0, fan_in_fan_out=True,
                         init_lora_weights=False, task_type="CAUSAL_LM")
        pm = get_peft_model(base, cfg)
        pm.save_pretrained(d)
        base = pm.unload()   # the bare base again for the next adapter
        print(f"made {d}", file=sys.stderr)


if __name__ == "__main__":
    main()
