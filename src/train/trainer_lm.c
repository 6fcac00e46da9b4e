/* trainer_lm.c — the language-modelling task of the trainer (trainer_internal.h): decoder models
 * (GPT-2, Llama, ...) on text, prompt/completion, chat and dialogue data; full fine-tuning, LoRA and
 * QLoRA. Batches come from the data module's batcher (window, pack or pad, shuffled per epoch); the
 * loss denominator is the number of target tokens; evaluation is the validation loss / perplexity;
 * after each epoch, optional sample generations. */
#include "trainer_internal.h"
#include "train/dist.h"
#include "finetune/chat.h"
#include "finetune/fileio.h"
#include "finetune/checkpoint.h"
#include "finetune/generate.h"
#include "finetune/lora.h"
#include "finetune/optim.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lm_task {
    ft_task base;
    ft_train_config *cfg;       /* the trainer's */
    ft_tokenizer *tok;
    ft_model *model;
    ft_dataset *train_ds, *val_file_ds;
    ft_data_split split;
    ft_batcher *tb, *vb;        /* training / validation batchers */
    ft_batch *micro;            /* [grad_accum] micro-batches of the current step */
    ft_batch global;            /* the whole global batch when a rank takes a share of it */
} lm_task;

static void lm_free(ft_task *k) {
    lm_task *t = (lm_task *)k;
    if (!t) return;
    if (t->micro) {
        for (int i = 0; i < t->cfg->grad_accum; i++) ft_batch_free(&t->micro[i]);
        free(t->micro);
    }
    ft_batch_free(&t->global);
    ft_batcher_free(t->tb);
    ft_batcher_free(t->vb);
    ft_data_split_free(&t->split);
    ft_dataset_free(t->train_ds);
    ft_dataset_free(t->val_file_ds);
    ft_model_free(t->model);
    ft_tokenizer_free(t->tok);
    free(t);
}

/* ------------------------------------------------------------------ setup */

static int load_model(lm_task *t) {
    const ft_train_config *c = t->cfg;
    FT_TRY(ft_tokenizer_load(&t->tok, c->model));
    /* QLoRA: the base is quantized while it loads (peak memory near the quantized size) */
    ft_dtype q = !strcmp(c->method, "qlora") ? (!strcmp(c->quant, "int8") ? FT_Q8_ROW : FT_NF4) : FT_F32;
    const ft_backend *be;
    FT_TRY(ft__train_backend(t->base.out, c, &be));
    if (!strcmp(c->init_from, "random")) {
        ft_model_config mc;
        FT_TRY(ft_model_config_load(&mc, c->model));
        FT_TRY(ft_model_create_random_quantized(&t->model, &mc, (uint64_t)c->seed, be, q));
    } else {
        FT_TRY(ft_model_load_quantized(&t->model, c->model, be, q));
    }
    ft_model_set_label_smoothing(t->model, c->label_smoothing);
    ft_recompute rm;
    FT_TRY(ft_recompute_from_name(c->recompute, &rm));
    ft_model_set_recompute(t->model, rm);   /* before the dry-run plan and prepare: it sizes the activations */
    if (c->freeze[0]) { int n = ft_model_freeze(t->model, c->freeze); if (n < 0) return n; }
    if (c->train_only[0]) { int n = ft_model_train_only(t->model, c->train_only); if (n < 0) return n; }
    if (strcmp(c->method, "full")) {
        ft_lora_config lc = ft__train_lora_config(c);
        FT_TRY(ft_model_add_lora(t->model, &lc, (uint64_t)c->seed));
    }
    return ft__train_check_trainable(t->base.out, ft_model_trainable_count(t->model), ft_model_param_count(t->model),
                                    ft_model_lora_count(t->model) ? " (LoRA adapters; the base is frozen)" : "");
}

