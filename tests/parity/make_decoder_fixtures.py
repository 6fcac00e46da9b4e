#!/usr/bin/env python3
"""Write small random-weight decoder models (Hugging Face directories) plus
PyTorch/transformers reference tensors for the C parity tests.

Usage (from the repository root):
    python3 tests/parity/make_decoder_fixtures.py            # all configurations
    python3 tests/parity/make_decoder_fixtures.py gpt2_tiny  # only the named ones

For each configuration NAME it writes tests/fixtures/decoder/NAME/:
    config.json, generation_config.json       as model.save_pretrained writes them
    model.safetensors                         (or model-0000X-of-00002.safetensors +
                                              model.safetensors.index.json for gpt2_sharded)
    ref.safetensors                           reference tensors, see tests/parity/README.md

References (logits, loss, gradients, AdamW losses) come from the float64 model;
greedy generation from the float32 model with the same weights. Everything is
seeded, so rerunning rewrites byte-identical files.
"""
import json
import math
import os
import shutil
import sys
import types

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, GPT2Config, LlamaConfig,
                          MistralConfig, Qwen2Config)
import transformers

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "decoder")

IGNORE = -100
GEN_PROMPT_LEN = 8
GEN_NEW_TOKENS = 24
ADAMW_STEPS = 10
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
NO_DECAY_EMBEDDINGS = ("wte", "wpe", "embed_tokens")
NORM_BIAS_JITTER = 0.1  # 1-D params (norm weights, biases) get +N(0, 0.1^2)


def gpt2_config(**kw):
    base = dict(n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                summary_first_dropout=0.0, initializer_range=0.3)
    base.update(kw)
    return GPT2Config(**base)


def llama_like(cls, **kw):
    base = dict(attention_dropout=0.0, initializer_range=0.3, bos_token_id=1,
                eos_token_id=2)
    base.update(kw)
    return cls(**base)


# name -> (config, B, T, extra options)
CONFIGS = {
    "gpt2_tiny": (lambda: gpt2_config(n_layer=2, n_embd=64, n_head=4, vocab_size=320,
                                      bos_token_id=319, eos_token_id=319), 2, 16, {}),
    "gpt2_odd": (lambda: gpt2_config(n_layer=3, n_embd=48, n_head=3, vocab_size=777,
                                     layer_norm_epsilon=1e-6,
                                     bos_token_id=776, eos_token_id=776), 3, 11, {}),
    "gpt2_noprefix": (lambda: gpt2_config(n_layer=2, n_embd=32, n_head=2, vocab_size=300,
                                          bos_token_id=299, eos_token_id=299),
                      2, 16, {"noprefix_bf16": True}),
    # same layout as gpt2_tiny, narrower (n_embd 32) to keep the fixtures small
    "gpt2_sharded": (lambda: gpt2_config(n_layer=2, n_embd=32, n_head=4, vocab_size=320,
                                         bos_token_id=319, eos_token_id=319),
                     2, 16, {"shards": 2}),
    "llama_gqa": (lambda: llama_like(LlamaConfig, vocab_size=512, hidden_size=64,
                                     intermediate_size=172, num_hidden_layers=3,
                                     num_attention_heads=8, num_key_value_heads=4,
                                     rms_norm_eps=1e-5, max_position_embeddings=128,
                                     rope_parameters={"rope_type": "default",
                                                      "rope_theta": 10000.0},
                                     tie_word_embeddings=False), 2, 16, {}),
    "llama_rope_llama3_tied": (lambda: llama_like(
        LlamaConfig, vocab_size=320, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        rms_norm_eps=1e-5, max_position_embeddings=256, tie_word_embeddings=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}), 2, 40, {}),
    "llama_rope_linear": (lambda: llama_like(
        LlamaConfig, vocab_size=320, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        rms_norm_eps=1e-5, max_position_embeddings=256, tie_word_embeddings=False,
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
        2, 40, {}),
    "qwen2": (lambda: llama_like(Qwen2Config, vocab_size=600, hidden_size=64,
                                 intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 rms_norm_eps=1e-6, max_position_embeddings=128,
                                 use_sliding_window=False, tie_word_embeddings=True,
                                 bos_token_id=598, eos_token_id=599), 2, 16, {}),
    # head_dim 16 != hidden_size / num_attention_heads (8), as in Mistral-Nemo
    "mistral": (lambda: llama_like(MistralConfig, vocab_size=400, hidden_size=32,
                                   intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2,
                                   head_dim=16, rms_norm_eps=1e-5,
                                   max_position_embeddings=128, sliding_window=None,
                                   tie_word_embeddings=False), 2, 16, {}),
}


