/* trainer_encoder.c — `finetune train --task classify|regress|token-classify|mlm` for BERT-style
 * encoders. The same contract as the decoder loop (trainer.c): one optimizer step = up to grad_accum
 * micro-batches whose gradients are normalised by the labels (or label weights) of all of them; the
 * order of examples, dropout and MLM masks are functions of the seed and the step; checkpoints hold
 * weights, optimizer moments and the stream position, so a resumed run ends bit-identical.
 *
 * Per epoch the training examples are shuffled; with --group-by-length they are then cut into
 * mega-batches of 50 batches, each sorted by length (little padding), and the batches of the epoch
 * are visited in a shuffled order. Evaluation lines carry the task's metrics (encoder_task.h). */
#include "trainer_internal.h"
#include "finetune/checkpoint.h"
#include "finetune/encoder_task.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/report.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct enc_trainer {
    ft_train_config cfg;
    ft_encoder_task task;
    ft_tokenizer *tok;
    ft_encoder_model *m;
    ft_optimizer *opt;
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
    int64_t step, epoch, cursor;   /* optimizer steps done; stream position (epoch, next batch) */
    int64_t total_steps, warmup, steps_per_epoch;
    ft_schedule sched;
    double best, train_time;
    int bad_evals, is_tty, higher_better;
    int64_t examples_seen;
    float first_val, last_val, last_train;
    double first_main, last_main, best_main;   /* headline metric of the evaluations */
    FILE *metrics;
    ft_metrics_report last_report; /* of the last validation (classify) */
} enc_trainer;

/* ------------------------------------------------------------------ task detection */

int ft_train_is_encoder_task(const ft_train_config *cfg) {
    if (!strcmp(cfg->task, "lm")) return 0;
    if (strcmp(cfg->task, "auto")) return 1;
    if (!cfg->model[0]) return 0;
    ft_encoder_config ec;
    int is_enc = ft_encoder_config_load(&ec, cfg->model) == FT_OK;
    ft_error_clear();
    return is_enc;
}

/* ------------------------------------------------------------------ setup */

static void enc_free(enc_trainer *t) {
    if (!t) return;
    if (t->metrics) fclose(t->metrics);
    for (int i = 0; t->micro && i < t->cfg.grad_accum; i++) ft_enc_batch_free(&t->micro[i]);
    free(t->micro);
    free(t->order); free(t->bstart); free(t->blen);
    free(t->tr_idx); free(t->va_idx);
    ft_enc_data_free(&t->train);
    ft_enc_data_free(&t->val_file);
    ft_enc_data_free(&t->test);
    ft_label_map_free(&t->labels);
    ft_metrics_report_free(&t->last_report);
    ft_optim_free(t->opt);
    ft_encoder_close(t->m);
    ft_tokenizer_free(t->tok);
    free(t);
}

static ft_enc_data_options data_options(const enc_trainer *t, const ft_label_map *given) {
    ft_enc_data_options o = ft_enc_data_default_options();
    o.text_column = t->cfg.text_column;
    o.pair_column = t->cfg.pair_column[0] ? t->cfg.pair_column : NULL;
    o.label_column = t->cfg.label_column;
    o.label_map = given;
    o.max_len = t->cfg.seq_len;
    o.header = t->cfg.header;
    return o;
}

static void print_data(const char *what, const char *path, const ft_enc_data *d) {
    int64_t tokens = 0;
    for (int64_t i = 0; i < d->n; i++) tokens += ft_enc_data_length(d, i);
    fprintf(stderr, "%s %s: %lld %s, %lld tokens (longest %d, mean %.1f)", what, path, (long long)d->n,
            d->task == FT_TASK_TOKEN ? "sentences" : "examples", (long long)tokens, d->max_len, d->n ? (double)tokens / (double)d->n : 0.0);
    if (d->truncated) fprintf(stderr, ", %lld truncated", (long long)d->truncated);
    if (d->labels && d->labels->n && d->task != FT_TASK_REGRESS) {
        fprintf(stderr, ", %d %s", d->labels->n, d->task == FT_TASK_TOKEN ? "tags" : "labels");
        if (d->task == FT_TASK_CLASSIFY) {
            int64_t *cnt = calloc((size_t)d->labels->n, sizeof *cnt);
            if (cnt && ft_cls_class_counts(cnt, d->ds.label, d->n, d->labels->n) == FT_OK) {
                fputs(" (", stderr);
                for (int k = 0; k < d->labels->n && k < 12; k++)
                    fprintf(stderr, "%s%s: %lld", k ? ", " : "", d->labels->names[k], (long long)cnt[k]);
                fputs(d->labels->n > 12 ? ", ...)" : ")", stderr);
            }
            free(cnt);
        }
    }
    fputc('\n', stderr);
}

