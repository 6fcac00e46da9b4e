/* train_config.c — the table of training options and its uses: defaults, CLI/JSON parsing,
 * saving the run's configuration, validation. */
#include "finetune/train.h"
#include "core/json_util.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(ft_train_config, f)
#define STR(f) FT_OPTV_STR, OFF(f), sizeof(((ft_train_config *)0)->f)
#define INT(f) FT_OPTV_INT, OFF(f), 0
#define FLT(f) FT_OPTV_FLOAT, OFF(f), 0
#define BOOL(f) FT_OPTV_BOOL, OFF(f), 0

const ft_train_option ft_train_options[] = {
    {"model", STR(model), "", "model directory (HF layout); default: the embedded stories260K"},
    {"data", STR(data), "", "training data file; default: the bundled fun-dialogues set"},
    {"val-data", STR(val_data), "", "validation data file (instead of --val-split)"},
    {"out", STR(out), "", "run directory (config, metrics, checkpoints, final/, best/, report.html); default runs/YYYYMMDD-HHMMSS"},
    {"format", STR(format), "auto", "data format: auto, dialogue, prompt-completion, chat, alpaca, sharegpt, text, dailydialog, csv"},
    {"text-column", STR(text_column), "text", "CSV/TSV column holding the text"},
    {"clean", STR(clean), "", "cleaning steps run on --data first (as finetune data clean --steps: lower,html,punct,space,urls,mentions,hashtags,stopwords,stem,neardup,length,lang,conflicts); text steps also on --val-data / --test-data; the cleaned copies and logs go to RUN_DIR/clean/"},
    {"init", STR(init_from), "pretrained", "pretrained (load the weights) or random (same architecture, random weights)"},
    {"seq-len", INT(seq_len), "256", "tokens per sequence (truncation / packing length; capped by the model's context)"},
    {"pack", BOOL(pack), "0", "pack several examples per sequence (attention and positions stay within each example)"},
    {"strict", BOOL(strict), "0", "turn skipped records into errors"},
    {"dedup", BOOL(dedup), "1", "remove exact duplicate records"},
    {"val-split", FLT(val_split), "0.2", "fraction of the data held out for validation"},
    {"folds", INT(folds), "0", "k-fold cross-validation: number of folds (0 = off)"},
    {"fold", INT(fold), "0", "which fold is the validation fold (0-based); -1 (encoder tasks): train every fold in OUT/fold-N and report mean +- std"},
    {"train-on", STR(train_on), "auto", "completion (only responses / assistant turns) or all; auto picks by format"},
    {"truncate", STR(truncate), "auto", "long examples: right (keep the start), left (keep the end), none (cut into windows); auto = none for text, right otherwise"},
    {"prompt-column", STR(prompt_column), "", "CSV/TSV: prompt column (with --completion-column: prompt-completion rows)"},
    {"completion-column", STR(completion_column), "", "CSV/TSV: completion column"},
    {"response-speaker", STR(response_speaker), "", "dialogue data with --train-on completion: whose turns are learned (default: the last turn's speaker)"},
    {"min-chars", INT(min_chars), "1", "drop records shorter than this (characters)"},
    {"max-chars", INT(max_chars), "0", "drop records longer than this (characters; 0 = no limit)"},
    {"method", STR(method), "full", "full (every weight not frozen), lora (adapters on a frozen f32 base), qlora (adapters on a quantized frozen base)"},
    {"quant", STR(quant), "nf4", "qlora base format: nf4 (4-bit NormalFloat, double-quantized scales) or int8 (absmax per row)"},
    {"recompute", STR(recompute), "none", "activation recomputation (decoders): none (keep every activation), attention (recompute the attention probabilities in backward), block (keep only each block's input, rerun its forward in backward); same gradients, less memory, more compute"},
    {"weight-packs", BOOL(weight_packs), "1", "bf16 (one process): keep each trained linear weight in its two bf16 matmul layouts between steps, refreshed by the optimizer's pass over it, instead of packing it twice per step (about 4 bytes per weight; 0 = off)"},
    {"lora-r", INT(lora_r), "8", "LoRA rank"},
    {"lora-alpha", FLT(lora_alpha), "16", "LoRA alpha (scale alpha/r)"},
    {"lora-dropout", FLT(lora_dropout), "0.05", "dropout on the LoRA branch input"},
    {"lora-targets", STR(lora_targets), "", "modules to adapt, comma-separated (GPT-2: c_attn, c_proj, c_fc, attn.c_proj, mlp.c_proj; Llama: q_proj ... down_proj; all-linear); default c_attn / q_proj,v_proj"},
    {"rslora", BOOL(rslora), "0", "rank-stabilised LoRA: scale alpha/sqrt(r)"},
    {"freeze", STR(freeze), "", "freeze parameters: embeddings, head, norm, layers:A-B, or globs on HF names (comma-separated)"},
    {"train-only", STR(train_only), "", "train only these (same patterns as --freeze); everything else is frozen"},
    {"optimizer", STR(optimizer), "adamw", "adamw, adam, sgd, adagrad or rmsprop"},
    {"schedule", STR(schedule), "linear", "learning-rate schedule after warmup: constant, linear or cosine"},
    {"lr", FLT(lr), "auto", "peak learning rate; auto: by model and method (encoder: 5e-5 full, 1e-3 LoRA; decoder full: 5e-4 under 10M parameters, 5e-5 under 1B, else 2e-5; decoder LoRA/QLoRA: 5e-4 under 10M, 2e-4 under 30B, else 1e-4; --init random: 5e-4)"},
    {"min-lr-ratio", FLT(min_lr_ratio), "0", "final learning rate as a fraction of --lr (linear / cosine)"},
    {"weight-decay", FLT(weight_decay), "0.01", "decoupled weight decay (not on biases, norms, embeddings)"},
    {"beta1", FLT(beta1), "0.9", "Adam beta1"},
    {"beta2", FLT(beta2), "0.999", "Adam beta2 (RMSprop: the smoothing constant alpha)"},
    {"eps", FLT(eps), "1e-8", "Adam epsilon"},
    {"momentum", FLT(momentum), "0.9", "SGD / RMSprop momentum"},
    {"nesterov", BOOL(nesterov), "0", "SGD with Nesterov momentum"},
    {"warmup-steps", INT(warmup_steps), "-1", "warmup steps (-1: use --warmup-ratio)"},
    {"warmup-ratio", FLT(warmup_ratio), "auto", "warmup as a fraction of all steps; auto: 0.1 for encoders (BERT), 0.05 for decoders"},
    {"max-grad-norm", FLT(max_grad_norm), "1.0", "clip gradients to this global norm (0 = off)"},
    {"label-smoothing", FLT(label_smoothing), "0", "label smoothing of the cross-entropy"},
    {"batch-size", INT(batch_size), "auto", "sequences per micro-batch; auto: 16 for encoders, 8 for decoders"},
    {"grad-accum", INT(grad_accum), "1", "micro-batches per optimizer step (normalised by target tokens)"},
    {"epochs", INT(epochs), "3", "passes over the training data"},
    {"max-steps", INT(max_steps), "-1", "stop after this many optimizer steps (-1: run --epochs)"},
    {"stop-at-epoch", INT(stop_at_epoch), "0", "end this invocation after epoch N with an evaluation and a checkpoint, the learning-rate schedule still planned for all of --epochs / --max-steps; continue with --resume RUN_DIR --stop-at-epoch M (0 = off)"},
    {"stop-at-step", INT(stop_at_step), "0", "as --stop-at-epoch, after optimizer step N (0 = off)"},
    {"eval-every", INT(eval_every), "0", "evaluate every N steps (0: only at each epoch end)"},
    {"eval-start", BOOL(eval_start), "1", "evaluate the model before training (step 0)"},
    {"eval-epoch-end", BOOL(eval_epoch_end), "1", "evaluate at each epoch end (off: only every --eval-every steps, at --stop-at-* and at the end)"},
    {"save-every", INT(save_every), "0", "checkpoint every N steps (0: only at each epoch end)"},
    {"keep", INT(keep), "2", "checkpoints to keep (older ones are removed)"},
    {"patience", INT(patience), "0", "early stopping: evaluations without improvement before stopping (0 = off)"},
    {"min-delta", FLT(min_delta), "0", "early stopping: the smallest validation-loss drop that counts"},
    {"log-every", INT(log_every), "1", "write a metrics line every N steps"},
    {"samples", INT(samples), "3", "sample generations at each epoch end (0 = none)"},
    {"sample-tokens", INT(sample_tokens), "48", "tokens per sample generation"},
    {"sample-prompts", STR(sample_prompts), "", "prompts for samples, separated by '|' (default: from the validation data)"},
    {"eval-batches", INT(eval_batches), "0", "limit validation to N batches (0 = all)"},
    {"task", STR(task), "auto", "lm (causal language modelling), classify, regress, token-classify or mlm; auto: lm for decoders, classify for encoders"},
    {"label-column", STR(label_column), "label", "classify / regress: CSV/TSV/JSONL column holding the label (name or 1-based number)"},
    {"pair-column", STR(pair_column), "", "classify / regress: second-sentence column (sentence pairs)"},
    {"num-labels", INT(num_labels), "0", "classify / token-classify: label count (0 = from the data)"},
    {"pooling", STR(pooling), "auto", "classify / regress: cls ([CLS] / <s> vector) or mean (mean over the real tokens); auto = the model's, else cls"},
    {"class-weights", STR(class_weights), "none", "classify: none, inverse (n / count) or balanced (n / (K count)) loss weights"},
    {"resample", STR(resample), "none", "classify: none, over (random over-sampling) or under (random under-sampling) of the training set"},
    {"mlm-probability", FLT(mlm_probability), "0.15", "mlm: fraction of tokens chosen (80% [MASK], 10% random, 10% kept)"},
    {"header", BOOL(header), "1", "encoder tasks: the CSV/TSV's first row names the columns (--no-header: columns are 1-based numbers, e.g. --text-column 1 --label-column 2)"},
    {"group-by-length", BOOL(group_by_length), "1", "encoder tasks: batch examples of similar length together (less padding)"},
    {"test-data", STR(test_data), "", "encoder tasks: held-out file evaluated with the best model at the end"},
    {"best-metric", STR(best_metric), "auto", "what picks best/ and early stopping: val_loss, accuracy, f1_macro, f1 (NER), mse; auto: val_loss"},
    {"tasks", STR(tasks), "", "--task multi: the tasks as NAME=FILE[:TEXT_COLUMN[:LABEL_COLUMN]],... (one classification head each; labels per file)"},
    {"task-weights", STR(task_weights), "", "--task multi: loss weight per task, comma-separated in --tasks order (default 1 each)"},
    {"task-mix", STR(task_mix), "proportional", "--task multi: proportional (one task per batch, drawn in proportion to size), mixed (every batch mixes tasks) or alternate"},
    {"replay", STR(replay), "", "continual learning: old-task examples replayed in every batch (rehearsal; classify)"},
    {"replay-ratio", FLT(replay_ratio), "0.25", "continual learning: fraction of each batch drawn from --replay"},
    {"l2-sp", FLT(l2_sp), "0", "continual learning: penalty l2_sp/2 * |theta - theta_0|^2 towards the starting weights (0 = off)"},
    {"eval-old", STR(eval_old), "", "continual learning: old-task file evaluated before and after training (forgetting; classify)"},
    {"stream", BOOL(stream), "0", "classify: read JSONL records from stdin and train on mini-batches as they fill (stop on EOF / SIGTERM)"},
    {"seed", FT_OPTV_I64, OFF(seed), 0, "1234", "one seed for shuffling, splits, dropout, init and sampling"},
    {"threads", INT(threads), "0", "threads (0 = all cores)"},
    {"shard-optimizer", BOOL(shard_optimizer), "0", "with several ranks (mpirun): each rank keeps and updates only its share of the optimizer state (ZeRO-1); the result is identical"},
    {"precision", STR(precision), "auto", "f32, bf16 or auto: bf16 runs the matmuls of the linear layers on bf16 inputs (f32 accumulation, f32 master weights, gradients, optimizer state, norms, softmax and loss; needs AVX-512); auto = bf16 where the CPU has AVX512-BF16, else f32"},
    {"dry-run", BOOL(dry_run), "0", "prepare data and print the plan (steps, tokens, memory) without training"},
};
const int ft_train_option_count = (int)(sizeof ft_train_options / sizeof *ft_train_options);

