#!/usr/bin/env python3
"""Fixture for tests/test_ggml_more.c: random blocks of the ggml types finetune reads as f32 at load time
(Q4_1, Q5_0, Q5_1, Q5_K, Q6_K) and their values as gguf-py (PyPI `gguf`, llama.cpp's own Python package)
dequantizes them.

    python3 tests/parity/make_ggml_more_fixture.py   # writes tests/fixtures/ggml/dequant_more.bin

Layout (little-endian): u32 count of records; per record: u32 ggml type, u32 blocks, u32 bytes per block,
u32 values per block, the block bytes, then blocks * values f32 expected values.
The f16 scale fields hold finite random values (the rest of each block is random bytes)."""
import struct
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

rng = np.random.default_rng(20261206)
# type: (bytes per block, values per block, byte offsets of the f16 scale fields)
TYPES = {
    T.Q4_1: (20, 32, [0, 2]),
    T.Q5_0: (22, 32, [0]),
    T.Q5_1: (24, 32, [0, 2]),
    T.Q5_K: (176, 256, [0, 2]),
    T.Q6_K: (210, 256, [208]),
}
out = bytearray(struct.pack("<I", len(TYPES)))
for t, (nb, nv, f16s) in TYPES.items():
    blocks = 12
    raw = rng.integers(0, 256, size=(blocks, nb), dtype=np.uint8)
    for off in f16s:
        h = rng.normal(0, 0.05, size=blocks).astype(np.float16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(blocks, 2)
    vals = quants.dequantize(raw.reshape(-1), t).astype(np.float32).reshape(-1)
    assert vals.size == blocks * nv and np.all(np.isfinite(vals))
    out += struct.pack("<IIII", int(t), blocks, nb, nv) + raw.tobytes() + vals.tobytes()
path = Path(__file__).resolve().parents[1] / "fixtures" / "ggml" / "dequant_more.bin"
path.write_bytes(bytes(out))
print(f"wrote {path} ({len(out)} bytes)")