def is_llama_family(model):
    return hasattr(model, "model") and hasattr(model.model, "rotary_emb")


def full_float64(model):
    """transformers' Llama-family code computes three things in float32 even
    for a float64 model: the RoPE angles and cos/sin, RMSNorm, and the softmax
    of eager attention (together about 1e-5 noise on these logits). For the
    references, make them float64: cos/sin from the same inv_freq values (the
    float32 ones the model holds, stored as `inv_freq`), RMSNorm in the input
    dtype, and SDPA attention (computes in its input dtype). GPT-2 needs none
    of this. The float32 model used for generation is left stock."""
    if not is_llama_family(model):
        return model
    model.set_attn_implementation("sdpa")
    rot = model.model.rotary_emb

    def rope_forward(self, x, position_ids):
        freqs = position_ids[..., None].to(torch.float64) * self.inv_freq.to(torch.float64)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(x.dtype), sin.to(x.dtype)

    def rmsnorm_forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.variance_epsilon))

    rot.forward = types.MethodType(rope_forward, rot)
    n_norms = 0
    for m in model.modules():
        if type(m).__name__.endswith("RMSNorm"):
            m.forward = types.MethodType(rmsnorm_forward, m)
            n_norms += 1
    assert n_norms == 2 * model.config.num_hidden_layers + 1
    return model


def build_model(config, seed):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager",
                                             dtype=torch.float32)
    # Default init leaves biases at 0 and norm weights at 1, which would hide
    # loader bugs on those tensors: jitter every 1-D parameter.
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(NORM_BIAS_JITTER * torch.randn_like(p))
    model.eval()
    return model