static const ft_train_option *find_opt(const char *name) {
    char n[64];
    snprintf(n, sizeof n, "%s", name);
    for (char *p = n; *p; p++) if (*p == '_') *p = '-';
    for (int i = 0; i < ft_train_option_count; i++)
        if (strcmp(ft_train_options[i].name, n) == 0) return &ft_train_options[i];
    return NULL;
}

int ft_train_config_set(ft_train_config *c, const char *name, const char *value) {
    const ft_train_option *o = find_opt(name);
    if (!o) return ft_error(FT_ERR_INVALID, "unknown option '%s'", name);
    char *base = (char *)c + o->offset, *end;
    errno = 0;
    /* a number whose table default is "auto" (train_defaults.c fills it in): "auto" or >= 0 */
    int autoable = (o->type == FT_OPTV_INT || o->type == FT_OPTV_FLOAT) && !strcmp(o->def, "auto");
    if (autoable && !strcmp(value, "auto")) {
        if (o->type == FT_OPTV_INT) *(int *)base = FT_TRAIN_AUTO; else *(float *)base = (float)FT_TRAIN_AUTO;
        return FT_OK;
    }
    if (autoable && strtod(value, &end) < 0 && end != value && !*end)
        return ft_error(FT_ERR_INVALID, "--%s: expected a number >= 0 or auto, got '%s'", o->name, value);
    errno = 0;
    switch (o->type) {
    case FT_OPTV_STR:
        if (strlen(value) >= o->size) return ft_error(FT_ERR_INVALID, "--%s: value too long (max %zu bytes)", o->name, o->size - 1);
        strcpy(base, value);
        return FT_OK;
    case FT_OPTV_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < -2147483647L || v > 2147483647L)
            return ft_error(FT_ERR_INVALID, "--%s: expected an integer, got '%s'", o->name, value);
        *(int *)base = (int)v;
        return FT_OK;
    }
    case FT_OPTV_I64: {
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) return ft_error(FT_ERR_INVALID, "--%s: expected an integer, got '%s'", o->name, value);
        *(int64_t *)base = v;
        return FT_OK;
    }
    case FT_OPTV_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v)) return ft_error(FT_ERR_INVALID, "--%s: expected a number, got '%s'", o->name, value);
        *(float *)base = (float)v;
        return FT_OK;
    }
    case FT_OPTV_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) *(int *)base = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) *(int *)base = 0;
        else return ft_error(FT_ERR_INVALID, "--%s: expected true or false, got '%s'", o->name, value);
        return FT_OK;
    }
    return ft_error(FT_ERR_INVALID, "--%s: bad option type", o->name);
}