/* the data module's summary of a dataset, as a message */
static void summary_message(const lm_task *t, const ft_dataset *ds) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    ft_dataset_print_summary(ds, f);
    fclose(f);
    while (len && text[len - 1] == '\n') text[--len] = 0;
    if (len) ft__sinks_message(t->base.out, FT_LOG_INFO, "%s", text);
    free(text);
}

static int load_data(lm_task *t) {
    ft_train_config *c = t->cfg;
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
    if (rc == FT_OK) summary_message(t, t->train_ds);
    if (rc == FT_OK && c->val_data[0]) {
        rc = ft_dataset_load(&t->val_file_ds, c->val_data, t->tok, &o);
        if (rc == FT_OK) summary_message(t, t->val_file_ds);
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
    t->base.batches_per_epoch = ft_batcher_batches_per_epoch(t->tb);
    t->base.n_train = t->split.n_train;
    t->base.n_val = t->vb ? t->split.n_val : 0;
    return FT_OK;
}

static int lm_create(ft_task **out, ft_train_config *cfg, const ft_sinks *sinks) {
    *out = NULL;
    lm_task *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->base = (ft_task){.ops = &ft_task_lm_ops, .out = sinks, .metric_name = "", .rate_key = "tokens_per_s", .rate_unit = "tok/s"};
    t->cfg = cfg;
    int rc = load_model(t);
    if (rc == FT_OK) rc = ft_train_defaults_apply(cfg, "lm", 0, ft_model_param_count(t->model), t->base.defaults_text,
                                                        sizeof t->base.defaults_text); /* "auto" options */
    if (rc == FT_OK) rc = load_data(t);
    if (rc < 0) { lm_free(&t->base); return rc; }
    t->base.params = ft_model_param(t->model, 0);
    t->base.n_params = ft_model_num_params(t->model);
    *out = &t->base;
    return FT_OK;
}

static int lm_prepare(ft_task *k) {
    lm_task *t = (lm_task *)k;
    return ft_model_prepare(t->model, t->cfg->batch_size, t->cfg->seq_len);
}

/* ------------------------------------------------------------------ one step */

static int lm_next_batch(ft_task *k, int slot, int64_t epoch, int64_t index, int rank, int world, uint64_t seed,
                         int64_t *count, double *den) {
    lm_task *t = (lm_task *)k;
    if (world > 1 && !t->global.ids) FT_TRY(ft_batch_alloc(&t->global, t->cfg->batch_size, t->cfg->seq_len));
    ft_batch *b = &t->micro[slot];
    FT_TRY(ft__batcher_shard(t->tb, (uint64_t)t->cfg->seed, epoch, index, rank, world, &t->global, b));
    *count = (int64_t)b->B * b->T;
    *den = b->n_targets;
    return FT_OK;
}

static int lm_zero_grad(ft_task *k) { return ft_model_zero_grad(((lm_task *)k)->model); }

static int lm_forward_backward(ft_task *k, int slot, uint64_t dropout_seed, float scale, double *loss_sum, double *den) {
    lm_task *t = (lm_task *)k;
    ft_batch *b = &t->micro[slot];
    *loss_sum = 0;
    *den = b->n_targets;
    if (b->n_targets == 0) return FT_OK;
    ft_model_set_training(t->model, 1, dropout_seed);
    float loss;
    FT_TRY(ft_model_forward(t->model, b->ids, b->targets, b->pos, b->seg, b->B, b->T, &loss));
    *loss_sum = (double)loss * b->n_targets;
    return ft_model_backward(t->model, scale);
}

static void lm_end_step(ft_task *k) { ft_model_set_training(((lm_task *)k)->model, 0, 0); }

/* ------------------------------------------------------------------ evaluation */

/* Several ranks (dist.h) share the batches: rank r evaluates a contiguous run of them, every rank gets every
 * batch's (loss x tokens, tokens), and the sums are made in batch order: the bits one process gets. */
int ft__eval_batches(ft_model *m, ft_batcher *vb, int64_t max_batches, ft_batch *scratch, double *loss, int64_t *tokens) {
    const ft__dist *d = ft__dist_get();
    int64_t n = ft_batcher_batches_per_epoch(vb);
    if (max_batches > 0 && max_batches < n) n = max_batches;
    int64_t first, count;
    ft__shard_rows(n, d->rank, d->world, &first, &count);
    double *rows = calloc((size_t)(n > 0 ? n : 1) * 2, sizeof *rows);   /* [n][2]: loss x tokens, tokens */
    if (!rows) return ft_error(FT_ERR_NOMEM, "out of memory");
    ft_batch_iter it = ft_batch_iter_start(0);
    it.cursor = first;
    ft_model_set_training(m, 0, 0);
    int rc = FT_OK;
    for (int64_t i = first; i < first + count && rc == FT_OK; i++) {
        rc = ft_batcher_next(vb, &it, scratch);
        if (rc < 0 || scratch->n_targets == 0) continue;
        float l;
        rc = ft_model_forward(m, scratch->ids, scratch->targets, scratch->pos, scratch->seg, scratch->B, scratch->T, &l);
        rows[2 * i] = (double)l * scratch->n_targets;
        rows[2 * i + 1] = (double)scratch->n_targets;
    }
    rc = ft__dist_agree(d, rc);
    if (rc == FT_OK) rc = ft__dist_gather_rows(d, rows, n, 2);
    double sum = 0;
    int64_t tok = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rows[2 * i + 1] == 0) continue;
        sum += rows[2 * i];
        tok += (int64_t)rows[2 * i + 1];
    }
    free(rows);
    if (rc < 0) return rc;
    *loss = tok ? sum / (double)tok : NAN;
    *tokens = tok;
    return FT_OK;
}