/* Labels: the data's names, in the model's id order when the checkpoint names the same set. */
static int align_labels(enc_trainer *t, ft_enc_data *d) {
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
static int remap_labels(enc_trainer *t, ft_enc_data *d) {
    if (d->task != FT_TASK_CLASSIFY) return FT_OK;
    int K = d->labels->n, *map = malloc(sizeof(int) * (size_t)(K ? K : 1));
    if (!map) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) map[k] = ft_label_map_id(&t->labels, d->labels->names[k]);
    for (int64_t i = 0; i < d->n; i++) { d->ds.label[i] = map[d->ds.label[i]]; d->f.labels[i] = d->ds.label[i]; }
    free(map);
    ft_label_map_free(&d->ds.labels);
    return ft_label_map_copy(&d->ds.labels, &t->labels);
}

static int load_model(enc_trainer *t) {
    const ft_train_config *c = &t->cfg;
    if (!strcmp(c->method, "qlora"))
        return ft_error(FT_ERR_UNSUPPORTED, "--method qlora: quantized bases are built for decoders only; use --method lora (or full) for encoders");
    if (!strcmp(c->init_from, "random"))
        return ft_error(FT_ERR_UNSUPPORTED, "--init random is not available for encoder tasks (start from pretrained weights)");
    FT_TRY(ft_tokenizer_load(&t->tok, c->model));
    /* sequences fit the position table (RoBERTa's starts after the padding index) */
    ft_encoder_config ecfg;
    FT_TRY(ft_encoder_config_load(&ecfg, c->model));
    int max_pos = ecfg.max_pos - (ecfg.arch == FT_ENC_ROBERTA ? ecfg.pad_token_id + 1 : 0);
    if (t->cfg.seq_len > max_pos) {
        if (t->cfg.seq_len != 256) /* 256 is the decoders' default, not a request */
            FT_LOGW("--seq-len %d exceeds the encoder's %d positions; using %d", t->cfg.seq_len, max_pos, max_pos);
        t->cfg.seq_len = max_pos;
    }
    /* data first: the label count comes from it */
    ft_enc_data_options o = data_options(t, NULL);
    FT_TRY(ft_enc_data_load(&t->train, c->data, t->task, t->tok, &o));
    ft_encoder_options eo = ft_encoder_default_options();
    eo.task = t->task;
    eo.pooling = !strcmp(c->pooling, "mean") ? FT_POOL_MEAN : !strcmp(c->pooling, "cls") ? FT_POOL_CLS : FT_POOL_AUTO;
    if (t->task == FT_TASK_CLASSIFY || t->task == FT_TASK_TOKEN) {
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
    FT_TRY(ft_encoder_load_ex(&t->m, c->model, &eo, ft_backend_cpu()));
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    if (ft_encoder_head_reinitialised(t->m) && t->task != FT_TASK_MLM)
        fprintf(stderr, "note: the %s head was initialised for %d labels; it is trained from scratch in this run\n",
                ft_encoder_task_name(t->task), ec->num_labels);
    if (t->task == FT_TASK_CLASSIFY || t->task == FT_TASK_TOKEN) {
        FT_TRY(align_labels(t, &t->train));
        if (t->task == FT_TASK_CLASSIFY) FT_TRY(remap_labels(t, &t->train));
    }
    if (c->label_smoothing > 0) ft_encoder_set_label_smoothing(t->m, c->label_smoothing);
    if (c->freeze[0]) { int n = ft_encoder_freeze(t->m, c->freeze); if (n < 0) return n; }
    if (c->train_only[0]) { int n = ft_encoder_train_only(t->m, c->train_only); if (n < 0) return n; }
    if (!strcmp(c->method, "lora")) {
        ft_lora_config lc = ft_train_lora_config(c);
        FT_TRY(ft_encoder_add_lora(t->m, &lc, (uint64_t)c->seed));
    }
    int64_t tr = ft_encoder_trainable_count(t->m), all = ft_encoder_param_count(t->m);
    if (tr < all) fprintf(stderr, "trainable parameters: %lld of %lld (%.2f%%)%s\n", (long long)tr, (long long)all, 100.0 * (double)tr / (double)all,
                          ft_encoder_lora_count(t->m) ? " (LoRA adapters and the task head; the base is frozen)" : "");
    if (tr == 0) return ft_error(FT_ERR_INVALID, "nothing to train: every parameter is frozen");
    return FT_OK;
}

static int load_data(enc_trainer *t) {
    const ft_train_config *c = &t->cfg;
    const ft_label_map *given = t->labels.n ? &t->labels : NULL;
    print_data("train", c->data, &t->train);
    ft_enc_data_options o = data_options(t, given);
    if (c->val_data[0]) {
        FT_TRY(ft_enc_data_load(&t->val_file, c->val_data, t->task, t->tok, &o));
        t->has_val_file = 1;
        print_data("validation", c->val_data, &t->val_file);
    }
    if (c->test_data[0]) {
        FT_TRY(ft_enc_data_load(&t->test, c->test_data, t->task, t->tok, &o));
        t->has_test = 1;
        print_data("test", c->test_data, &t->test);
    }
    int64_t n = t->train.n;
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
                    fprintf(stderr, "%s-sampling: %lld -> %lld training examples\n", c->resample, (long long)t->n_tr, (long long)ns);
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
                fprintf(stderr, "class weights (%s):", c->class_weights);
                for (int k = 0; k < K; k++) { wf[k] = (float)w[k]; fprintf(stderr, " %s=%.3f", t->labels.names[k], w[k]); }
                fputc('\n', stderr);
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
    t->nb = (t->n_tr + c->batch_size - 1) / c->batch_size;
    t->order = malloc(sizeof(int64_t) * (size_t)t->n_tr);
    t->bstart = malloc(sizeof(int64_t) * (size_t)t->nb);
    t->blen = malloc(sizeof(int) * (size_t)t->nb);
    if (!t->order || !t->bstart || !t->blen) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->plan_epoch = -1;
    t->steps_per_epoch = (t->nb + c->grad_accum - 1) / c->grad_accum;
    t->total_steps = c->max_steps > 0 ? c->max_steps : (int64_t)c->epochs * t->steps_per_epoch;
    t->warmup = c->warmup_steps >= 0 ? c->warmup_steps : (int64_t)llround(c->warmup_ratio * (double)t->total_steps);
    return FT_OK;
}

static int setup(enc_trainer **out, const ft_train_config *cfg) {
    *out = NULL;
    FT_TRY(ft_train_config_validate(cfg));
    enc_trainer *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    t->first_val = t->last_val = t->last_train = NAN;
    t->first_main = t->last_main = t->best_main = NAN;
    t->is_tty = isatty(2);
    if (cfg->threads > 0) ft_set_threads(cfg->threads);
    int rc = ft_encoder_task_from_name(!strcmp(cfg->task, "auto") ? "classify" : cfg->task, &t->task);
    if (rc == FT_OK) rc = ft_schedule_from_name(cfg->schedule, &t->sched);
    if (rc == FT_OK) rc = load_model(t);
    if (rc == FT_OK) rc = ft_train_defaults_apply(&t->cfg, ft_encoder_task_name(t->task), 1, ft_encoder_param_count(t->m)); /* "auto" options */
    if (rc == FT_OK) rc = load_data(t);
    if (rc == FT_OK && !cfg->dry_run)
        rc = ft_train_make_optimizer(&t->opt, &t->cfg, ft_encoder_param(t->m, 0), ft_encoder_num_params(t->m));
    const char *bm = cfg->best_metric;
    t->higher_better = !strcmp(bm, "accuracy") || !strcmp(bm, "f1_macro") || !strcmp(bm, "f1");
    t->best = t->higher_better ? -INFINITY : INFINITY;
    if (rc < 0) { enc_free(t); return rc; }
    *out = t;
    return FT_OK;
}

/* ------------------------------------------------------------------ epoch plan */

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const ft_enc_data *d = ctx;
    int la = ft_enc_data_length(d, *(const int64_t *)a), lb = ft_enc_data_length(d, *(const int64_t *)b);
    return lb - la;
}

