/* trainer_multitask.c — `finetune train --task multi --tasks sentiment=FILE1,topic=FILE2`: one encoder,
 * one classification head per task (multitask.h), driven by the trainer core as any task
 * (trainer_internal.h).
 *
 * Data: each task's file is read as classify data (its own labels), and split into training and
 * validation examples (stratified, --val-split) per task. An epoch visits every training example of
 * every task once; --task-mix orders them:
 *   proportional  each batch holds one task's examples; batches shuffled across tasks, so a task is drawn
 *                 in proportion to its size (default)
 *   mixed         truly mixed batches: the examples of all tasks shuffled together, cut into batches
 *   alternate     one task's batch after the other's in turn (a task that runs out drops out)
 * Loss: L = sum over the step's examples of w_task * cross-entropy / (examples in the step), w from
 * --task-weights (default 1 each). A micro-batch holding several tasks runs one forward / backward per
 * task (select the head, forward its rows, backward with scale w_task / N); the body's gradients add up.
 * Evaluation: each task's validation metrics (classify keys, encoder_task.h) under "tasks", and the macro
 * average over the tasks of accuracy and F1 macro as "accuracy" / "f1_macro" (the headline metric), plus
 * "<task>_accuracy" for each task. */
#include "trainer_internal.h"
#include "finetune/checkpoint.h"
#include "finetune/encoder_task.h"
#include "finetune/fileio.h"
#include "finetune/multitask.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MIX_PROPORTIONAL, MIX_MIXED, MIX_ALTERNATE };

typedef struct mt_data {
    char name[64], path[1024], text_column[64], label_column[64];   /* columns: "" = --text-column / --label-column */
    float weight;
    ft_enc_data data;
    int64_t *tr_idx, *va_idx, n_tr, n_va;
} mt_data;

typedef struct mt_task {
    ft_task base;
    ft_train_config *cfg;
    ft_tokenizer *tok;
    ft_multitask *mt;
    ft_encoder_model *m;           /* the multi-task model's encoder (borrowed) */
    int n, mix;
    mt_data d[FT_MULTITASK_MAX];
    /* the epoch's plan: items (task, example) in visiting order; batch b = items [bstart[b], bstart[b] + blen[b]) */
    int64_t n_items, nb, plan_epoch;
    int *it_task;                  /* [n_items] */
    int64_t *it_ex;                /* [n_items] */
    int64_t *bstart;               /* [nb] */
    int *blen;                     /* [nb] */
    int64_t *scratch;              /* [max batch] example indices of one task */
    ft_enc_batch *micro;           /* [grad_accum * n]: slot s, task t at s * n + t */
    int *rows;                     /* [grad_accum * n]: rows of task t in slot s */
} mt_task;

/* ------------------------------------------------------------------ setup */

static void mt_free(ft_task *k) {
    mt_task *t = (mt_task *)k;
    if (!t) return;
    for (int i = 0; t->micro && i < t->cfg->grad_accum * t->n; i++) ft_enc_batch_free(&t->micro[i]);
    free(t->micro); free(t->rows);
    free(t->it_task); free(t->it_ex); free(t->bstart); free(t->blen); free(t->scratch);
    for (int i = 0; i < t->n; i++) {
        ft_enc_data_free(&t->d[i].data);
        free(t->d[i].tr_idx); free(t->d[i].va_idx);
    }
    ft_multitask_close(t->mt);
    ft_tokenizer_free(t->tok);
    free(t);
}

