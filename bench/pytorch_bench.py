#!/usr/bin/env python3
"""PyTorch baseline for the finetune benchmarks (CPU, float32).

Times, for a randomly initialised causal LM (default: GPT-2 124M shape):
  * one full training step  = forward + loss + backward + AdamW(lr 1e-4) step
    on batch B x seq T of random tokens; --warmup (1) untimed steps, then the
    median of --steps steps;  prints `pytorch train: X tok/s`   (X = B*T / step)
  * greedy KV-cache decoding of 64 new tokens from a 16-token prompt, batch 1;
    --warmup untimed runs, then the median of --steps runs (prefill included);
                             prints `pytorch generate: X tok/s` (X = 64 / run)
  * at the end, the peak resident set size of this process (resource.getrusage
    ru_maxrss; MB = 2^20 bytes; the Python interpreter and torch included):
                             prints `pytorch peak_rss: X MB`
    Run one configuration per process for a meaningful peak (bench/memory.sh does).

--precision bf16 runs each training step's forward and loss under CPU autocast
(torch.autocast("cpu", dtype=torch.bfloat16): matmuls in bf16 through oneDNN,
f32 weights and optimizer), PyTorch's mixed precision on a CPU; the lines then
read `pytorch train (autocast bf16): ...`. Generation stays f32.

--lora (= --method lora) wraps the model with PEFT: LoraConfig(r, lora_alpha,
target_modules, lora_dropout=0), get_peft_model, AdamW over the trainable
(adapter) parameters only — the same setting as `finetune bench --method lora`.
Targets default to GPT-2 c_attn / Llama-family q_proj,v_proj (PEFT's defaults).

Usage:
  python3 bench/pytorch_bench.py [--batch-size 4] [--seq-len 256] [--steps 3]
                                 [--warmup 1] [--config path/to/config.json|dir]
                                 [--skip-generate] [--skip-train] [--threads N]
                                 [--lora | --method full|lora] [--lora-r 8]
                                 [--lora-alpha 16] [--lora-targets c_attn]
                                 [--gen-dtype float32|bfloat16] [--precision f32|bf16]
--config takes a Hugging Face config.json (GPT-2 or Llama family) to time
another shape. Versions, thread count and the relevant environment go to stderr.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config

DROPOUT_KEYS = ("attn_pdrop", "resid_pdrop", "embd_pdrop", "summary_first_dropout",
                "attention_dropout", "hidden_dropout", "dropout")
ENV_KEYS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "KMP_AFFINITY", "OMP_PROC_BIND")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_config(path):
    if path is None:
        return GPT2Config()  # 12 layers, 768, 12 heads, vocab 50257, n_positions 1024
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path) as f:
        d = json.load(f)
    model_type = d.pop("model_type", None)
    if model_type is None:
        sys.exit(f"{path}: config has no model_type")
    return AutoConfig.for_model(model_type, **d)


def build_model(config):
    for k in DROPOUT_KEYS:
        if hasattr(config, k):
            setattr(config, k, 0.0)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def peak_rss_mb():
    # Linux reports ru_maxrss in KiB (macOS in bytes)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def add_lora(model, config, r, alpha, targets):
    """PEFT LoRA on a frozen base; returns (peft model, target list as given to PEFT)."""
    import peft
    from peft import LoraConfig, get_peft_model
    if not targets:
        targets = "c_attn" if config.model_type == "gpt2" else "q_proj,v_proj"
    target_modules = targets if targets == "all-linear" else [t for t in targets.replace(" ", ",").split(",") if t]
    lc = LoraConfig(r=r, lora_alpha=alpha, target_modules=target_modules, lora_dropout=0.0, bias="none",
                    task_type="CAUSAL_LM", fan_in_fan_out=(config.model_type == "gpt2"))  # GPT-2 Conv1D
    model = get_peft_model(model, lc)
    log(f"peft {peft.__version__}: LoRA r {r}, alpha {alpha}, dropout 0, targets {target_modules}")
    return model, target_modules


def time_train(model, vocab, B, T, steps, warmup, lr, bf16=False):
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        log(f"  train step {i}{' (warm-up)' if i < warmup else ''}: {dt * 1e3:.1f} ms, loss {loss.item():.4f}")
        if i >= warmup:
            times.append(dt)
    return statistics.median(times), min(times)


def time_generate(model, vocab, prompt_len, new_tokens, runs, warmup):
    model.eval()
    g = torch.Generator().manual_seed(2)
    prompt = torch.randint(0, vocab, (1, prompt_len), generator=g)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            out = model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, use_cache=True, pad_token_id=0)
            dt = time.perf_counter() - t0
            assert out.shape[1] == prompt_len + new_tokens
            log(f"  generate run {i}{' (warm-up)' if i < warmup else ''}: {dt * 1e3:.1f} ms")
            if i >= warmup:
                times.append(dt)
    return statistics.median(times), min(times)


def cast_for_generate(model, name):
    """--gen-dtype: the model generates in this dtype (bfloat16: weights, activations and KV cache all
    bf16, as `model.to(torch.bfloat16)` does; the comparison for `finetune bench --precision bf16`)."""
    if name == "float32":
        return model
    log(f"generate: model cast to torch.{name}")
    return model.to(getattr(torch, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3, help="timed steps/runs after the warm-up")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps/runs first (default 1)")
    ap.add_argument("--config", help="HF config.json (or its directory) for another shape")
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="default: all cores this process may use")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--gen-dtype", choices=("float32", "bfloat16"), default="float32",
                    help="dtype of the generation timing (bfloat16: the whole model cast, after training)")
    ap.add_argument("--method", choices=("full", "lora"), default="full")
    ap.add_argument("--lora", action="store_true", help="PEFT LoRA on a frozen base (= --method lora)")
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--precision", choices=("f32", "bf16"), default="f32",
                    help="bf16: the training step under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--lora-targets", default="",
                    help="comma-separated module names or all-linear (default: c_attn / q_proj,v_proj)")
    args = ap.parse_args()
    use_lora = args.lora or args.method == "lora"
    if use_lora and (args.lora_r <= 0 or args.lora_alpha <= 0):
        sys.exit("--lora-r and --lora-alpha must be positive")
    if args.steps < 1 or args.warmup < 0:
        sys.exit("--steps must be >= 1 and --warmup >= 0")

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads or cores
    torch.set_num_threads(threads)

    config = load_config(args.config)
    max_pos = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if max_pos is not None and args.seq_len > max_pos:
        sys.exit(f"--seq-len {args.seq_len} exceeds the model's {max_pos} positions")
    model = build_model(config)
    if use_lora:
        model, _ = add_lora(model, config, args.lora_r, args.lora_alpha, args.lora_targets)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)

    log(f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"python {platform.python_version()}")
    log(f"threads: {torch.get_num_threads()} (cores available {cores}), "
        f"mkl {torch.backends.mkl.is_available()}, mkldnn {torch.backends.mkldnn.is_available()}")
    log("env: " + ", ".join(f"{k}={os.environ.get(k, '<unset>')}" for k in ENV_KEYS))
    log(f"model: {type(model).__name__} ({config.model_type}), {n_params / 1e6:.2f}M params "
        f"({n_train} trainable), vocab {config.vocab_size}, attn {model.config._attn_implementation}, float32")
    log(f"train: batch {args.batch_size} x seq {args.seq_len}, AdamW lr {args.lr}, "
        f"{args.warmup} warm-up + median of {args.steps}")

    if not args.skip_train:
        bf16 = args.precision == "bf16"
        t, tmin = time_train(model, config.vocab_size, args.batch_size, args.seq_len, args.steps,
                             args.warmup, args.lr, bf16)
        tok = args.batch_size * args.seq_len
        print(f"pytorch train{' (autocast bf16)' if bf16 else ''}: {tok / t:.1f} tok/s (median {t * 1e3:.1f} ms/step, best {tok / tmin:.1f} tok/s; "
              f"batch {args.batch_size} x seq {args.seq_len})", flush=True)

    if not args.skip_generate:
        log(f"generate: greedy, KV cache, batch 1, prompt {args.prompt_len}, "
            f"{args.gen_tokens} new tokens, {args.warmup} warm-up + median of {args.steps}")
        model = cast_for_generate(model, args.gen_dtype)
        t, tmin = time_generate(model, config.vocab_size, args.prompt_len, args.gen_tokens,
                                args.steps, args.warmup)
        print(f"pytorch generate: {args.gen_tokens / t:.1f} tok/s (median {t * 1e3:.1f} ms for "
              f"{args.gen_tokens} tokens after a {args.prompt_len}-token prompt, best "
              f"{args.gen_tokens / tmin:.1f} tok/s)", flush=True)

    print(f"pytorch peak_rss: {peak_rss_mb():.1f} MB", flush=True)


if __name__ == "__main__":
    main()