void ft_train_config_defaults(ft_train_config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < ft_train_option_count; i++) ft_train_config_set(c, ft_train_options[i].name, ft_train_options[i].def);
}

int ft_train_config_load_json(ft_train_config *c, const char *path) {
    char *text;
    FT_TRY(ft_file_read_all(path, &text, NULL));
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return ft_error(FT_ERR_FORMAT, "%s: expected a JSON object of options", path); }
    int rc = FT_OK;
    for (cJSON *it = root->child; it && rc == FT_OK; it = it->next) {
        char buf[2048];
        if (cJSON_IsString(it)) snprintf(buf, sizeof buf, "%s", it->valuestring);
        else if (cJSON_IsBool(it)) snprintf(buf, sizeof buf, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else if (cJSON_IsNumber(it)) {
            if (it->valuedouble == (double)(long long)it->valuedouble && fabs(it->valuedouble) < 9e15) snprintf(buf, sizeof buf, "%lld", (long long)it->valuedouble);
            else snprintf(buf, sizeof buf, "%.9g", it->valuedouble);
        } else if (cJSON_IsNull(it)) continue;
        else { rc = ft_error(FT_ERR_FORMAT, "%s: option \"%s\": expected a string, number or boolean", path, it->string); break; }
        rc = ft_train_config_set(c, it->string, buf);
        if (rc < 0) rc = ft_error_wrap(rc, "%s", path);
    }
    cJSON_Delete(root);
    return rc;
}

