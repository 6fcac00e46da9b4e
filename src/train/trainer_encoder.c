/* trainer_encoder.c — the encoder tasks of the trainer (trainer_internal.h): classify, regress,
 * token-classify and mlm for BERT-style encoders (BERT, DistilBERT, RoBERTa, MiniLM); one
 * implementation, the head a parameter. The loss denominator is the number of labels (or label
 * weights with --class-weights, or masked tokens for mlm); the MLM masks are functions of the seed
 * and the step; evaluation lines carry the task's metrics (encoder_task.h).
 *
 * Per epoch the training examples are shuffled; with --group-by-length they are then cut into
 * mega-batches of 50 batches, each sorted by length (little padding), and the batches of the epoch
 * are visited in a shuffled order. */
#include "trainer_internal.h"
#include "train/dist.h"
#include "infer/encoder_eval_shared.h"
#include "finetune/checkpoint.h"
#include "finetune/encoder_task.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/report.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct enc_task {
    ft_task base;
    ft_train_config *cfg;          /* the trainer's */
    ft_encoder_task task;
    ft_tokenizer *tok;
    ft_encoder_model *m;
    ft_enc_data train, val_file, test;
    int has_val_file, has_test;
    const ft_enc_data *val;        /* &train (split) or &val_file */
    int64_t *tr_idx, *va_idx;      /* training / validation example indices */
    int64_t n_tr, n_va;
    ft_label_map labels;           /* the model's label names (classify / token) */
    ft_enc_batch *micro;           /* [grad_accum] */
    int64_t *order;                /* [n_tr] this epoch's example order */
    int64_t *bstart;               /* [nb] batch b = order[bstart[b] ...] */
    int *blen;                     /* [nb] rows of batch b */
    int64_t nb, plan_epoch;        /* batches per epoch; epoch the plan is for (-1 none) */
    ft_metrics_report last_report; /* of the last validation (classify; k-fold summaries) */
    /* continual learning (continual.h): --replay rows in every batch, --eval-old before / after, --stream */
    ft_enc_data replay, old;
    int has_replay, has_old;
    int b_new, b_old;              /* rows per batch from the training data / from --replay */
    ft_enc_batch *micro_old;       /* [grad_accum] the replayed rows of each micro-batch */
    int *rows_old;                 /* [grad_accum] */
    double old_before, old_before_loss;   /* --eval-old on the starting model */
    int old_before_done;
    ft_enc_data sdata;             /* --stream: the records of the current mini-batch */
    int stream_eof;
} enc_task;

/* ------------------------------------------------------------------ task detection */

int ft__train_is_encoder_task(const ft_train_config *cfg) {
    if (!strcmp(cfg->task, "lm")) return 0;
    if (strcmp(cfg->task, "auto")) return 1;
    if (!cfg->model[0]) return 0;
    ft_encoder_config ec;
    int is_enc = ft_encoder_config_load(&ec, cfg->model) == FT_OK;
    ft_error_clear();
    return is_enc;
}

/* ------------------------------------------------------------------ setup */

static void enc_free(ft_task *k) {
    enc_task *t = (enc_task *)k;
    if (!t) return;
    for (int i = 0; t->micro && i < t->cfg->grad_accum; i++) ft_enc_batch_free(&t->micro[i]);
    free(t->micro);
    for (int i = 0; t->micro_old && i < t->cfg->grad_accum; i++) ft_enc_batch_free(&t->micro_old[i]);
    free(t->micro_old); free(t->rows_old);
    ft_enc_data_free(&t->replay);
    ft_enc_data_free(&t->old);
    ft_enc_data_free(&t->sdata);
    free(t->order); free(t->bstart); free(t->blen);
    free(t->tr_idx); free(t->va_idx);
    ft_enc_data_free(&t->train);
    ft_enc_data_free(&t->val_file);
    ft_enc_data_free(&t->test);
    ft_label_map_free(&t->labels);
    ft_metrics_report_free(&t->last_report);
    ft_encoder_close(t->m);
    ft_tokenizer_free(t->tok);
    free(t);
}

static ft_enc_data_options data_options(const enc_task *t, const ft_label_map *given) {
    ft_enc_data_options o = ft_enc_data_default_options();
    o.text_column = t->cfg->text_column;
    o.pair_column = t->cfg->pair_column[0] ? t->cfg->pair_column : NULL;
    o.label_column = t->cfg->label_column;
    o.label_map = given;
    o.max_len = t->cfg->seq_len;
    o.header = t->cfg->header;
    return o;
}

static void print_data(const enc_task *t, const char *what, const char *path, const ft_enc_data *d) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    int64_t tokens = 0;
    for (int64_t i = 0; i < d->n; i++) tokens += ft_enc_data_length(d, i);
    fprintf(f, "%s %s: %lld %s, %lld tokens (longest %d, mean %.1f)", what, path, (long long)d->n,
            d->task == FT_TASK_TOKEN ? "sentences" : "examples", (long long)tokens, d->max_len, d->n ? (double)tokens / (double)d->n : 0.0);
    if (d->truncated) fprintf(f, ", %lld truncated", (long long)d->truncated);
    if (d->labels && d->labels->n && d->task != FT_TASK_REGRESS) {
        fprintf(f, ", %d %s", d->labels->n, d->task == FT_TASK_TOKEN ? "tags" : "labels");
        if (d->task == FT_TASK_CLASSIFY) {
            int64_t *cnt = calloc((size_t)d->labels->n, sizeof *cnt);
            if (cnt && ft_cls_class_counts(cnt, d->ds.label, d->n, d->labels->n) == FT_OK) {
                fputs(" (", f);
                for (int k = 0; k < d->labels->n && k < 12; k++)
                    fprintf(f, "%s%s: %lld", k ? ", " : "", d->labels->names[k], (long long)cnt[k]);
                fputs(d->labels->n > 12 ? ", ...)" : ")", f);
            }
            free(cnt);
        }
    }
    fclose(f);
    ft__sinks_message(t->base.out, FT_LOG_INFO, "%s", text ? text : "");
    free(text);
}