static int lm_evaluate(ft_task *k, ft_task_eval *ev) {
    lm_task *t = (lm_task *)k;
    ev->json = NULL;
    if (!t->vb) return FT_OK;
    double vl;
    int64_t vt;
    /* micro[0] is scratch here: the next step fills it again */
    FT_TRY(ft__eval_batches(t->model, t->vb, t->cfg->eval_batches, &t->micro[0], &vl, &vt));
    char json[256];
    snprintf(json, sizeof json, "{\"val_loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %lld}", vl, exp(vl), (long long)vt);
    ev->json = strdup(json);
    if (!ev->json) return ft_error(FT_ERR_NOMEM, "out of memory");
    ev->loss = vl;
    ev->main = exp(vl);
    snprintf(ev->summary, sizeof ev->summary, "validation loss %.4f, perplexity %.3f (%lld tokens)", vl, exp(vl), (long long)vt);
    return FT_OK;
}

/* prompts: --sample-prompts, else the beginning of the first validation (or training) examples: the
 * tokens before the first learned token, or the first quarter of the example */
static int lm_samples(ft_task *k, int64_t step, int epoch) {
    lm_task *t = (lm_task *)k;
    const ft_train_config *c = t->cfg;
    int want = c->samples;
    if (want <= 0) return FT_OK;
    char *prompts_copy = c->sample_prompts[0] ? strdup(c->sample_prompts) : NULL;
    char *save = NULL, *next = prompts_copy ? strtok_r(prompts_copy, "|", &save) : NULL;
    const ft_dataset *ds = t->split.n_val ? t->split.val_ds : t->split.train_ds;
    const int64_t *idx = t->split.n_val ? t->split.val : t->split.train;
    int64_t nidx = t->split.n_val ? t->split.n_val : t->split.n_train;
    ft__sinks_message(k->out, FT_LOG_INFO, "samples after epoch %d:", epoch);
    int rc = FT_OK;
    for (int s = 0; s < want && rc == FT_OK; s++) {
        int *prompt = NULL, np = 0;
        if (prompts_copy) {
            if (!next) break;
            rc = ft_tokenizer_encode(t->tok, next, strlen(next), FT_TOK_ADD_SPECIAL, &prompt, &np);
            next = strtok_r(NULL, "|", &save);
            if (rc < 0) break;
        } else {
            if (s >= nidx) break;
            const int *ids;
            const uint8_t *learned;
            int n;
            if ((rc = ft_dataset_example(ds, idx[s], &ids, &learned, &n)) < 0) break;
            int first = 0;
            while (first < n && !learned[first]) first++;
            /* prompt/chat data: everything before the response; text/dialogue: the first quarter */
            np = first > 1 && first < n ? first : (n / 4 > 1 ? n / 4 : 1);
            if (np > 96) np = 96;
            prompt = malloc(sizeof(int) * (size_t)np);
            if (!prompt) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
            memcpy(prompt, ids, sizeof(int) * (size_t)np);
        }
        if (np == 0) { free(prompt); continue; }
        ft_generate_params p = ft_generate_default_params();
        p.max_new_tokens = c->sample_tokens;
        p.temperature = 0.7f;
        p.top_p = 0.9f;
        p.seed = (uint64_t)c->seed * 1000003u + (uint64_t)epoch * 101u + (uint64_t)s;
        ft_generation g;
        rc = ft_generate(t->model, t->tok, prompt, np, &p, NULL, NULL, &g);
        if (rc == FT_OK) {
            char *ptext = NULL;
            size_t plen = 0;
            ft_tokenizer_decode(t->tok, prompt, np, FT_TOK_SKIP_SPECIAL, &ptext, &plen);
            ft__sinks_message(k->out, FT_LOG_INFO, "  --- sample %d ---\n%s%s", s + 1, ptext ? ptext : "", g.text);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "type", "sample");
            cJSON_AddNumberToObject(j, "step", (double)step);
            cJSON_AddNumberToObject(j, "epoch", epoch);
            cJSON_AddStringToObject(j, "prompt", ptext ? ptext : "");
            cJSON_AddStringToObject(j, "text", g.text);
            char *line = cJSON_PrintUnformatted(j);
            if (line) rc = ft__sinks_record(k->out, line);
            free(line);
            cJSON_Delete(j);
            free(ptext);
            ft_generation_free(&g);
        }
        free(prompt);
    }
    free(prompts_copy);
    return rc;
}

