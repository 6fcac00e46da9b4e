/* cmd_data_balance.c — `finetune data balance IN --out OUT --method M`: class balancing (balance.h).
 *
 *   finetune data balance train.tsv --out bal.tsv --method over --ratio 0.5             rows of the input file
 *   finetune data balance train.tsv --out emb.safetensors --method smote --model models/all-MiniLM-L6-v2
 *   finetune data balance emb.safetensors --out tomek.safetensors --method tomek        embeddings in, out
 *   finetune data balance train.tsv --out emb.safetensors --method none --model DIR     embeddings only
 *
 * IN is a labelled text file (CSV / TSV / JSONL, the column options of `data augment`) or an embeddings
 * file (embeddings.h). With --model the texts are embedded first (mean-pooled, L2-normalised sentence
 * embeddings). OUT *.safetensors gets embeddings + labels + source rows (for `finetune train --features`);
 * any other OUT gets text records (only for over, under and tomek, which make no new points): the kept
 * input rows with augmented_from null, then over-sampled copies with augmented_from = the row copied.
 * Class counts before and after go to stderr. */
#include "cli.h"
#include "data_records.h"
#include "finetune/balance.h"
#include "finetune/embeddings.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: finetune data balance IN --out OUT [--method over|under|smote|borderline-smote[-1|-2]|adasyn|tomek|none]\n"
    "       (default --method: over, or smote when OUT ends in .safetensors)\n"
    "                             [--ratio R] [--model ENCODER] [--seed S] [--k-neighbors 5] [--m-neighbors 10]";

static int fail(int rc) { return ft_cli_fail("data balance", rc); }

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static void print_counts(const char *what, const int *y, int64_t n, const ft_label_map *lm) {
    int K = lm->n;
    int64_t *c = calloc((size_t)(K ? K : 1), sizeof *c);
    if (!c) return;
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < K) c[y[i]]++;
    fprintf(stderr, "  %-7s %6lld rows:", what, (long long)n);
    for (int k = 0; k < K; k++) fprintf(stderr, "  %s %lld", lm->names[k], (long long)c[k]);
    fputc('\n', stderr);
    free(c);
}