/* Labels: the data's names, in the model's id order when the checkpoint names the same set. */
static int align_labels(enc_task *t, ft_enc_data *d) {
    const ft_label_map *dm = d->labels;
    int K = dm->n, same = 0;
    if (ft_encoder_label_name(t->m, 0) && ft_encoder_get_config(t->m)->num_labels == K) {
        same = 1;
        for (int k = 0; k < K && same; k++) {
            const char *n = ft_encoder_label_name(t->m, k);
            same = n && ft_label_map_id(dm, n) >= 0;
        }
    }
    if (!same) return ft_label_map_copy(&t->labels, dm);
    const char **names = malloc(sizeof *names * (size_t)K);
    if (!names) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) names[k] = ft_encoder_label_name(t->m, k);
    int rc = ft_label_map_init(&t->labels, names, K);
    free(names);
    return rc;
}

/* re-maps label ids of loaded data to t->labels (by name) */
static int remap_labels(enc_task *t, ft_enc_data *d) {
    if (d->task != FT_TASK_CLASSIFY) return FT_OK;
    int K = d->labels->n, *map = malloc(sizeof(int) * (size_t)(K ? K : 1));
    if (!map) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) map[k] = ft_label_map_id(&t->labels, d->labels->names[k]);
    for (int64_t i = 0; i < d->n; i++) { d->ds.label[i] = map[d->ds.label[i]]; d->f.labels[i] = d->ds.label[i]; }
    free(map);
    ft_label_map_free(&d->ds.labels);
    return ft_label_map_copy(&d->ds.labels, &t->labels);
}

static int load_model(enc_task *t) {
    const ft_train_config *c = t->cfg;
    if (!strcmp(c->init_from, "random"))
        return ft_error(FT_ERR_UNSUPPORTED, "--init random is not available for encoder tasks (start from pretrained weights)");
    FT_TRY(ft_tokenizer_load(&t->tok, c->model));
    /* sequences fit the position table (RoBERTa's starts after the padding index) */
    ft_encoder_config ecfg;
    FT_TRY(ft_encoder_config_load(&ecfg, c->model));
    int max_pos = ft_encoder_config_max_len(&ecfg);
    if (t->cfg->seq_len > max_pos) {
        if (t->cfg->seq_len != 256) /* 256 is the decoders' default, not a request */
            FT_LOGW("--seq-len %d exceeds the encoder's %d positions; using %d", t->cfg->seq_len, max_pos, max_pos);
        t->cfg->seq_len = max_pos;
    }
    /* data first: the label count comes from it */
    ft_enc_data_options o = data_options(t, NULL);
    if (c->stream) {   /* the records come later: the labels are the model's */
        if (t->task != FT_TASK_CLASSIFY) return ft_error(FT_ERR_UNSUPPORTED, "--stream trains classifiers (--task classify)");
    } else FT_TRY(ft_enc_data_load(&t->train, c->data, t->task, t->tok, &o));
    ft_encoder_options eo = ft_encoder_default_options();
    eo.task = t->task;
    eo.pooling = !strcmp(c->pooling, "mean") ? FT_POOL_MEAN : !strcmp(c->pooling, "cls") ? FT_POOL_CLS : FT_POOL_AUTO;
    if (c->stream) eo.num_labels = c->num_labels;   /* 0: the checkpoint's */
    else if (t->task == FT_TASK_CLASSIFY || t->task == FT_TASK_TOKEN) {
        int K = t->train.labels->n;
        if (c->num_labels > 0) {
            if (c->num_labels < K)
                return ft_error(FT_ERR_INVALID, "%s: the data has %d labels, more than --num-labels %d", c->data, K, c->num_labels);
            K = c->num_labels;
        }
        if (K < 2 && t->task == FT_TASK_CLASSIFY)
            return ft_error(FT_ERR_INVALID, "%s: only one label (\"%s\") in the data; classification needs at least 2", c->data, t->train.labels->names[0]);
        eo.num_labels = K;
    }
    if (strcmp(c->recompute, "none"))
        return ft_error(FT_ERR_UNSUPPORTED, "--recompute %s: activation recomputation is implemented for decoders (language models); "
                        "encoder tasks keep every activation (drop --recompute)", c->recompute);
    ft_dtype q = !strcmp(c->method, "qlora") ? (!strcmp(c->quant, "int8") ? FT_Q8_ROW : FT_NF4) : FT_F32;   /* quantized while it loads */
    const ft_backend *be;
    FT_TRY(ft__train_backend(t->base.out, c, &be));
    FT_TRY(ft_encoder_load_quantized(&t->m, c->model, &eo, be, q));
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    if (ft_encoder_head_reinitialised(t->m) && t->task != FT_TASK_MLM)
        ft__sinks_message(t->base.out, FT_LOG_INFO, "note: the %s head was initialised for %d labels; it is trained from scratch in this run",
                         ft_encoder_task_name(t->task), ec->num_labels);
    if (c->stream) {
        int K = ec->num_labels;
        const char **names = malloc(sizeof *names * (size_t)K);
        if (!names) return ft_error(FT_ERR_NOMEM, "out of memory");
        int rc = FT_OK;
        for (int k = 0; k < K && rc == FT_OK; k++)
            if (!(names[k] = ft_encoder_label_name(t->m, k)))
                rc = ft_error(FT_ERR_INVALID, "--stream: %s has no label names (id2label); stream into an already fine-tuned classifier", c->model);
        if (rc == FT_OK) rc = ft_label_map_init(&t->labels, names, K);
        free(names);
        FT_TRY(rc);
    } else if (t->task == FT_TASK_CLASSIFY || t->task == FT_TASK_TOKEN) {
        FT_TRY(align_labels(t, &t->train));
        if (t->task == FT_TASK_CLASSIFY) FT_TRY(remap_labels(t, &t->train));
    }
    if (c->label_smoothing > 0) ft_encoder_set_label_smoothing(t->m, c->label_smoothing);
    if (c->freeze[0]) { int n = ft_encoder_freeze(t->m, c->freeze); if (n < 0) return n; }
    if (c->train_only[0]) { int n = ft_encoder_train_only(t->m, c->train_only); if (n < 0) return n; }
    if (strcmp(c->method, "full")) {
        ft_lora_config lc = ft__train_lora_config(c);
        FT_TRY(ft_encoder_add_lora(t->m, &lc, (uint64_t)c->seed));
    }
    return ft__train_check_trainable(t->base.out, ft_encoder_trainable_count(t->m), ft_encoder_param_count(t->m),
                                    ft_encoder_lora_count(t->m) ? " (LoRA adapters and the task head; the base is frozen)" : "");
}