/* --tasks "a=FILE,b=FILE[:TEXT_COLUMN[:LABEL_COLUMN]]" and --task-weights "1,0.5" */
static int parse_tasks(mt_task *t) {
    const ft_train_config *c = t->cfg;
    char buf[sizeof c->tasks];
    snprintf(buf, sizeof buf, "%s", c->tasks);
    char *save = NULL;
    for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(it, '=');
        if (!eq || eq == it || !eq[1]) return ft_error(FT_ERR_INVALID, "--tasks: '%s' is not NAME=FILE", it);
        if (t->n >= FT_MULTITASK_MAX) return ft_error(FT_ERR_INVALID, "--tasks: more than %d tasks", FT_MULTITASK_MAX);
        *eq = 0;
        mt_data *d = &t->d[t->n++];
        snprintf(d->name, sizeof d->name, "%s", it);
        char *col = strchr(eq + 1, ':'), *lcol = col ? strchr(col + 1, ':') : NULL;
        if (col) *col = 0;
        if (lcol) *lcol = 0;
        snprintf(d->path, sizeof d->path, "%s", eq + 1);
        snprintf(d->text_column, sizeof d->text_column, "%s", col ? col + 1 : "");
        snprintf(d->label_column, sizeof d->label_column, "%s", lcol ? lcol + 1 : "");
        d->weight = 1.0f;
    }
    if (t->n == 0) return ft_error(FT_ERR_INVALID, "--task multi needs --tasks NAME=FILE,NAME=FILE");
    if (c->task_weights[0]) {
        snprintf(buf, sizeof buf, "%s", c->task_weights);
        int i = 0;
        for (char *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save), i++) {
            char *end;
            double w = strtod(it, &end);
            if (i >= t->n || *end || !(w >= 0) || !isfinite(w))
                return ft_error(FT_ERR_INVALID, "--task-weights '%s': one number >= 0 per task (%d tasks)", c->task_weights, t->n);
            t->d[i].weight = (float)w;
        }
        if (i != t->n) return ft_error(FT_ERR_INVALID, "--task-weights '%s': %d weights for %d tasks", c->task_weights, i, t->n);
    }
    const char *mix = c->task_mix;
    t->mix = !strcmp(mix, "mixed") ? MIX_MIXED : !strcmp(mix, "alternate") ? MIX_ALTERNATE : MIX_PROPORTIONAL;
    return FT_OK;
}

static int load_all(mt_task *t) {
    ft_train_config *c = t->cfg;
    if (strcmp(c->method, "full")) return ft_error(FT_ERR_UNSUPPORTED, "--task multi trains the full model (--method full); LoRA heads per task are not supported");
    if (c->folds > 0 || c->val_data[0] || c->test_data[0])
        return ft_error(FT_ERR_UNSUPPORTED, "--task multi splits each task's file (--val-split); --folds, --val-data and --test-data are not supported");
    FT_TRY(ft_tokenizer_load(&t->tok, c->model));
    ft_encoder_config ecfg;
    FT_TRY(ft_encoder_config_load(&ecfg, c->model));
    int max_pos = ft_encoder_config_max_len(&ecfg);
    if (c->seq_len > max_pos) c->seq_len = max_pos;
    ft_enc_data_options o = ft_enc_data_default_options();
    o.text_column = c->text_column;
    o.pair_column = c->pair_column[0] ? c->pair_column : NULL;
    o.label_column = c->label_column;
    o.max_len = c->seq_len;
    o.header = c->header;
    const char *names[FT_MULTITASK_MAX];
    int K[FT_MULTITASK_MAX];
    const char *const *labels[FT_MULTITASK_MAX];
    for (int i = 0; i < t->n; i++) {
        mt_data *d = &t->d[i];
        o.text_column = d->text_column[0] ? d->text_column : c->text_column;
        o.label_column = d->label_column[0] ? d->label_column : c->label_column;
        int lrc = ft_enc_data_load(&d->data, d->path, FT_TASK_CLASSIFY, t->tok, &o);
        if (lrc < 0) return ft_error_wrap(lrc, "task %s", d->name);
        K[i] = d->data.labels->n;
        if (K[i] < 2) return ft_error(FT_ERR_INVALID, "task %s (%s): only %d label in the data; classification needs 2", d->name, d->path, K[i]);
        names[i] = d->name;
        labels[i] = (const char *const *)d->data.labels->names;
        int64_t n = d->data.n;
        int *lab = malloc(sizeof(int) * (size_t)(n ? n : 1));
        if (!lab) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t j = 0; j < n; j++) lab[j] = ft_enc_data_label(&d->data, j);
        /* the split of a single-task run on the same file and seed: the two compare on the same examples */
        int rc = ft_cls_stratified_split(&d->tr_idx, &d->n_tr, &d->va_idx, &d->n_va, lab, n, K[i], c->val_split, (uint64_t)c->seed);
        free(lab);
        FT_TRY(rc);
        if (d->n_tr <= 0) return ft_error(FT_ERR_INVALID, "task %s (%s): no training examples left after the validation split", d->name, d->path);
        ft__sinks_message(t->base.out, FT_LOG_INFO, "task %s (%s): %lld examples (%lld train / %lld validation), %d labels, weight %g, longest %d tokens",
                         d->name, d->path, (long long)n, (long long)d->n_tr, (long long)d->n_va, K[i], (double)d->weight, d->data.max_len);
    }
    ft_encoder_options eo = ft_encoder_default_options();
    eo.task = FT_TASK_CLASSIFY;
    eo.num_labels = K[0];
    eo.pooling = !strcmp(c->pooling, "mean") ? FT_POOL_MEAN : !strcmp(c->pooling, "cls") ? FT_POOL_CLS : FT_POOL_AUTO;
    ft_encoder_model *m;
    FT_TRY(ft_encoder_load_ex(&m, c->model, &eo, ft_backend_cpu()));
    int rc = FT_OK;
    if (c->label_smoothing > 0) ft_encoder_set_label_smoothing(m, c->label_smoothing);
    if (c->freeze[0]) { int nf = ft_encoder_freeze(m, c->freeze); if (nf < 0) rc = nf; }
    if (rc == FT_OK && c->train_only[0]) { int nf = ft_encoder_train_only(m, c->train_only); if (nf < 0) rc = nf; }
    if (rc < 0) { ft_encoder_close(m); return rc; }
    FT_TRY(ft_multitask_create(&t->mt, m, t->n, names, K, labels, (uint64_t)c->seed));
    t->m = ft_multitask_encoder(t->mt);
    return ft__train_check_trainable(t->base.out, ft_encoder_trainable_count(t->m), ft_encoder_param_count(t->m), "");
}

