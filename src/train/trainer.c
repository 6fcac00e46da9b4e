/* trainer.c — `finetune train`: setup, the step loop, checkpoints, resume, final outputs.
 *
 * One optimizer step = up to grad_accum micro-batches. Their gradients are summed with the scale
 * 1/(target tokens of all of them), so accumulation equals one large batch exactly; steps never
 * straddle an epoch (the last step of an epoch may have fewer micro-batches). Everything random is
 * a function of the seed and the step (shuffle order, dropout masks), and the checkpoint holds the
 * rest (weights, optimizer moments, step, data cursor, early-stopping state, metrics offset), so a
 * run resumed from any checkpoint ends bit-identical to one that never stopped. */
#include "trainer_internal.h"
#include "finetune/chat.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/report.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ setup */

static void trainer_free(ft_trainer *t) {
    if (t->metrics) fclose(t->metrics);
    if (t->micro) {
        for (int i = 0; i < t->cfg.grad_accum; i++) ft_batch_free(&t->micro[i]);
        free(t->micro);
    }
    ft_batcher_free(t->tb);
    ft_batcher_free(t->vb);
    ft_data_split_free(&t->split);
    ft_dataset_free(t->train_ds);
    ft_dataset_free(t->val_file_ds);
    ft_optim_free(t->opt);
    ft_model_free(t->model);
    ft_tokenizer_free(t->tok);
    free(t);
}

static int load_model(ft_trainer *t) {
    const ft_train_config *c = &t->cfg;
    FT_TRY(ft_tokenizer_load(&t->tok, c->model));
    /* QLoRA: the base is quantized while it loads (peak memory near the quantized size) */
    ft_dtype q = !strcmp(c->method, "qlora") ? (!strcmp(c->quant, "int8") ? FT_Q8_ROW : FT_NF4) : FT_F32;
    if (!strcmp(c->init_from, "random")) {
        ft_model_config mc;
        FT_TRY(ft_model_config_load(&mc, c->model));
        FT_TRY(ft_model_create_random_quantized(&t->model, &mc, (uint64_t)c->seed, ft_backend_cpu(), q));
    } else {
        FT_TRY(ft_model_load_quantized(&t->model, c->model, ft_backend_cpu(), q));
    }
    ft_model_set_label_smoothing(t->model, c->label_smoothing);
    if (c->freeze[0]) { int n = ft_model_freeze(t->model, c->freeze); if (n < 0) return n; }
    if (c->train_only[0]) { int n = ft_model_train_only(t->model, c->train_only); if (n < 0) return n; }
    if (strcmp(c->method, "full")) {
        ft_lora_config lc = ft_train_lora_config(c);
        FT_TRY(ft_model_add_lora(t->model, &lc, (uint64_t)c->seed));
    }
    int64_t tr = ft_model_trainable_count(t->model), all = ft_model_param_count(t->model);
    if (tr < all)
        fprintf(stderr, "trainable parameters: %lld of %lld (%.2f%%)%s\n", (long long)tr, (long long)all, 100.0 * (double)tr / (double)all,
                ft_model_lora_count(t->model) ? " (LoRA adapters; the base is frozen)" : "");
    if (tr == 0) return ft_error(FT_ERR_INVALID, "nothing to train: every parameter is frozen");
    return FT_OK;
}