int ft_cmd_data_balance(int argc, char **argv) {
    ft_opt opts[] = {
        {"out", 1, "output: *.safetensors (embeddings + labels) or a .jsonl / .csv / .tsv of rows (over, under, tomek)", NULL},
        {"method", 1, "over | under | smote | borderline-smote (-1, -2) | adasyn | tomek | none (embeddings only)", NULL},
        {"ratio", 1, "minority / majority share after resampling, (0, 1] (1.0)", NULL},
        {"model", 1, "encoder directory for sentence embeddings (e.g. models/all-MiniLM-L6-v2)", NULL},
        {"seed", 1, "random seed (42)", NULL},
        {"k-neighbors", 1, "SMOTE / Borderline / ADASYN neighbours (5)", NULL},
        {"m-neighbors", 1, "Borderline-SMOTE danger neighbours (10)", NULL},
        {"max-len", 1, "tokens per text when embedding (128)", NULL},
        {"batch-size", 1, "texts per embedding forward (32)", NULL},
        {"no-normalize", 0, "keep the mean-pooled embeddings unnormalised", NULL},
        {"threads", 1, "CPU threads", NULL},
        FT_CLI_CLS_COLUMN_OPTS,
        {NULL, 0, NULL, NULL},
    };
    const char *in, *out;
    int st = ft_cli_data_input(argc, argv, opts, k_usage, &in, &out);
    if (st >= 0) return st;
    const char *method = ft_opt_str(opts, "method", NULL), *model = ft_opt_str(opts, "model", NULL);
    /* default: random over-sampling of the rows (no model needed), or SMOTE when OUT is an embeddings file */
    if (!method) method = ends_with(out, ".safetensors") ? "smote" : "over";
    long seed, kn, mn, max_len, batch, threads;
    double ratio;
    if (ft_opt_int(opts, "seed", 42, &seed) || ft_opt_int(opts, "k-neighbors", 5, &kn) || ft_opt_int(opts, "m-neighbors", 10, &mn) ||
        ft_opt_int(opts, "max-len", 128, &max_len) || ft_opt_int(opts, "batch-size", 32, &batch) || ft_opt_int(opts, "threads", 0, &threads) ||
        ft_opt_float(opts, "ratio", 1.0, &ratio))
        return 2;
    if (threads > 0) ft_set_threads((int)threads);
    int none = !strcmp(method, "none");
    ft_balance_options o = ft_balance_default_options();
    if (!none) {
        int rc = ft_balance_method_from_name(method, &o.method);
        if (rc < 0) { fprintf(stderr, "finetune data balance: %s\n", ft_last_error()); return 2; }
    }
    o.ratio = ratio;
    o.seed = (uint64_t)seed;
    o.k_neighbors = (int)kn;
    o.m_neighbors = (int)mn;
    int emb_in = ends_with(in, ".safetensors"), emb_out = ends_with(out, ".safetensors");
    int need_x = emb_out || (!none && ft_balance_needs_features(o.method));
    if (need_x && !emb_in && !model) {
        fprintf(stderr, "finetune data balance: %s needs sentence embeddings: give --model ENCODER or an embeddings file as IN\n",
                emb_out ? "an embeddings output" : method);
        return 2;
    }
    if (!emb_out && emb_in) { fprintf(stderr, "finetune data balance: embeddings in, embeddings out: OUT must end in .safetensors\n"); return 2; }
    if (!emb_out && !none && (o.method != FT_BAL_OVER && o.method != FT_BAL_UNDER && o.method != FT_BAL_TOMEK)) {
        fprintf(stderr, "finetune data balance: %s makes new points in embedding space: OUT must end in .safetensors\n", method);
        return 2;
    }
    if (none && !emb_out) { fprintf(stderr, "finetune data balance: --method none writes embeddings: OUT must end in .safetensors\n"); return 2; }

    ft_cls_dataset ds;
    memset(&ds, 0, sizeof ds);
    ft_embeddings e;
    memset(&e, 0, sizeof e);
    ft_encoder_model *m = NULL;
    ft_tokenizer *tok = NULL;
    const char *tc = "text", *lc = "label", *pc = NULL;
    int rc = FT_OK;
    const ft_label_map *lm;
    if (emb_in) {
        rc = ft_embeddings_load(&e, in);
        lm = e.label_map;
    } else {
        rc = ft_cli_cls_load(&ds, in, opts, &tc, &lc, &pc);
        lm = &ds.labels;
        e.n = ds.n;
        e.labels = ds.label;
        if (rc == FT_OK && need_x) {
            ft_encoder_options eo = ft_encoder_default_options();
            eo.task = FT_TASK_CLASSIFY;
            eo.pooling = FT_POOL_MEAN;
            rc = ft_tokenizer_load(&tok, model);
            if (rc == FT_OK) rc = ft_encoder_load_ex(&m, model, &eo, ft_backend_cpu());
            if (rc == FT_OK) {
                e.C = ft_encoder_get_config(m)->n_embd;
                e.X = malloc((size_t)(ds.n ? ds.n : 1) * (size_t)e.C * sizeof *e.X);
                if (!e.X) rc = ft_error(FT_ERR_NOMEM, "out of memory");
            }
            if (rc == FT_OK) {
                fprintf(stderr, "finetune data balance: embedding %lld texts with %s\n", (long long)ds.n, model);
                rc = ft_encoder_embed(e.X, m, tok, (const char *const *)ds.text, (const char *const *)ds.pair, ds.n, (int)max_len,
                                      (int)batch, !ft_opt_flag(opts, "no-normalize"));
            }
        }
    }
    ft_balance_result r;
    memset(&r, 0, sizeof r);
    if (rc == FT_OK && !none) rc = ft_balance(&r, e.X, e.labels, e.n, e.C, lm->n, &o);
    if (rc == FT_OK && emb_out) {
        ft_embeddings w = {e.n, e.C, e.X, e.labels, e.source, (ft_label_map *)lm};
        if (!none) {
            /* a synthetic row has no input row; source rows map back through the input's own source */
            for (int64_t i = 0; e.source && i < r.n; i++)
                if (r.source[i] >= 0) r.source[i] = e.source[r.source[i]];
            w = (ft_embeddings){r.n, r.C, r.X, r.y, r.source, (ft_label_map *)lm};
        }
        const char *meta[] = {"model", model ? model : "", "pooling", "mean", "normalized", ft_opt_flag(opts, "no-normalize") ? "0" : "1",
                              "method", none ? "none" : ft_balance_method_name(o.method)};
        rc = ft_embeddings_save(out, &w, meta, 4);
    } else if (rc == FT_OK) {
        ft_cli_cls_out wr;
        rc = ft_cli_cls_out_open(&wr, out, tc, lc, pc);
        for (int64_t i = 0; i < r.n && rc == FT_OK; i++) {
            int64_t s = r.source[i];
            int copy = i >= ds.n && o.method == FT_BAL_OVER;
            rc = ft_cli_cls_out_row(&wr, ds.text[s], ds.pair ? ds.pair[s] : NULL, lm->names[ds.label[s]], copy ? s : -1,
                                    copy ? "random_over" : "original");
        }
        int crc = ft_cli_cls_out_close(&wr);
        if (rc == FT_OK) rc = crc;
    }
    int status = 0;
    if (rc < 0) status = fail(rc);
    else {
        fprintf(stderr, "finetune data balance: %s (ratio %g), %s -> %s\n", none ? "none" : ft_balance_method_name(o.method), ratio, in, out);
        print_counts("before", e.labels, e.n, lm);
        if (!none) print_counts("after", r.y, r.n, lm);
        if (r.n_danger) fprintf(stderr, "  %lld danger rows (borderline)\n", (long long)r.n_danger);
        if (r.n_links) fprintf(stderr, "  %lld rows in Tomek links\n", (long long)r.n_links);
    }
    ft_balance_result_free(&r);
    if (emb_in) ft_embeddings_free(&e);
    else free(e.X);
    ft_cls_dataset_free(&ds);
    if (m) ft_encoder_close(m);
    if (tok) ft_tokenizer_free(tok);
    return status;
}