static void plan_epoch(enc_trainer *t, int64_t epoch) {
    if (t->plan_epoch == epoch) return;
    int B = t->cfg.batch_size;
    ft_rng r;
    ft_rng_seed(&r, ft_mix64((uint64_t)t->cfg.seed ^ ft_mix64(0xE90C4ull + (uint64_t)epoch)));
    memcpy(t->order, t->tr_idx, sizeof(int64_t) * (size_t)t->n_tr);
    for (int64_t i = t->n_tr - 1; i > 0; i--) {
        int64_t j = (int64_t)ft_rng_below(&r, (uint64_t)(i + 1));
        int64_t x = t->order[i]; t->order[i] = t->order[j]; t->order[j] = x;
    }
    if (t->cfg.group_by_length) {
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
    if (t->cfg.group_by_length)
        for (int64_t i = t->nb - 1; i > 0; i--) {
            int64_t j = (int64_t)ft_rng_below(&r, (uint64_t)(i + 1));
            int64_t x = t->bstart[i]; t->bstart[i] = t->bstart[j]; t->bstart[j] = x;
            int y = t->blen[i]; t->blen[i] = t->blen[j]; t->blen[j] = y;
        }
    t->plan_epoch = epoch;
}

/* ------------------------------------------------------------------ one step */

static double batch_denominator(const enc_trainer *t, const ft_enc_batch *eb, const float *cw) {
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

static int train_step(enc_trainer *t, double *loss_out, double *gnorm_out, float *lr_out, int64_t *examples_out) {
    const ft_train_config *c = &t->cfg;
    if (t->cursor >= t->nb) { t->epoch++; t->cursor = 0; }
    plan_epoch(t, t->epoch);
    int k = (int)(t->nb - t->cursor < c->grad_accum ? t->nb - t->cursor : c->grad_accum);
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    int64_t examples = 0;
    /* fill every micro-batch first: the denominator of the whole step is known before any backward */
    double den_total = 0;
    for (int i = 0; i < k; i++) {
        int64_t b = t->cursor + i;
        uint64_t seed = ft_mix64((uint64_t)c->seed ^ ft_mix64((uint64_t)t->step * 1024 + (uint64_t)i));
        FT_TRY(ft_enc_batch_fill(&t->micro[i], &t->train, t->order + t->bstart[b], t->blen[b], t->tok, ec->vocab_size,
                                 c->mlm_probability, seed ^ 0x4D4C4Dull));
        examples += t->blen[b];
    }
    for (int i = 0; i < k; i++) den_total += batch_denominator(t, &t->micro[i], NULL);
    FT_TRY(ft_encoder_zero_grad(t->m));
    double loss_sum = 0, den_seen = 0;
    for (int i = 0; i < k; i++) {
        ft_encoder_set_training(t->m, 1, ft_mix64((uint64_t)c->seed ^ ft_mix64((uint64_t)t->step * 1024 + (uint64_t)i)));
        ft_encoder_inputs in = ft_enc_batch_inputs(&t->micro[i], t->m);
        float loss;
        FT_TRY(ft_encoder_forward_ex(t->m, &in, &loss));
        double den = ft_encoder_loss_denominator(t->m);
        if (den <= 0) continue;
        loss_sum += (double)loss * den;
        den_seen += den;
        /* class weights: normalise by the step's weight sum, which the model reports per batch */
        FT_TRY(ft_encoder_backward_scaled(t->m, 1.0f / (float)(den_total > 0 ? den_total : 1.0)));
    }
    ft_encoder_set_training(t->m, 0, 0);
    /* with class weights the per-batch denominators are weight sums, not counts: rescale once */
    if (den_seen > 0 && fabs(den_seen - den_total) > 1e-9 * den_seen)
        ft_params_scale_grads(ft_encoder_param(t->m, 0), ft_encoder_num_params(t->m), (float)(den_total / den_seen));
    int np = ft_encoder_num_params(t->m);
    double gn = ft_params_grad_norm(ft_encoder_param(t->m, 0), np);
    if (!isfinite(gn)) return ft_error(FT_ERR_RANGE, "step %lld: the gradient is not finite (loss %g); lower --lr?", (long long)t->step + 1, loss_sum);
    if (c->max_grad_norm > 0 && gn > c->max_grad_norm) ft_params_scale_grads(ft_encoder_param(t->m, 0), np, (float)(c->max_grad_norm / (gn + 1e-6)));
    float lr = ft_schedule_lr(t->sched, c->lr, t->step, t->total_steps, t->warmup, c->min_lr_ratio);
    FT_TRY(ft_optim_step(t->opt, lr));
    t->step++;
    t->cursor += k;
    *loss_out = den_seen > 0 ? loss_sum / den_seen : NAN;
    *gnorm_out = gn;
    *lr_out = lr;
    *examples_out = examples;
    t->examples_seen += examples;
    return FT_OK;
}

/* ------------------------------------------------------------------ saving */

static int save_model_dir(enc_trainer *t, const char *dir) {
    const char *const *names = t->labels.n ? (const char *const *)t->labels.names : NULL;
    if (ft_encoder_lora_count(t->m)) {
        /* LoRA: a PEFT adapter directory pointing at the base (absolute path) */
        char abs[4096];
        const char *base = realpath(t->cfg.model, abs) ? abs : t->cfg.model;
        FT_TRY(ft_encoder_save_adapter(t->m, dir, base, names));
    } else FT_TRY(ft_encoder_save(t->m, dir, names));
    if (ft_copy_tokenizer_files(t->cfg.model, dir) < 0) return FT_ERR_IO;
    return FT_OK;
}

static int io_save(void *ctx, const char *dir) { return save_model_dir(ctx, dir); }
static int io_load(void *ctx, const char *dir) {
    ft_encoder_model *m = ((enc_trainer *)ctx)->m;
    return ft_encoder_lora_count(m) ? ft_encoder_load_adapter(m, dir) : ft_encoder_load_weights(m, dir);
}

static int metric(enc_trainer *t, const char *json) {
    if (fprintf(t->metrics, "%s\n", json) < 0 || fflush(t->metrics) != 0)
        return ft_error(FT_ERR_IO, "%s/metrics.jsonl: write failed (disk full?)", t->cfg.out);
    return FT_OK;
}

static int save_checkpoint(enc_trainer *t) {
    fflush(t->metrics);
    long mbytes = ftell(t->metrics);
    char state[2048];
    snprintf(state, sizeof state,
             "{\"step\": %lld, \"epoch\": %lld, \"cursor\": %lld, \"best\": \"%a\", \"bad_evals\": %d, \"examples_seen\": %lld,\n"
             " \"train_time\": \"%a\", \"first_val\": \"%a\", \"last_val\": \"%a\", \"last_train\": \"%a\", \"metrics_bytes\": %ld}\n",
             (long long)t->step, (long long)t->epoch, (long long)t->cursor, t->best, t->bad_evals, (long long)t->examples_seen,
             t->train_time, (double)t->first_val, (double)t->last_val, (double)t->last_train, mbytes);
    ft_ckpt_io io = {io_save, io_load, t};
    return ft_ckpt_save_io(t->cfg.out, t->step, &io, t->opt, state, t->cfg.keep);
}

static int restore_checkpoint(enc_trainer *t) {
    char path[4096];
    FT_TRY(ft_ckpt_latest(t->cfg.out, path, sizeof path));
    char *state;
    ft_ckpt_io io = {io_save, io_load, t};
    FT_TRY(ft_ckpt_load_io(path, &io, t->opt, &state));
    cJSON *j = cJSON_Parse(state);
    free(state);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s/state.json: invalid JSON", path);
    t->step = (int64_t)ft_train_state_num(j, "step");
    t->epoch = (int64_t)ft_train_state_num(j, "epoch");
    t->cursor = (int64_t)ft_train_state_num(j, "cursor");
    t->best = ft_train_state_num(j, "best");
    t->bad_evals = (int)ft_train_state_num(j, "bad_evals");
    t->examples_seen = (int64_t)ft_train_state_num(j, "examples_seen");
    t->train_time = ft_train_state_num(j, "train_time");
    t->first_val = (float)ft_train_state_num(j, "first_val");
    t->last_val = (float)ft_train_state_num(j, "last_val");
    t->last_train = (float)ft_train_state_num(j, "last_train");
    long mbytes = (long)ft_train_state_num(j, "metrics_bytes");
    cJSON_Delete(j);
    FT_TRY(ft_train_truncate_metrics(t->cfg.out, mbytes));
    fprintf(stderr, "resuming from %s (step %lld of %lld, epoch %lld)\n", path, (long long)t->step, (long long)t->total_steps,
            (long long)t->epoch + 1);
    return FT_OK;
}

/* ------------------------------------------------------------------ evaluation */

/* the value --best-metric watches, from an evaluation */
static double watched(const enc_trainer *t, const ft_enc_eval *ev) {
    const char *bm = t->cfg.best_metric;
    if (!strcmp(bm, "auto") || !strcmp(bm, "val_loss")) return ev->loss;
    cJSON *j = cJSON_Parse(ev->json);
    double v = NAN;
    const cJSON *x = j ? cJSON_GetObjectItem(j, bm) : NULL;
    if (cJSON_IsNumber(x)) v = x->valuedouble;
    cJSON_Delete(j);
    return v;
}

/* an evaluation line: the evaluation's keys plus type / step / epoch */
static int write_eval_line(enc_trainer *t, const char *type, const ft_enc_eval *ev) {
    cJSON *j = cJSON_Parse(ev->json);
    if (!j) return ft_error(FT_ERR_NOMEM, "out of memory");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "step", (double)t->step);
    cJSON_AddNumberToObject(o, "epoch", t->steps_per_epoch ? (double)t->step / (double)t->steps_per_epoch : 0.0);
    while (j->child) {
        cJSON *it = cJSON_DetachItemViaPointer(j, j->child);
        cJSON_AddItemToObject(o, it->string, it);
    }
    cJSON_Delete(j);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = line ? metric(t, line) : ft_error(FT_ERR_NOMEM, "out of memory");
    free(line);
    return rc;
}

static void print_eval(const enc_trainer *t, const char *what, const ft_enc_eval *ev, const char *tag) {
    if (t->is_tty) fputc('\n', stderr);
    fprintf(stderr, "%s step %lld: loss %.4f", what, (long long)t->step, ev->loss);
    const ft_metrics_report *r = &ev->report;
    if (t->task == FT_TASK_CLASSIFY)
        fprintf(stderr, ", accuracy %.4f, F1 macro %.4f, precision %.4f, recall %.4f, ECE %.4f", r->accuracy, r->f1_macro,
                r->precision_macro, r->recall_macro, r->ece);
    else if (t->task == FT_TASK_REGRESS) fprintf(stderr, ", MSE %.4f", ev->main);
    else if (t->task == FT_TASK_TOKEN) fprintf(stderr, ", entity F1 %.4f", ev->main);
    else fprintf(stderr, ", perplexity %.3f", ev->main);
    fprintf(stderr, " (%lld examples)%s\n", (long long)ev->examples, tag);
}

static int do_eval(enc_trainer *t, int *stop) {
    if (t->n_va <= 0) return FT_OK;
    int64_t n = t->n_va;
    if (t->cfg.eval_batches > 0 && (int64_t)t->cfg.eval_batches * t->cfg.batch_size < n) n = (int64_t)t->cfg.eval_batches * t->cfg.batch_size;
    ft_enc_eval ev;
    FT_TRY(ft_enc_evaluate(&ev, t->m, t->tok, t->val, t->va_idx, n, t->cfg.batch_size, t->cfg.mlm_probability, (uint64_t)t->cfg.seed));
    int rc = write_eval_line(t, "eval", &ev);
    double v = watched(t, &ev);
    int better = isfinite(v) && (t->higher_better ? v > t->best + t->cfg.min_delta : v < t->best - t->cfg.min_delta);
    if (t->step == 0) { t->first_val = (float)ev.loss; t->first_main = ev.main; t->best_main = ev.main; }
    t->last_val = (float)ev.loss;
    t->last_main = ev.main;
    int main_higher = t->task == FT_TASK_CLASSIFY || t->task == FT_TASK_TOKEN;
    if (isnan(t->best_main) || (main_higher ? ev.main > t->best_main : ev.main < t->best_main)) t->best_main = ev.main;
    print_eval(t, "eval", &ev, t->step > 0 && better ? " *best*" : "");
    ft_metrics_report_free(&t->last_report);
    t->last_report = ev.report;
    memset(&ev.report, 0, sizeof ev.report);
    ft_enc_eval_free(&ev);
    if (rc < 0) return rc;
    if (t->step == 0) { t->best = v; return FT_OK; }
    if (better) {
        t->best = v;
        t->bad_evals = 0;
        char dir[4096];
        FT_TRY(ft_path_join(dir, sizeof dir, t->cfg.out, "best"));
        FT_TRY(save_model_dir(t, dir));
    } else if (++t->bad_evals >= t->cfg.patience && t->cfg.patience > 0) {
        fprintf(stderr, "early stopping: no improvement of %s in %d evaluations (best %.4f)\n",
                !strcmp(t->cfg.best_metric, "auto") ? "val_loss" : t->cfg.best_metric, t->bad_evals, t->best);
        *stop = 1;
    }
    return FT_OK;
}

/* the best model (else the final one) on --test-data */
static int do_test(enc_trainer *t) {
    if (!t->has_test) return FT_OK;
    char dir[4096];
    FT_TRY(ft_path_join(dir, sizeof dir, t->cfg.out, "best"));
    const char *which = "final";
    if (ft_path_exists(dir)) { FT_TRY(io_load(t, dir)); which = "best"; }
    ft_enc_eval ev;
    FT_TRY(ft_enc_evaluate(&ev, t->m, t->tok, &t->test, NULL, t->test.n, t->cfg.batch_size, t->cfg.mlm_probability, (uint64_t)t->cfg.seed));
    int rc = write_eval_line(t, "test", &ev);
    char what[64];
    snprintf(what, sizeof what, "test (%s model)", which);
    print_eval(t, what, &ev, "");
    ft_enc_eval_free(&ev);
    return rc;
}

/* ------------------------------------------------------------------ the loop */

/* the pieces of the shared step loop */
static int loop_step(void *x, double *loss, double *gn, float *lr, int64_t *n) { return train_step(x, loss, gn, lr, n); }
static int loop_epoch_ended(void *x) { enc_trainer *t = x; return t->cursor >= t->nb; }
static int loop_eval(void *x, int *stop) { return do_eval(x, stop); }
static int loop_save(void *x) { return save_checkpoint(x); }
static int loop_metric(void *x, const char *line) { return metric(x, line); }

static int run(enc_trainer *t, ft_train_result *res, int resumed) {
    const ft_train_config *c = &t->cfg;
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, c->out, "metrics.jsonl"));
    t->metrics = fopen(path, resumed ? "a" : "w");
    if (!t->metrics) return ft_error(FT_ERR_IO, "%s: cannot open for writing", path);
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    fprintf(stderr, "training %s (%s): %lld parameters, %lld train / %lld validation examples, %lld batches of %d per epoch, "
                    "%lld steps (grad-accum %d), warmup %lld\n",
            ec->model_type, ft_encoder_task_name(t->task), (long long)ft_encoder_param_count(t->m),
            (long long)t->n_tr, (long long)t->n_va, (long long)t->nb, c->batch_size, (long long)t->total_steps, c->grad_accum,
            (long long)t->warmup);
    if (t->labels.n && t->task == FT_TASK_CLASSIFY) {
        fprintf(stderr, "labels:");
        for (int k = 0; k < t->labels.n; k++) fprintf(stderr, " %d=%s", k, t->labels.names[k]);
        fputc('\n', stderr);
    }
    ft_loop L = {c, t, &t->step, t->total_steps, t->steps_per_epoch, &t->train_time, &t->last_train, t->is_tty, "examples_per_s", "ex/s",
                 loop_step, loop_epoch_ended, loop_eval, loop_save, NULL, loop_metric};
    int stop, interrupted;
    double rate;
    int rc = ft_train_loop_run(&L, resumed, &stop, &interrupted, &rate);
    if (rc == FT_OK && !interrupted) {
        FT_TRY(ft_path_join(path, sizeof path, c->out, "final"));
        rc = save_model_dir(t, path);
        if (rc == FT_OK) rc = do_test(t);
    }
    if (t->metrics) {
        char line[160];
        snprintf(line, sizeof line, "{\"type\": \"memory\", \"step\": %lld, \"peak_rss_mib\": %.1f}", (long long)t->step, ft_peak_rss_mb());
        metric(t, line);
    }
    fprintf(stderr, "peak RSS: %.1f MiB; training time %.1f s (%.1f examples/s)\n", ft_peak_rss_mb(), t->train_time,
            t->train_time > 0 ? (double)t->examples_seen / t->train_time : 0.0);
    int rrc = ft_report_write(c->out);
    if (rc == FT_OK && rrc < 0) FT_LOGW("report.html: %s", ft_last_error());
    memset(res, 0, sizeof *res);
    res->steps = t->step;
    res->epochs_done = (int)(t->step / t->steps_per_epoch);
    res->first_val_loss = t->first_val;
    res->final_val_loss = t->last_val;
    res->best_val_loss = !strcmp(c->best_metric, "auto") || !strcmp(c->best_metric, "val_loss") ? (isfinite(t->best) ? (float)t->best : NAN) : NAN;
    res->final_train_loss = t->last_train;
    res->tokens_per_s = rate;
    res->stopped_early = stop;
    res->interrupted = interrupted;
    snprintf(res->metric_name, sizeof res->metric_name, "%s", t->task == FT_TASK_CLASSIFY ? "accuracy" : t->task == FT_TASK_REGRESS ? "mse"
             : t->task == FT_TASK_TOKEN ? "entity F1" : "perplexity");
    res->first_metric = t->first_main;
    res->final_metric = t->last_main;
    res->best_metric = t->best_main;
    if (rc == FT_OK && interrupted) return ft_error(FT_ERR_INTERRUPTED, "training interrupted at step %lld; checkpoint saved", (long long)t->step);
    return rc;
}

