#!/usr/bin/env python3
"""make_quant_fixtures.py — bit-exact references for tests/test_quant.c (NF4, 8-bit dynamic map,
blockwise 8-bit quantization, int8 rows), written to tests/fixtures/quant/quant_ref.safetensors.

The oracle is a numpy/torch re-implementation of bitsandbytes' published algorithm, written from
its CUDA kernels (csrc/kernels.cu: kQuantizeBlockwise, dQuantizeNF4, dQuantize, kDequantizeBlockwise)
and functional.py (create_dynamic_map, get_4bit_type, quantize_4bit with compress_statistics,
int8_vectorwise_quant / _dequant). Every float operation is done in float32 in the order the
kernels do it:
  NF4    absmax per 64, x * (1.0f/absmax) through the dQuantizeNF4 decision tree (x > t), element
         2i in the high nibble; dequant codebook[q] * absmax.
  DQ     offset = mean(absmax) (float64 sum in index order / n, rounded to float32 -- bnb uses
         torch's float32 mean(), whose summation order is torch's: reported below); (absmax - offset)
         quantized blockwise (256) with create_dynamic_map(); scale = code[q]*absmax2 + offset.
  8-bit  dQuantize: 7-step binary search from 127, then compare with the float midpoint.
  int8   q = round_half_even(x * (127/absmax_row)), deq = q * absmax * 7.874015718698502e-3.

Why not bitsandbytes itself: it has no CUDA here, and its CPU path (0.50.2) is a different
implementation that departs from the CUDA kernels in three places: (1) quantize_4bit bucketizes on
the float32 codebook midpoints, 4 of which are one ulp off the CUDA literals (inputs exactly on those
values get the other code); (2) it clamps absmax to 1e-38, so an all-zero block gets code 7 instead of
the CUDA kernel's NaN -> code 0 (both dequantize to zero); (3) its native 8-bit blockwise quantizer is
a lookup-table search that is not exact nearest (3 of 320 double-quant codes differ on random weights;
the CUDA dQuantize here is exact nearest). If the pip package is importable (not a project dependency:
`pip install --target /tmp/bnb bitsandbytes`, then PYTHONPATH=/tmp/bnb), the script cross-checks the
oracle against it and prints the result: identical codebook, dynamic map, NF4 codes and absmax apart
from (1) and (2), bit-identical NF4 / 8-bit / int8 dequantization and int8 quantization.
Deterministic: reruns write the same bytes, with or without bitsandbytes.

    python3 tests/parity/make_quant_fixtures.py
"""
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

f32 = np.float32
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "quant", "quant_ref.safetensors")

NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0], dtype=f32)

# dQuantizeNF4's literals, ascending (threshold k separates code k and k+1), as the CUDA source spells
# them. A C or CUDA compiler rounds each decimal literal straight to float32 (correctly rounded), which
# is not always what float32(float(s)) gives (decimal -> double -> float32 rounds twice): for k = 0, 8,
# 12, 14 the literal lies within 1e-17 of a float32 rounding tie. Those four thresholds are one ulp away
# from the float32 midpoints of the codebook, which bnb's torch fallback (bucketize) uses.
THR_LITERALS = ["-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
                "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
                "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
                "0.5016634166240692", "0.6427869200706482", "0.8614784181118011"]


def f32_from_decimal(s):
    """the float32 nearest to the decimal s (ties to even), as strtof / a compiler's literal parser"""
    from fractions import Fraction
    exact = Fraction(s)
    c = f32(float(exact))
    cands = [np.nextafter(c, f32(-np.inf)), c, np.nextafter(c, f32(np.inf))]
    return min(cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.array(v, f32).view(np.uint32)) & 1))


THR = np.array([f32_from_decimal(t) for t in THR_LITERALS], dtype=f32)
MIDPOINTS = ((NF4[:-1] + NF4[1:]) / f32(2)).astype(f32)


