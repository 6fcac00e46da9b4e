#!/usr/bin/env python3
"""Writes the quantized GGUF fixtures of test_gguf_model (tests/fixtures/gguf/), with gguf-py (PyPI gguf):

  stories260K-q8_0.gguf / -q4_0.gguf  the bundled stories260K (tests/fixtures/convert/stories260K.gguf, F32)
      with every 2-D tensor whose rows are a multiple of 32 values quantized by gguf.quants.quantize
      (ffn_down, 172 values a row, stays F32 as llama.cpp's quantizer leaves it unquantized too)
  tiny-q4_k.gguf  a random Llama (width 256, 1 layer, 4 heads / 2 KV heads, MLP 256, vocab 512 with the
      stories260K vocabulary), every matrix Q4_K (gguf-py has no Q4_K quantizer: the simple min/max one
      below, which makes valid blocks; bit-parity with ggml's quantizer is the export's business)
  tiny-gpt2/ + tiny-gpt2.gguf  a random GPT-2 (width 32, 2 layers, 2 heads, vocab 64, context 32) as a
      Hugging Face directory (Conv1D [in, out] weights) and as the GGUF llama.cpp's converter writes
      (nn.Linear [out, in] rows), F32, to check the gpt2 tensor names and layouts."""
import json, os, struct, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, quants

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
OUT = os.path.join(FIX, "gguf")
os.makedirs(OUT, exist_ok=True)


def copy_fields(r, w, skip=()):
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in skip:
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY:
            vals = [f.contents(i) for i in range(len(f.data))]
            w.add_array(name, vals) if f.types[1] != gguf.GGUFValueType.STRING else w.add_array(name, [str(v) for v in vals])
        elif t == gguf.GGUFValueType.STRING:
            w.add_string(name, f.contents())
        elif t == gguf.GGUFValueType.FLOAT32:
            w.add_float32(name, float(f.contents()))
        elif t == gguf.GGUFValueType.UINT32:
            w.add_uint32(name, int(f.contents()))
        elif t == gguf.GGUFValueType.INT32:
            w.add_int32(name, int(f.contents()))
        else:
            raise SystemExit(f"unhandled field type {t} of {name}")


def requantize(src, dst, qt):
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, "llama")
    copy_fields(r, w)
    for t in r.tensors:
        a = np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
        if a.ndim == 2 and a.shape[-1] % 32 == 0:
            q = quants.quantize(a, qt)
            w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=qt)
        else:
            w.add_tensor(t.name, a)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def f16(x):
    return np.asarray(x, dtype=np.float16).view(np.uint16)