static int load_data(ft_trainer *t) {
    ft_train_config *c = &t->cfg;
    const ft_model_config *mc = ft_model_get_config(t->model);
    if (c->seq_len > mc->max_seq_len) {
        FT_LOGW("--seq-len %d exceeds the model's context of %d tokens; using %d", c->seq_len, mc->max_seq_len, mc->max_seq_len);
        c->seq_len = mc->max_seq_len;
    }
    ft_data_options o = ft_data_default_options();
    FT_TRY(ft_data_format_from_name(c->format, &o.format));
    FT_TRY(ft_train_on_from_name(c->train_on, &o.train_on));
    FT_TRY(ft_truncate_from_name(c->truncate, &o.truncate));
    o.text_column = c->text_column;
    if (c->prompt_column[0]) o.prompt_column = c->prompt_column;
    if (c->completion_column[0]) o.completion_column = c->completion_column;
    if (c->response_speaker[0]) o.response_speaker = c->response_speaker;
    o.min_chars = c->min_chars;
    o.max_chars = c->max_chars;
    o.strict = c->strict;
    o.dedup = c->dedup;
    o.seq_len = c->seq_len;
    ft_chat_template *tmpl = NULL;
    if (ft_chat_template_load(&tmpl, c->model) == FT_OK) o.chat_template = tmpl;
    ft_error_clear();
    int rc = ft_dataset_load(&t->train_ds, c->data, t->tok, &o);
    if (rc == FT_OK) ft_dataset_print_summary(t->train_ds, stderr);
    if (rc == FT_OK && c->val_data[0]) {
        rc = ft_dataset_load(&t->val_file_ds, c->val_data, t->tok, &o);
        if (rc == FT_OK) ft_dataset_print_summary(t->val_file_ds, stderr);
    }
    ft_chat_template_free(tmpl);
    if (rc < 0) return rc;
    FT_TRY(ft_data_split_make(&t->split, t->train_ds, t->val_file_ds, c->val_split, c->folds, c->fold, (uint64_t)c->seed));
    if (t->split.n_train <= 0) return ft_error(FT_ERR_INVALID, "%s: no training examples left after the validation split", c->data);
    ft_batcher_options bo = ft_batcher_default_options();
    bo.B = c->batch_size;
    bo.T = c->seq_len;
    bo.mode = c->pack ? FT_BATCH_PACKED : FT_BATCH_PADDED;
    bo.shuffle = 1;
    FT_TRY(ft_batcher_create(&t->tb, t->split.train_ds, t->split.train, t->split.n_train, &bo));
    if (t->split.n_val > 0) {
        bo.shuffle = 0;
        FT_TRY(ft_batcher_create(&t->vb, t->split.val_ds, t->split.val, t->split.n_val, &bo));
    }
    t->micro = calloc((size_t)c->grad_accum, sizeof *t->micro);
    if (!t->micro) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->grad_accum; i++) FT_TRY(ft_batch_alloc(&t->micro[i], c->batch_size, c->seq_len));
    t->batches_per_epoch = ft_batcher_batches_per_epoch(t->tb);
    t->steps_per_epoch = (t->batches_per_epoch + c->grad_accum - 1) / c->grad_accum;
    t->total_steps = c->max_steps > 0 ? c->max_steps : (int64_t)c->epochs * t->steps_per_epoch;
    t->warmup = c->warmup_steps >= 0 ? c->warmup_steps : (int64_t)llround(c->warmup_ratio * (double)t->total_steps);
    return FT_OK;
}

static int make_optimizer(ft_trainer *t) {
    int np = ft_model_num_params(t->model);
    return ft_train_make_optimizer(&t->opt, &t->cfg, ft_model_param(t->model, 0), np);
}

static int setup(ft_trainer **out, const ft_train_config *cfg) {
    *out = NULL;
    FT_TRY(ft_train_config_validate(cfg));
    ft_trainer *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    t->best_val = INFINITY;
    t->first_val = t->last_val = t->last_train = NAN;
    t->is_tty = isatty(2);
    if (cfg->threads > 0) ft_set_threads(cfg->threads);
    int rc = ft_schedule_from_name(cfg->schedule, &t->sched);
    if (rc == FT_OK) rc = load_model(t);
    if (rc == FT_OK) rc = ft_train_defaults_apply(&t->cfg, "lm", 0, ft_model_param_count(t->model)); /* "auto" options */
    if (rc == FT_OK) rc = load_data(t);
    /* a dry run stops before the big allocations, so that it can predict them */
    if (rc == FT_OK && !cfg->dry_run) rc = make_optimizer(t);
    if (rc == FT_OK && !cfg->dry_run) rc = ft_model_prepare(t->model, t->cfg.batch_size, t->cfg.seq_len);
    if (rc < 0) { trainer_free(t); return rc; }
    t->it = ft_batch_iter_start((uint64_t)cfg->seed);
    *out = t;
    return FT_OK;
}