/* --replay and --eval-old: read with the model's labels (an unknown label is an error naming its line) */
static int load_continual(enc_task *t, const ft_enc_data_options *o) {
    const ft_train_config *c = t->cfg;
    if ((c->replay[0] || c->stream) && t->task != FT_TASK_CLASSIFY)
        return ft_error(FT_ERR_UNSUPPORTED, "--replay and --stream are for classifiers (--task classify)");
    if (c->replay[0]) {
        FT_TRY(ft_enc_data_load(&t->replay, c->replay, t->task, t->tok, o));
        if (t->replay.n <= 0) return ft_error(FT_ERR_INVALID, "--replay %s: no examples", c->replay);
        t->has_replay = 1;
        print_data(t, "replay", c->replay, &t->replay);
    }
    if (c->eval_old[0]) {
        FT_TRY(ft_enc_data_load(&t->old, c->eval_old, t->task, t->tok, o));
        t->has_old = 1;
        print_data(t, "old task", c->eval_old, &t->old);
    }
    int B = c->batch_size;
    t->b_old = t->has_replay ? (int)lround((double)c->replay_ratio * B) : 0;
    if (t->has_replay && t->b_old < 1) t->b_old = 1;
    if (t->b_old > B - 1) t->b_old = B - 1;
    t->b_new = B - t->b_old;
    if (t->has_replay) {
        ft__sinks_message(t->base.out, FT_LOG_INFO, "replay: %d of every %d rows from %s (rehearsal), %d from the training data", t->b_old, B,
                         c->replay, t->b_new);
        t->micro_old = calloc((size_t)c->grad_accum, sizeof *t->micro_old);
        t->rows_old = calloc((size_t)c->grad_accum, sizeof *t->rows_old);
        if (!t->micro_old || !t->rows_old) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int i = 0; i < c->grad_accum; i++) FT_TRY(ft_enc_batch_alloc(&t->micro_old[i], t->b_old, t->replay.max_len));
    }
    return FT_OK;
}

/* --stream: no training file; batches of b_new records as they arrive on stdin */
static int stream_setup(enc_task *t) {
    const ft_train_config *c = t->cfg;
    t->micro = calloc((size_t)c->grad_accum, sizeof *t->micro);
    if (!t->micro) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->grad_accum; i++) FT_TRY(ft_enc_batch_alloc(&t->micro[i], c->batch_size, c->seq_len));
    t->nb = (int64_t)1 << 40;   /* unknown: the run ends with its input */
    t->plan_epoch = -1;
    t->base.batches_per_epoch = t->nb;
    t->base.n_train = 0;
    t->base.n_val = t->n_va;
    return FT_OK;
}

