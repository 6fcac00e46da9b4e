#!/usr/bin/env python3
"""Reference values for the text metrics (tests/test_textmetrics.c), computed by the reference libraries.

    pip install sacrebleu rouge-score          # (scripts/setup.sh installs both)
    python3 tests/parity/make_text_metrics_fixtures.py [--shared ../shared]

Writes tests/fixtures/textmetrics/:
  ted.jsonl            300 lines of the TED Slovak->English outputs of ../shared/data/ted_slk_eng_mt (neulab/compare-mt,
                       BSD-3-Clause; TED text CC BY-NC-ND, see LICENSE.ted): {"hyp": system 1, "hyp2": system 2,
                       "refs": [detokenized reference, tokenized reference]}
  dialogsum.jsonl      200 DialogSum dev summaries (cylnlp/dialogsum, CC BY-NC-SA 4.0) with their sentences on separate
                       lines, against DialogSum-style hypotheses (the first turns of the dialogue, or the summary
                       perturbed with a seeded RNG): {"hyp", "refs": [summary]}
  adversarial.jsonl    hand-written edge cases: empty texts, Unicode, punctuation, numbers with , and ., tabs,
                       HTML entities, <skipped>, Kelvin sign, dotted capital I, no-break spaces, newlines
  porter.tsv           word<TAB>stem for every token longer than 3 letters of the fixtures (rouge-score's tokenizer) plus
                       words that exercise each rule, stemmed by nltk's PorterStemmer() (rouge-score's stemmer)
  expected.json        per set and reference setting: corpus scores, BLEU details, per-example scores, bootstrap
                       (1000 resamples, seed 12345) and paired bootstrap p-values (sys2 vs sys1 on TED)

Values: BLEU / chrF from sacrebleu (corpus_score, sentence_bleu, sentence_chrf, paired_bs via PairedTest);
ROUGE from rouge_score.RougeScorer.score_multi (with and without use_stemmer); exact match / F1 are the
official SQuAD v2.0 evaluation script's functions (transcribed below: it is not a package); distinct-n as
defined in include/finetune/textmetrics.h.
"""
import argparse
import collections
import json
import os
import random
import re
import string

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "textmetrics")
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


# ---- SQuAD v2.0 evaluation script (normalize_answer, compute_exact, compute_f1) ----
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def get_tokens(s):
    return normalize_answer(s).split() if s else []


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks, pred_toks = get_tokens(a_gold), get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def squad(hyp, refs):
    golds = [r for r in refs if normalize_answer(r)] or [""]  # the script's rule for empty answers
    return max(compute_exact(g, hyp) for g in golds), max(compute_f1(g, hyp) for g in golds)


def distinct(texts, n):
    total, seen = 0, set()
    for t in texts:
        toks = t.split()
        grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def score_set(hyps, refs_per_example, stem_list=(False, True), bootstrap=True):
    """refs_per_example: list (per example) of lists of references. Returns the expected-values dict."""
    n_streams = max(len(r) for r in refs_per_example)
    streams = [[r[k] if k < len(r) else None for r in refs_per_example] for k in range(n_streams)]
    out = {"n": len(hyps)}
    bleu = BLEU()
    b = bleu.corpus_score(hyps, streams)
    out["bleu"] = b.score
    out["bleu_signature"] = str(bleu.get_signature())
    out["bleu_details"] = {"precisions": list(b.precisions), "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len,
                           "counts": list(b.counts), "totals": list(b.totals)}
    chrf = CHRF()
    out["chrf"] = chrf.corpus_score(hyps, streams).score
    out["chrf_signature"] = str(chrf.get_signature())
    refs_clean = [[x for x in r if x is not None] for r in refs_per_example]
    per = {"bleu": [sacrebleu.sentence_bleu(h, r).score for h, r in zip(hyps, refs_clean)],
           "chrf": [sacrebleu.sentence_chrf(h, r).score for h, r in zip(hyps, refs_clean)]}
    for stem in stem_list:
        sc = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=stem)
        rs = [sc.score_multi(r, h) for h, r in zip(hyps, refs_clean)]
        suffix = "_stem" if stem else ""
        for k in ROUGE_TYPES:
            vals = [x[k].fmeasure for x in rs]
            per[k + suffix] = vals
            out[k + suffix] = float(np.mean(vals))
    qa = [squad(h, r) for h, r in zip(hyps, refs_clean)]
    per["exact_match"] = [100.0 * e for e, _ in qa]
    per["f1"] = [100.0 * f for _, f in qa]
    out["exact_match"] = float(np.mean(per["exact_match"]))
    out["f1"] = float(np.mean(per["f1"]))
    out["distinct1"], out["distinct2"] = distinct(hyps, 1), distinct(hyps, 2)
    per["distinct1"] = [distinct([h], 1) for h in hyps]
    per["distinct2"] = [distinct([h], 2) for h in hyps]
    out["per_example"] = per
    if bootstrap:
        os.environ["SACREBLEU_SEED"] = "12345"
        bs = {}
        for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
            s = metric.corpus_score(hyps, streams, n_bootstrap=1000)
            bs[name] = {"mean": float(s._mean), "ci": float(s._ci)}
        out["bootstrap"] = bs
    return out, streams


