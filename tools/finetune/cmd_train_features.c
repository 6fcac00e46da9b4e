/* cmd_train_features.c — `finetune train --task classify --features FILE`: a classification head (linear or a
 * one-hidden-layer MLP) trained on frozen features, i.e. the embeddings file of `finetune data balance`
 * (feature_head.h, embeddings.h). cmd_train.c hands every command line with --features to this file.
 *
 *   finetune train --task classify --features train.safetensors --val-features dev.safetensors \
 *                  [--out DIR] [--hidden 0] [--epochs 100] [--lr 0.01] [--batch-size 32] [--weight-decay 1e-4]
 *                  [--class-weights none|balanced] [--seed 42] [--json]
 *
 * Prints the training and validation accuracy and macro-F1 (one JSON object with --json); with --out, writes
 * DIR/head.safetensors and DIR/metrics.json (the validation report of metrics.h, else the training one). */
#include "cli.h"
#include "finetune/classify_data.h"
#include "finetune/embeddings.h"
#include "finetune/feature_head.h"
#include "finetune/fileio.h"
#include "finetune/metrics.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

static int fail(int rc) { return ft_cli_fail("train", rc); }

static int evaluate(ft_metrics_report *rep, const ft_fhead *h, const ft_embeddings *e, int K) {
    int *pred = malloc((size_t)(e->n ? e->n : 1) * sizeof *pred);
    if (!pred) return ft_error(FT_ERR_NOMEM, "out of memory");
    int rc = ft_fhead_predict(h, e->X, e->n, pred, NULL);
    ft_metrics_params p = ft_metrics_default_params(K);
    p.all_labels = 1;
    if (rc == FT_OK) rc = ft_metrics_classification(rep, &p, e->labels, pred, NULL, e->n);
    free(pred);
    return rc;
}