static int load_data(enc_task *t) {
    const ft_train_config *c = t->cfg;
    const ft_label_map *given = t->labels.n ? &t->labels : NULL;
    if (!c->stream) print_data(t, "train", c->data, &t->train);
    ft_enc_data_options o = data_options(t, given);
    FT_TRY(load_continual(t, &o));
    if (c->val_data[0]) {
        FT_TRY(ft_enc_data_load(&t->val_file, c->val_data, t->task, t->tok, &o));
        t->has_val_file = 1;
        print_data(t, "validation", c->val_data, &t->val_file);
    }
    if (c->test_data[0]) {
        FT_TRY(ft_enc_data_load(&t->test, c->test_data, t->task, t->tok, &o));
        t->has_test = 1;
        print_data(t, "test", c->test_data, &t->test);
    }
    int64_t n = t->train.n;
    if (c->stream) {
        if (t->has_val_file) {
            t->va_idx = malloc(sizeof(int64_t) * (size_t)(t->val_file.n ? t->val_file.n : 1));
            if (!t->va_idx) return ft_error(FT_ERR_NOMEM, "out of memory");
            for (int64_t i = 0; i < t->val_file.n; i++) t->va_idx[i] = i;
            t->n_va = t->val_file.n;
            t->val = &t->val_file;
        }
        return stream_setup(t);
    }
    if (t->has_val_file) {
        t->tr_idx = malloc(sizeof(int64_t) * (size_t)n);
        if (!t->tr_idx) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++) t->tr_idx[i] = i;
        t->n_tr = n;
        t->va_idx = malloc(sizeof(int64_t) * (size_t)t->val_file.n);
        if (!t->va_idx) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < t->val_file.n; i++) t->va_idx[i] = i;
        t->n_va = t->val_file.n;
        t->val = &t->val_file;
    } else {
        /* classification: stratified; other tasks: the same routine with one class */
        int K = t->task == FT_TASK_CLASSIFY ? t->labels.n : 1;
        int *lab = malloc(sizeof(int) * (size_t)n);
        if (!lab) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++) lab[i] = ft_enc_data_label(&t->train, i);
        int rc = c->folds > 0
            ? ft_cls_stratified_kfold(&t->tr_idx, &t->n_tr, &t->va_idx, &t->n_va, lab, n, K, c->folds, c->fold, (uint64_t)c->seed)
            : ft_cls_stratified_split(&t->tr_idx, &t->n_tr, &t->va_idx, &t->n_va, lab, n, K, c->val_split, (uint64_t)c->seed);
        free(lab);
        if (rc < 0) return rc;
        t->val = &t->train;
    }
    if (t->n_tr <= 0) return ft_error(FT_ERR_INVALID, "%s: no training examples left after the validation split", c->data);
    if (t->task == FT_TASK_CLASSIFY) {
        int K = ft_encoder_get_config(t->m)->num_labels;
        int *lab = malloc(sizeof(int) * (size_t)t->n_tr);
        int64_t *cnt = calloc((size_t)K, sizeof *cnt);
        int rc = lab && cnt ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; rc == FT_OK && i < t->n_tr; i++) lab[i] = t->train.ds.label[t->tr_idx[i]];
        if (rc == FT_OK && strcmp(c->resample, "none")) {
            int64_t *sub = NULL, ns = 0;
            rc = ft_cls_resample(&sub, &ns, lab, t->n_tr, K, !strcmp(c->resample, "over") ? FT_RESAMPLE_OVER : FT_RESAMPLE_UNDER, (uint64_t)c->seed);
            if (rc == FT_OK) {
                int64_t *ni = malloc(sizeof(int64_t) * (size_t)(ns ? ns : 1));
                int *nl = malloc(sizeof(int) * (size_t)(ns ? ns : 1));
                if (!ni || !nl) rc = ft_error(FT_ERR_NOMEM, "out of memory");
                for (int64_t i = 0; rc == FT_OK && i < ns; i++) { ni[i] = t->tr_idx[sub[i]]; nl[i] = lab[sub[i]]; }
                if (rc == FT_OK) {
                    ft__sinks_message(t->base.out, FT_LOG_INFO, "%s-sampling: %lld -> %lld training examples", c->resample, (long long)t->n_tr, (long long)ns);
                    free(t->tr_idx); t->tr_idx = ni; t->n_tr = ns;
                    free(lab); lab = nl;
                } else { free(ni); free(nl); }
            }
            free(sub);
        }
        if (rc == FT_OK && strcmp(c->class_weights, "none")) {
            double *w = malloc(sizeof(double) * (size_t)K);
            float *wf = malloc(sizeof(float) * (size_t)K);
            if (!w || !wf) rc = ft_error(FT_ERR_NOMEM, "out of memory");
            if (rc == FT_OK) rc = ft_cls_class_counts(cnt, lab, t->n_tr, K);
            if (rc == FT_OK) rc = ft_cls_class_weights(w, cnt, K, !strcmp(c->class_weights, "balanced") ? FT_CLASS_WEIGHT_BALANCED : FT_CLASS_WEIGHT_INVERSE);
            if (rc == FT_OK) {
                char msg[4096];
                size_t at = (size_t)snprintf(msg, sizeof msg, "class weights (%s):", c->class_weights);
                for (int k = 0; k < K; k++) {
                    wf[k] = (float)w[k];
                    if (at < sizeof msg) at += (size_t)snprintf(msg + at, sizeof msg - at, " %s=%.3f", t->labels.names[k], w[k]);
                }
                ft__sinks_message(t->base.out, FT_LOG_INFO, "%s", msg);
                rc = ft_encoder_set_class_weights(t->m, wf);
            }
            free(w); free(wf);
        }
        free(lab); free(cnt);
        if (rc < 0) return rc;
    }
    t->micro = calloc((size_t)c->grad_accum, sizeof *t->micro);
    if (!t->micro) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->grad_accum; i++) FT_TRY(ft_enc_batch_alloc(&t->micro[i], c->batch_size, t->train.max_len));
    t->nb = (t->n_tr + t->b_new - 1) / t->b_new;
    t->order = malloc(sizeof(int64_t) * (size_t)t->n_tr);
    t->bstart = malloc(sizeof(int64_t) * (size_t)t->nb);
    t->blen = malloc(sizeof(int) * (size_t)t->nb);
    if (!t->order || !t->bstart || !t->blen) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->plan_epoch = -1;
    t->base.batches_per_epoch = t->nb;
    t->base.n_train = t->n_tr;
    t->base.n_val = t->n_va;
    return FT_OK;
}

static int enc_create(ft_task **out, ft_train_config *cfg, const ft_sinks *sinks) {
    *out = NULL;
    enc_task *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->base = (ft_task){.ops = &ft_task_encoder_ops, .out = sinks, .rate_key = "examples_per_s", .rate_unit = "ex/s"};
    t->cfg = cfg;
    int rc = ft_encoder_task_from_name(!strcmp(cfg->task, "auto") ? "classify" : cfg->task, &t->task);
    if (rc == FT_OK) rc = load_model(t);
    if (rc == FT_OK) rc = ft_train_defaults_apply(t->cfg, ft_encoder_task_name(t->task), 1, ft_encoder_param_count(t->m),
                                                        t->base.defaults_text, sizeof t->base.defaults_text); /* "auto" options */
    if (rc == FT_OK) rc = load_data(t);
    if (rc < 0) { enc_free(&t->base); return rc; }
    t->base.params = ft_encoder_param(t->m, 0);
    t->base.n_params = ft_encoder_num_params(t->m);
    t->base.main_higher_better = t->task == FT_TASK_CLASSIFY || t->task == FT_TASK_TOKEN;
    t->base.metric_name = t->task == FT_TASK_CLASSIFY ? "accuracy" : t->task == FT_TASK_REGRESS ? "mse"
                        : t->task == FT_TASK_TOKEN ? "entity F1" : "perplexity";
    *out = &t->base;
    return FT_OK;
}

/* --eval-old: the old task's metric of the model now (before training: the starting model; a resumed run is
 * prepared before its checkpoint is loaded, so this is the same starting model) */
static int eval_old(enc_task *t, double *main, double *loss) {
    ft_enc_eval e;
    FT_TRY(ft_enc_evaluate(&e, t->m, t->tok, &t->old, NULL, t->old.n, t->cfg->batch_size, t->cfg->mlm_probability, (uint64_t)t->cfg->seed));
    *main = e.main;
    *loss = e.loss;
    ft_enc_eval_free(&e);
    return FT_OK;
}