int ft_train_config_save_json(const ft_train_config *c, const char *path) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < ft_train_option_count; i++) {
        const ft_train_option *op = &ft_train_options[i];
        char key[64];
        snprintf(key, sizeof key, "%s", op->name);
        for (char *p = key; *p; p++) if (*p == '-') *p = '_';
        const char *base = (const char *)c + op->offset;
        switch (op->type) {
        case FT_OPTV_STR: cJSON_AddStringToObject(o, key, base); break;
        case FT_OPTV_INT:
            if (*(const int *)base == FT_TRAIN_AUTO && !strcmp(op->def, "auto")) cJSON_AddStringToObject(o, key, "auto");
            else cJSON_AddNumberToObject(o, key, *(const int *)base);
            break;
        case FT_OPTV_I64: cJSON_AddNumberToObject(o, key, (double)*(const int64_t *)base); break;
        case FT_OPTV_FLOAT: {
            char buf[32];
            if (*(const float *)base == (float)FT_TRAIN_AUTO && !strcmp(op->def, "auto")) { cJSON_AddStringToObject(o, key, "auto"); break; }
            snprintf(buf, sizeof buf, "%.9g", *(const float *)base);
            cJSON_AddRawToObject(o, key, buf);
            break;
        }
        case FT_OPTV_BOOL: cJSON_AddBoolToObject(o, key, *(const int *)base); break;
        }
    }
    int rc = ft__json_write_file(o, path);
    cJSON_Delete(o);
    return rc;
}