int ft_cmd_train_features(int argc, char **argv) {
    ft_opt opts[] = {
        {"task", 1, "classify (the only task on features)", NULL},
        {"features", 1, "training embeddings file (finetune data balance ... --out X.safetensors)", NULL},
        {"val-features", 1, "validation embeddings file", NULL},
        {"out", 1, "directory for head.safetensors and metrics.json", NULL},
        {"hidden", 1, "0: linear head; H: one ReLU layer of H units (0)", NULL},
        {"epochs", 1, "passes over the data (100)", NULL},
        {"lr", 1, "AdamW learning rate (0.01)", NULL},
        {"batch-size", 1, "rows per step (32)", NULL},
        {"weight-decay", 1, "decoupled weight decay (1e-4)", NULL},
        {"class-weights", 1, "none or balanced (n / (K * count_k))", NULL},
        {"seed", 1, "initialisation and shuffling seed (42)", NULL},
        {"json", 0, "print one JSON object", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
                            "usage: finetune train --task classify --features TRAIN.safetensors [--val-features DEV.safetensors] [--out DIR]\n"
                            "                      [--hidden H] [--epochs N] [--lr LR] [--batch-size B] [--class-weights balanced] [--json]");
    if (prc) return prc == 1 ? 0 : prc;
    const char *task = ft_opt_str(opts, "task", "classify"), *cw = ft_opt_str(opts, "class-weights", "none");
    if (strcmp(task, "classify") != 0) { fprintf(stderr, "finetune train: --features trains a classification head: --task classify, not %s\n", task); return 2; }
    if (strcmp(cw, "none") != 0 && strcmp(cw, "balanced") != 0) { fprintf(stderr, "finetune train: --class-weights none or balanced\n"); return 2; }
    ft_fhead_options o = ft_fhead_default_options();
    long hidden, epochs, batch, seed;
    if (ft_opt_int(opts, "hidden", 0, &hidden) || ft_opt_int(opts, "epochs", o.epochs, &epochs) || ft_opt_int(opts, "batch-size", o.batch, &batch) ||
        ft_opt_int(opts, "seed", 42, &seed) || ft_opt_float(opts, "lr", o.lr, &o.lr) || ft_opt_float(opts, "weight-decay", o.weight_decay, &o.weight_decay))
        return 2;
    o.hidden = (int)hidden; o.epochs = (int)epochs; o.batch = (int)batch; o.seed = (uint64_t)seed;
    const char *val = ft_opt_str(opts, "val-features", NULL), *out = ft_opt_str(opts, "out", NULL);
    ft_embeddings tr, va;
    memset(&tr, 0, sizeof tr);
    memset(&va, 0, sizeof va);
    int rc = ft_embeddings_load(&tr, ft_opt_str(opts, "features", ""));
    if (rc == FT_OK && val) rc = ft_embeddings_load(&va, val);
    if (rc == FT_OK && val && va.C != tr.C) rc = ft_error(FT_ERR_SHAPE, "%s has %d features, the training file %d", val, va.C, tr.C);
    int K = tr.label_map ? tr.label_map->n : 0;
    if (rc == FT_OK && val && va.label_map->n > K) K = va.label_map->n;
    float *w = NULL;
    if (rc == FT_OK && !strcmp(cw, "balanced")) {
        int64_t *counts = calloc((size_t)K, sizeof *counts);
        double *wd = calloc((size_t)K, sizeof *wd);
        w = calloc((size_t)K, sizeof *w);
        if (!counts || !wd || !w) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc == FT_OK) rc = ft_cls_class_counts(counts, tr.labels, tr.n, K);
        if (rc == FT_OK) rc = ft_cls_class_weights(wd, counts, K, FT_CLASS_WEIGHT_BALANCED);
        for (int k = 0; rc == FT_OK && k < K; k++) w[k] = (float)wd[k];
        free(counts);
        free(wd);
        o.class_weight = w;
    }
    ft_fhead *h = NULL;
    if (rc == FT_OK) rc = ft_fhead_train(&h, tr.X, tr.labels, tr.n, tr.C, K, &o);
    ft_metrics_report rt, rv;
    memset(&rt, 0, sizeof rt);
    memset(&rv, 0, sizeof rv);
    if (rc == FT_OK) rc = evaluate(&rt, h, &tr, K);
    if (rc == FT_OK && val) rc = evaluate(&rv, h, &va, K);
    if (rc == FT_OK && out) {
        char path[4096];
        rc = ft_mkdirs(out);
        if (rc == FT_OK) rc = ft_path_join(path, sizeof path, out, "head.safetensors");
        if (rc == FT_OK) rc = ft_fhead_save(h, path, tr.label_map);
        char *json = NULL;
        if (rc == FT_OK) rc = ft_metrics_report_json(&json, val ? &rv : &rt, (const char *const *)tr.label_map->names);
        if (rc == FT_OK) rc = ft_path_join(path, sizeof path, out, "metrics.json");
        if (rc == FT_OK) {
            FILE *f = fopen(path, "w");
            if (!f || fputs(json, f) < 0 || fclose(f) != 0) rc = ft_error(FT_ERR_IO, "%s: cannot write", path);
        }
        free(json);
    }
    int status = 0;
    if (rc < 0) status = fail(rc);
    else if (ft_opt_flag(opts, "json")) {
        printf("{\"train\": {\"n\": %lld, \"accuracy\": %.6f, \"f1_macro\": %.6f}", (long long)tr.n, rt.accuracy, rt.f1_macro);
        if (val) printf(", \"val\": {\"n\": %lld, \"accuracy\": %.6f, \"f1_macro\": %.6f}", (long long)va.n, rv.accuracy, rv.f1_macro);
        printf(", \"features\": %d, \"classes\": %d, \"hidden\": %d}\n", tr.C, K, o.hidden);
    } else {
        printf("feature head (%s, %d features, %d classes): %d epochs over %lld rows\n", o.hidden ? "MLP" : "linear", tr.C, K, o.epochs, (long long)tr.n);
        printf("  train  accuracy %.4f  macro-F1 %.4f\n", rt.accuracy, rt.f1_macro);
        if (val) printf("  val    accuracy %.4f  macro-F1 %.4f  (%lld rows)\n", rv.accuracy, rv.f1_macro, (long long)va.n);
        if (out) printf("  wrote %s/head.safetensors, %s/metrics.json\n", out, out);
    }
    ft_metrics_report_free(&rt);
    ft_metrics_report_free(&rv);
    ft_fhead_free(h);
    free(w);
    ft_embeddings_free(&tr);
    ft_embeddings_free(&va);
    return status;
}
