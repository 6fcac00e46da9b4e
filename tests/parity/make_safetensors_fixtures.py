#!/usr/bin/env python3
"""Fixtures for tests/test_safetensors.c, written with torch + safetensors (and transformers).

    python3 tests/parity/make_safetensors_fixtures.py            # (re)writes tests/fixtures/safetensors/
    python3 tests/parity/make_safetensors_fixtures.py --verify F # checks a file written by the C writer

Writes (all tiny, deterministic):
  upcast.safetensors   F32, F16, BF16, I32, I64 tensors, including special values (signed zero,
                       subnormals, max, inf, nan), and "<name>.expect" tensors holding torch's own
                       upcast (F32) or narrowing (I32), which the C reader must match bit for bit.
                       "i64_big" holds values outside int32 (ft_st_read_i32 must refuse it).
  sharded/             model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json, the
                       layout transformers uses; values follow shard_value() so C can recompute them.
  hf_tiny_gpt2/        a tiny randomly initialised GPT-2 saved by transformers' save_pretrained with a
                       small max_shard_size: the real library's sharded output; checksums.txt lists
                       each tensor's shard, element count and float64 sum as read by safetensors.

--verify F loads F (written by the C test with FT_ST_KEEP=F) with safetensors.safe_open and
checks every tensor against roundtrip_value(), the header order, and the 8-byte padding.
"""
import json
import os
import struct
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "safetensors")


def upcast_fixture(path):
    g = torch.Generator().manual_seed(1234)
    f32 = torch.randn(3, 4, generator=g)
    # 42 elements: the C reader converts 8 at a time with F16C, then a scalar tail of 2.
    special16 = [0.0, -0.0, 1.0, -2.0, 65504.0, -65504.0, 6.103515625e-05, 5.960464477539063e-08,
                 -3.0e-06, 1.0e-07, float("inf"), float("-inf"), 0.333251953125, 1.0e-4]
    f16 = torch.cat([torch.tensor(special16), torch.randn(26, generator=g) * 10,
                     torch.tensor([float("nan"), 2.0e-7])]).to(torch.float16).reshape(2, 3, 7)
    special_bf = [0.0, -0.0, 1.0, -2.0, 3.3895313892515355e38, 1.0e-38, 9.18e-41, float("inf"),
                  float("-inf"), float("nan")]
    bf16 = torch.cat([torch.tensor(special_bf), torch.randn(35, generator=g) * 1000]).to(torch.bfloat16).reshape(5, 9)
    i64 = torch.tensor([[0, 1, -1, 50256, 2**31 - 1], [-(2**31), 7, 123456789, -42, 3]], dtype=torch.int64)
    i32 = torch.tensor([5, -6, 2**31 - 1, -(2**31)], dtype=torch.int32)
    i64_big = torch.tensor([1, 2**40, 3], dtype=torch.int64)
    tensors = {
        "f32": f32, "f16": f16, "bf16": bf16, "i64": i64, "i32": i32, "i64_big": i64_big,
        "f32.expect": f32.clone(), "f16.expect": f16.float(), "bf16.expect": bf16.float(),
        "i64.expect": i64.to(torch.int32),
    }
    save_file(tensors, path, metadata={"format": "pt"})  # one key: Rust writes a HashMap, so several keys come out in random order


# Names, dtypes and shapes of the hand-made sharded fixture; tests/test_safetensors.c has the same list.
SHARDED = [
    ("embed.weight", torch.float32, (16, 8), 1),
    ("layers.0.w", torch.float16, (8, 8), 1),
    ("layers.0.b", torch.float32, (8,), 1),
    ("layers.1.w", torch.bfloat16, (8, 8), 2),
    ("layers.1.b", torch.float32, (8,), 2),
    ("norm.weight", torch.float32, (8,), 2),
]


def shard_value(i, k):
    """Element i of tensor k: multiples of 1/8 in [-1.125, 1.125], exact in F16 and BF16."""
    return (((i * 7 + k * 3) % 19) - 9) * 0.125


