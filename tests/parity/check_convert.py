#!/usr/bin/env python3
"""check_convert.py — dev-only check of `finetune convert` with PyTorch / transformers.

1. Loads the converted HF directory (default models/stories260K) with
   transformers.LlamaForCausalLM.from_pretrained and runs greedy decoding from BOS (token 1) for
   200 steps exactly as llama2.c's run.c does (stop early only if BOS comes out), decodes the ids
   with llama2.c's rules from tok512.bin, and compares the text with llama2.c's own output
   (greedy_t0_n200.txt). Equal text proves the q/k rotary permutation and every tensor mapping.
2. Checks the directory's tokenizer.json with the `tokenizers` / transformers loader: decoding the
   same ids gives the same text, and encoding the prompt gives the ids llama2.c's encoder gives.
3. Writes fixtures for the C generation tests (tests/fixtures/convert/):
     greedy_bos_200.ids   the 200 greedy ids after BOS (BOS not included), space separated
     greedy_prompt.txt    the prompt text (no trailing newline)
     greedy_prompt.ids    line 1: the prompt ids as llama2.c encodes them (BOS first);
                          line 2: the next N_PROMPT_NEW greedy ids
     greedy_prompt.out.txt  the decoded continuation (llama2.c decoding), for humans

usage: python3 tests/parity/check_convert.py [--model-dir DIR] [--ref greedy_t0_n200.txt]
                                             [--tok tok512.bin] [--write-fixtures]
"""
import argparse
import os
import struct
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT = "Once upon a time, there was a"
N_PROMPT_NEW = 100


def load_llama2c_vocab(path):
    """tokenizer.bin: i32 max_len, then per token f32 score, i32 len, bytes."""
    data = open(path, "rb").read()
    pos = 4
    vocab, scores = [], []
    while pos < len(data):
        score, n = struct.unpack_from("<fi", data, pos)
        pos += 8
        vocab.append(data[pos:pos + n])
        scores.append(score)
        pos += n
    return vocab, scores


def llama2c_decode(vocab, prev, tok):
    """run.c decode(): strip the leading space after BOS, <0xXX> byte tokens become the byte."""
    piece = vocab[tok]
    if prev == 1 and piece.startswith(b" "):
        piece = piece[1:]
    if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
        piece = bytes([int(piece[3:5], 16)])
    return piece


def llama2c_encode(vocab, scores, text):
    """run.c encode(text, bos=1, eos=0): dummy-prefix space, UTF-8 chars / byte fallback, then
    repeatedly merge the adjacent pair whose concatenation has the highest score."""
    index = {}
    for i, v in enumerate(vocab):
        index.setdefault(v, i)
    ids = [1]
    if text:
        ids.append(index[b" "])
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        n = 1
        while i + n < len(raw) and (raw[i + n] & 0xC0) == 0x80 and n < 4:
            n += 1
        ch = raw[i:i + n]
        if ch in index:
            ids.append(index[ch])
        else:
            ids.extend(b + 3 for b in ch)
        i += n
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for j in range(len(ids) - 1):
            merged = vocab[ids[j]] + vocab[ids[j + 1]]
            k = index.get(merged)
            if k is not None and scores[k] > best:
                best, best_id, best_i = scores[k], k, j
        if best_i < 0:
            break
        ids[best_i:best_i + 2] = [best_id]
    return ids


