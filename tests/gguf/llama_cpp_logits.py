#!/usr/bin/env python3
"""tests/gguf/llama_cpp_logits.py FILE.gguf OUT.bin ID [ID ...] — llama.cpp's logits (llama-cpp-python,
logits_all=True, one thread) for every position of the token ids, written as float32 [T, V] to OUT.bin.
Used by tests/test_gguf_llama_cpp.c; exits 3 when llama_cpp is not installed."""
import sys
try:
    import llama_cpp
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}", file=sys.stderr)
    sys.exit(3)

path, out, ids = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]
llm = llama_cpp.Llama(path, n_threads=1, n_threads_batch=1, n_ctx=max(64, len(ids) + 8), n_batch=512, logits_all=True, verbose=False,
                      type_k=0, type_v=0)  # f32 KV cache (llama.cpp defaults to f16: 1e-3 off the f32 math)
llm.eval(ids)
np.asarray(llm.scores[: len(ids)], dtype=np.float32).tofile(out)