/* nothing to allocate beyond the optimizer; the label ids, for the log; --eval-old before training */
static int enc_prepare(ft_task *k) {
    enc_task *t = (enc_task *)k;
    if (t->has_old) {
        FT_TRY(eval_old(t, &t->old_before, &t->old_before_loss));
        t->old_before_done = 1;
        ft__sinks_message(k->out, FT_LOG_INFO, "old task (%s): %s %.4f, loss %.4f before training", t->cfg->eval_old, k->metric_name, t->old_before,
                         t->old_before_loss);
    }
    if (t->labels.n && t->task == FT_TASK_CLASSIFY) {
        char msg[4096];
        size_t at = (size_t)snprintf(msg, sizeof msg, "labels:");
        for (int i = 0; i < t->labels.n && at < sizeof msg; i++) at += (size_t)snprintf(msg + at, sizeof msg - at, " %d=%s", i, t->labels.names[i]);
        ft__sinks_message(k->out, FT_LOG_INFO, "%s", msg);
    }
    return FT_OK;
}

/* ------------------------------------------------------------------ epoch plan */

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const ft_enc_data *d = ctx;
    int la = ft_enc_data_length(d, *(const int64_t *)a), lb = ft_enc_data_length(d, *(const int64_t *)b);
    return lb - la;
}

static void plan_epoch(enc_task *t, int64_t epoch) {
    if (t->plan_epoch == epoch) return;
    int B = t->b_new;   /* the batch less its replayed rows */
    ft_rng r;
    ft_rng_seed(&r, ft__splitmix64((uint64_t)t->cfg->seed ^ ft__splitmix64(0xE90C4ull + (uint64_t)epoch)));
    memcpy(t->order, t->tr_idx, sizeof(int64_t) * (size_t)t->n_tr);
    for (int64_t i = t->n_tr - 1; i > 0; i--) {
        int64_t j = (int64_t)ft_rng_below(&r, (uint64_t)(i + 1));
        int64_t x = t->order[i]; t->order[i] = t->order[j]; t->order[j] = x;
    }
    if (t->cfg->group_by_length) {
        int64_t mega = (int64_t)B * 50;
        for (int64_t s = 0; s < t->n_tr; s += mega) {
            int64_t len = t->n_tr - s < mega ? t->n_tr - s : mega;
            /* qsort is not stable, but the input order is fixed by the seed and ties keep whatever
             * deterministic order glibc's merge sort gives: the plan is a function of (seed, epoch) */
            qsort_r(t->order + s, (size_t)len, sizeof(int64_t), cmp_len_desc, &t->train);
        }
    }
    for (int64_t b = 0; b < t->nb; b++) {
        t->bstart[b] = b * B;
        t->blen[b] = (int)(t->n_tr - b * B < B ? t->n_tr - b * B : B);
    }
    if (t->cfg->group_by_length)
        for (int64_t i = t->nb - 1; i > 0; i--) {
            int64_t j = (int64_t)ft_rng_below(&r, (uint64_t)(i + 1));
            int64_t x = t->bstart[i]; t->bstart[i] = t->bstart[j]; t->bstart[j] = x;
            int y = t->blen[i]; t->blen[i] = t->blen[j]; t->blen[j] = y;
        }
    t->plan_epoch = epoch;
}

/* ------------------------------------------------------------------ one step */

static double batch_denominator(const enc_task *t, const ft_enc_batch *eb, const float *cw) {
    const ft_cls_batch *b = &eb->b;
    double d = 0;
    if (t->task == FT_TASK_CLASSIFY) {
        for (int r = 0; r < b->B; r++) if (b->labels[r] != FT_CLS_IGNORE) d += cw ? cw[b->labels[r]] : 1.0;
    } else if (t->task == FT_TASK_REGRESS) {
        for (int r = 0; r < b->B; r++) d += !isnan(eb->targets[r]);
    } else {
        for (int i = 0; i < b->B * b->T; i++) d += b->labels[i] != FT_CLS_IGNORE;
    }
    return d;
}

/* --stream: up to b_new JSONL records from stdin into t->sdata (through OUT/stream-batch.jsonl, read as any data
 * file with the model's labels); *n records. A batch the reader rejects is skipped with a warning. */
static int stream_read(enc_task *t, int *n) {
    const ft_train_config *c = t->cfg;
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, c->out, "stream-batch.jsonl"));
    for (;;) {
        *n = 0;
        if (t->stream_eof) return FT_OK;
        char *buf = NULL, *line = NULL;
        size_t blen = 0, cap = 0;
        FILE *mem = open_memstream(&buf, &blen);
        if (!mem) return ft_error(FT_ERR_NOMEM, "out of memory");
        int rc = FT_OK;
        while (*n < t->b_new) {
            errno = 0;
            ssize_t len = getline(&line, &cap, stdin);
            if (len < 0) {
                if (errno == EINTR) { clearerr(stdin); rc = ft_error(FT_ERR_INTERRUPTED, "stopped while waiting for input on stdin"); }
                else t->stream_eof = 1;
                break;
            }
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            fprintf(mem, "%s\n", line);
            (*n)++;
        }
        free(line);
        fclose(mem);
        if (rc == FT_OK && *n > 0) rc = ft_file_write_atomic(path, buf, blen);
        free(buf);
        if (rc < 0 || *n == 0) return rc;
        ft_enc_data_free(&t->sdata);
        memset(&t->sdata, 0, sizeof t->sdata);
        ft_enc_data_options o = data_options(t, &t->labels);
        rc = ft_enc_data_load(&t->sdata, path, FT_TASK_CLASSIFY, t->tok, &o);
        if (rc == FT_OK && t->sdata.n > 0) { *n = (int)t->sdata.n; return FT_OK; }
        ft__sinks_message(t->base.out, FT_LOG_WARN, "--stream: skipping %d records: %s", *n, rc < 0 ? ft_last_error() : "no examples");
        ft_error_clear();
    }
}