static int mt_create(ft_task **out, ft_train_config *cfg, const ft_sinks *sinks) {
    *out = NULL;
    mt_task *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->base = (ft_task){.ops = &ft_task_multitask_ops, .out = sinks, .rate_key = "examples_per_s", .rate_unit = "ex/s"};
    t->cfg = cfg;
    t->plan_epoch = -1;
    int rc = parse_tasks(t);
    if (rc == FT_OK) rc = load_all(t);
    if (rc == FT_OK) rc = ft_train_defaults_apply(cfg, "classify", 1, ft_encoder_param_count(t->m), t->base.defaults_text, sizeof t->base.defaults_text);
    int64_t n_tr = 0, n_va = 0, nb = 0;
    int maxlen = 1;
    for (int i = 0; rc == FT_OK && i < t->n; i++) {
        n_tr += t->d[i].n_tr;
        n_va += t->d[i].n_va;
        nb += (t->d[i].n_tr + cfg->batch_size - 1) / cfg->batch_size;
        if (t->d[i].data.max_len > maxlen) maxlen = t->d[i].data.max_len;
    }
    if (rc == FT_OK) {
        t->n_items = n_tr;
        t->nb = t->mix == MIX_MIXED ? (n_tr + cfg->batch_size - 1) / cfg->batch_size : nb;
        t->it_task = malloc(sizeof(int) * (size_t)n_tr);
        t->it_ex = malloc(sizeof(int64_t) * (size_t)n_tr);
        t->bstart = malloc(sizeof(int64_t) * (size_t)t->nb);
        t->blen = malloc(sizeof(int) * (size_t)t->nb);
        t->scratch = malloc(sizeof(int64_t) * (size_t)cfg->batch_size);
        t->micro = calloc((size_t)cfg->grad_accum * (size_t)t->n, sizeof *t->micro);
        t->rows = calloc((size_t)cfg->grad_accum * (size_t)t->n, sizeof *t->rows);
        if (!t->it_task || !t->it_ex || !t->bstart || !t->blen || !t->scratch || !t->micro || !t->rows) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; rc == FT_OK && i < cfg->grad_accum * t->n; i++) rc = ft_enc_batch_alloc(&t->micro[i], cfg->batch_size, maxlen);
    if (rc == FT_OK) rc = ft_multitask_params(t->mt, &t->base.params, &t->base.n_params);
    if (rc < 0) { mt_free(&t->base); return rc; }
    t->base.batches_per_epoch = t->nb;
    t->base.n_train = n_tr;
    t->base.n_val = n_va;
    t->base.main_higher_better = 1;
    t->base.metric_name = "accuracy";
    *out = &t->base;
    return FT_OK;
}

