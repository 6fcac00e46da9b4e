/* cmd_eval.c — `finetune eval`: loss, perplexity and token count of a model on a data file. */
#include "cli.h"
#include "finetune/chat.h"
#include "finetune/data.h"
#include "finetune/encoder.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ft__eval_batches(ft_model *m, ft_batcher *vb, int64_t max_batches, ft_batch *scratch, double *loss, int64_t *tokens);

int ft_cmd_eval(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "model directory or LoRA adapter directory (default: the embedded stories260K)", NULL},
        {"adapter", 1, "a LoRA adapter directory (PEFT layout) applied without merging", NULL},
        {"data", 1, "data file or directory (default: the bundled fun-dialogues)", NULL},
        {"format", 1, "data format (default: auto; see finetune train --help)", NULL},
        {"text-column", 1, "CSV/TSV text column (default: text)", NULL},
        {"train-on", 1, "which tokens count: completion, all or auto (default: auto)", NULL},
        {"seq-len", 1, "tokens per sequence (default: 256, capped by the model's context)", NULL},
        {"batch-size", 1, "sequences per batch (default 8)", NULL},
        {"json", 0, "print one JSON object on stdout: {loss, perplexity, tokens, examples}; encoders: {task, val_loss, accuracy, f1_macro, ...}", NULL},
        {"task", 1, "encoders: classify, regress, token-classify or mlm (default: the model's)", NULL},
        {"head", 1, "multi-task encoders (train --task multi): the task whose head is evaluated (default: the first)", NULL},
        {"label-column", 1, "encoders: label column (default: label)", NULL},
        {"pair-column", 1, "encoders: second-sentence column", NULL},
        {"group-column", 1, "encoder classifiers: a column naming each example's group: adds per-group accuracy, selection rate, TPR, FPR and the fairness gaps (fairlearn's definitions)", NULL},
        {"positive-label", 1, "with --group-column: the favourable label (name or id; default: the second label of a binary classifier; multiclass: required, one-vs-rest)", NULL},
        {"no-header", 0, "encoders: the CSV/TSV has no header row (columns are 1-based numbers)", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {"precision", 1, "f32 (default), bf16 (the linear layers' matmuls with bf16 inputs and f32 accumulation) or auto (what finetune train uses by default: bf16 where the CPU has AVX512-BF16)", NULL},
        {"generate", 0, "decoders: generate for each prompt and score against the completions (BLEU, chrF, ROUGE, EM, F1)", NULL},
        {"out", 1, "--generate: directory for predictions.jsonl, metrics.jsonl, report.html (default runs/eval-YYYYMMDD-HHMMSS)", NULL},
        {"max-examples", 1, "--generate: the first N examples only (default: all)", NULL},
        {"max-new-tokens", 1, "--generate: new tokens per prompt at most (default 128)", NULL},
        {"temperature", 1, "--generate: sampling temperature (default 0 = greedy)", NULL},
        {"top-k", 1, "--generate: keep the k most likely tokens when sampling (default 0 = off)", NULL},
        {"top-p", 1, "--generate: nucleus mass when sampling (default 1 = off)", NULL},
        {"seed", 1, "--generate: sampling seed; prompt i uses seed + i (default 0)", NULL},
        {"num-beams", 1, "--generate: beam search with N beams (default 1 = greedy / sampling)", NULL},
        {"length-penalty", 1, "--generate: beam search length penalty (default 1.0)", NULL},
        {"early-stopping", 0, "--generate: beam search stops once num-beams hypotheses are finished", NULL},
        {"no-repeat-ngram-size", 1, "--generate: beam search bans repeated n-grams of this size (default 0 = off)", NULL},
        {"stop", 1, "--generate: stop strings separated by '|' (chat templates add their end-of-turn markers)", NULL},
        {"batch", 1, "--generate: prompts generated at once, one KV slot each (default 8)", NULL},
        {"metrics", 1, "--generate: bleu,chrf,rouge,em,f1,distinct (default: all)", NULL},
        {"stem", 0, "--generate: Porter stemming in ROUGE", NULL},
        {"bootstrap", 1, "--generate: bootstrap resamples for the 95% intervals (default 1000; 0 = none)", NULL},
        {"format-regex", 1, "--generate: share of predictions this PCRE2 pattern matches (e.g. 'Args:[\\s\\S]*Returns:')", NULL},
        {"refusal-regex", 1, "--generate: a refusal (default with --out-of-scope: common refusal phrases)", NULL},
        {"out-of-scope", 1, "--generate: prompts the model should refuse (same format as --data, or .txt one per line)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune eval [--model DIR] [--data FILE] [--json] [--format F] [--seq-len T]\n"
                                             "       finetune eval --generate [--model DIR] --data FILE [--out DIR] [--max-examples N] [--num-beams N] [--json]");
    if (prc) return prc == 1 ? 0 : prc;
    long seq_len, bs, threads;
    if (ft_opt_int(opts, "seq-len", 256, &seq_len) || ft_opt_int(opts, "batch-size", 8, &bs) || ft_opt_int(opts, "threads", 0, &threads)) return 2;
    if (seq_len < 2 || bs < 1) { fprintf(stderr, "finetune eval: --seq-len must be >= 2 and --batch-size >= 1\n"); return 2; }
    if (threads > 0) ft_set_threads((int)threads);
    const char *dir = ft_opt_str(opts, "model", NULL);
    if (!dir) dir = ft_default_model_dir();
    const char *data = ft_opt_str(opts, "data", NULL);
    if (!data) data = ft_default_data_path();
    ft_encoder_config ec;
    if (ft_encoder_config_load(&ec, dir) == FT_OK || ft_encoder_dir_is_adapter(dir)) {
        if (!ft_opt_str(opts, "data", NULL)) { fprintf(stderr, "finetune eval: --data FILE is required for an encoder\n"); return 2; }
        return ft_cmd_eval_encoder(opts, dir, data);
    }
    ft_error_clear();
    if (ft_opt_str(opts, "group-column", NULL)) {
        fprintf(stderr, "finetune eval: --group-column needs an encoder classifier (%s is a decoder)\n", dir);
        return 2;
    }
    if (ft_opt_flag(opts, "generate")) return ft_cmd_eval_generate(opts, dir, data);
    ft_tokenizer *tok = NULL;
    ft_model *m = NULL;
    ft_dataset *ds = NULL;
    ft_batcher *vb = NULL;
    ft_batch batch = {0};
    ft_chat_template *tmpl = NULL;
    int64_t *idx = NULL;
    char tbuf[4096];
    int rc = ft_tokenizer_load(&tok, ft_cli_tokenizer_dir(dir, tbuf, sizeof tbuf));
    const ft_backend *be = NULL;
    if (rc == FT_OK) rc = ft_backend_for_precision(ft_opt_str(opts, "precision", "f32"), &be);
    if (rc == FT_OK) rc = ft_cli_load_model(&m, dir, ft_opt_str(opts, "adapter", NULL), be);
    ft_data_options o = ft_data_default_options();
    if (rc == FT_OK) {
        if (seq_len > ft_model_get_config(m)->max_seq_len) seq_len = ft_model_get_config(m)->max_seq_len;
        o.seq_len = (int)seq_len;
        o.text_column = ft_opt_str(opts, "text-column", "text");
        rc = ft_data_format_from_name(ft_opt_str(opts, "format", "auto"), &o.format);
    }
    if (rc == FT_OK) rc = ft_train_on_from_name(ft_opt_str(opts, "train-on", "auto"), &o.train_on);
    if (rc == FT_OK && ft_chat_template_load(&tmpl, tbuf[0] ? ft_cli_tokenizer_dir(dir, tbuf, sizeof tbuf) : dir) == FT_OK) o.chat_template = tmpl;
    if (rc == FT_OK) rc = ft_dataset_load(&ds, data, tok, &o);
    if (rc == FT_OK) {
        int64_t n = ft_dataset_size(ds);
        idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!idx) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < n && idx; i++) idx[i] = i;
        ft_batcher_options bo = ft_batcher_default_options();
        bo.B = (int)bs;
        bo.T = (int)seq_len;
        bo.shuffle = 0;
        if (rc == FT_OK) rc = ft_batcher_create(&vb, ds, idx, n, &bo);
        if (rc == FT_OK) rc = ft_batch_alloc(&batch, (int)bs, (int)seq_len);
        if (rc == FT_OK) rc = ft_model_prepare(m, (int)bs, (int)seq_len);
    }
    double loss = NAN;
    int64_t tokens = 0;
    if (rc == FT_OK) rc = ft__eval_batches(m, vb, 0, &batch, &loss, &tokens);
    int status = 0;
    if (rc < 0) status = ft_cli_fail("eval", rc);
    else if (ft_opt_flag(opts, "json"))
        printf("{\"loss\": %.6f, \"perplexity\": %.6f, \"tokens\": %lld, \"examples\": %lld, \"model\": \"%s\", \"data\": \"%s\"}\n",
               loss, exp(loss), (long long)tokens, (long long)ft_dataset_size(ds), dir, data);
    else
        printf("loss %.4f  perplexity %.3f  tokens %lld  examples %lld\n", loss, exp(loss), (long long)tokens, (long long)ft_dataset_size(ds));
    ft_batch_free(&batch);
    ft_batcher_free(vb);
    free(idx);
    ft_dataset_free(ds);
    ft_chat_template_free(tmpl);
    ft_model_free(m);
    ft_tokenizer_free(tok);
    return status;
}