/* ------------------------------------------------------------------ checkpoints */

static int save_checkpoint(ft_trainer *t) {
    fflush(t->metrics);
    long mbytes = ftell(t->metrics);
    char state[2048];
    snprintf(state, sizeof state,
             "{\"step\": %lld, \"iter_seed\": \"%llu\", \"iter_epoch\": %lld, \"iter_cursor\": %lld,\n"
             " \"best_val\": \"%a\", \"bad_evals\": %d, \"last_eval_step\": %lld, \"tokens_seen\": %lld,\n"
             " \"train_time\": \"%a\", \"first_val\": \"%a\", \"last_val\": \"%a\", \"last_train\": \"%a\", \"metrics_bytes\": %ld}\n",
             (long long)t->step, (unsigned long long)t->it.seed, (long long)t->it.epoch, (long long)t->it.cursor,
             t->best_val, t->bad_evals, (long long)t->last_eval_step, (long long)t->tokens_seen, t->train_time,
             (double)t->first_val, (double)t->last_val, (double)t->last_train, mbytes);
    return ft_ckpt_save(t->cfg.out, t->step, t->model, t->opt, state, t->cfg.keep);
}

static int restore_checkpoint(ft_trainer *t) {
    char path[4096];
    FT_TRY(ft_ckpt_latest(t->cfg.out, path, sizeof path));
    char *state;
    FT_TRY(ft_ckpt_load(path, t->model, t->opt, &state));
    cJSON *j = cJSON_Parse(state);
    free(state);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s/state.json: invalid JSON", path);
    t->step = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "step"));
    const cJSON *sd = cJSON_GetObjectItem(j, "iter_seed");
    t->it.seed = cJSON_IsString(sd) ? strtoull(sd->valuestring, NULL, 10) : (uint64_t)t->cfg.seed;
    t->it.epoch = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "iter_epoch"));
    t->it.cursor = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "iter_cursor"));
    t->best_val = ft_train_state_num(j, "best_val");
    t->bad_evals = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "bad_evals"));
    t->last_eval_step = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "last_eval_step"));
    t->tokens_seen = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tokens_seen"));
    t->train_time = ft_train_state_num(j, "train_time");
    t->first_val = (float)ft_train_state_num(j, "first_val");
    t->last_val = (float)ft_train_state_num(j, "last_val");
    t->last_train = (float)ft_train_state_num(j, "last_train");
    long mbytes = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "metrics_bytes"));
    cJSON_Delete(j);
    FT_TRY(ft_train_truncate_metrics(t->cfg.out, mbytes));
    fprintf(stderr, "resuming from %s (step %lld of %lld, epoch %lld)\n", path, (long long)t->step,
            (long long)t->total_steps, (long long)t->it.epoch + 1);
    return FT_OK;
}

/* ------------------------------------------------------------------ one step */