def make_batch(B, T, V, seed):
    g = torch.Generator().manual_seed(seed + 1)
    input_ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.full((B, T), IGNORE, dtype=torch.long)
    targets[:, :-1] = input_ids[:, 1:]
    # a few deliberately ignored positions (besides the last one of each row)
    for b, t in [(0, 3), (B - 1, T // 2), (min(1, B - 1), 0)]:
        targets[b, t] = IGNORE
    # HF labels: label[t] is the target of position t-1 (HF shifts internally)
    labels = input_ids.clone()
    labels[:, 1:] = targets[:, :-1]
    return input_ids, targets, labels


def ce_loss(logits, targets):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                           ignore_index=IGNORE, reduction="mean")


def adamw_groups(model):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        is_emb = any(f".{e}." in f".{n}" for e in NO_DECAY_EMBEDDINGS)
        (decay if p.ndim >= 2 and not is_emb else no_decay).append((n, p))
    return decay, no_decay


def adamw_losses(model64, input_ids, targets):
    decay, no_decay = adamw_groups(model64)
    opt = torch.optim.AdamW(
        [{"params": [p for _, p in decay], "weight_decay": ADAMW["weight_decay"]},
         {"params": [p for _, p in no_decay], "weight_decay": 0.0}],
        lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"],
        foreach=False)
    losses = []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        loss = ce_loss(model64(input_ids).logits, targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses, [n for n, _ in decay]


def greedy_reference(model32, model64, V, seed):
    g = torch.Generator().manual_seed(seed + 2)
    prompt = torch.randint(0, V, (1, GEN_PROMPT_LEN), generator=g)
    with torch.no_grad():
        out = model32.generate(prompt, max_new_tokens=GEN_NEW_TOKENS, do_sample=False,
                               min_new_tokens=0, return_dict_in_generate=True,
                               output_logits=True, pad_token_id=V - 1)
    seq = out.sequences[0]
    assert seq.numel() == GEN_PROMPT_LEN + GEN_NEW_TOKENS, "generation stopped early (eos?)"
    margins = []
    for step_logits in out.logits:
        top2 = step_logits[0].double().topk(2).values
        margins.append((top2[0] - top2[1]).item())
    # cross-check: float64 full recompute (no KV cache) picks the same tokens
    with torch.no_grad():
        logits64 = model64(seq[None, :-1]).logits[0, GEN_PROMPT_LEN - 1:]
    assert torch.equal(logits64.argmax(-1), seq[GEN_PROMPT_LEN:]), \
        "float64 recompute disagrees with float32 greedy generate"
    top2_64 = logits64.topk(2, dim=-1).values
    margins64 = (top2_64[:, 0] - top2_64[:, 1]).tolist()
    return prompt[0], seq, min(margins), min(margins64)


def grad_key(name, noprefix):
    if noprefix and name.startswith("transformer."):
        return name[len("transformer."):]
    return name


ST_DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.bfloat16: "BF16",
             torch.float16: "F16"}


def save_sorted_safetensors(tensors, path, metadata):
    """safetensors writer with a sorted header, so reruns are byte-identical
    (safetensors.torch.save_file serializes __metadata__ from a hash map, whose
    order changes from run to run). Tensors are laid out in name order."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(len(hjson).to_bytes(8, "little"))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def checkpoint_files(d):
    return sorted(f for f in os.listdir(d) if f.startswith("model") and f.endswith(".safetensors"))


def load_checkpoint(d):
    tensors = {}
    for f in checkpoint_files(d):
        tensors.update(load_file(os.path.join(d, f)))
    return tensors


def rewrite_noprefix_bf16(d, config):
    """Strip the `transformer.` prefix (GPT2Model-style keys) and add the
    non-parameter attention buffers old GPT-2 checkpoints carry."""
    path = os.path.join(d, "model.safetensors")
    tensors = load_file(path)
    out = {}
    for k, v in tensors.items():
        out[grad_key(k, True)] = v.contiguous()
    P = config.n_positions
    causal = torch.tril(torch.ones(P, P, dtype=torch.bfloat16)).view(1, 1, P, P)
    for i in range(config.n_layer):
        out[f"h.{i}.attn.bias"] = causal.clone()
        out[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4, dtype=torch.bfloat16)
    save_file(out, path, metadata={"format": "pt"})


def make_fixture(name, seed):
    make_cfg, B, T, opts = CONFIGS[name]
    config = make_cfg()
    V = config.vocab_size
    noprefix = opts.get("noprefix_bf16", False)
    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)

    model = build_model(config, seed)
    if noprefix:  # weights live in bf16: references use the rounded values
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())

    # --- save the checkpoint exactly as save_pretrained writes it
    if noprefix:
        model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
        model.float()
        rewrite_noprefix_bf16(d, config)
    elif opts.get("shards"):
        total = sum(p.numel() * 4 for p in model.parameters())
        # shards are filled greedily in parameter order: ~70% then the rest
        model.save_pretrained(d, safe_serialization=True, max_shard_size=int(total * 0.7))
        assert os.path.exists(os.path.join(d, "model.safetensors.index.json"))
        assert len(checkpoint_files(d)) == opts["shards"], checkpoint_files(d)
    else:
        model.save_pretrained(d, safe_serialization=True)
    ckpt = load_checkpoint(d)

    # the checkpoint must round-trip through transformers itself
    reloaded = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager",
                                                    dtype=torch.float32)
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), reloaded.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2), f"{name}: reload mismatch at {n1}"
    del reloaded

    model64 = build_model(config, seed).double()
    model64.load_state_dict(model.state_dict())
    model64.eval()
    full_float64(model64)
    assert model64.model.rotary_emb.inv_freq.dtype == torch.float64 if is_llama_family(model64) else True

    input_ids, targets, labels = make_batch(B, T, V, seed)

    # --- forward / loss / backward in float64
    out = model64(input_ids, labels=labels)
    logits = out.logits
    loss = ce_loss(logits, targets)
    hf_loss = out.loss.item()  # transformers computes it in float32
    assert abs(hf_loss - loss.item()) < 1e-5 * max(1.0, abs(loss.item())), (hf_loss, loss.item())
    model64.zero_grad(set_to_none=True)
    loss.backward()

    ref = {
        "input_ids": input_ids.to(torch.int32),
        "targets": targets.to(torch.int32),
        "logits": logits.detach().float(),
        "loss": loss.detach().float().reshape(1),
    }
    for n, p in model64.named_parameters():
        key = grad_key(n, noprefix)
        assert key in ckpt, f"{name}: {key} not in checkpoint"
        assert tuple(ckpt[key].shape) == tuple(p.shape), (key, ckpt[key].shape, p.shape)
        ref["grad." + key] = p.grad.detach().float().contiguous()
    n_params = sum(1 for _ in model64.named_parameters())
    extra = sorted(k for k in ckpt if "grad." + k not in ref)
    if noprefix:
        assert all(".attn.bias" in k or ".attn.masked_bias" in k for k in extra), extra
    else:
        assert not extra, f"{name}: checkpoint keys without a parameter: {extra}"

    if is_llama_family(model64):
        ref["inv_freq"] = model.model.rotary_emb.inv_freq.detach().float().contiguous()

    # --- AdamW trajectory (fresh float64 copy)
    model_opt = build_model(config, seed).double()
    model_opt.load_state_dict(model.state_dict())
    model_opt.eval()
    full_float64(model_opt)
    losses, decay_names = adamw_losses(model_opt, input_ids, targets)
    assert abs(losses[0] - loss.item()) < 1e-12
    ref["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)

    # --- greedy generation (float32 model), margins checked
    prompt, seq, min_margin, min_margin64 = greedy_reference(model, model64, V, seed)
    assert min_margin > 1e-3, f"{name}: top-2 margin {min_margin} too small"
    ref["gen_prompt"] = prompt.to(torch.int32).contiguous()
    ref["gen_greedy"] = seq.to(torch.int32).contiguous()

    meta = {
        "config_name": name,
        "B": str(B), "T": str(T), "vocab_size": str(V),
        "ignore_index": str(IGNORE),
        "loss_f64": repr(loss.item()),
        "adamw_losses_f64": json.dumps(losses),
        "lr": repr(ADAMW["lr"]), "beta1": repr(ADAMW["beta1"]),
        "beta2": repr(ADAMW["beta2"]), "eps": repr(ADAMW["eps"]),
        "weight_decay": repr(ADAMW["weight_decay"]),
        "adamw_steps": str(ADAMW_STEPS),
        "weight_decay_rule": "ndim>=2 and not an embedding (wte/wpe/embed_tokens); else 0",
        "decay_params": json.dumps([grad_key(n, noprefix) for n in decay_names]),
        "gen_max_new_tokens": str(GEN_NEW_TOKENS),
        "gen_min_top2_margin_f32": repr(min_margin),
        "weights_dtype": "bfloat16" if noprefix else "float32",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "seed": str(seed),
    }
    ref_path = os.path.join(d, "ref.safetensors")
    save_sorted_safetensors(ref, ref_path, meta)
    back = load_file(ref_path)
    assert set(back) == set(ref) and all(torch.equal(back[k], ref[k]) for k in ref)

    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
    total = sum(sizes.values())
    print(f"{name}: params={sum(p.numel() for p in model.parameters())} grads={n_params} "
          f"loss={loss.item():.6f} (hf f32 {hf_loss:.6f}) adamw[9]={losses[-1]:.6f} "
          f"min_top2_margin f32={min_margin:.4g} f64={min_margin64:.4g} total={total}")
    for f, s in sizes.items():
        print(f"    {s:9d}  {f}")
    return total


def main(argv):
    names = argv[1:] or list(CONFIGS)
    for n in names:
        if n not in CONFIGS:
            sys.exit(f"unknown configuration {n}; known: {', '.join(CONFIGS)}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    grand = 0
    for i, n in enumerate(CONFIGS):
        if n in names:
            grand += make_fixture(n, seed=1000 + 17 * i)
    print(f"total fixture size: {grand} bytes ({grand / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(sys.argv)