static int mt_prepare(ft_task *k) { (void)k; return FT_OK; }

/* ------------------------------------------------------------------ epoch plan */

static void shuffle_i64(ft_rng *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ft_rng_below(r, (uint64_t)(i + 1)), x = v[i];
        v[i] = v[j]; v[j] = x;
    }
}

static int plan_epoch(mt_task *t, int64_t epoch) {
    if (t->plan_epoch == epoch) return FT_OK;
    int B = t->cfg->batch_size, n = t->n;
    ft_rng r;
    ft_rng_seed(&r, ft__splitmix64((uint64_t)t->cfg->seed ^ ft__splitmix64(0x4D554C54ull + (uint64_t)epoch)));
    int64_t *perm[FT_MULTITASK_MAX] = {0};
    int rc = FT_OK;
    for (int i = 0; i < n && rc == FT_OK; i++) {
        if (!(perm[i] = malloc(sizeof(int64_t) * (size_t)t->d[i].n_tr))) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        memcpy(perm[i], t->d[i].tr_idx, sizeof(int64_t) * (size_t)t->d[i].n_tr);
        shuffle_i64(&r, perm[i], t->d[i].n_tr);
    }
    if (rc == FT_OK && t->mix == MIX_MIXED) {
        /* every (task, example) shuffled together, cut into batches of B */
        int64_t at = 0;
        for (int i = 0; i < n; i++)
            for (int64_t j = 0; j < t->d[i].n_tr; j++, at++) { t->it_task[at] = i; t->it_ex[at] = perm[i][j]; }
        for (int64_t i = at - 1; i > 0; i--) {
            int64_t j = (int64_t)ft_rng_below(&r, (uint64_t)(i + 1));
            int x = t->it_task[i]; t->it_task[i] = t->it_task[j]; t->it_task[j] = x;
            int64_t y = t->it_ex[i]; t->it_ex[i] = t->it_ex[j]; t->it_ex[j] = y;
        }
        for (int64_t b = 0; b < t->nb; b++) { t->bstart[b] = b * B; t->blen[b] = (int)(at - b * B < B ? at - b * B : B); }
    } else if (rc == FT_OK) {
        /* one task per batch: the order of the batches' tasks, then the items batch by batch */
        int *seq = malloc(sizeof(int) * (size_t)t->nb);
        int64_t next[FT_MULTITASK_MAX] = {0}, left[FT_MULTITASK_MAX];
        if (!seq) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n; i++) left[i] = (t->d[i].n_tr + B - 1) / B;
        int64_t nbat = 0;
        if (rc == FT_OK && t->mix == MIX_ALTERNATE) {
            for (int more = 1; more;) {
                more = 0;
                for (int i = 0; i < n; i++) if (left[i]) { seq[nbat++] = i; left[i]--; more = 1; }
            }
        } else if (rc == FT_OK) {
            for (int i = 0; i < n; i++) for (int64_t b = 0; b < left[i]; b++) seq[nbat++] = i;
            for (int64_t i = nbat - 1; i > 0; i--) {
                int64_t j = (int64_t)ft_rng_below(&r, (uint64_t)(i + 1));
                int x = seq[i]; seq[i] = seq[j]; seq[j] = x;
            }
        }
        int64_t at = 0;
        for (int64_t b = 0; rc == FT_OK && b < nbat; b++) {
            mt_data *d = &t->d[seq[b]];
            int len = (int)(d->n_tr - next[seq[b]] < B ? d->n_tr - next[seq[b]] : B);
            t->bstart[b] = at;
            t->blen[b] = len;
            for (int j = 0; j < len; j++, at++) { t->it_task[at] = seq[b]; t->it_ex[at] = perm[seq[b]][next[seq[b]]++]; }
        }
        free(seq);
    }
    for (int i = 0; i < n; i++) free(perm[i]);
    if (rc == FT_OK) t->plan_epoch = epoch;
    return rc;
}

/* ------------------------------------------------------------------ one step */