static int train_step(ft_trainer *t, double *loss_out, double *gnorm_out, float *lr_out, int64_t *tokens_out) {
    const ft_train_config *c = &t->cfg;
    int64_t cur = t->it.cursor >= t->batches_per_epoch ? 0 : t->it.cursor;
    int k = (int)(t->batches_per_epoch - cur < c->grad_accum ? t->batches_per_epoch - cur : c->grad_accum);
    int64_t targets = 0, positions = 0;
    for (int i = 0; i < k; i++) {
        FT_TRY(ft_batcher_next(t->tb, &t->it, &t->micro[i]));
        targets += t->micro[i].n_targets;
        positions += (int64_t)t->micro[i].B * t->micro[i].T;
    }
    FT_TRY(ft_model_zero_grad(t->model));
    double loss_sum = 0;
    for (int i = 0; i < k; i++) {
        ft_batch *b = &t->micro[i];
        if (b->n_targets == 0) continue;
        ft_model_set_training(t->model, 1, ft_mix64((uint64_t)c->seed ^ ft_mix64((uint64_t)t->step * 1024 + (uint64_t)i)));
        float loss;
        FT_TRY(ft_model_forward(t->model, b->ids, b->targets, b->pos, b->seg, b->B, b->T, &loss));
        loss_sum += (double)loss * b->n_targets;
        FT_TRY(ft_model_backward(t->model, targets > 0 ? 1.0f / (float)targets : 0.0f));
    }
    ft_model_set_training(t->model, 0, 0);
    double gn = ft_params_grad_norm(ft_model_param(t->model, 0), ft_model_num_params(t->model));
    if (c->max_grad_norm > 0 && gn > c->max_grad_norm) ft_params_scale_grads(ft_model_param(t->model, 0), ft_model_num_params(t->model), (float)(c->max_grad_norm / (gn + 1e-6)));
    float lr = ft_schedule_lr(t->sched, c->lr, t->step, t->total_steps, t->warmup, c->min_lr_ratio);
    if (!isfinite(gn)) return ft_error(FT_ERR_RANGE, "step %lld: the gradient is not finite (loss %g); lower --lr?", (long long)t->step + 1, loss_sum);
    FT_TRY(ft_optim_step(t->opt, lr));
    t->step++;
    *loss_out = targets ? loss_sum / (double)targets : NAN;
    *gnorm_out = gn;
    *lr_out = lr;
    *tokens_out = positions;
    t->tokens_seen += targets;
    return FT_OK;
}

/* ------------------------------------------------------------------ progress */

/* best/ and final/: an HF model directory, or for LoRA runs a PEFT adapter directory; with the
 * tokenizer files either way */
static int save_model_dir(ft_trainer *t, const char *dir) {
    char abs[4096];
    const char *base = realpath(t->cfg.model, abs) ? abs : t->cfg.model;
    int rc = ft_model_lora_count(t->model) ? ft_model_save_adapter(t->model, dir, base) : ft_model_save(t->model, dir);
    if (rc == FT_OK && ft_copy_tokenizer_files(t->cfg.model, dir) < 0) rc = FT_ERR_IO;
    return rc;
}

/* ------------------------------------------------------------------ evaluation hook */

static int do_eval(ft_trainer *t, int *stop) {
    if (!t->vb) return FT_OK;
    double vl;
    int64_t vt;
    FT_TRY(ft_trainer_evaluate(t, &vl, &vt));
    t->last_eval_step = t->step;
    if (t->step == 0) t->first_val = (float)vl;
    t->last_val = (float)vl;
    char line[512];
    double epoch = (double)t->step / (double)t->steps_per_epoch;
    snprintf(line, sizeof line, "{\"type\": \"eval\", \"step\": %lld, \"epoch\": %.4f, \"val_loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %lld}",
             (long long)t->step, epoch, vl, exp(vl), (long long)vt);
    FT_TRY(ft_trainer_metric(t, line));
    if (t->is_tty) fputc('\n', stderr);
    fprintf(stderr, "eval step %lld: validation loss %.4f, perplexity %.3f (%lld tokens)%s\n", (long long)t->step, vl, exp(vl),
            (long long)vt, vl < t->best_val - t->cfg.min_delta ? " *best*" : "");
    if (t->step == 0) { t->best_val = vl; return FT_OK; }
    if (vl < t->best_val - t->cfg.min_delta) {
        t->best_val = vl;
        t->bad_evals = 0;
        char dir[4096];
        FT_TRY(ft_path_join(dir, sizeof dir, t->cfg.out, "best"));
        FT_TRY(save_model_dir(t, dir));
    } else if (++t->bad_evals >= t->cfg.patience && t->cfg.patience > 0) {
        fprintf(stderr, "early stopping: no improvement of the validation loss in %d evaluations (best %.4f)\n", t->bad_evals, t->best_val);
        *stop = 1;
    }
    return FT_OK;
}

/* ------------------------------------------------------------------ the loop */