/* ------------------------------------------------------------------ saving */

/* best/ and final/: an HF model directory, or for LoRA runs a PEFT adapter directory; with the
 * tokenizer files either way */
static int lm_save_model(ft_task *k, const char *dir) {
    lm_task *t = (lm_task *)k;
    char abs[4096];
    const char *base = realpath(t->cfg->model, abs) ? abs : t->cfg->model;
    int rc = ft_model_lora_count(t->model) ? ft_model_save_adapter(t->model, dir, base) : ft_model_save(t->model, dir);
    if (rc == FT_OK && ft_copy_tokenizer_files(t->cfg->model, dir) < 0) rc = FT_ERR_IO;
    return rc;
}

/* checkpoints: LoRA runs keep the frozen base where it came from, the checkpoint holds the adapter */
static int lm_save_weights(ft_task *k, const char *dir) {
    const ft_model *m = ((lm_task *)k)->model;
    return ft_model_lora_count(m) ? ft_model_save_adapter(m, dir, "") : ft_model_save(m, dir);
}

static int lm_load_weights(ft_task *k, const char *dir) {
    ft_model *m = ((lm_task *)k)->model;
    return ft_model_lora_count(m) ? ft_model_load_adapter(m, dir) : ft_model_load_weights(m, dir);
}

/* ------------------------------------------------------------------ words */

static void lm_describe(const ft_task *k, char *buf, size_t cap) {
    const lm_task *t = (const lm_task *)k;
    snprintf(buf, cap, "%s: %lld parameters, %lld train / %lld validation examples, %lld batches of %d x %d per epoch",
             ft_model_get_config(t->model)->model_type, (long long)ft_model_param_count(t->model), (long long)t->split.n_train,
             (long long)t->split.n_val, (long long)k->batches_per_epoch, t->cfg->batch_size, t->cfg->seq_len);
}