def sharded_fixture(d):
    os.makedirs(d, exist_ok=True)
    shards = {1: {}, 2: {}}
    for k, (name, dt, shape, shard) in enumerate(SHARDED):
        n = 1
        for s in shape:
            n *= s
        shards[shard][name] = torch.tensor([shard_value(i, k) for i in range(n)], dtype=torch.float32).to(dt).reshape(shape)
    weight_map, total = {}, 0
    for s, ts in shards.items():
        fname = f"model-{s:05d}-of-00002.safetensors"
        save_file(ts, os.path.join(d, fname), metadata={"format": "pt"})
        for name, t in ts.items():
            weight_map[name] = fname
            total += t.numel() * t.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def hf_fixture(d):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=32, n_positions=16, n_embd=8, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg)
    model.save_pretrained(d, max_shard_size="4KB")
    for extra in ("config.json", "generation_config.json"):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)  # only the weights matter here
    # What the C test checks per tensor, computed from the files transformers wrote.
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    with open(os.path.join(d, "checksums.txt"), "w") as out:
        out.write("# name shard numel sum(float64) -- made by make_safetensors_fixtures.py\n")
        for name, shard in weight_map.items():
            with safe_open(os.path.join(d, shard), framework="pt") as f:
                t = f.get_tensor(name)
            out.write(f"{name} {shard} {t.numel()} {t.double().sum().item():.17g}\n")


# ---- --verify: the C writer's round-trip file ----
# Same list as roundtrip_tensors() in tests/test_safetensors.c.
ROUNDTRIP = [
    ("w.f32", "F32", (3, 5)), ("w.f16", "F16", (2, 9)), ("w.bf16", "BF16", (4, 3)),
    ("ids.i32", "I32", (7,)), ("ids.i64", "I64", (2, 3)), ("q.i8", "I8", (10,)), ("q.u8", "U8", (3, 3)),
    ("scalar", "F32", ()), ("empty", "F32", (0, 4)), ("deep", "F32", (1, 2, 1, 2, 1, 2, 1, 2)),
    ('weird "name"\\x', "BF16", (2,)),
]


def roundtrip_value(dtype, i, k):
    if dtype in ("F32", "F16", "BF16"):
        return ((i % 17) - 8) * 0.5 + k
    if dtype == "I32":
        return (i % 23) * 100000 - 7 * k
    if dtype == "I64":
        return (i % 23) * 10**12 - 7 * k
    if dtype == "I8":
        return (i % 23) - 11 - k
    return (i * 37 + k) % 256  # U8


def verify(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    header = json.loads(raw[8:8 + n])
    keys = list(header.keys())
    assert keys[0] == "__metadata__", keys[:2]
    assert keys[1:] == [r[0] for r in ROUNDTRIP], keys
    bad = 0
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        print(f"metadata: {meta}")
        for k, (name, dtype, shape) in enumerate(ROUNDTRIP):
            t = f.get_tensor(name)
            want = torch.tensor([roundtrip_value(dtype, i, k) for i in range(t.numel())], dtype=torch.float64)
            got = t.reshape(-1).to(torch.float64)
            ok = tuple(t.shape) == shape and str(t.dtype) == {
                "F32": "torch.float32", "F16": "torch.float16", "BF16": "torch.bfloat16", "I32": "torch.int32",
                "I64": "torch.int64", "I8": "torch.int8", "U8": "torch.uint8"}[dtype] and torch.equal(got, want)
            bad += not ok
            print(f"  {name!r:22} {str(t.dtype):15} {str(tuple(t.shape)):26} {'OK' if ok else 'FAIL'}")
    print(f"{len(ROUNDTRIP) - bad} OK, {bad} FAIL")
    return bad == 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        sys.exit(0 if verify(sys.argv[2]) else 1)
    os.makedirs(OUT, exist_ok=True)
    upcast_fixture(os.path.join(OUT, "upcast.safetensors"))
    sharded_fixture(os.path.join(OUT, "sharded"))
    hf_fixture(os.path.join(OUT, "hf_tiny_gpt2"))
    for root, _, files in os.walk(OUT):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            print(f"{os.path.relpath(p, OUT):50} {os.path.getsize(p):7d} bytes")


if __name__ == "__main__":
    main()