def paired(base, sys, streams):
    """sacreBLEU's paired bootstrap test of sys against base (1000 resamples, seed 12345)."""
    os.environ["SACREBLEU_SEED"] = "12345"
    sigs, scores = PairedTest([("base", base), ("sys", sys)], {"BLEU": BLEU(), "chrF": CHRF()}, streams,
                              test_type="bs", n_samples=1000)()
    out = {}
    for name, key in (("BLEU", "bleu"), ("chrF2", "chrf")):
        b, s = scores[name]
        out[key] = {"base": b.score, "sys": s.score, "p_value": s.p_value, "sys_mean": float(s.mean),
                    "sys_ci": float(s.ci), "base_mean": float(b.mean), "base_ci": float(b.ci)}
    return out


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


ADVERSARIAL = [
    ("", "An empty hypothesis."),
    ("A hypothesis against an empty reference.", ""),
    ("", ""),
    ("The price rose 1,000.50 dollars, i.e. 3.5% in 2019-2020.", "The price rose by 1,000.50 dollars (3.5 %) in 2019 - 2020."),
    ("Tabs\tbetween\twords,\tand  double  spaces .", "Tabs between words, and double spaces."),
    ("Ceci n'est pas une pipe — « naïve » café, Ærøskøbing.", "Ceci n’est pas une pipe : « naïve » café à Ærøskøbing."),
    ("&quot;Quoted&quot; &amp; escaped &lt;tags&gt; here", "\"Quoted\" & escaped <tags> here"),
    ("<skipped> words were skip-\nped here", "words were skipped here"),
    ("Temperature 300 \u212a and \u0130stanbul", "temperature 300 k and istanbul"),
    ("no\u00a0break\u2003spaces\u3000here", "no break spaces here"),
    ("First sentence.\nSecond sentence here.\nThird one.", "First sentence here.\nA second sentence.\nThird."),
    ("the the the the the the", "the cat"),
    ("An answer: The Eiffel Tower!", "the eiffel tower"),
    ("Σίσυφος ΟΔΟΣ και ΟΔΟΣ.", "Σίσυφος οδος και οδος."),
    ("running runners ran easily; happily flying skies", "run runner ran easy, happy fly sky"),
    ("...,,,!!!???", "!?"),
    ("😀 emoji 🚀 text ✓", "emoji text"),
    ("Numbers: 3.14, 2,5 and -7; 10-20 (approx.)", "numbers 3.14 , 2,5 and -7 ; 10 - 20 ( approx . )"),
    ("a", "a"),
    ("x " * 40 + "end.", "x " * 10 + "end."),
]


# words that reach every rule of the stemmer (Porter's paper examples, NLTK's irregular forms, y runs, digits)
PORTER_WORDS = """caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled sized hopping
tanned falling hissing fizzed failing filing happy sky relational conditional rational valenci hesitanci digitizer
conformabli radicalli differentli vileli analogousli vietnamization predication operator feudalism decisiveness
hopefulness callousness formaliti sensitiviti sensibiliti triplicate formative formalize electriciti electrical hopeful
goodness revival allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment
dependent adoption homologou communism activate angulariti homologous effective bowdlerize probate rate cease
controll roll skies dying lying tying news innings outings cannings howe proceed exceed succeed dies spied cried
died lied enjoy enjoyment spy fly try generously fully hopefulli archaeologi analogi syzygy yyyy toyyy sayying
boyyyish 1234s abc123ing 2020s hyyyyyy tried fries reliable formalli bullying played playing employment
"""