/* the replayed rows of micro-batch slot: b_old examples of --replay drawn (with replacement) from the step's seed */
static int fill_replay(enc_task *t, int slot, int rank, int world, uint64_t seed, double *den) {
    int64_t first, n, idx[4096];
    ft__shard_rows(t->b_old, rank, world, &first, &n);
    if (n > (int64_t)(sizeof idx / sizeof *idx)) return ft_error(FT_ERR_RANGE, "--replay-ratio: %lld replayed rows per batch (at most 4096)", (long long)n);
    ft_rng r;
    ft_rng_seed(&r, ft__splitmix64(seed ^ 0x5245504C4159ull));
    for (int64_t i = 0; i < first; i++) (void)ft_rng_below(&r, (uint64_t)t->replay.n);   /* the other ranks' rows */
    for (int64_t i = 0; i < n; i++) idx[i] = (int64_t)ft_rng_below(&r, (uint64_t)t->replay.n);
    t->rows_old[slot] = (int)n;
    if (n == 0) return FT_OK;
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    FT_TRY(ft_enc_batch_fill(&t->micro_old[slot], &t->replay, idx, (int)n, t->tok, ec->vocab_size, t->cfg->mlm_probability, seed));
    *den += batch_denominator(t, &t->micro_old[slot], NULL);
    return FT_OK;
}

static int enc_next_batch(ft_task *k, int slot, int64_t epoch, int64_t index, int rank, int world, uint64_t seed,
                          int64_t *count, double *den) {
    enc_task *t = (enc_task *)k;
    if (t->cfg->stream) {
        int n = 0;
        FT_TRY(stream_read(t, &n));
        if (n == 0) return FT__END_OF_DATA;
        int64_t idx[4096];
        if (n > 4096) return ft_error(FT_ERR_RANGE, "--stream: batches of at most 4096 records");
        for (int i = 0; i < n; i++) idx[i] = i;
        const ft_encoder_config *sc = ft_encoder_get_config(t->m);
        FT_TRY(ft_enc_batch_fill(&t->micro[slot], &t->sdata, idx, n, t->tok, sc->vocab_size, t->cfg->mlm_probability, seed));
        *count = n;
        *den = batch_denominator(t, &t->micro[slot], NULL);
        return t->has_replay ? fill_replay(t, slot, rank, world, seed, den) : FT_OK;
    }
    plan_epoch(t, epoch);
    int64_t first, n;
    ft__shard_rows(t->blen[index], rank, world, &first, &n);
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    FT_TRY(ft_enc_batch_fill(&t->micro[slot], &t->train, t->order + t->bstart[index] + first, (int)n, t->tok, ec->vocab_size,
                             t->cfg->mlm_probability, seed ^ 0x4D4C4Dull));
    *count = n;
    *den = batch_denominator(t, &t->micro[slot], NULL);
    return t->has_replay ? fill_replay(t, slot, rank, world, seed, den) : FT_OK;
}

static int enc_zero_grad(ft_task *k) { return ft_encoder_zero_grad(((enc_task *)k)->m); }

static int enc_forward_backward(ft_task *k, int slot, uint64_t dropout_seed, float scale, double *loss_sum, double *den) {
    enc_task *t = (enc_task *)k;
    *loss_sum = 0;
    *den = 0;
    /* the batch's training rows, then its replayed rows (--replay): one loss over both */
    for (int part = 0; part < (t->has_replay ? 2 : 1); part++) {
        if (part == 1 && !t->rows_old[slot]) break;
        ft_encoder_set_training(t->m, 1, part ? ft__splitmix64(dropout_seed ^ 0x4F4C44ull) : dropout_seed);
        ft_encoder_inputs in = ft_enc_batch_inputs(part ? &t->micro_old[slot] : &t->micro[slot], t->m);
        float loss;
        FT_TRY(ft_encoder_forward_ex(t->m, &in, &loss));
        double d = ft_encoder_loss_denominator(t->m);
        if (d <= 0) continue;
        *loss_sum += (double)loss * d;
        *den += d;
        /* class weights: normalised by the step's label count here, rescaled by the trainer once */
        FT_TRY(ft_encoder_backward_scaled(t->m, scale));
    }
    return FT_OK;
}

static void enc_end_step(ft_task *k) { ft_encoder_set_training(((enc_task *)k)->m, 0, 0); }

/* ------------------------------------------------------------------ saving */

static int save_model_dir(enc_task *t, const char *dir) {
    const char *const *names = t->labels.n ? (const char *const *)t->labels.names : NULL;
    if (ft_encoder_lora_count(t->m)) {
        /* LoRA: a PEFT adapter directory pointing at the base (absolute path) */
        char abs[4096];
        const char *base = realpath(t->cfg->model, abs) ? abs : t->cfg->model;
        FT_TRY(ft_encoder_save_adapter(t->m, dir, base, names));
    } else FT_TRY(ft_encoder_save(t->m, dir, names));
    if (ft_copy_tokenizer_files(t->cfg->model, dir) < 0) return FT_ERR_IO;
    return FT_OK;
}

static int enc_save_model(ft_task *k, const char *dir) { return save_model_dir((enc_task *)k, dir); }
static int enc_load_weights(ft_task *k, const char *dir) {
    ft_encoder_model *m = ((enc_task *)k)->m;
    return ft_encoder_lora_count(m) ? ft_encoder_load_adapter(m, dir) : ft_encoder_load_weights(m, dir);
}

/* ------------------------------------------------------------------ evaluation */