static int dry_run(enc_trainer *t) {
    const ft_train_config *c = &t->cfg;
    size_t w = ft_encoder_weight_bytes(t->m);
    int64_t tr = ft_encoder_trainable_count(t->m);
    size_t g = (size_t)tr * sizeof(float), o = (size_t)ft_train_optimizer_moments(c) * g;
    size_t act = ft_encoder_activation_bytes(t->m, c->batch_size, t->train.max_len);
    size_t base = ft_rss_now(), peak = base + g + o + act + FT_BLAS_RSS_BYTES;
    const double MiB = 1048576.0;
    printf("plan: %s %s, %lld parameters (%lld trainable); %lld training / %lld validation examples; %lld steps of %d x %d examples (longest %d tokens)\n",
           ft_encoder_get_config(t->m)->model_type, ft_encoder_task_name(t->task), (long long)ft_encoder_param_count(t->m), (long long)tr,
           (long long)t->n_tr, (long long)t->n_va, (long long)t->total_steps, c->grad_accum, c->batch_size, t->train.max_len);
    printf("memory (MiB): loaded now %.1f (weights %.1f); gradients %.1f; optimizer %.1f; activations %.1f; BLAS buffers %.1f\n",
           base / MiB, w / MiB, g / MiB, o / MiB, act / MiB, FT_BLAS_RSS_BYTES / MiB);
    printf("predicted peak RSS: %.1f MiB\n", peak / MiB);
    return FT_OK;
}

