#!/usr/bin/env python3
"""bench/hf_to_gguf.py DIR OUT.gguf — writes a finetune / Hugging Face model directory (GPT-2 or Llama family,
f32 safetensors) as an F32 GGUF with llama.cpp's tensor names and layouts (gguf-py), for bench/generate_gguf.sh
until `finetune export --format gguf` does it:
  llama: q/k rows permuted from rotate_half to llama.cpp's interleaved rope order; gpt2: Conv1D [in, out]
  transposed to [out, in]. The vocabulary is a placeholder SentencePiece-style one (<unk>, <s>, </s>, the 256
  byte tokens, then t<i>) so that llama.cpp loads the file; the bench feeds token ids, not text."""
import json, struct, sys
import numpy as np
import gguf


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        out[k] = mm[a:b].view(np.float32).reshape(v["shape"])
    return out


def vocab(w, V, bos=1, eos=2):
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(256)]
    toks += ["t%d" % i for i in range(V - len(toks))]
    toks = toks[:V]
    types = [2, 3, 3] + [6] * 256 + [1] * (V - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * V)
    w.add_token_types(types[:V])
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_unk_token_id(0)


def interleave(a, heads):
    """rotate_half rows -> llama.cpp's interleaved rope rows (inverse of finetune's import permutation)"""
    rows, cols = a.shape
    hs = rows // heads
    return np.ascontiguousarray(a.reshape(heads, 2, hs // 2, cols).swapaxes(1, 2).reshape(rows, cols))


def main(src, dst):
    cfg = json.load(open(f"{src}/config.json"))
    st = read_safetensors(f"{src}/model.safetensors")
    arch = "gpt2" if cfg.get("model_type") == "gpt2" else "llama"
    w = gguf.GGUFWriter(dst, arch)
    w.add_name("finetune bench " + arch)
    if arch == "gpt2":
        C, L, NH = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
        w.add_context_length(cfg.get("n_positions", 1024)); w.add_embedding_length(C); w.add_feed_forward_length(cfg.get("n_inner") or 4 * C)
        w.add_block_count(L); w.add_head_count(NH); w.add_layer_norm_eps(cfg.get("layer_norm_epsilon", 1e-5))
        vocab(w, cfg["vocab_size"], 0, 0)
        p = "transformer." if "transformer.wte.weight" in st else ""
        w.add_tensor("token_embd.weight", st[p + "wte.weight"])
        w.add_tensor("position_embd.weight", st[p + "wpe.weight"])
        names = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up",
                 "mlp.c_proj": "ffn_down"}
        for l in range(L):
            for hn, gn in names.items():
                t = st[f"{p}h.{l}.{hn}.weight"]
                w.add_tensor(f"blk.{l}.{gn}.weight", np.ascontiguousarray(t.T) if t.ndim == 2 else t)
                w.add_tensor(f"blk.{l}.{gn}.bias", st[f"{p}h.{l}.{hn}.bias"])
        w.add_tensor("output_norm.weight", st[p + "ln_f.weight"])
        w.add_tensor("output_norm.bias", st[p + "ln_f.bias"])
        if not cfg.get("tie_word_embeddings", True) and "lm_head.weight" in st:
            w.add_tensor("output.weight", st["lm_head.weight"])
    else:
        C, L, NH = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
        NKV = cfg.get("num_key_value_heads", NH)
        w.add_context_length(cfg.get("max_position_embeddings", 2048)); w.add_embedding_length(C)
        w.add_feed_forward_length(cfg["intermediate_size"]); w.add_block_count(L); w.add_head_count(NH); w.add_head_count_kv(NKV)
        w.add_rope_dimension_count(C // NH); w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
        w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
        vocab(w, cfg["vocab_size"], cfg.get("bos_token_id", 1), cfg.get("eos_token_id", 2))
        w.add_tensor("token_embd.weight", st["model.embed_tokens.weight"])
        for l in range(L):
            p = f"model.layers.{l}."
            w.add_tensor(f"blk.{l}.attn_norm.weight", st[p + "input_layernorm.weight"])
            w.add_tensor(f"blk.{l}.attn_q.weight", interleave(st[p + "self_attn.q_proj.weight"], NH))
            w.add_tensor(f"blk.{l}.attn_k.weight", interleave(st[p + "self_attn.k_proj.weight"], NKV))
            w.add_tensor(f"blk.{l}.attn_v.weight", st[p + "self_attn.v_proj.weight"])
            w.add_tensor(f"blk.{l}.attn_output.weight", st[p + "self_attn.o_proj.weight"])
            w.add_tensor(f"blk.{l}.ffn_norm.weight", st[p + "post_attention_layernorm.weight"])
            w.add_tensor(f"blk.{l}.ffn_gate.weight", st[p + "mlp.gate_proj.weight"])
            w.add_tensor(f"blk.{l}.ffn_up.weight", st[p + "mlp.up_proj.weight"])
            w.add_tensor(f"blk.{l}.ffn_down.weight", st[p + "mlp.down_proj.weight"])
        w.add_tensor("output_norm.weight", st["model.norm.weight"])
        if "lm_head.weight" in st:
            w.add_tensor("output.weight", st["lm_head.weight"])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