static int mt_next_batch(ft_task *k, int slot, int64_t epoch, int64_t index, int rank, int world, uint64_t seed, int64_t *count,
                         double *den) {
    mt_task *t = (mt_task *)k;
    FT_TRY(plan_epoch(t, epoch));
    int64_t first, n;
    ft__shard_rows(t->blen[index], rank, world, &first, &n);
    const ft_encoder_config *ec = ft_encoder_get_config(t->m);
    *den = 0;
    for (int i = 0; i < t->n; i++) {
        int c = 0;
        for (int64_t r = 0; r < n; r++) {
            int64_t at = t->bstart[index] + first + r;
            if (t->it_task[at] == i) t->scratch[c++] = t->it_ex[at];
        }
        t->rows[slot * t->n + i] = c;
        if (!c) continue;
        ft_enc_batch *eb = &t->micro[slot * t->n + i];
        FT_TRY(ft_enc_batch_fill(eb, &t->d[i].data, t->scratch, c, t->tok, ec->vocab_size, 0.15f, seed));
        for (int r = 0; r < c; r++) *den += eb->b.labels[r] != FT_CLS_IGNORE;
    }
    *count = n;
    return FT_OK;
}

static int mt_zero_grad(ft_task *k) { return ft_multitask_zero_grad(((mt_task *)k)->mt); }

static int mt_forward_backward(ft_task *k, int slot, uint64_t dropout_seed, float scale, double *loss_sum, double *den) {
    mt_task *t = (mt_task *)k;
    *loss_sum = 0;
    *den = 0;
    for (int i = 0; i < t->n; i++) {
        if (!t->rows[slot * t->n + i]) continue;
        FT_TRY(ft_multitask_select(t->mt, i));
        ft_encoder_set_training(t->m, 1, dropout_seed ^ ft__splitmix64((uint64_t)i + 1));
        ft_encoder_inputs in = ft_enc_batch_inputs(&t->micro[slot * t->n + i], t->m);
        float loss;
        FT_TRY(ft_encoder_forward_ex(t->m, &in, &loss));
        double d = ft_encoder_loss_denominator(t->m);
        if (d <= 0) continue;
        *loss_sum += (double)t->d[i].weight * loss * d;
        *den += d;
        FT_TRY(ft_encoder_backward_scaled(t->m, scale * t->d[i].weight));
    }
    return FT_OK;
}

static void mt_end_step(ft_task *k) { ft_encoder_set_training(((mt_task *)k)->m, 0, 0); }

/* ------------------------------------------------------------------ saving */

static int mt_save_model(ft_task *k, const char *dir) {
    mt_task *t = (mt_task *)k;
    FT_TRY(ft_multitask_save(t->mt, dir));
    return ft_copy_tokenizer_files(t->cfg->model, dir) < 0 ? FT_ERR_IO : FT_OK;
}

static int mt_load_weights(ft_task *k, const char *dir) { return ft_multitask_load_weights(((mt_task *)k)->mt, dir); }

/* ------------------------------------------------------------------ evaluation */