/* k-fold with --fold -1: every fold in OUT/fold-N, then mean +- std of the validation metrics */
static int run_all_folds(const ft_train_config *cfg, ft_train_result *res) {
    int K = cfg->folds, rc = FT_OK;
    ft_metrics_report *reps = calloc((size_t)K, sizeof *reps);
    if (!reps) return ft_error(FT_ERR_NOMEM, "out of memory");
    int done = 0;
    for (int f = 0; f < K && rc == FT_OK; f++) {
        ft_train_config c = *cfg;
        c.fold = f;
        char sub[16];
        snprintf(sub, sizeof sub, "fold-%d", f);
        if (ft_path_join(c.out, sizeof c.out, cfg->out, sub) != FT_OK) { rc = ft_error(FT_ERR_RANGE, "--out too long"); break; }
        fprintf(stderr, "=== fold %d of %d -> %s\n", f + 1, K, c.out);
        FT_TRY(ft_mkdirs(c.out));
        char path[4096];
        if ((rc = ft_path_join(path, sizeof path, c.out, "config.json")) == FT_OK) rc = ft_train_config_save_json(&c, path);
        enc_trainer *t = NULL;
        if (rc == FT_OK) rc = setup(&t, &c);
        if (rc == FT_OK) rc = run(t, res, 0);
        if (rc == FT_OK) { reps[f] = t->last_report; memset(&t->last_report, 0, sizeof t->last_report); done++; }
        enc_free(t);
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
                        fprintf(stderr, "%d-fold: accuracy %.4f +- %.4f, F1 macro %.4f +- %.4f (%s/kfold.json)\n", K,
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

int ft_train_encoder(const ft_train_config *cfg, ft_train_result *res, int resume) {
    memset(res, 0, sizeof *res);
    if (!resume && cfg->folds > 0 && cfg->fold < 0) return run_all_folds(cfg, res);
    if (cfg->folds > 0 && cfg->fold < 0) return ft_error(FT_ERR_INVALID, "resume a k-fold run fold by fold: --resume %s/fold-N", cfg->out);
    enc_trainer *t;
    FT_TRY(setup(&t, cfg));
    int rc;
    if (cfg->dry_run) rc = dry_run(t);
    else if (resume) {
        char latest[4096];
        if (ft_ckpt_latest(cfg->out, latest, sizeof latest) != FT_OK) {
            fprintf(stderr, "%s: no checkpoint yet; starting the run from the beginning\n", cfg->out);
            ft_error_clear();
            rc = run(t, res, 0);
        } else {
            rc = restore_checkpoint(t);
            if (rc == FT_OK) rc = run(t, res, 1);
        }
    } else rc = run(t, res, 0);
    enc_free(t);
    return rc;
}