def nf4_code(x):
    """dQuantizeNF4, the decision tree literally (NaN compares false: code 0)."""
    t = THR
    def gt(k):
        return x > t[k]
    # leaves by the tree: level 1 t[7], level 2 t[11]/t[3], level 3 t[13]/t[9]/t[5]/t[1], level 4 the rest
    c = np.where(gt(7),
                 np.where(gt(11),
                          np.where(gt(13), np.where(gt(14), 15, 14), np.where(gt(12), 13, 12)),
                          np.where(gt(9), np.where(gt(10), 11, 10), np.where(gt(8), 9, 8))),
                 np.where(gt(3),
                          np.where(gt(5), np.where(gt(6), 7, 6), np.where(gt(4), 5, 4)),
                          np.where(gt(1), np.where(gt(2), 3, 2), np.where(gt(0), 1, 0))))
    return c.astype(np.uint8)


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map (torch float32 arithmetic)."""
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data += [0] * (256 - len(data))
    data.sort()
    return torch.tensor(data).numpy().astype(f32)


def dquantize8(code, x):
    """bnb dQuantize<0>, vectorised over x (float32)."""
    x = x.astype(f32)
    n = x.shape[0]
    pivot = np.full(n, 127, np.int64)
    upper_pivot = np.full(n, 255, np.int64)
    lower_pivot = np.zeros(n, np.int64)
    lower = np.full(n, -1.0, f32)
    upper = np.full(n, 1.0, f32)
    val = code[pivot]
    i = 64
    while i > 0:
        up = x > val
        lower_pivot = np.where(up, pivot, lower_pivot)
        lower = np.where(up, val, lower).astype(f32)
        upper_pivot = np.where(up, upper_pivot, pivot)
        upper = np.where(up, upper, val).astype(f32)
        pivot = np.where(up, pivot + i, pivot - i)
        val = code[pivot]
        i >>= 1
    upper = np.where(upper_pivot == 255, code[255], upper).astype(f32)
    lower = np.where(lower_pivot == 0, code[0], lower).astype(f32)
    up = x > val
    mid_u = ((upper + val) * f32(0.5)).astype(f32)
    mid_l = ((lower + val) * f32(0.5)).astype(f32)
    res = np.where(up, np.where(x > mid_u, upper_pivot, pivot), np.where(x < mid_l, lower_pivot, pivot))
    return res.astype(np.uint8)


def quantize_blockwise8(x, code, blocksize):
    n = x.shape[0]
    nb = (n + blocksize - 1) // blocksize
    codes = np.zeros(n, np.uint8)
    absmax = np.zeros(nb, f32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for b in range(nb):
            seg = x[b * blocksize:(b + 1) * blocksize].astype(f32)
            a = f32(np.max(np.abs(seg)))
            absmax[b] = a
            inv = f32(1.0) / a
            codes[b * blocksize:b * blocksize + seg.shape[0]] = dquantize8(code, (seg * inv).astype(f32))
    return codes, absmax


def dequantize_blockwise8(codes, absmax, code, blocksize):
    idx = np.arange(codes.shape[0]) // blocksize
    return (code[codes] * absmax[idx]).astype(f32)


def mean_f64_seq(a):
    s = 0.0
    for v in a.astype(np.float64):
        s += float(v)
    return f32(s / a.shape[0])


def quantize_nf4(w, code8):
    """returns dict of the fields the C struct holds, plus references"""
    blocks = w.reshape(-1, 64).astype(f32)
    absmax = np.max(np.abs(blocks), axis=1).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = (f32(1.0) / absmax).astype(f32)
        scaled = (blocks * inv[:, None]).astype(f32)
    codes = nf4_code(scaled)
    packed = ((codes[:, 0::2] << 4) | codes[:, 1::2]).astype(np.uint8)
    offset = mean_f64_seq(absmax)
    v = (absmax - offset).astype(f32)
    q2, absmax2 = quantize_blockwise8(v, code8, 256)
    scale_dq = ((code8[q2] * absmax2[np.arange(q2.shape[0]) // 256]).astype(f32) + offset).astype(f32)
    deq = (NF4[codes] * scale_dq[:, None]).astype(f32).reshape(w.shape)
    deq_nodq = (NF4[codes] * absmax[:, None]).astype(f32).reshape(w.shape)
    return dict(codes=codes, qs=packed.reshape(-1), absmax=absmax, offset=offset, absmax_q=q2, absmax2=absmax2,
                scale_dq=scale_dq, deq=deq, deq_nodq=deq_nodq)


def quantize_int8(w):
    absmax = np.max(np.abs(w), axis=1).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (f32(127.0) / absmax).astype(f32)
        prod = (w * s[:, None]).astype(f32)
    q = np.round(prod)  # half to even
    q = np.where(np.isnan(q), 0, q).astype(np.int8)
    deq = ((q.astype(f32) * absmax[:, None]).astype(f32) * f32(7.874015718698502e-3)).astype(f32)
    return q, absmax, deq


# ------------------------------------------------------------------------------------------ inputs
def ulp_around(v):
    v = f32(v)
    return [np.nextafter(v, f32(-np.inf)), v, np.nextafter(v, f32(np.inf))]


def nf4_edge_weights(rng):
    rows, cols = 8, 512
    blocks = []
    blocks.append(np.zeros(64, f32))                                   # 0: all zeros
    b = (rng.standard_normal(64) * 0.02).astype(f32); b[17] = 5.0       # 1: one large outlier
    blocks.append(b)
    mid = [1.0] + [x for t in THR for x in ulp_around(t)] + list(NF4)   # 2: exact midpoints, +-1 ulp
    mid = np.array((mid + [-1.0, 0.5])[:64], f32)  # 1 + 45 + 16 + 2 = 64
    blocks.append(mid)
    b = -mid.copy(); blocks.append(b)                                   # 3: mirrored, absmax from -1.0
    b = np.array([3.0] + list(THR * f32(3.0)) + list(NF4 * f32(3.0)), f32)  # 4: thresholds scaled by 3
    b = np.concatenate([b, np.linspace(-3, 3, 64 - b.shape[0]).astype(f32)])
    blocks.append(b)
    b = [1.0] + [x for k in (0, 8, 12, 14) for x in ulp_around(MIDPOINTS[k])]  # 4b: float32 midpoints where they
    b = np.array(b + list(np.linspace(-1, 1, 64 - len(b))), f32)              # differ from the thresholds
    blocks.append(b)
    b = np.zeros(64, f32); b[0] = 1e-39; b[1] = -5e-40; b[5] = 3e-40   # 5: subnormal absmax (1/absmax = inf)
    blocks.append(b)
    blocks.append((rng.standard_normal(64) * 1e-30).astype(f32))       # 6: tiny
    blocks.append((rng.standard_normal(64) * 1e30).astype(f32))        # 7: huge
    blocks.append(np.full(64, 0.5, f32))                               # 8: constant
    b = np.zeros(64, f32); b[::2] = -0.0                               # 9: signed zeros
    blocks.append(b)
    b = np.full(64, -0.25, f32); b[10] = 0.25                          # 10: ties of |x| (absmax from both signs)
    blocks.append(b)
    nb = rows * cols // 64
    while len(blocks) < nb:
        scale = f32(10.0 ** rng.uniform(-3, 1))
        blocks.append((rng.standard_normal(64) * scale).astype(f32))
    return np.concatenate(blocks).reshape(rows, cols).astype(f32)


def dq8_inputs(code8, rng):
    c = code8
    mids = ((c[:-1] + c[1:]) / f32(2)).astype(f32)
    vals = [x for m in mids for x in ulp_around(m)] + list(c)
    vals = [v for v in vals if abs(float(v)) <= 1.0]
    out = []
    k = 0
    sign = 1.0
    while k < len(vals):
        seg = vals[k:k + 255]
        k += 255
        blk = np.zeros(256, f32)
        blk[:len(seg)] = seg
        blk[255] = sign          # absmax 1.0, from +1 or -1
        sign = -sign
        out.append(blk)
    out.append(np.zeros(256, f32))                                  # absmax 0: NaN path, code 0
    out.append((rng.standard_normal(256) * 0.3).astype(f32))
    out.append(np.full(256, 2.5, f32))                              # constant: all 1.0
    out.append((rng.standard_normal(100) * 7).astype(f32))          # partial last block
    return np.concatenate(out).astype(f32)


def int8_weights(rng):
    rows, cols = 12, 100
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(f32)
    w[0] = 0                                                         # zero row
    w[1, 37] = 9.0                                                   # outlier
    w[2] = (np.arange(cols) % 9 - 4 + 0.5).astype(f32)               # x*127/127 = k + 0.5: ties to even
    w[2, 0] = 127.0
    w[3] = -w[2]
    w[4] = (rng.standard_normal(cols) * 1e-20).astype(f32)
    w[5, :] = 3.0                                                    # constant
    return w


# ------------------------------------------------------------------------------------------ cross-check
def cross_check(code8, cases, dq8, i8):
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F
    except Exception as e:  # noqa: BLE001
        print(f"bitsandbytes not importable ({type(e).__name__}): cross-check skipped")
        return "skipped"
    lines = [f"bitsandbytes {bnb.__version__} (CPU)"]
    ok_map = np.array_equal(F.create_dynamic_map().numpy().astype(f32), code8)
    ok_cb = np.array_equal(F.get_4bit_type("nf4", device="cpu").numpy().astype(f32), NF4)
    lines.append(f"create_dynamic_map identical: {ok_map}; nf4 codebook identical: {ok_cb}")
    for name, (w, r) in cases.items():
        q, st = F.quantize_4bit(torch.from_numpy(w.copy()), blocksize=64, compress_statistics=False, quant_type="nf4")
        bq = q.numpy().reshape(-1, 32)
        mism = np.nonzero(np.any(bq != r["qs"].reshape(-1, 32), axis=1))[0]
        zero_blocks = set(np.nonzero(r["absmax"] < f32(1e-38))[0].tolist())
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            sc = (w.reshape(-1, 64) * (f32(1.0) / r["absmax"])[:, None]).astype(f32)
        lo, hi = np.minimum(THR, MIDPOINTS), np.maximum(THR, MIDPOINTS)
        between = set(np.nonzero(np.any((sc[:, :, None] >= lo) & (sc[:, :, None] <= hi) & (THR != MIDPOINTS), axis=(1, 2)))[0].tolist())
        other = [b for b in mism.tolist() if b not in zero_blocks and b not in between]
        lines.append(f"{name}: bnb quantize_4bit (CPU, torch bucketize) codes differ in blocks {mism.tolist()}: absmax < 1e-38 "
                     f"(bnb CPU clamps absmax to 1e-38 -> code 7; CUDA 0*inf = NaN -> code 0): {sorted(zero_blocks & set(mism.tolist()))}; "
                     f"a value on a threshold that is 1 ulp off the float32 midpoint: {sorted(between & set(mism.tolist()))}; "
                     f"other: {other}; absmax identical: {np.array_equal(st.absmax.numpy(), r['absmax'])}")
        d = torch.ops.bitsandbytes.dequantize_4bit(torch.from_numpy(r["qs"].copy()).view(-1, 1), torch.from_numpy(r["absmax"].copy()),
                                                   64, "nf4", list(w.shape), torch.float32).numpy()
        lines.append(f"{name}: dequantize_4bit(oracle codes, absmax) bit-identical: {np.array_equal(d.view(np.uint32), r['deq_nodq'].view(np.uint32))}")
        s = torch.ops.bitsandbytes.dequantize_blockwise(torch.from_numpy(r["absmax_q"].copy()), torch.from_numpy(r["absmax2"].copy()),
                                                        torch.from_numpy(code8.copy()), 256, torch.float32)
        s = (s + torch.tensor(r["offset"])).numpy()
        lines.append(f"{name}: dequantize_blockwise(absmax codes) + offset bit-identical: {np.array_equal(s.view(np.uint32), r['scale_dq'].view(np.uint32))}")
        tm = torch.from_numpy(r["absmax"].copy()).mean().item()
        lines.append(f"{name}: offset {float(r['offset']):.9g} (float64 mean), torch float32 mean {tm:.9g}, equal: {f32(tm) == r['offset']}")
        # bnb quantize_blockwise of absmax - offset on CPU (native library)
        bq2, bam2 = F.quantize_blockwise(torch.from_numpy((r["absmax"] - r["offset"]).astype(f32)), blocksize=256)
        lines.append(f"{name}: bnb CPU quantize_blockwise(absmax - offset): codes differ at {int((bq2.numpy() != r['absmax_q']).sum())} "
                     f"of {r['absmax_q'].shape[0]}, absmax2 identical: {np.array_equal(bam2.absmax.numpy(), r['absmax2'])}")
    x, codes, am = dq8
    bq, bst = F.quantize_blockwise(torch.from_numpy(x.copy()), blocksize=256)
    lines.append(f"dq8: bnb CPU quantize_blockwise codes differ at {int((bq.numpy() != codes).sum())} of {codes.shape[0]} "
                 f"(crafted near-midpoint values; bnb's CPU search is not exact nearest), absmax identical: {np.array_equal(bst.absmax.numpy(), am)}")
    d = torch.ops.bitsandbytes.dequantize_blockwise(torch.from_numpy(codes.copy()), torch.from_numpy(am.copy()),
                                                    torch.from_numpy(code8.copy()), 256, torch.float32).numpy()
    lines.append(f"dq8: dequantize_blockwise bit-identical: {np.array_equal(d.view(np.uint32), dequantize_blockwise8(codes, am, code8, 256).view(np.uint32))}")
    w, q, am, deq = i8
    bq, bs, _ = F.int8_vectorwise_quant(torch.from_numpy(w.copy()))
    bd = F.int8_vectorwise_dequant(bq, bs).numpy()
    lines.append(f"int8: int8_vectorwise_quant codes identical: {np.array_equal(bq.numpy(), q)}, absmax identical: "
                 f"{np.array_equal(bs.numpy(), am)}, dequant bit-identical: {np.array_equal(bd.view(np.uint32), deq.view(np.uint32))}")
    for line in lines:
        print("  " + line)
    return "; ".join(lines)


def main():
    rng = np.random.default_rng(20240607)
    code8 = create_dynamic_map()
    diff = [k for k in range(15) if THR[k] != MIDPOINTS[k]]
    print(f"dQuantizeNF4 thresholds (float32) that differ from the float32 codebook midpoints: k = {diff}, by "
          f"{[int(abs(int(THR[k].view(np.int32)) - int(MIDPOINTS[k].view(np.int32)))) for k in diff]} ulp")

    w_randn = (rng.standard_normal((40, 512)) * 0.02).astype(f32)   # 320 blocks: DQ groups of 256 + 64
    w_randn[3, 100] = 0.9                                           # one outlier block
    w_edge = nf4_edge_weights(rng)
    cases = {"nf4_randn": (w_randn, quantize_nf4(w_randn, code8)), "nf4_edge": (w_edge, quantize_nf4(w_edge, code8))}

    x8 = dq8_inputs(code8, rng)
    c8, a8 = quantize_blockwise8(x8, code8, 256)
    w8 = int8_weights(rng)
    q8, am8, deq8 = quantize_int8(w8)

    t = {"nf4_codebook": NF4, "nf4_thresholds": THR, "nf4_midpoints": MIDPOINTS, "dynamic_map": code8}
    for name, (w, r) in cases.items():
        t[f"{name}.w"] = w
        t[f"{name}.qs"] = r["qs"]
        t[f"{name}.absmax"] = r["absmax"]
        t[f"{name}.absmax_q"] = r["absmax_q"]
        t[f"{name}.absmax2"] = r["absmax2"]
        t[f"{name}.offset"] = np.array([r["offset"]], f32)
        t[f"{name}.deq"] = r["deq"]
        t[f"{name}.deq_nodq"] = r["deq_nodq"]
    t["dq8.x"] = x8
    t["dq8.codes"] = c8
    t["dq8.absmax"] = a8
    t["dq8.deq"] = dequantize_blockwise8(c8, a8, code8, 256)
    t["int8.w"] = w8
    t["int8.q"] = q8
    t["int8.absmax"] = am8
    t["int8.deq"] = deq8

    for name, (w, r) in cases.items():
        nb = r["absmax"].shape[0]
        hist = np.bincount(r["codes"].reshape(-1), minlength=16)
        print(f"{name}: w {list(w.shape)}, {nb} blocks, {r['absmax2'].shape[0]} DQ groups, offset {float(r['offset']):.6g}, "
              f"code histogram {hist.tolist()}")
        err = np.abs(r["deq"] - w).max()
        print(f"  max |deq - w| = {err:.4g}, max |deq_dq - deq_exact_absmax| = {np.abs(r['deq'] - r['deq_nodq']).max():.4g}")
    print(f"dq8: {x8.shape[0]} values, {a8.shape[0]} blocks; int8: w {list(w8.shape)}")
    xc = cross_check(code8, cases, (x8, c8, a8), (w8, q8, am8, deq8))

    print(f"bitsandbytes cross-check: {'done' if xc != 'skipped' else 'skipped'} (not stored: the file does not depend on it)")
    # one key: safetensors writes metadata keys in hash order, so several keys would not be reproducible
    meta = {"generator": f"tests/parity/make_quant_fixtures.py (torch {torch.__version__}, numpy {np.__version__})"}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in sorted(t.items())}, OUT, metadata=meta)
    print(f"wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