def q4_k(a):
    """rows of a (values a multiple of 256) as Q4_K blocks: per 32-value sub-block, scale = (max - min) / 15,
    min = -min (clamped at 0); the 8 scales / mins quantized to 6 bits against the super-block d / dmin."""
    rows, n = a.shape
    x = a.reshape(rows, n // 256, 8, 32).astype(np.float32)
    mn = np.minimum(x.min(-1), 0.0)
    mx = x.max(-1)
    sc = (mx - mn) / 15.0
    m = -mn
    d = sc.max(-1) / 63.0
    dmin = m.max(-1) / 63.0
    d16, dmin16 = f16(d), f16(dmin)
    dq = d16.view(np.float16).astype(np.float32)
    dmq = dmin16.view(np.float16).astype(np.float32)
    isc = np.where(dq[..., None] > 0, np.rint(sc / np.where(dq > 0, dq, 1)[..., None]), 0).clip(0, 63).astype(np.uint8)
    im = np.where(dmq[..., None] > 0, np.rint(m / np.where(dmq > 0, dmq, 1)[..., None]), 0).clip(0, 63).astype(np.uint8)
    eff_s = dq[..., None] * isc
    eff_m = dmq[..., None] * im
    q = np.where(eff_s[..., None] > 0, np.rint((x + eff_m[..., None]) / np.where(eff_s > 0, eff_s, 1)[..., None]), 0).clip(0, 15).astype(np.uint8)
    out = np.zeros((rows, n // 256, 144), dtype=np.uint8)
    out[..., 0:2] = d16[..., None].view(np.uint8).reshape(rows, n // 256, 2)
    out[..., 2:4] = dmin16[..., None].view(np.uint8).reshape(rows, n // 256, 2)
    scales = np.zeros((rows, n // 256, 12), dtype=np.uint8)
    for j in range(4):
        scales[..., j] = (isc[..., j] & 63) | ((isc[..., j + 4] >> 4) << 6)
        scales[..., j + 4] = (im[..., j] & 63) | ((im[..., j + 4] >> 4) << 6)
        scales[..., j + 8] = (isc[..., j + 4] & 0xF) | ((im[..., j + 4] & 0xF) << 4)
    out[..., 4:16] = scales
    qs = q.reshape(rows, n // 256, 4, 2, 32)  # chunk c: sub-blocks 2c (low nibbles), 2c+1 (high)
    out[..., 16:] = (qs[:, :, :, 0, :] | (qs[:, :, :, 1, :] << 4)).reshape(rows, n // 256, 128)
    return out.reshape(rows, -1)


def tiny_q4k(dst):
    rng = np.random.default_rng(42)
    C, H, NH, NKV, V = 256, 256, 4, 2, 512
    KV = C // NH * NKV
    src = gguf.GGUFReader(os.path.join(FIX, "convert", "stories260K.gguf"))
    w = gguf.GGUFWriter(dst, "llama")
    keys = (("llama.context_length", 128), ("llama.embedding_length", C), ("llama.feed_forward_length", H),
            ("llama.attention.head_count", NH), ("llama.attention.head_count_kv", NKV), ("llama.block_count", 1),
            ("llama.rope.dimension_count", C // NH))
    copy_fields(src, w, skip=[k for k, _ in keys])   # the stories260K vocabulary; this model's shape
    for k, v in keys:
        w.add_uint32(k, v)

    def mat(name, rows, cols, sd=0.05):
        a = (rng.standard_normal((rows, cols)) * sd).astype(np.float32)
        q = q4_k(a)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=T.Q4_K)

    def vec(name, n):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))
    mat("token_embd.weight", V, C, 0.5)
    vec("output_norm.weight", C)
    mat("output.weight", V, C)
    vec("blk.0.attn_norm.weight", C)
    mat("blk.0.attn_q.weight", C, C)
    mat("blk.0.attn_k.weight", KV, C)
    mat("blk.0.attn_v.weight", KV, C)
    mat("blk.0.attn_output.weight", C, C)
    vec("blk.0.ffn_norm.weight", C)
    mat("blk.0.ffn_gate.weight", H, C)
    mat("blk.0.ffn_down.weight", C, H)
    mat("blk.0.ffn_up.weight", H, C)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def tiny_gpt2(dirpath, gguf_path):
    rng = np.random.default_rng(7)
    C, L, NH, V, P = 32, 2, 2, 64, 32
    hf = {}
    def r(*shape, sd=0.1):
        return (rng.standard_normal(shape) * sd).astype(np.float32)
    hf["transformer.wte.weight"] = r(V, C, sd=0.5)
    hf["transformer.wpe.weight"] = r(P, C)
    for l in range(L):
        p = f"transformer.h.{l}."
        hf[p + "ln_1.weight"] = 1 + r(C); hf[p + "ln_1.bias"] = r(C)
        hf[p + "attn.c_attn.weight"] = r(C, 3 * C); hf[p + "attn.c_attn.bias"] = r(3 * C)
        hf[p + "attn.c_proj.weight"] = r(C, C); hf[p + "attn.c_proj.bias"] = r(C)
        hf[p + "ln_2.weight"] = 1 + r(C); hf[p + "ln_2.bias"] = r(C)
        hf[p + "mlp.c_fc.weight"] = r(C, 4 * C); hf[p + "mlp.c_fc.bias"] = r(4 * C)
        hf[p + "mlp.c_proj.weight"] = r(4 * C, C); hf[p + "mlp.c_proj.bias"] = r(C)
    hf["transformer.ln_f.weight"] = 1 + r(C); hf["transformer.ln_f.bias"] = r(C)
    os.makedirs(dirpath, exist_ok=True)
    json.dump({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_positions": P, "n_ctx": P,
               "n_embd": C, "n_layer": L, "n_head": NH, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
               "bos_token_id": 0, "eos_token_id": 0}, open(os.path.join(dirpath, "config.json"), "w"), indent=1)
    header, off, blobs = {}, 0, []
    for k, v in hf.items():
        b = v.tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(dirpath, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)
    w = gguf.GGUFWriter(gguf_path, "gpt2")
    w.add_context_length(P); w.add_embedding_length(C); w.add_feed_forward_length(4 * C); w.add_block_count(L)
    w.add_head_count(NH); w.add_layer_norm_eps(1e-5)
    w.add_tensor("token_embd.weight", hf["transformer.wte.weight"])
    w.add_tensor("position_embd.weight", hf["transformer.wpe.weight"])
    names = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up",
             "mlp.c_proj": "ffn_down"}
    for l in range(L):
        for hn, gn in names.items():
            wt = hf[f"transformer.h.{l}.{hn}.weight"]
            if wt.ndim == 2: wt = np.ascontiguousarray(wt.T)   # Conv1D [in, out] -> [out, in]
            w.add_tensor(f"blk.{l}.{gn}.weight", wt)
            w.add_tensor(f"blk.{l}.{gn}.bias", hf[f"transformer.h.{l}.{hn}.bias"])
    w.add_tensor("output_norm.weight", hf["transformer.ln_f.weight"])
    w.add_tensor("output_norm.bias", hf["transformer.ln_f.bias"])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


if __name__ == "__main__":
    src = os.path.join(FIX, "convert", "stories260K.gguf")
    requantize(src, os.path.join(OUT, "stories260K-q8_0.gguf"), T.Q8_0)
    requantize(src, os.path.join(OUT, "stories260K-q4_0.gguf"), T.Q4_0)
    tiny_q4k(os.path.join(OUT, "tiny-q4_k.gguf"))
    tiny_gpt2(os.path.join(OUT, "tiny-gpt2"), os.path.join(OUT, "tiny-gpt2.gguf"))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)) if os.path.isfile(os.path.join(OUT, f)) else "dir")