static int lm_plan(ft_task *k, int64_t total_steps, char *buf, size_t cap) {
    lm_task *t = (lm_task *)k;
    const ft_train_config *cfg = t->cfg;
    const ft_model_config *mc = ft_model_get_config(t->model);
    int64_t np = ft_model_param_count(t->model), ntr = ft_model_trainable_count(t->model);
    size_t base = ft__rss_now(), w = ft_model_weight_bytes(t->model), g = ft_model_grad_bytes(t->model);
    int moments = ft__train_optimizer_moments(cfg);
    size_t o = (size_t)moments * g, act = ft_model_activation_bytes(t->model, cfg->batch_size, cfg->seq_len);
    size_t kv = cfg->samples > 0 ? ft_model_kv_bytes(t->model) : 0;
    size_t bat = (size_t)cfg->grad_accum * 4 * sizeof(int) * (size_t)cfg->batch_size * (size_t)cfg->seq_len;
    /* full-model checkpoints of GPT-2 write transposed copies of the Conv1D weights */
    size_t sv = ft_model_lora_count(t->model) ? 0 : ft_model_save_bytes(t->model);
    /* --precision bf16: no bf16 copy of a tensor outlives a matmul; the largest one packs its operands */
    size_t bf = ft__train_bf16_workspace_bytes(cfg, (int64_t)cfg->batch_size * cfg->seq_len, mc->n_embd, mc->ffn_hidden, mc->vocab_size);
    /* bf16: the linear weights' packs the optimizer keeps (ft_optim_set_prepack; one process) */
    size_t pk = bf && cfg->weight_packs ? ft_optim_prepack_bytes(ft_model_param(t->model, 0), ft_model_num_params(t->model), ft_model_backend(t->model)) : 0;
    size_t peak = base + g + o + pk + act + kv + bat + sv + bf + FT_BLAS_RSS_BYTES;
    const double MiB = 1048576.0;
    char bfs[96] = "";
    if (bf) snprintf(bfs, sizeof bfs, "; bf16 packing (largest matmul) %.1f; bf16 weight packs %.1f", bf / MiB, pk / MiB);
    snprintf(buf, cap,
             "plan: %s, %lld parameters (%lld trainable); %lld training / %lld validation examples; %lld steps of %d x %d x %d tokens\n"
             "memory (MiB): loaded now %.1f (weights %.1f, the rest: program, tokenizer, data); gradients %.1f; optimizer %.1f; "
             "activations %.1f (recompute %s); generation cache %.1f; batches %.1f; checkpoint writing %.1f; BLAS buffers %.1f%s\n"
             "predicted peak RSS: %.1f MiB",
             mc->model_type, (long long)np, (long long)ntr, (long long)t->split.n_train, (long long)t->split.n_val,
             (long long)total_steps, cfg->grad_accum, cfg->batch_size, cfg->seq_len,
             base / MiB, w / MiB, g / MiB, o / MiB, act / MiB, cfg->recompute, kv / MiB, bat / MiB, sv / MiB, FT_BLAS_RSS_BYTES / MiB, bfs,
             peak / MiB);
    return FT_OK;
}

const ft_task_ops ft_task_lm_ops = {
    .create = lm_create,
    .free = lm_free,
    .prepare = lm_prepare,
    .next_batch = lm_next_batch,
    .zero_grad = lm_zero_grad,
    .forward_backward = lm_forward_backward,
    .end_step = lm_end_step,
    .evaluate = lm_evaluate,
    .save_model = lm_save_model,
    .save_weights = lm_save_weights,
    .load_weights = lm_load_weights,
    .after_epoch = lm_samples,
    .describe = lm_describe,
    .plan = lm_plan,
};
