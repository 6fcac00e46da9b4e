#!/usr/bin/env python3
"""Writes tests/fixtures/ggml/dequant.bin: ggml Q8_0 / Q4_0 / Q4_K blocks and their values as gguf-py
(the GGUF reference in Python, PyPI `gguf`) dequantizes them, so test_ggml_kernels checks our formulas
against an independent implementation.

Q8_0 / Q4_0 blocks come from gguf.quants.quantize of random normal rows; Q4_K blocks are random bytes
(gguf-py has no Q4_K quantizer) with the two f16 scales set to plausible values.
Record layout (little-endian), repeated: u32 type, u32 rows, u32 cols, u32 nbytes, blocks[nbytes],
f32 values[rows * cols]."""
import struct, sys, os
import numpy as np
from gguf import quants, GGMLQuantizationType as T

rng = np.random.default_rng(1234)
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures", "ggml", "dequant.bin")
recs = []
rows, cols = 3, 512
for t in (T.Q8_0, T.Q4_0):
    x = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    x[0, 5] = 0.9   # an outlier block
    x[1, 32:64] = 0  # an all-zero block
    q = quants.quantize(x, t)
    recs.append((t, q, quants.dequantize(q, t)))
raw = rng.integers(0, 256, size=(rows, cols // 256, 144), dtype=np.uint8)
for r in range(rows):
    for b in range(cols // 256):
        d = np.float16(rng.uniform(1e-4, 2e-3)).view(np.uint16)
        dmin = np.float16(rng.uniform(1e-4, 2e-3)).view(np.uint16)
        raw[r, b, 0:2] = np.frombuffer(struct.pack("<H", int(d)), np.uint8)
        raw[r, b, 2:4] = np.frombuffer(struct.pack("<H", int(dmin)), np.uint8)
q = raw.reshape(rows, -1)
recs.append((T.Q4_K, q, quants.dequantize(q, T.Q4_K)))
with open(out, "wb") as f:
    for t, q, v in recs:
        qb = np.ascontiguousarray(q).tobytes()
        f.write(struct.pack("<IIII", int(t), rows, cols, len(qb)))
        f.write(qb)
        f.write(np.ascontiguousarray(v, dtype=np.float32).reshape(rows, cols).tobytes())
print("wrote", out)
