#!/usr/bin/env python3
"""Write the beam-search references of tests/test_beam.c: transformers' generate(num_beams=N,
do_sample=False) on the small committed decoders (tests/fixtures/decoder/gpt2_tiny, llama_gqa), the
gpt2_tiny LoRA adapter (tests/fixtures/lora/gpt2_tiny_attn, through PEFT) and the embedded stories260K.

Usage (from the repository root; needs torch, transformers, peft: ./scripts/setup.sh --python):
    python3 tests/parity/make_beam_fixtures.py

Writes tests/fixtures/beam/cases.json: a list of cases
    {"name", "model", "adapter" (or null), "prompt": [ids], "num_beams", "length_penalty",
     "early_stopping": false | true | "never", "max_new_tokens", "num_return_sequences",
     "no_repeat_ngram_size", "eos_token_id",
     "expected": [{"ids": [generated ids, the final EOS included], "score": sequences_scores}, ...]}
Each hypothesis's generated length is read from beam_indices (the -1 padding after it is not an id).
Random-weight models rarely pick their own EOS, so the cases that must end at EOS name as eos_token_id a
token the model's best hypothesis produces a few steps in (the cases record how many hypotheses ended at
EOS; the script checks there are some). Everything is deterministic: rerunning rewrites the same file.
"""
import json
import os

import torch
import transformers
from transformers import AutoModelForCausalLM

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "beam", "cases.json")

MODELS = {
    "gpt2_tiny": ("tests/fixtures/decoder/gpt2_tiny", None),
    "llama_gqa": ("tests/fixtures/decoder/llama_gqa", None),
    "gpt2_tiny_lora": ("tests/fixtures/decoder/gpt2_tiny", "tests/fixtures/lora/gpt2_tiny_attn/adapter"),
    "stories260K": ("models/stories260K", None),
}

# (num_beams, length_penalty, early_stopping, max_new_tokens, num_return_sequences, no_repeat_ngram_size, eos)
# eos: "model" = the model's own EOS, "hit" = a token the best hypothesis reaches a few steps in
SETTINGS = [
    (4, 1.0, False, 12, 1, 0, "model"),
    (3, 1.0, False, 10, 3, 0, "hit"),
    (4, 0.6, True, 10, 2, 0, "hit"),
    (4, 2.0, "never", 9, 4, 0, "hit"),
    (2, 0.0, "never", 8, 2, 0, "hit"),
    (5, -0.5, False, 7, 3, 0, "hit"),
    (4, 1.0, False, 14, 2, 2, "model"),
    (6, 1.0, True, 6, 6, 0, "hit"),
]


def load(model_dir, adapter):
    m = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, model_dir), torch_dtype=torch.float32)
    if adapter:
        from peft import PeftModel
        m = PeftModel.from_pretrained(m, os.path.join(ROOT, adapter))
    m.eval()
    return m


def run(m, prompt, nb, lp, es, mnt, nrs, ngram, eos):
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=nb, do_sample=False,
                         length_penalty=lp, early_stopping=es, max_new_tokens=mnt, num_return_sequences=nrs,
                         no_repeat_ngram_size=ngram, eos_token_id=eos, pad_token_id=eos,
                         return_dict_in_generate=True, output_scores=True, min_length=0,
                         repetition_penalty=1.0, top_k=None, top_p=None, temperature=None)
    res = []
    for i in range(nrs):
        n = int((out.beam_indices[i] != -1).sum())
        gen = out.sequences[i, len(prompt):len(prompt) + n].tolist()
        res.append({"ids": gen, "score": float(out.sequences_scores[i])})
    return res


def main():
    g = torch.Generator().manual_seed(1234)
    cases = []
    for name, (model_dir, adapter) in MODELS.items():
        m = load(model_dir, adapter)
        V = m.config.vocab_size
        model_eos = m.config.eos_token_id
        prompts = [torch.randint(3, V, (n,), generator=g).tolist() for n in (5, 8)]
        for pi, prompt in enumerate(prompts):
            # the token a 4-beam search reaches at step 4 (with the model's EOS): the "hit" EOS
            probe = run(m, prompt, 4, 1.0, False, 8, 1, 0, model_eos)[0]["ids"]
            hit_eos = probe[3] if len(probe) > 3 else probe[-1]
            for si, (nb, lp, es, mnt, nrs, ngram, eos_kind) in enumerate(SETTINGS):
                eos = model_eos if eos_kind == "model" else hit_eos
                exp = run(m, prompt, nb, lp, es, mnt, nrs, ngram, eos)
                cases.append({
                    "name": f"{name}/p{pi}/s{si}", "model": model_dir, "adapter": adapter, "prompt": prompt,
                    "num_beams": nb, "length_penalty": lp, "early_stopping": es, "max_new_tokens": mnt,
                    "num_return_sequences": nrs, "no_repeat_ngram_size": ngram, "eos_token_id": eos,
                    "ended_at_eos": sum(1 for h in exp if h["ids"] and h["ids"][-1] == eos),
                    "expected": exp,
                })
    n_eos = sum(c["ended_at_eos"] for c in cases)
    assert n_eos > 10, "too few hypotheses end at EOS"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"{OUT}: {len(cases)} cases, {n_eos} hypotheses end at EOS")


if __name__ == "__main__":
    main()