def dialogsum_pairs(path, n, rng):
    hyps, refs = [], []
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:n]
    for i, r in enumerate(rows):
        ref = "\n".join(s.strip() for s in re.split(r"(?<=[.!?])\s+", r["summary"].strip()) if s.strip())
        if i % 2 == 0:  # the first turns of the dialogue, speaker tags dropped: an extractive baseline
            turns = [t.split(":", 1)[-1].strip() for t in r["dialogue"].split("\n")[:2]]
            hyp = "\n".join(turns)
        else:  # the summary with words dropped, swapped and replaced
            words = r["summary"].split()
            out = []
            for w in words:
                x = rng.random()
                if x < 0.12:
                    continue
                if x < 0.2:
                    out.append(rng.choice(["said", "the", "#Person1#", "talks", "about", "and"]))
                else:
                    out.append(w)
            if len(out) > 3 and rng.random() < 0.5:
                j = rng.randrange(len(out) - 1)
                out[j], out[j + 1] = out[j + 1], out[j]
            text = " ".join(out)
            hyp = "\n".join(s for s in re.split(r"(?<=[.!?])\s+", text) if s)
        hyps.append(hyp)
        refs.append([ref])
    return hyps, refs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "shared"))
    ap.add_argument("--lines", type=int, default=300)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    ted = os.path.join(args.shared, "data", "ted_slk_eng_mt")
    sys1 = read_lines(os.path.join(ted, "ted.sys1.detok.eng"))[:args.lines]
    sys2 = read_lines(os.path.join(ted, "ted.sys2.detok.eng"))[:args.lines]
    ref = read_lines(os.path.join(ted, "ted.ref.detok.eng"))[:args.lines]
    ref_tok = read_lines(os.path.join(ted, "ted.ref.eng"))[:args.lines]
    with open(os.path.join(OUT, "ted.jsonl"), "w", encoding="utf-8") as f:
        for a, b, r, rt in zip(sys1, sys2, ref, ref_tok):
            f.write(json.dumps({"hyp": a, "hyp2": b, "refs": [r, rt]}, ensure_ascii=False) + "\n")
    with open(os.path.join(ted, "LICENSE"), encoding="utf-8") as src, open(os.path.join(OUT, "LICENSE.ted"), "w") as dst:
        dst.write("ted.jsonl: the first %d lines of neulab/compare-mt example/ted.{sys1,sys2,ref}.detok.eng and ted.ref.eng\n"
                  "(TED talk transcripts and translations, CC BY-NC-ND 4.0; the compare-mt repository is BSD-3-Clause):\n\n" % args.lines)
        dst.write(src.read())
    rng = random.Random(12)
    dh, dr = dialogsum_pairs(os.path.join(args.shared, "data", "dialogsum", "dialogsum.dev.jsonl"), 200, rng)
    with open(os.path.join(OUT, "dialogsum.jsonl"), "w", encoding="utf-8") as f:
        for h, r in zip(dh, dr):
            f.write(json.dumps({"hyp": h, "refs": r}, ensure_ascii=False) + "\n")
    with open(os.path.join(OUT, "LICENSE.dialogsum"), "w") as f:
        f.write("dialogsum.jsonl: derived from the first 200 records of cylnlp/dialogsum DialogSum_Data/dialogsum.dev.jsonl\n"
                "(CC BY-NC-SA 4.0): the reference is the summary with one sentence per line; the hypothesis is the first\n"
                "two turns of the dialogue (even records) or the summary with words dropped / replaced / swapped by a seeded RNG.\n")
    with open(os.path.join(OUT, "adversarial.jsonl"), "w", encoding="utf-8") as f:
        for h, r in ADVERSARIAL:
            f.write(json.dumps({"hyp": h, "refs": [r]}, ensure_ascii=False) + "\n")

    from nltk.stem import porter
    from rouge_score import tokenize as rtok
    words = set()
    texts = sys1 + sys2 + ref + dh + [x for r in dr for x in r] + [h for h, _ in ADVERSARIAL]
    for t in texts:
        words.update(w for w in rtok.tokenize(t, None) if len(w) > 3)
    words.update(PORTER_WORDS.split())
    stemmer = porter.PorterStemmer()
    with open(os.path.join(OUT, "porter.tsv"), "w") as f:
        for w in sorted(words):
            f.write("%s\t%s\n" % (w, stemmer.stem(w)))

    expected = {}
    expected["ted_single"], _ = score_set(sys1, [[r] for r in ref])
    expected["ted_multi"], _ = score_set(sys1, [[r, rt] for r, rt in zip(ref, ref_tok)])
    # a variable number of references: the second one only on even lines
    expected["ted_var"], _ = score_set(sys1, [[r, rt] if i % 2 == 0 else [r] for i, (r, rt) in enumerate(zip(ref, ref_tok))],
                                       bootstrap=False)
    expected["ted_paired"] = paired(sys1, sys2, [ref])
    expected["dialogsum"], _ = score_set(dh, dr)
    expected["adversarial"], _ = score_set([h for h, _ in ADVERSARIAL], [[r] for _, r in ADVERSARIAL], bootstrap=False)
    expected["versions"] = {"sacrebleu": sacrebleu.__version__, "numpy": np.__version__}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0)
    print("wrote", OUT, {k: v.get("bleu") for k, v in expected.items() if isinstance(v, dict)})


if __name__ == "__main__":
    main()
