#!/usr/bin/env python3
"""Live check of `finetune score` against the real sacreBLEU and rouge-score packages.

    python3 tests/textmetrics/sacrebleu_check.py --bin build/finetune [--seed 7] [--n 400] [--dir DIR]

Generates seeded, random-ish hypothesis / reference pairs (words with capitals, punctuation, numbers with
commas and periods, dashes, HTML entities, Unicode letters and symbols, tabs, no-break spaces, several
sentences on separate lines, empty texts; one to three references per line), scores them with
`finetune score --json --per-example` (with and without --stem, with --bootstrap and with --compare) and with
sacrebleu / rouge_score in this process, and compares: corpus BLEU / chrF to 4 decimals, BLEU's counts and
lengths exactly, sentence BLEU / chrF per example to 1e-4, ROUGE per example and averaged to 1e-6, bootstrap
means / intervals to 1e-3 (sacreBLEU resamples in float32), paired p-values exactly.
Exit status 0 when everything agrees, 1 otherwise (each mismatch printed); 77 when a package is missing.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import sacrebleu
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest
except ImportError as e:  # the C test prints this and skips
    print("SKIP: %s (scripts/setup.sh installs sacrebleu and rouge-score)" % e)
    sys.exit(77)

WORDS = ("the a an of to and in is was for on that with as it be by this are from at his had they which one you were "
         "her all she there would their we him been has when who will more no if out so said what up its about into "
         "than them can only other new some could time these two may then do first any my now such like our over "
         "running runners ran easily happily flying skies generously relational conditional hopefulness").split()
ODD = ["Hello", "World", "NASA", "U.S.", "e.g.", "don't", "it's", "1,000", "3.14", "2019-2020", "-7", "10%", "$5",
       "(see", "below)", "\"quoted\"", "&amp;", "&lt;b&gt;", "<skipped>", "naïve", "café", "Ærø", "straße", "İstanbul",
       "300\u212a", "ΟΔΟΣ", "日本語", "😀", "—", "…", "a/b", "x+y", "#tag", "@user", "~", "{x}", "[1]", "well-known",
       "state-of-the-art", "end.", "Mr.", "ok!", "why?", "so,", "yes;", "no:", "tab\there", "nb\u00a0sp"]


def sentence(rng, n):
    out = []
    for _ in range(n):
        out.append(rng.choice(ODD) if rng.random() < 0.2 else rng.choice(WORDS))
    if out and rng.random() < 0.5:
        out[0] = out[0].capitalize()
    s = " ".join(out)
    return s + rng.choice([".", "!", "?", "", " .", ","])


def text(rng):
    r = rng.random()
    if r < 0.03:
        return ""
    k = 1 if r < 0.7 else rng.randint(2, 4)
    return "\n".join(sentence(rng, rng.randint(1, 18)) for _ in range(k))


def perturb(rng, t):
    if rng.random() < 0.05:
        return t
    if rng.random() < 0.05:
        return text(rng)
    lines = []
    for line in t.split("\n"):
        words = line.split(" ")
        out = []
        for w in words:
            x = rng.random()
            if x < 0.15:
                continue
            if x < 0.28:
                out.append(rng.choice(WORDS + ODD))
            elif x < 0.33:
                out.append(w.upper())
            else:
                out.append(w)
            if rng.random() < 0.05:
                out.append(rng.choice(WORDS))
        lines.append(" ".join(out))
    return "\n".join(lines)


def run(bin_path, args):
    p = subprocess.run([bin_path, "score"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        print("finetune score %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        sys.exit(1)
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/finetune")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    refs = []
    for _ in range(a.n):
        base = text(rng)
        k = rng.choice([1, 1, 2, 3])
        refs.append([base] + [perturb(rng, base) for _ in range(k - 1)])
    hyps = [perturb(rng, r[0]) for r in refs]
    hyps2 = [perturb(rng, r[0]) for r in refs]
    work = a.dir or tempfile.mkdtemp(prefix="ft_score_check_")
    os.makedirs(work, exist_ok=True)
    pf, p2f, rf = (os.path.join(work, x) for x in ("pred.jsonl", "pred2.jsonl", "refs.jsonl"))
    with open(pf, "w", encoding="utf-8") as f:
        for h in hyps:
            f.write(json.dumps({"prediction": h}, ensure_ascii=False) + "\n")
    with open(p2f, "w", encoding="utf-8") as f:
        for h in hyps2:
            f.write(json.dumps({"prediction": h}, ensure_ascii=False) + "\n")
    with open(rf, "w", encoding="utf-8") as f:
        for r in refs:
            f.write(json.dumps({"reference": r}, ensure_ascii=False) + "\n")
    nmax = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(nmax)]
    bad = []

    def close(what, got, want, tol):
        if abs(got - want) > tol:
            bad.append("%s: finetune %.10f, reference %.10f" % (what, got, want))

    mine = run(a.bin, ["--predictions", pf, "--references", rf, "--json", "--per-example", "--metrics", "bleu,chrf,rouge"])
    bleu = BLEU()
    b = bleu.corpus_score(hyps, streams)
    close("corpus BLEU", mine["bleu"], b.score, 5e-5)
    if mine["bleu_signature"] != str(bleu.get_signature()):
        bad.append("BLEU signature %s vs %s" % (mine["bleu_signature"], bleu.get_signature()))
    d = mine["bleu_details"]
    if (d["counts"], d["totals"], d["sys_len"], d["ref_len"]) != (list(b.counts), list(b.totals), b.sys_len, b.ref_len):
        bad.append("BLEU statistics %s vs %s" % (d, (b.counts, b.totals, b.sys_len, b.ref_len)))
    close("corpus chrF", mine["chrf"], CHRF().corpus_score(hyps, streams).score, 5e-5)
    for i, (h, r) in enumerate(zip(hyps, refs)):
        close("line %d sentence BLEU" % (i + 1), mine["per_example"][i]["bleu"], sacrebleu.sentence_bleu(h, r).score, 1e-4)
        close("line %d sentence chrF" % (i + 1), mine["per_example"][i]["chrf"], sacrebleu.sentence_chrf(h, r).score, 1e-4)
    for stem in (False, True):
        if stem:
            mine = run(a.bin, ["--predictions", pf, "--references", rf, "--json", "--per-example", "--metrics", "rouge", "--stem"])
        sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=stem)
        ref_scores = [sc.score_multi(r, h) for h, r in zip(hyps, refs)]
        for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            vals = [s[k].fmeasure for s in ref_scores]
            close("%s%s mean" % (k, " stem" if stem else ""), mine[k], float(np.mean(vals)), 1e-6)
            for i, v in enumerate(vals):
                close("line %d %s%s" % (i + 1, k, " stem" if stem else ""), mine["per_example"][i][k], v, 1e-6)
    # bootstrap intervals and the paired test (sacreBLEU's default seed)
    os.environ["SACREBLEU_SEED"] = "12345"
    mine = run(a.bin, ["--predictions", pf, "--references", rf, "--json", "--metrics", "bleu,chrf", "--bootstrap", "500"])
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        s = metric.corpus_score(hyps, streams, n_bootstrap=500)
        close("%s bootstrap mean" % name, mine["bootstrap"][name]["mean"], float(s._mean), 1e-3)
        close("%s bootstrap ci" % name, mine["bootstrap"][name]["ci"], float(s._ci), 1e-3)
    mine = run(a.bin, ["--predictions", pf, "--references", rf, "--json", "--metrics", "bleu,chrf", "--compare", p2f])
    _, res = PairedTest([("base", hyps), ("sys", hyps2)], {"BLEU": BLEU(), "chrF": CHRF()}, streams, test_type="bs",
                        n_samples=1000)()
    for name, key in (("BLEU", "bleu"), ("chrF2", "chrf")):
        close("%s paired p-value" % key, mine["compare"][key]["p_value"], res[name][1].p_value, 1e-12)
        close("%s paired system mean" % key, mine["compare"][key]["mean"], float(res[name][1].mean), 1e-3)
    print("sacrebleu_check: %d lines (1-3 references), seed %d: BLEU %.4f chrF %.4f, %d mismatches"
          % (a.n, a.seed, b.score, CHRF().corpus_score(hyps, streams).score, len(bad)))
    for m in bad[:30]:
        print("  MISMATCH " + m)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