static int mt_evaluate(ft_task *k, ft_task_eval *ev) {
    mt_task *t = (mt_task *)k;
    ev->json = NULL;
    if (t->base.n_val <= 0) return FT_OK;
    cJSON *root = cJSON_CreateObject(), *tasks = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "task", "multi");
    double loss = 0, acc = 0, f1 = 0;
    int64_t examples = 0;
    int counted = 0, rc = FT_OK, keep = ft_multitask_selected(t->mt);
    char per[256] = "";
    size_t at = 0;
    for (int i = 0; i < t->n && rc == FT_OK; i++) {
        mt_data *d = &t->d[i];
        if (d->n_va <= 0) continue;
        int64_t n = d->n_va;
        if (t->cfg->eval_batches > 0 && (int64_t)t->cfg->eval_batches * t->cfg->batch_size < n) n = (int64_t)t->cfg->eval_batches * t->cfg->batch_size;
        ft_enc_eval e;
        rc = ft_multitask_select(t->mt, i);
        if (rc == FT_OK) rc = ft_enc_evaluate(&e, t->m, t->tok, &d->data, d->va_idx, n, t->cfg->batch_size, 0.15f, (uint64_t)t->cfg->seed);
        if (rc < 0) break;
        cJSON *j = cJSON_Parse(e.json);
        if (j) cJSON_AddItemToObject(tasks, d->name, j);
        char key[96];
        snprintf(key, sizeof key, "%s_accuracy", d->name);
        cJSON_AddNumberToObject(root, key, e.report.accuracy);
        loss += e.loss;
        acc += e.report.accuracy;
        f1 += e.report.f1_macro;
        examples += e.examples;
        counted++;
        if (at < sizeof per) at += (size_t)snprintf(per + at, sizeof per - at, "%s%s %.4f", at ? ", " : "", d->name, e.report.accuracy);
        ft_enc_eval_free(&e);
    }
    ft_multitask_select(t->mt, keep);
    if (rc == FT_OK && counted) {
        loss /= counted; acc /= counted; f1 /= counted;
        cJSON_AddNumberToObject(root, "val_loss", loss);
        cJSON_AddNumberToObject(root, "accuracy", acc);
        cJSON_AddNumberToObject(root, "f1_macro", f1);
        cJSON_AddNumberToObject(root, "examples", (double)examples);
        cJSON_AddItemToObject(root, "tasks", tasks);
        tasks = NULL;
        ev->json = cJSON_PrintUnformatted(root);
        if (!ev->json) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        ev->loss = loss;
        ev->main = acc;
        snprintf(ev->summary, sizeof ev->summary, "loss %.4f (mean over tasks), accuracy %.4f (macro over tasks: %s), F1 macro %.4f (%lld examples)",
                 loss, acc, per, f1, (long long)examples);
    }
    cJSON_Delete(tasks);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------ words */

static void mt_describe(const ft_task *k, char *buf, size_t cap) {
    const mt_task *t = (const mt_task *)k;
    static const char *mixes[] = {"proportional", "mixed", "alternate"};
    snprintf(buf, cap, "%s (multi-task, %d heads, %s batches): %lld parameters, %lld train / %lld validation examples, %lld batches of %d per epoch",
             ft_encoder_get_config(t->m)->model_type, t->n, mixes[t->mix], (long long)ft_encoder_param_count(t->m), (long long)t->base.n_train,
             (long long)t->base.n_val, (long long)t->nb, t->cfg->batch_size);
}

static int mt_plan(ft_task *k, int64_t total_steps, char *buf, size_t cap) {
    mt_task *t = (mt_task *)k;
    const ft_train_config *c = t->cfg;
    size_t w = ft_encoder_weight_bytes(t->m), act = ft_encoder_activation_bytes(t->m, c->batch_size, c->seq_len);
    int64_t tr = 0;
    for (int i = 0; i < t->base.n_params; i++) if (t->base.params[i].trainable) tr += ft_tensor_numel(&t->base.params[i].t);
    size_t g = (size_t)tr * sizeof(float), o = (size_t)ft__train_optimizer_moments(c) * g;
    const double MiB = 1048576.0;
    snprintf(buf, cap,
             "plan: %s multi-task (%d heads), %lld trainable parameters; %lld training / %lld validation examples; %lld steps of %d x %d examples\n"
             "memory (MiB): loaded now %.1f (weights %.1f); gradients %.1f; optimizer %.1f; activations %.1f; BLAS buffers %.1f\n"
             "predicted peak RSS: %.1f MiB",
             ft_encoder_get_config(t->m)->model_type, t->n, (long long)tr, (long long)t->base.n_train, (long long)t->base.n_val,
             (long long)total_steps, c->grad_accum, c->batch_size, ft__rss_now() / MiB, w / MiB, g / MiB, o / MiB, act / MiB,
             FT_BLAS_RSS_BYTES / MiB, (ft__rss_now() + o + act + FT_BLAS_RSS_BYTES) / MiB);
    return FT_OK;
}

const ft_task_ops ft_task_multitask_ops = {
    .create = mt_create,
    .free = mt_free,
    .prepare = mt_prepare,
    .next_batch = mt_next_batch,
    .zero_grad = mt_zero_grad,
    .forward_backward = mt_forward_backward,
    .end_step = mt_end_step,
    .evaluate = mt_evaluate,
    .save_model = mt_save_model,
    .save_weights = mt_save_model,
    .load_weights = mt_load_weights,
    .describe = mt_describe,
    .plan = mt_plan,
};