int ft_train_config_validate(const ft_train_config *c) {
    if (c->lr < 0 && c->lr != (float)FT_TRAIN_AUTO) return ft_error(FT_ERR_INVALID, "--lr must be >= 0 (got %g)", c->lr);
    if (c->batch_size <= 0 && c->batch_size != FT_TRAIN_AUTO) return ft_error(FT_ERR_INVALID, "--batch-size must be positive (got %d)", c->batch_size);
    if (c->grad_accum <= 0) return ft_error(FT_ERR_INVALID, "--grad-accum must be positive (got %d)", c->grad_accum);
    if (c->seq_len <= 1) return ft_error(FT_ERR_INVALID, "--seq-len must be at least 2 (got %d)", c->seq_len);
    if (c->epochs <= 0 && c->max_steps <= 0) return ft_error(FT_ERR_INVALID, "need --epochs > 0 or --max-steps > 0");
    if (c->val_split < 0 || c->val_split >= 1) return ft_error(FT_ERR_INVALID, "--val-split must be in [0, 1) (got %g)", c->val_split);
    if (c->folds < 0 || c->folds == 1) return ft_error(FT_ERR_INVALID, "--folds must be 0 (off) or >= 2 (got %d)", c->folds);
    if (c->folds && (c->fold < -1 || c->fold >= c->folds)) return ft_error(FT_ERR_INVALID, "--fold must be in [0, %d), or -1 for every fold (got %d)", c->folds, c->fold);
    if (c->label_smoothing < 0 || c->label_smoothing >= 1) return ft_error(FT_ERR_INVALID, "--label-smoothing must be in [0, 1)");
    if (c->max_grad_norm < 0) return ft_error(FT_ERR_INVALID, "--max-grad-norm must be >= 0");
    if ((c->warmup_ratio < 0 && c->warmup_ratio != (float)FT_TRAIN_AUTO) || c->warmup_ratio > 1) return ft_error(FT_ERR_INVALID, "--warmup-ratio must be in [0, 1]");
    if (c->stop_at_epoch < 0 || c->stop_at_step < 0) return ft_error(FT_ERR_INVALID, "--stop-at-epoch and --stop-at-step must be >= 0 (0 = off)");
    if (c->keep < 1) return ft_error(FT_ERR_INVALID, "--keep must be >= 1");
    if (strcmp(c->train_on, "auto") && strcmp(c->train_on, "all") && strcmp(c->train_on, "completion"))
        return ft_error(FT_ERR_INVALID, "--train-on must be completion, all or auto (got '%s')", c->train_on);
    if (strcmp(c->truncate, "left") && strcmp(c->truncate, "right") && strcmp(c->truncate, "none") && strcmp(c->truncate, "auto"))
        return ft_error(FT_ERR_INVALID, "--truncate must be auto, right, left or none (got '%s')", c->truncate);
    if (strcmp(c->optimizer, "adamw") && strcmp(c->optimizer, "adam") && strcmp(c->optimizer, "sgd") &&
        strcmp(c->optimizer, "adagrad") && strcmp(c->optimizer, "rmsprop"))
        return ft_error(FT_ERR_INVALID, "--optimizer must be adamw, adam, sgd, adagrad or rmsprop (got '%s')", c->optimizer);
    if (strcmp(c->init_from, "pretrained") && strcmp(c->init_from, "random"))
        return ft_error(FT_ERR_INVALID, "--init must be pretrained or random (got '%s')", c->init_from);
    if (strcmp(c->method, "full") && strcmp(c->method, "lora") && strcmp(c->method, "qlora"))
        return ft_error(FT_ERR_INVALID, "--method must be full, lora or qlora (got '%s')", c->method);
    if (strcmp(c->precision, "f32") && strcmp(c->precision, "bf16") && strcmp(c->precision, "auto"))
        return ft_error(FT_ERR_INVALID, "--precision must be f32, bf16 or auto (got '%s')", c->precision);
    if (strcmp(c->quant, "nf4") && strcmp(c->quant, "int8"))
        return ft_error(FT_ERR_INVALID, "--quant must be nf4 or int8 (got '%s')", c->quant);
    if (strcmp(c->recompute, "none") && strcmp(c->recompute, "attention") && strcmp(c->recompute, "block"))
        return ft_error(FT_ERR_INVALID, "--recompute must be none, attention or block (got '%s')", c->recompute);
    if (strcmp(c->method, "full") && (c->lora_r <= 0 || c->lora_alpha <= 0 || c->lora_dropout < 0 || c->lora_dropout >= 1))
        return ft_error(FT_ERR_INVALID, "LoRA needs --lora-r > 0, --lora-alpha > 0 and 0 <= --lora-dropout < 1");
    if (strcmp(c->task, "auto") && strcmp(c->task, "lm") && strcmp(c->task, "classify") && strcmp(c->task, "regress") &&
        strcmp(c->task, "token-classify") && strcmp(c->task, "mlm") && strcmp(c->task, "multi"))
        return ft_error(FT_ERR_INVALID, "--task must be auto, lm, classify, regress, token-classify, mlm or multi (got '%s')", c->task);
    if (!strcmp(c->task, "multi") && !c->tasks[0]) return ft_error(FT_ERR_INVALID, "--task multi needs --tasks NAME=FILE,NAME=FILE");
    if (strcmp(c->task_mix, "proportional") && strcmp(c->task_mix, "mixed") && strcmp(c->task_mix, "alternate"))
        return ft_error(FT_ERR_INVALID, "--task-mix must be proportional, mixed or alternate (got '%s')", c->task_mix);
    if (!(c->replay_ratio >= 0 && c->replay_ratio < 1)) return ft_error(FT_ERR_INVALID, "--replay-ratio must be in [0, 1) (got %g)", c->replay_ratio);
    if (!(c->l2_sp >= 0) || !isfinite(c->l2_sp)) return ft_error(FT_ERR_INVALID, "--l2-sp must be >= 0 (got %g)", c->l2_sp);
    if (strcmp(c->pooling, "auto") && strcmp(c->pooling, "cls") && strcmp(c->pooling, "mean"))
        return ft_error(FT_ERR_INVALID, "--pooling must be auto, cls or mean (got '%s')", c->pooling);
    if (strcmp(c->class_weights, "none") && strcmp(c->class_weights, "inverse") && strcmp(c->class_weights, "balanced"))
        return ft_error(FT_ERR_INVALID, "--class-weights must be none, inverse or balanced (got '%s')", c->class_weights);
    if (strcmp(c->resample, "none") && strcmp(c->resample, "over") && strcmp(c->resample, "under"))
        return ft_error(FT_ERR_INVALID, "--resample must be none, over or under (got '%s')", c->resample);
    if (strcmp(c->best_metric, "auto") && strcmp(c->best_metric, "val_loss") && strcmp(c->best_metric, "accuracy") &&
        strcmp(c->best_metric, "f1_macro") && strcmp(c->best_metric, "f1") && strcmp(c->best_metric, "mse"))
        return ft_error(FT_ERR_INVALID, "--best-metric must be auto, val_loss, accuracy, f1_macro, f1 or mse (got '%s')", c->best_metric);
    if (c->mlm_probability <= 0 || c->mlm_probability >= 1)
        return ft_error(FT_ERR_INVALID, "--mlm-probability must be in (0, 1) (got %g)", c->mlm_probability);
    if (c->num_labels < 0) return ft_error(FT_ERR_INVALID, "--num-labels must be >= 0 (got %d)", c->num_labels);
    ft_schedule s;
    return ft_schedule_from_name(c->schedule, &s);
}
