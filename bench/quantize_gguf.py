#!/usr/bin/env python3
"""bench/quantize_gguf.py SRC.gguf DST.gguf TYPE — llama.cpp's own quantizer (llama-cpp-python's
llama_model_quantize) with every tensor of TYPE (q8_0, q4_0, q4_k, bf16): `pure`, so that the file holds one type
and the bench compares like with like (llama.cpp's default mixes would put Q6_K in the head)."""
import sys
import llama_cpp

src, dst, typ = sys.argv[1], sys.argv[2], sys.argv[3].lower()
ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
         "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S, "bf16": llama_cpp.LLAMA_FTYPE_MOSTLY_BF16}[typ]
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = ftype
p.pure = True
p.nthread = 2
rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), p)
if rc != 0:
    sys.exit(f"llama_model_quantize({src}, {typ}) failed: {rc}")
