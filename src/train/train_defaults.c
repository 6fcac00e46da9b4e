/* train_defaults.c — the values of the "auto" options (--lr, --warmup-ratio, --batch-size) from the
 * task, the method and the model, and the sentence that says what was chosen and why.
 *
 * One learning rate cannot suit every run: the embedded stories260K (260K parameters) needs 5e-4 to
 * move in three epochs, while a pretrained encoder fine-tuned at 5e-4 is knocked off its features: a
 * user's tweets run ended at the majority class, and ours sat at the majority share after the first
 * epoch and ended below 5e-5 (BENCHMARKS.md, "Defaults by task"). The table below follows what the
 * papers and the reference scripts of each setting use; every value is justified where it is chosen.
 *
 * Resolution is a pure function of (task, method, init, model kind, parameter count) and the options
 * already set; the trainers then save the resolved numbers in RUN/config.json, so a resumed run reads
 * them back as explicit values and cannot drift even if this table changes. */
#include "finetune/train.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "train/dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define M_10  10000000LL      /* below: a "tiny" model (llama2.c stories260K / 15M class) */
#define B_1   1000000000LL
#define B_30  30000000000LL

typedef struct choice {
    float       lr, warmup_ratio;
    int         batch_size;
    const char *setting;   /* "full fine-tuning of a pretrained encoder" */
    const char *lr_why, *warmup_why, *batch_why;
} choice;

static choice choose(const ft_train_config *c, const ft_train_defaults_ctx *x) {
    choice ch;
    int lora = strcmp(c->method, "full") != 0;
    int64_t n = x->n_params > 0 ? x->n_params : B_1; /* unknown size: the conservative large-model rates */
    if (x->kind == FT_MODEL_KIND_ENCODER) {
        /* BERT's recipe (Devlin et al. 2019, appendix A.3): linear warmup over the first 10% of the
         * steps, batch 16 or 32 — the smaller one, since the sets people bring are often a few
         * thousand examples and more updates per epoch help there. */
        ch.warmup_ratio = 0.1f;
        ch.warmup_why = "BERT's 10% warmup";
        ch.batch_size = 16;
        ch.batch_why = "BERT's fine-tuning batch";
        if (lora) {
            /* The adapters start at zero (B = 0) and hold few weights: they need about ten times the
             * full rate, and the new task head trains at the same rate. The LoRA paper (Hu et al. 2021,
             * table 9) used 4e-4 .. 5e-4 for RoBERTa-base on GLUE, but over 30 .. 80 epochs on the small
             * tasks; in the 3 .. 4 epochs people run on a few thousand examples 5e-4 is too slow
             * (measured, MiniLM on 2,000 utterances: still the majority class after one epoch) and 1e-3,
             * the rate of PEFT's sequence-classification examples and of this project's SST-2 LoRA run
             * (BENCHMARKS.md), learns as well as full fine-tuning. */
            ch.lr = 1e-3f;
            ch.setting = "LoRA on a pretrained encoder";
            ch.lr_why = "PEFT's sequence-classification rate";
        } else {
            /* HF Trainer's default 5e-5, the top of BERT's grid {2e-5, 3e-5, 5e-5}; run_glue / run_ner /
             * run_mlm use it for classification, token classification and MLM alike. At 5e-4
             * BERT fine-tuning fails on some seeds (Mosbach et al. 2021); measured with all-MiniLM-L6-v2
             * on 2,000 utterances: epoch-1 accuracy 0.44 (the majority share) at 5e-4 vs 0.70 at 5e-5,
             * final 0.695 vs 0.725. */
            ch.lr = 5e-5f;
            ch.setting = "full fine-tuning of a pretrained encoder";
            ch.lr_why = "HF Trainer's default, in BERT's 2e-5..5e-5";
        }
        return ch;
    }
    /* decoders: today's warmup and batch (HF Trainer's per-device batch is 8 too); QLoRA and Alpaca
     * warm up over 3%, close to 5%, and the README's stories260K result was measured with these. */
    ch.warmup_ratio = 0.05f;
    ch.warmup_why = "decoder default";
    ch.batch_size = 8;
    ch.batch_why = "decoder default";
    if (x->kind == FT_MODEL_KIND_DECODER_RANDOM) {
        /* training from scratch: llama2.c's train.py uses 5e-4 (nanoGPT 6e-4 for GPT-2 124M, 1e-3 for
         * its 10M character model); nothing pretrained to protect, so the high rate. */
        ch.lr = 5e-4f;
        ch.setting = "training a decoder from random weights";
        ch.lr_why = "llama2.c's from-scratch rate";
    } else if (lora) {
        if (n < M_10) {
            /* adapters on a tiny decoder: at least the tiny model's full rate (below) */
            ch.lr = 5e-4f;
            ch.setting = "LoRA on a tiny pretrained decoder";
            ch.lr_why = "the tiny models' rate";
        } else if (n < B_30) {
            /* QLoRA paper (Dettmers et al. 2023): 2e-4 for 7B and 13B; the usual PEFT recipe rate */
            ch.lr = 2e-4f;
            ch.setting = "LoRA on a pretrained decoder";
            ch.lr_why = "the QLoRA paper's rate for 7B/13B";
        } else {
            /* QLoRA paper: 1e-4 for 33B and 65B */
            ch.lr = 1e-4f;
            ch.setting = "LoRA on a large pretrained decoder";
            ch.lr_why = "the QLoRA paper's rate for 33B/65B";
        }
    } else {
        if (n < M_10) {
            /* tiny decoders (the embedded stories260K, llama2.c's 15M) were pretrained at 5e-4
             * (llama2.c's train.py) and need it to move: `finetune train` with no flags goes from
             * validation perplexity 32.5 to 6.2 in 3 epochs at 5e-4, only to 14.0 at 5e-5. The
             * optimal rate falls with width, so small models take large rates. */
            ch.lr = 5e-4f;
            ch.setting = "full fine-tuning of a tiny pretrained decoder";
            ch.lr_why = "llama2.c's rate for tiny models";
        } else if (n < B_1) {
            /* HF Trainer / run_clm default, the usual choice for GPT-2 small/medium fine-tuning */
            ch.lr = 5e-5f;
            ch.setting = "full fine-tuning of a pretrained decoder";
            ch.lr_why = "HF Trainer's default";
        } else {
            /* billion-parameter models: Stanford Alpaca and Vicuna fine-tune LLaMA-7B/13B at 2e-5 */
            ch.lr = 2e-5f;
            ch.setting = "full fine-tuning of a large pretrained decoder";
            ch.lr_why = "Alpaca's rate for 7B";
        }
    }
    return ch;
}