/* the metrics in words: "loss 0.6931, accuracy 0.5000, F1 macro ... (40 examples)" */
static void summary(const enc_task *t, const ft_enc_eval *ev, char *buf, size_t cap) {
    const ft_metrics_report *r = &ev->report;
    size_t at = (size_t)snprintf(buf, cap, "loss %.4f", ev->loss);
    if (at >= cap) return;
    if (t->task == FT_TASK_CLASSIFY)
        at += (size_t)snprintf(buf + at, cap - at, ", accuracy %.4f, F1 macro %.4f, precision %.4f, recall %.4f, ECE %.4f", r->accuracy,
                               r->f1_macro, r->precision_macro, r->recall_macro, r->ece);
    else if (t->task == FT_TASK_REGRESS) at += (size_t)snprintf(buf + at, cap - at, ", MSE %.4f", ev->main);
    else if (t->task == FT_TASK_TOKEN) at += (size_t)snprintf(buf + at, cap - at, ", entity F1 %.4f", ev->main);
    else at += (size_t)snprintf(buf + at, cap - at, ", perplexity %.3f", ev->main);
    if (at < cap) snprintf(buf + at, cap - at, " (%lld examples)", (long long)ev->examples);
}

/* an ft_enc_eval as the trainer's evaluation (the JSON copied) */
static int to_task_eval(const enc_task *t, const ft_enc_eval *e, ft_task_eval *ev) {
    ev->json = strdup(e->json);
    if (!ev->json) return ft_error(FT_ERR_NOMEM, "out of memory");
    ev->loss = e->loss;
    ev->main = e->main;
    summary(t, e, ev->summary, sizeof ev->summary);
    return FT_OK;
}

static int gather_rows(void *ctx, double *rows, int64_t n, int width) { return ft__dist_gather_rows(ctx, rows, n, width); }

static int enc_evaluate(ft_task *k, ft_task_eval *ev) {
    enc_task *t = (enc_task *)k;
    ev->json = NULL;
    if (t->n_va <= 0) return FT_OK;
    int64_t n = t->n_va;
    if (t->cfg->eval_batches > 0 && (int64_t)t->cfg->eval_batches * t->cfg->batch_size < n) n = (int64_t)t->cfg->eval_batches * t->cfg->batch_size;
    ft_enc_eval e;
    /* several ranks share the batches (dist.h); the metrics come out as one process computes them */
    const ft__dist *d = ft__dist_get();
    FT_TRY(ft__enc_evaluate_shared(&e, t->m, t->tok, t->val, t->va_idx, n, t->cfg->batch_size, t->cfg->mlm_probability,
                                   (uint64_t)t->cfg->seed, d->rank, d->world, gather_rows, (void *)d));
    int rc = to_task_eval(t, &e, ev);
    ft_metrics_report_free(&t->last_report);
    t->last_report = e.report;
    memset(&e.report, 0, sizeof e.report);
    ft_enc_eval_free(&e);
    return rc;
}

/* the best model (else the final one) on --test-data */
static int enc_test(ft_task *k, ft_task_eval *ev, char *label, size_t cap) {
    enc_task *t = (enc_task *)k;
    ev->json = NULL;
    if (t->has_old && t->old_before_done) {   /* --eval-old: the final model on the old task, and what was forgotten */
        double after, after_loss;
        FT_TRY(eval_old(t, &after, &after_loss));
        double forgot = k->main_higher_better ? t->old_before - after : after - t->old_before;
        ft__sinks_message(k->out, FT_LOG_INFO, "old task (%s): %s before %.4f -> after %.4f (forgetting %.4f; loss %.4f -> %.4f)", t->cfg->eval_old,
                         k->metric_name, t->old_before, after, forgot, t->old_before_loss, after_loss);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", "forgetting");
        cJSON_AddStringToObject(j, "data", t->cfg->eval_old);
        cJSON_AddStringToObject(j, "metric", k->metric_name);
        cJSON_AddNumberToObject(j, "before", t->old_before);
        cJSON_AddNumberToObject(j, "after", after);
        cJSON_AddNumberToObject(j, "forgetting", forgot);
        cJSON_AddNumberToObject(j, "before_loss", t->old_before_loss);
        cJSON_AddNumberToObject(j, "after_loss", after_loss);
        char *line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        int rc = line ? ft__sinks_record(k->out, line) : ft_error(FT_ERR_NOMEM, "out of memory");
        free(line);
        FT_TRY(rc);
    }
    if (!t->has_test) return FT_OK;
    char dir[4096];
    FT_TRY(ft_path_join(dir, sizeof dir, t->cfg->out, "best"));
    const char *which = "final";
    if (ft_path_exists(dir)) { FT_TRY(enc_load_weights(k, dir)); which = "best"; }
    ft_enc_eval e;
    FT_TRY(ft_enc_evaluate(&e, t->m, t->tok, &t->test, NULL, t->test.n, t->cfg->batch_size, t->cfg->mlm_probability, (uint64_t)t->cfg->seed));
    int rc = to_task_eval(t, &e, ev);
    snprintf(label, cap, "test (%s model)", which);
    ft_enc_eval_free(&e);
    return rc;
}

/* ------------------------------------------------------------------ words */

static void enc_describe(const ft_task *k, char *buf, size_t cap) {
    const enc_task *t = (const enc_task *)k;
    if (t->cfg->stream) {
        snprintf(buf, cap, "%s (%s): %lld parameters, JSONL records from stdin in batches of %d (%lld validation examples)",
                 ft_encoder_get_config(t->m)->model_type, ft_encoder_task_name(t->task), (long long)ft_encoder_param_count(t->m), t->b_new,
                 (long long)t->n_va);
        return;
    }
    snprintf(buf, cap, "%s (%s): %lld parameters, %lld train / %lld validation examples, %lld batches of %d per epoch",
             ft_encoder_get_config(t->m)->model_type, ft_encoder_task_name(t->task), (long long)ft_encoder_param_count(t->m),
             (long long)t->n_tr, (long long)t->n_va, (long long)t->nb, t->cfg->batch_size);
}