/* the pieces of the shared step loop */
static int  loop_step(void *x, double *loss, double *gn, float *lr, int64_t *n) { return train_step(x, loss, gn, lr, n); }
static int  loop_epoch_ended(void *x) { ft_trainer *t = x; return t->it.cursor >= t->batches_per_epoch; }
static int  loop_eval(void *x, int *stop) { return do_eval(x, stop); }
static int  loop_save(void *x) { return save_checkpoint(x); }
static void loop_after_epoch(void *x) { ft_trainer *t = x; ft_trainer_samples(t, (int)t->it.epoch + 1); }
static int  loop_metric(void *x, const char *line) { return ft_trainer_metric(x, line); }

static int run(ft_trainer *t, ft_train_result *res, int resumed) {
    const ft_train_config *c = &t->cfg;
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, c->out, "metrics.jsonl"));
    t->metrics = fopen(path, resumed ? "a" : "w");
    if (!t->metrics) return ft_error(FT_ERR_IO, "%s: cannot open for writing", path);
    fprintf(stderr, "training %s: %lld parameters, %lld train / %lld validation examples, %lld batches of %d x %d per epoch, "
                    "%lld steps (grad-accum %d), warmup %lld\n",
            ft_model_get_config(t->model)->model_type, (long long)ft_model_param_count(t->model), (long long)t->split.n_train,
            (long long)t->split.n_val, (long long)t->batches_per_epoch, c->batch_size, c->seq_len, (long long)t->total_steps,
            c->grad_accum, (long long)t->warmup);
    ft_loop L = {c, t, &t->step, t->total_steps, t->steps_per_epoch, &t->train_time, &t->last_train, t->is_tty, "tokens_per_s", "tok/s",
                 loop_step, loop_epoch_ended, loop_eval, loop_save, c->samples > 0 ? loop_after_epoch : NULL, loop_metric};
    int stop, interrupted;
    double tps;
    int rc = ft_train_loop_run(&L, resumed, &stop, &interrupted, &tps);
    if (rc == FT_OK && !interrupted) {
        FT_TRY(ft_path_join(path, sizeof path, c->out, "final"));
        rc = save_model_dir(t, path);
        if (rc == FT_OK && !t->vb) { /* no validation: best = final */ }
    }
    if (t->metrics) {
        char line[128];
        snprintf(line, sizeof line, "{\"type\": \"memory\", \"step\": %lld, \"peak_rss_mib\": %.1f}", (long long)t->step, ft_peak_rss_mb());
        ft_trainer_metric(t, line);
        fflush(t->metrics);
    }
    fprintf(stderr, "peak RSS: %.1f MiB\n", ft_peak_rss_mb());
    int rrc = ft_report_write(c->out);
    if (rc == FT_OK && rrc < 0) FT_LOGW("report.html: %s", ft_last_error());
    memset(res, 0, sizeof *res);
    res->steps = t->step;
    res->epochs_done = (int)(t->step / t->steps_per_epoch);
    res->first_val_loss = t->first_val;
    res->final_val_loss = t->last_val;
    res->best_val_loss = isfinite(t->best_val) ? (float)t->best_val : NAN;
    res->final_train_loss = t->last_train;
    res->tokens_per_s = tps;
    res->stopped_early = stop;
    res->interrupted = interrupted;
    if (rc == FT_OK && interrupted) return ft_error(FT_ERR_INTERRUPTED, "training interrupted at step %lld; checkpoint saved", (long long)t->step);
    return rc;
}

