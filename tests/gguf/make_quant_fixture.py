#!/usr/bin/env python3
"""make_quant_fixture.py — writes tests/fixtures/gguf/quant_vectors.safetensors, the reference blocks that
tests/test_gguf_export.c compares ggml_quantize.c against.

  x        F32 [ROWS, 512]  test rows: normal values at several scales, zeros, ties of +/- maxima, values on
                            rounding boundaries, one constant row, tiny (subnormal-scale) values
  q8_0, q4_0, q5_0         U8 [bytes]: gguf-py's numpy quantizers (gguf.quants.quantize), checked equal to
                           llama.cpp's own (ggml_quantize_chunk from llama-cpp-python's libggml-base)
  q4_k                     U8 [bytes]: llama.cpp's ggml_quantize_chunk (gguf-py has no Q4_K quantizer)

Needs numpy, gguf and llama-cpp-python:  python3 tests/gguf/make_quant_fixture.py
"""
import ctypes, json, os, struct
import numpy as np
import gguf
import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf", "quant_vectors.safetensors")
K = 512


def rows():
    rng = np.random.default_rng(13)
    r = [rng.standard_normal(K) * s for s in (1.0, 0.02, 30.0)]
    r.append(np.zeros(K))
    t = rng.standard_normal(K)
    t[::32] = 3.0; t[5::32] = -3.0                   # +/- ties of the block maximum
    r.append(t)
    t = np.round(rng.standard_normal(K) * 8) / 8 * 1.5  # many values on rounding boundaries
    r.append(t)
    r.append(np.full(K, 0.7))                          # a constant row
    r.append(rng.standard_normal(K) * 1e-30)           # scales below the f16 range
    t = rng.uniform(0.0, 2.0, K)                       # positive only (Q4_K min 0)
    r.append(t)
    t = rng.standard_normal(K); t[:256] *= 1e-4       # one quiet super-block beside a loud one
    r.append(t)
    return np.stack(r).astype(np.float32)


def ggml_quantize(x, type_id):
    lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    n = lib.ggml_row_size(type_id, x.shape[1]) * x.shape[0]
    out = np.zeros(n, dtype=np.uint8)
    x = np.ascontiguousarray(x)
    lib.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
    return out


def main():
    x = rows()
    T = gguf.GGMLQuantizationType
    data = {"x": x}
    for name, t in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q5_0", T.Q5_0)):
        py = gguf.quants.quantize(x, t).reshape(-1).view(np.uint8)
        c = ggml_quantize(x, int(t))
        assert py.tobytes() == c.tobytes(), f"gguf-py and llama.cpp disagree on {name}"
        data[name] = py
    data["q4_k"] = ggml_quantize(x, int(T.Q4_K))
    header, blobs, off = {"__metadata__": {"source": "gguf-py quants + llama.cpp ggml_quantize_chunk"}}, [], 0
    for k, v in data.items():
        b = v.tobytes()
        header[k] = {"dtype": "F32" if v.dtype == np.float32 else "U8", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{OUT}: {x.shape[0]} rows of {K}, " + ", ".join(f"{k} {len(v.tobytes())} B" for k, v in data.items()))


if __name__ == "__main__":
    main()
