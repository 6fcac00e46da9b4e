#!/usr/bin/env python3
"""bench/llama_cpp_bench.py FILE.gguf [--threads 2] [--prompt-len 128] [--gen-tokens 128] [--reps 2] — llama.cpp's
speed on a GGUF file through llama-cpp-python, measured as `finetune bench --model` measures ours: one eval of
the prompt (prefill), then greedy single-token evals (decode); best of --reps after a warm-up. Prints the same
lines: `prefill: X tok/s`, `decode: Y tok/s`, `ids: ...`."""
import argparse, sys, time
import numpy as np
import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--prompt-len", type=int, default=128)
ap.add_argument("--gen-tokens", type=int, default=128)
ap.add_argument("--reps", type=int, default=2)
a = ap.parse_args()
llm = llama_cpp.Llama(a.model, n_threads=a.threads, n_threads_batch=a.threads, n_ctx=a.prompt_len + a.gen_tokens + 8,
                      n_batch=max(512, a.prompt_len), n_ubatch=max(512, a.prompt_len), logits_all=False, verbose=False)
V = llm.n_vocab()
prompt = [1 + (i * 7919) % (V - 1) for i in range(a.prompt_len)]
best_pp = best_tg = 0.0
for r in range(-1, a.reps):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    ids = []
    for t in range(a.gen_tokens):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(V,))
        ids.append(int(np.argmax(logits)))
        if t + 1 < a.gen_tokens:
            llm.eval([ids[-1]])
    t2 = time.perf_counter()
    pp, tg = a.prompt_len / (t1 - t0), (a.gen_tokens - 1) / (t2 - t1)
    print(f"bench: llama.cpp run {r + 1}: prefill {pp:.1f} tok/s, decode {tg:.1f} tok/s", file=sys.stderr)
    if r >= 0:
        best_pp, best_tg = max(best_pp, pp), max(best_tg, tg)
print(f"prefill: {best_pp:.2f} tok/s\ndecode: {best_tg:.2f} tok/s\nids: " + " ".join(map(str, ids)))