/* appends to buf (cap bytes, always NUL-terminated; truncates quietly) */
static void add(char *buf, size_t cap, const char *fmt, ...) {
    if (!buf || !cap) return;
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static void size_text(char *out, size_t cap, int64_t n) {
    if (n <= 0) snprintf(out, cap, "size unknown");
    else if (n < 1000000) snprintf(out, cap, "%.0fK parameters", (double)n / 1e3);
    else if (n < B_1) snprintf(out, cap, "%.1fM parameters", (double)n / 1e6);
    else snprintf(out, cap, "%.1fB parameters", (double)n / 1e9);
}

static int valid_task(const char *t) {
    return t && (!strcmp(t, "lm") || !strcmp(t, "classify") || !strcmp(t, "regress") || !strcmp(t, "token-classify") || !strcmp(t, "mlm"));
}

int ft_train_config_resolve(ft_train_config *c, const ft_train_defaults_ctx *x, char *why, size_t cap) {
    if (why && cap) why[0] = 0;
    if (!valid_task(x->task))
        return ft_error(FT_ERR_INVALID, "defaults: unknown task '%s' (lm, classify, regress, token-classify or mlm)", x->task ? x->task : "(null)");
    if (strcmp(c->method, "full") && strcmp(c->method, "lora") && strcmp(c->method, "qlora"))
        return ft_error(FT_ERR_INVALID, "defaults: unknown method '%s' (full, lora or qlora)", c->method);
    if (x->kind != FT_MODEL_KIND_DECODER && x->kind != FT_MODEL_KIND_DECODER_RANDOM && x->kind != FT_MODEL_KIND_ENCODER)
        return ft_error(FT_ERR_INVALID, "defaults: unknown model kind %d", (int)x->kind);
    choice ch = choose(c, x);
    char size[48];
    size_text(size, sizeof size, x->n_params);
    if (c->lr == (float)FT_TRAIN_AUTO) {
        c->lr = ch.lr;
        add(why, cap, "lr %g (%s, %s, task %s: %s)", (double)c->lr, ch.setting, size, x->task, ch.lr_why);
    } else add(why, cap, "lr %g (set)", (double)c->lr);
    if (c->warmup_ratio == (float)FT_TRAIN_AUTO) {
        c->warmup_ratio = ch.warmup_ratio;
        add(why, cap, ", warmup-ratio %g (%s%s)", (double)c->warmup_ratio, ch.warmup_why, c->warmup_steps >= 0 ? "; unused: --warmup-steps given" : "");
    } else add(why, cap, ", warmup-ratio %g (set)", (double)c->warmup_ratio);
    if (c->batch_size == FT_TRAIN_AUTO) {
        c->batch_size = ch.batch_size;
        add(why, cap, ", batch-size %d (%s)", c->batch_size, ch.batch_why);
    } else add(why, cap, ", batch-size %d (set)", c->batch_size);
    return FT_OK;
}

int ft_train_defaults_apply(ft_train_config *c, const char *task, int is_encoder, int64_t n_params, char *line, size_t cap) {
    int any_auto = c->lr == (float)FT_TRAIN_AUTO || c->warmup_ratio == (float)FT_TRAIN_AUTO || c->batch_size == FT_TRAIN_AUTO;
    ft_train_defaults_ctx x = {task, is_encoder ? FT_MODEL_KIND_ENCODER
                                     : !strcmp(c->init_from, "random") ? FT_MODEL_KIND_DECODER_RANDOM : FT_MODEL_KIND_DECODER, n_params};
    char why[1024];
    FT_TRY(ft_train_config_resolve(c, &x, why, sizeof why));
    snprintf(line, cap, "defaults: %s - set --lr, --warmup-ratio, --batch-size to override", why);
    FT_TRY(ft_train_config_validate(c));
    /* the run directory records what was used, not "auto": a resume reads these numbers back */
    char path[4096];
    /* several ranks: rank 0 writes the run directory */
    if (any_auto && c->out[0] && ft__dist_get()->rank == 0 && ft_path_join(path, sizeof path, c->out, "config.json") == FT_OK && ft_path_exists(path))
        FT_TRY(ft_train_config_save_json(c, path));
    return FT_OK;
}