@torch.no_grad()
def greedy(model, ids, steps_total):
    """run.c generate(): positions 0..steps_total-1; prompt tokens forced; stop if BOS comes out.
    Returns the generated ids (after the prompt). Recomputes the whole prefix each step (no KV
    cache API involved; the model is tiny)."""
    prompt = list(ids)
    seq = [prompt[0]]
    out = []
    for pos in range(steps_total):
        if pos < len(prompt) - 1:
            nxt = prompt[pos + 1]
        else:
            logits = model(torch.tensor([seq])).logits[0, -1]
            nxt = int(torch.argmax(logits).item())
            if nxt == 1:
                break
            out.append(nxt)
        seq.append(nxt)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.join(REPO, "models/stories260K"))
    ap.add_argument("--ref", default="/work/shared/models/stories260K/greedy_t0_n200.txt")
    ap.add_argument("--tok", default=os.path.join(REPO, "tests/fixtures/convert/tok512.bin"))
    ap.add_argument("--write-fixtures", action="store_true")
    ap.add_argument("--fixtures", default=os.path.join(REPO, "tests/fixtures/convert"))
    a = ap.parse_args()

    from transformers import AutoTokenizer, LlamaForCausalLM
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cfg = model.config
    print(f"loaded {a.model_dir}: hidden {cfg.hidden_size}, layers {cfg.num_hidden_layers}, heads "
          f"{cfg.num_attention_heads}/{cfg.num_key_value_heads}, vocab {cfg.vocab_size}, tied {cfg.tie_word_embeddings}, "
          f"rope {getattr(cfg, 'rope_parameters', None) or getattr(cfg, 'rope_theta', None)}")
    vocab, scores = load_llama2c_vocab(a.tok)
    ok = True

    # 1. greedy from BOS vs llama2.c
    gen = greedy(model, [1], 200)
    text = b"".join(llama2c_decode(vocab, p, t) for p, t in zip([1] + gen[:-1], gen)).decode("utf-8", "replace")
    ref = open(a.ref, encoding="utf-8").read()
    same = text == ref or text == ref.rstrip("\n")
    print(f"greedy from BOS: {len(gen)} tokens; text vs llama2.c reference ({len(ref)} chars): "
          f"{'IDENTICAL' if same else 'DIFFERENT'}")
    if not same:
        ok = False
        for i, (x, y) in enumerate(zip(text, ref)):
            if x != y:
                print(f"  first difference at char {i}: got {text[i:i+40]!r}, ref {ref[i:i+40]!r}")
                break
        else:
            print(f"  lengths differ: got {len(text)}, ref {len(ref)}")

    # 2. the exported tokenizer.json
    prompt_ids = llama2c_encode(vocab, scores, PROMPT)
    tj = os.path.join(a.model_dir, "tokenizer.json")
    if os.path.exists(tj):
        try:
            tok = AutoTokenizer.from_pretrained(a.model_dir)
            hf_text = tok.decode(gen, skip_special_tokens=True)
            d_ok = hf_text == text
            print(f"tokenizer.json decode of the 200 ids: {'IDENTICAL' if d_ok else 'DIFFERENT'} to llama2.c decoding")
            if not d_ok:
                print(f"  hf:  {hf_text[:120]!r}\n  ref: {text[:120]!r}")
            hf_ids = tok(PROMPT)["input_ids"]
            e_ok = hf_ids == prompt_ids
            print(f"tokenizer.json encode({PROMPT!r}) = {hf_ids}: {'IDENTICAL' if e_ok else 'DIFFERENT'} to llama2.c encode {prompt_ids}")
            ok = ok and d_ok and e_ok
        except Exception as e:  # report, do not hide
            print(f"tokenizer.json could not be checked: {type(e).__name__}: {e}")
            ok = False
    else:
        print(f"no {tj}: tokenizer not checked")

    # 3. fixtures
    cont = greedy(model, prompt_ids, len(prompt_ids) - 1 + N_PROMPT_NEW)
    cont_text = b"".join(llama2c_decode(vocab, p, t) for p, t in zip([prompt_ids[-1]] + cont[:-1], cont)).decode("utf-8", "replace")
    print(f"prompt {PROMPT!r} -> ids {prompt_ids}; {len(cont)} greedy ids: {cont_text[:100]!r}...")
    if a.write_fixtures:
        os.makedirs(a.fixtures, exist_ok=True)
        with open(os.path.join(a.fixtures, "greedy_bos_200.ids"), "w") as f:
            f.write(" ".join(map(str, gen)) + "\n")
        with open(os.path.join(a.fixtures, "greedy_prompt.txt"), "w") as f:
            f.write(PROMPT)
        with open(os.path.join(a.fixtures, "greedy_prompt.ids"), "w") as f:
            f.write(" ".join(map(str, prompt_ids)) + "\n" + " ".join(map(str, cont)) + "\n")
        with open(os.path.join(a.fixtures, "greedy_prompt.out.txt"), "w") as f:
            f.write(cont_text)
        print(f"wrote greedy_bos_200.ids, greedy_prompt.txt, greedy_prompt.ids, greedy_prompt.out.txt in {a.fixtures}")
    print("RESULT:", "OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