int ft_train(const ft_train_config *cfg, ft_train_result *res) {
    if (!cfg->model[0] || !cfg->data[0] || !cfg->out[0])
        return ft_error(FT_ERR_INVALID, "train: model, data and out directory are required");
    char ck[4096];
    if (ft_path_join(ck, sizeof ck, cfg->out, "checkpoints") == FT_OK && ft_path_is_dir(ck)) {
        char latest[4096];
        if (ft_ckpt_latest(cfg->out, latest, sizeof latest) == FT_OK)
            return ft_error(FT_ERR_INVALID, "%s already holds a training run (%s); continue it with --resume %s, or choose another --out",
                            cfg->out, latest, cfg->out);
    }
    FT_TRY(ft_mkdirs(cfg->out));
    /* an unwritable output directory fails here, before any work */
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, cfg->out, "config.json"));
    FT_TRY(ft_train_config_save_json(cfg, path));
    if (ft_train_is_encoder_task(cfg)) return ft_train_encoder(cfg, res, 0);
    if (cfg->folds > 0 && cfg->fold < 0)
        return ft_error(FT_ERR_INVALID, "--fold -1 (every fold) is available for encoder tasks; for language models run --fold 0 ... %d one by one", cfg->folds - 1);
    ft_trainer *t;
    FT_TRY(setup(&t, cfg));
    if (cfg->dry_run) {
        cfg = &t->cfg; /* the resolved batch size */
        const ft_model_config *mc = ft_model_get_config(t->model);
        int64_t np = ft_model_param_count(t->model), ntr = ft_model_trainable_count(t->model);
        size_t base = ft_rss_now(), w = ft_model_weight_bytes(t->model), g = ft_model_grad_bytes(t->model);
        int moments = ft_train_optimizer_moments(cfg);
        size_t o = (size_t)moments * g, act = ft_model_activation_bytes(t->model, cfg->batch_size, cfg->seq_len);
        size_t kv = cfg->samples > 0 ? ft_model_kv_bytes(t->model) : 0;
        size_t bat = (size_t)cfg->grad_accum * 4 * sizeof(int) * (size_t)cfg->batch_size * (size_t)cfg->seq_len;
        /* full-model checkpoints of GPT-2 write transposed copies of the Conv1D weights */
        size_t sv = ft_model_lora_count(t->model) ? 0 : ft_model_save_bytes(t->model);
        size_t peak = base + g + o + act + kv + bat + sv + FT_BLAS_RSS_BYTES;
        printf("plan: %s, %lld parameters (%lld trainable); %lld training / %lld validation examples; %lld steps of %d x %d x %d tokens\n",
               mc->model_type, (long long)np, (long long)ntr, (long long)t->split.n_train, (long long)t->split.n_val,
               (long long)t->total_steps, cfg->grad_accum, cfg->batch_size, cfg->seq_len);
        const double MiB = 1048576.0;
        printf("memory (MiB): loaded now %.1f (weights %.1f, the rest: program, tokenizer, data); gradients %.1f; optimizer %.1f; "
               "activations %.1f; generation cache %.1f; batches %.1f; checkpoint writing %.1f; BLAS buffers %.1f\n",
               base / MiB, w / MiB, g / MiB, o / MiB, act / MiB, kv / MiB, bat / MiB, sv / MiB, FT_BLAS_RSS_BYTES / MiB);
        printf("predicted peak RSS: %.1f MiB\n", peak / MiB);
        memset(res, 0, sizeof *res);
        trainer_free(t);
        return FT_OK;
    }
    int rc = run(t, res, 0);
    trainer_free(t);
    return rc;
}

int ft_train_resume(const char *run_dir, ft_train_result *res) {
    ft_train_config cfg;
    ft_train_config_defaults(&cfg);
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, run_dir, "config.json"));
    if (!ft_path_exists(path)) return ft_error(FT_ERR_NOT_FOUND, "%s: not a run directory (no config.json)", run_dir);
    FT_TRY(ft_train_config_load_json(&cfg, path));
    snprintf(cfg.out, sizeof cfg.out, "%s", run_dir);
    if (ft_train_is_encoder_task(&cfg)) return ft_train_encoder(&cfg, res, 1);
    char latest[4096];
    if (ft_ckpt_latest(run_dir, latest, sizeof latest) != FT_OK) {
        /* stopped before its first checkpoint: starting over is the same run */
        fprintf(stderr, "%s: no checkpoint yet; starting the run from the beginning\n", run_dir);
        ft_error_clear();
        ft_trainer *t;
        FT_TRY(setup(&t, &cfg));
        int rc = run(t, res, 0);
        trainer_free(t);
        return rc;
    }
    ft_trainer *t;
    FT_TRY(setup(&t, &cfg));
    int rc = restore_checkpoint(t);
    if (rc == FT_OK) rc = run(t, res, 1);
    trainer_free(t);
    return rc;
}