static int enc_plan(ft_task *k, int64_t total_steps, char *buf, size_t cap) {
    enc_task *t = (enc_task *)k;
    const ft_train_config *c = t->cfg;
    size_t w = ft_encoder_weight_bytes(t->m);
    int64_t tr = ft_encoder_trainable_count(t->m);
    size_t g = (size_t)tr * sizeof(float), o = (size_t)ft__train_optimizer_moments(c) * g;
    size_t act = ft_encoder_activation_bytes(t->m, c->batch_size, t->train.max_len);
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    /* --precision bf16: the largest matmul's packing (MLM: the vocabulary projection, counted over every row) */
    size_t bf = ft__train_bf16_workspace_bytes(c, (int64_t)c->batch_size * t->train.max_len, ec->n_embd, ec->ffn_hidden,
                                               t->task == FT_TASK_MLM ? ec->vocab_size : 0);
    size_t base = ft__rss_now(), peak = base + g + o + act + bf + FT_BLAS_RSS_BYTES;
    const double MiB = 1048576.0;
    char bfs[96] = "";
    if (bf) snprintf(bfs, sizeof bfs, "; bf16 packing (largest matmul, no bf16 weight copies kept) %.1f", bf / MiB);
    snprintf(buf, cap,
             "plan: %s %s, %lld parameters (%lld trainable); %lld training / %lld validation examples; %lld steps of %d x %d examples (longest %d tokens)\n"
             "memory (MiB): loaded now %.1f (weights %.1f); gradients %.1f; optimizer %.1f; activations %.1f; BLAS buffers %.1f%s\n"
             "predicted peak RSS: %.1f MiB",
             ft_encoder_get_config(t->m)->model_type, ft_encoder_task_name(t->task), (long long)ft_encoder_param_count(t->m), (long long)tr,
             (long long)t->n_tr, (long long)t->n_va, (long long)total_steps, c->grad_accum, c->batch_size, t->train.max_len,
             base / MiB, w / MiB, g / MiB, o / MiB, act / MiB, FT_BLAS_RSS_BYTES / MiB, bfs, peak / MiB);
    return FT_OK;
}

const ft_task_ops ft_task_encoder_ops = {
    .create = enc_create,
    .free = enc_free,
    .prepare = enc_prepare,
    .next_batch = enc_next_batch,
    .zero_grad = enc_zero_grad,
    .forward_backward = enc_forward_backward,
    .end_step = enc_end_step,
    .evaluate = enc_evaluate,
    .save_model = enc_save_model,
    .save_weights = enc_save_model,
    .load_weights = enc_load_weights,
    .test = enc_test,
    .describe = enc_describe,
    .plan = enc_plan,
};

/* ------------------------------------------------------------------ k-fold */

/* k-fold with --fold -1: every fold in OUT/fold-N (a trainer each), then mean +- std of the validation
 * metrics in OUT/kfold.json and OUT/metrics.jsonl */
int ft__train_encoder_all_folds(const ft_train_config *cfg, const ft_train_sink *sinks, int n_sinks,
                               const volatile sig_atomic_t *stop, ft_train_result *res) {
    int K = cfg->folds, rc = FT_OK;
    ft_sinks out = {.n = 0};
    for (int i = 0; i < n_sinks && i < 16; i++) out.s[out.n++] = sinks[i];
    ft_metrics_report *reps = calloc((size_t)K, sizeof *reps);
    if (!reps) return ft_error(FT_ERR_NOMEM, "out of memory");
    int done = 0;
    for (int f = 0; f < K && rc == FT_OK; f++) {
        ft_train_config c = *cfg;
        c.fold = f;
        char sub[16];
        snprintf(sub, sizeof sub, "fold-%d", f);
        if (ft_path_join(c.out, sizeof c.out, cfg->out, sub) != FT_OK) { rc = ft_error(FT_ERR_RANGE, "--out too long"); break; }
        ft__sinks_message(&out, FT_LOG_INFO, "=== fold %d of %d -> %s", f + 1, K, c.out);
        ft_trainer *t = NULL;
        rc = ft_trainer_create(&t, &c, NULL, sinks, n_sinks, stop);
        if (rc == FT_OK) rc = ft_trainer_run(t, res);
        if (rc == FT_OK) {
            enc_task *e = (enc_task *)ft__trainer_task(t);
            reps[f] = e->last_report;
            memset(&e->last_report, 0, sizeof e->last_report);
            done++;
        }
        ft_trainer_close(t);
    }
    if (rc == FT_OK && done == K && reps[0].num_classes > 0) {
        char *json = NULL;
        rc = ft_metrics_kfold_json(&json, reps, K);
        if (rc == FT_OK) {
            char path[4096];
            ft_path_join(path, sizeof path, cfg->out, "kfold.json");
            rc = ft_file_write_atomic(path, json, strlen(json));
            ft_path_join(path, sizeof path, cfg->out, "metrics.jsonl");
            FILE *f = fopen(path, "w");
            if (f) {
                cJSON *j = cJSON_Parse(json);
                if (j) {
                    cJSON_AddStringToObject(j, "type", "kfold");
                    char *line = cJSON_PrintUnformatted(j);
                    if (line) fprintf(f, "%s\n", line);
                    free(line);
                    cJSON *a = cJSON_GetObjectItem(j, "accuracy"), *f1 = cJSON_GetObjectItem(j, "f1_macro");
                    if (a && f1)
                        ft__sinks_message(&out, FT_LOG_INFO, "%d-fold: accuracy %.4f +- %.4f, F1 macro %.4f +- %.4f (%s/kfold.json)", K,
                                         cJSON_GetNumberValue(cJSON_GetObjectItem(a, "mean")), cJSON_GetNumberValue(cJSON_GetObjectItem(a, "std")),
                                         cJSON_GetNumberValue(cJSON_GetObjectItem(f1, "mean")), cJSON_GetNumberValue(cJSON_GetObjectItem(f1, "std")), cfg->out);
                    cJSON_Delete(j);
                }
                fclose(f);
            }
            ft_report_write(cfg->out);
        }
        free(json);
    }
    for (int f = 0; f < K; f++) ft_metrics_report_free(&reps[f]);
    free(reps);
    return rc;
}
