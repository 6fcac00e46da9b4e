/* cmd_eval_generate.c — `finetune eval --generate`: generation-based evaluation of a decoder.
 *
 * The test data is read as training reads it (prompt-completion, chat, Alpaca, ShareGPT, dialogue: data.h,
 * with the loss mask on the completion); each example's LAST learned span (the completion, the last
 * assistant turn, the last reply) is the reference, everything before it the prompt. The model generates
 * for every prompt — greedy by default, sampled with --temperature / --top-p / --top-k / --seed (prompt i
 * with seed + i), or with beam search (--num-beams) — and the predictions are scored against the references
 * with the text metrics of textmetrics.h (BLEU, chrF, ROUGE, exact match, F1, distinct-n) with bootstrap
 * intervals. Checks: --format-regex (share of predictions that match), --refusal-regex with --out-of-scope
 * (share of out-of-scope prompts refused, share of in-scope prompts wrongly refused).
 *
 * Writes OUT/predictions.jsonl (one line per prompt: prompt, reference, prediction, per-example scores),
 * appends a {"type": "generate", ...} line to OUT/metrics.jsonl and (re)writes OUT/report.html with its
 * section (report.h); prints a summary table, or one JSON object with --json. Generations run --batch prompts at a
 * time over the slots of one context (ft_generate_batch; beam search: ft_beam_search_batch, --batch searches of
 * num_beams slots each), every step one batched decode. Without --stop a prediction also
 * ends where the data's layout starts the next turn: a newline for dialogue data, "\nUser:" for chat without
 * a chat template, "\n### " for Alpaca without one (a chat template adds its end-of-turn markers). */
#include "cli.h"
#include "finetune/chat.h"
#include "finetune/context.h"
#include "finetune/data.h"
#include "finetune/fileio.h"
#include "finetune/generate.h"
#include "finetune/model.h"
#include "finetune/report.h"
#include "finetune/status.h"
#include "finetune/textmetrics.h"
#include "finetune/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

/* what a refusal looks like when --out-of-scope is given without --refusal-regex */
#define DEFAULT_REFUSAL_RE "(?i)\\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(no|')t|i am (not able|unable)|i'?m (not able|unable)|" \
                           "cannot (help|answer|assist)|not able to (help|answer|assist)|outside (of )?(my|the) scope|out of scope|" \
                           "i (do not|don'?t) (know|have (any )?information))"

typedef struct example {
    int   *prompt;      /* [n_prompt] */
    int    n_prompt;
    char  *prompt_text, *reference, *prediction;
    int    out_of_scope;
    int    n_gen, stopped_by;
    double scores[FT_TS_COUNT];
    int    format_ok, refused;   /* -1: not checked */
    char   source[64];
} example;

typedef struct eval_set {
    example *ex;
    int n, cap;
} eval_set;

static void set_free(eval_set *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->ex[i].prompt); free(s->ex[i].prompt_text); free(s->ex[i].reference); free(s->ex[i].prediction);
    }
    free(s->ex);
    memset(s, 0, sizeof *s);
}

static example *set_add(eval_set *s) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 64;
        example *e = realloc(s->ex, sizeof *e * (size_t)nc);
        if (!e) return NULL;
        s->ex = e;
        s->cap = nc;
    }
    example *e = &s->ex[s->n++];
    memset(e, 0, sizeof *e);
    e->format_ok = e->refused = -1;
    return e;
}

/* text with leading and trailing whitespace removed, in place */
static char *trim(char *s) {
    if (!s) return s;
    size_t n = strlen(s), a = 0;
    while (a < n && isspace((unsigned char)s[a])) a++;
    while (n > a && isspace((unsigned char)s[n - 1])) n--;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
    return s;
}

static char *decode(const ft_tokenizer *tok, const int *ids, int n) {
    char *text = NULL;
    size_t len;
    if (n <= 0) return strdup("");
    if (ft_tokenizer_decode(tok, ids, n, FT_TOK_SKIP_SPECIAL, &text, &len) != FT_OK) { free(text); return NULL; }
    return text;
}

/* examples of a dataset: prompt = the tokens before the last learned span, reference = that span (its final
 * EOS dropped). Examples without a prompt or a learned span, or whose prompt leaves no room to generate, are
 * skipped (counted in *skipped). */
static int add_dataset(eval_set *s, const ft_dataset *ds, const ft_tokenizer *tok, int capacity, long max_examples,
                       int out_of_scope, int *skipped) {
    int eos = ft_dataset_eos_id(ds);
    int64_t n = ft_dataset_size(ds);
    for (int64_t i = 0; i < n && (max_examples <= 0 || s->n < max_examples); i++) {
        const int *ids;
        const uint8_t *learned;
        int len;
        FT_TRY(ft_dataset_example(ds, i, &ids, &learned, &len));
        int b = len;
        while (b > 0 && !learned[b - 1]) b--;
        int a = b;
        while (a > 0 && learned[a - 1]) a--;
        if (b == 0 || a == 0 || a + 1 >= capacity) { (*skipped)++; continue; }
        int rb = b;
        if (rb > a && ids[rb - 1] == eos) rb--;
        example *e = set_add(s);
        if (!e) return ft_error(FT_ERR_NOMEM, "eval: out of memory");
        e->out_of_scope = out_of_scope;
        e->prompt = malloc(sizeof(int) * (size_t)a);
        if (!e->prompt) return ft_error(FT_ERR_NOMEM, "eval: out of memory");
        memcpy(e->prompt, ids, sizeof(int) * (size_t)a);
        e->n_prompt = a;
        e->prompt_text = decode(tok, ids, a);
        e->reference = trim(decode(tok, ids + a, rb - a));
        if (!e->prompt_text || !e->reference) return ft_error(FT_ERR_NOMEM, "eval: cannot decode example %lld", (long long)i);
        int line;
        int64_t rec;
        const char *src = ft_dataset_source(ds, i, &line, &rec);
        const char *base = src ? strrchr(src, '/') : NULL;
        snprintf(e->source, sizeof e->source, "%s:%d", base ? base + 1 : src ? src : "?", line);
    }
    return FT_OK;
}

/* --out-of-scope FILE as plain text: one prompt per non-empty line, rendered as a user message with the chat
 * template when the model has one, else tokenized as it is */
static int add_text_prompts(eval_set *s, const char *path, const ft_tokenizer *tok, const ft_chat_template *tmpl, int capacity,
                            int *skipped) {
    char *text = NULL;
    size_t len = 0;
    FT_TRY(ft_file_read_all(path, &text, &len));
    int rc = FT_OK, line = 0;
    for (char *p = text, *nl; rc == FT_OK && p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *q = trim(p);
        if (!*q) continue;
        char *rendered = NULL;
        size_t rl;
        int flags = FT_TOK_ADD_SPECIAL;
        if (tmpl) {
            ft_chat_msg m = {"user", q};
            rc = ft_chat_render(tmpl, &m, 1, 1, &rendered, &rl);
            flags = 0;
        }
        int *ids = NULL, n = 0;
        if (rc == FT_OK) rc = ft_tokenizer_encode(tok, rendered ? rendered : q, strlen(rendered ? rendered : q), flags, &ids, &n);
        if (rc == FT_OK && (n == 0 || n + 1 >= capacity)) { (*skipped)++; free(ids); free(rendered); continue; }
        example *e = rc == FT_OK ? set_add(s) : NULL;
        if (rc == FT_OK && !e) rc = ft_error(FT_ERR_NOMEM, "eval: out of memory");
        if (rc == FT_OK) {
            e->out_of_scope = 1;
            e->prompt = ids;
            e->n_prompt = n;
            e->prompt_text = strdup(rendered ? rendered : q);
            e->reference = strdup("");
            const char *base = strrchr(path, '/');
            snprintf(e->source, sizeof e->source, "%s:%d", base ? base + 1 : path, line);
            ids = NULL;
        }
        free(ids);
        free(rendered);
    }
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------- generation */

typedef struct progress {
    int done, total;
    double t0, last;
    eval_set *s;
    int offset;           /* ft_generate_batch's i -> s->ex[offset + i] */
} progress;


static void progress_tick(progress *pg) {
    pg->done++;
    double t = ft_cli_now_s();
    if (pg->done == pg->total || t - pg->last >= 2.0) {
        int tty = isatty(STDERR_FILENO);   /* a terminal: one line redrawn in place; a log: a line every 2 s */
        fprintf(stderr, "%sfinetune eval: generated %d / %d (%.1f prompts/s)%s", tty ? "\r" : "", pg->done, pg->total,
                pg->done / (t - pg->t0 > 1e-9 ? t - pg->t0 : 1e-9), tty && pg->done != pg->total ? "\033[K" : "\n");
        pg->last = t;
    }
}

static void on_batch_done(void *user, int i, const ft_generation *g) {
    (void)i; (void)g;
    progress_tick(user);
}

static void on_beam_done(void *user, int i, const ft_beam_result *r) {
    (void)i; (void)r;
    progress_tick(user);
}

typedef struct gen_opts {
    ft_generate_params gp;    /* sampling, stops, max_new_tokens */
    ft_beam_params bp;        /* used when bp.num_beams > 1 */
    int batch;                /* slots for greedy / sampling */
} gen_opts;

static int generate_all(ft_model *m, const ft_tokenizer *tok, eval_set *s, const gen_opts *go) {
    progress pg = {.total = s->n, .t0 = ft_cli_now_s(), .s = s};
    pg.last = pg.t0;
    ft_context_params cp = ft_context_default_params();
    int beams = go->bp.num_beams > 1;
    cp.n_slots = beams ? go->bp.num_beams * go->batch : go->batch;   /* beams: --batch searches at once */
    ft_context *ctx;
    FT_TRY(ft_context_create(&ctx, m, &cp));
    int rc = FT_OK;
    const int **prompts = malloc(sizeof(int *) * (size_t)(s->n ? s->n : 1));
    int *lens = malloc(sizeof(int) * (size_t)(s->n ? s->n : 1));
    if (!prompts || !lens) rc = ft_error(FT_ERR_NOMEM, "eval: out of memory");
    for (int i = 0; rc == FT_OK && i < s->n; i++) { prompts[i] = s->ex[i].prompt; lens[i] = s->ex[i].n_prompt; }
    if (beams && rc == FT_OK) {
        ft_beam_result *res = calloc((size_t)(s->n ? s->n : 1), sizeof *res);
        if (!res) rc = ft_error(FT_ERR_NOMEM, "eval: out of memory");
        if (rc == FT_OK) rc = ft_beam_search_batch(ctx, NULL, tok, prompts, lens, s->n, &go->bp, res, on_beam_done, &pg);
        for (int i = 0; rc == FT_OK && i < s->n; i++) {
            example *e = &s->ex[i];
            e->prediction = res[i].hyps[0].text;
            res[i].hyps[0].text = NULL;
            e->n_gen = res[i].hyps[0].n_ids;
            e->stopped_by = res[i].hyps[0].eos ? 1 : 0;
            /* the search itself knows no stop strings: the best hypothesis is cut at the first one */
            for (int k = 0; e->prediction && k < go->gp.n_stop; k++) {
                char *at = *go->gp.stop[k] ? strstr(e->prediction, go->gp.stop[k]) : NULL;
                if (at) { *at = 0; e->stopped_by = 2; }
            }
        }
        for (int i = 0; res && i < s->n; i++) ft_beam_result_free(&res[i]);
        free(res);
    } else if (rc == FT_OK) {
        ft_generation *out = calloc((size_t)(s->n ? s->n : 1), sizeof *out);
        if (!out) rc = ft_error(FT_ERR_NOMEM, "eval: out of memory");
        if (rc == FT_OK) rc = ft_generate_batch(ctx, NULL, tok, prompts, lens, s->n, &go->gp, out, on_batch_done, &pg);
        for (int i = 0; rc == FT_OK && i < s->n; i++) {
            s->ex[i].prediction = out[i].text;
            out[i].text = NULL;
            s->ex[i].n_gen = out[i].n_ids;
            s->ex[i].stopped_by = out[i].stopped_by;
            ft_generation_free(&out[i]);
        }
        free(out);
    }
    free(prompts);
    free(lens);
    for (int i = 0; rc == FT_OK && i < s->n; i++) trim(s->ex[i].prediction);
    ft_context_free(ctx);
    return rc;
}

/* ---------------------------------------------------------------------------------------- checks */

static int compile_re(pcre2_code **re, const char *pat, const char *flag) {
    int err;
    PCRE2_SIZE off;
    *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    if (!*re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ft_error(FT_ERR_INVALID, "--%s: %s at offset %zu of '%s'", flag, (const char *)msg, (size_t)off, pat);
    }
    return FT_OK;
}

static int re_match(const pcre2_code *re, const char *s) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* ---------------------------------------------------------------------------------------- output */

static void json_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int write_predictions(const char *path, const eval_set *s, unsigned metrics) {
    FILE *f = fopen(path, "w");
    if (!f) return ft_error(FT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    for (int i = 0; i < s->n; i++) {
        const example *e = &s->ex[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "source", e->source);
        cJSON_AddStringToObject(o, "scope", e->out_of_scope ? "out" : "in");
        cJSON_AddStringToObject(o, "prompt", e->prompt_text);
        cJSON_AddStringToObject(o, "reference", e->reference);
        cJSON_AddStringToObject(o, "prediction", e->prediction ? e->prediction : "");
        cJSON_AddNumberToObject(o, "new_tokens", e->n_gen);
        cJSON_AddStringToObject(o, "stopped_by", e->stopped_by == 1 ? "eos" : e->stopped_by == 2 ? "stop" : e->stopped_by == 4 ? "context" : "max_tokens");
        if (!e->out_of_scope && metrics) {
            cJSON *sc = cJSON_AddObjectToObject(o, "scores");
            for (int k = 0; k < FT_TS_COUNT; k++)
                if (ft_text_score_group(k) & metrics) json_num(sc, ft_text_score_name(k), e->scores[k]);
        }
        if (e->format_ok >= 0) cJSON_AddBoolToObject(o, "format_ok", e->format_ok);
        if (e->refused >= 0) cJSON_AddBoolToObject(o, "refused", e->refused);
        char *line = cJSON_PrintUnformatted(o);
        if (line) { fputs(line, f); fputc('\n', f); }
        cJSON_free(line);
        cJSON_Delete(o);
    }
    if (fclose(f) != 0) return ft_error(FT_ERR_IO, "%s: write failed", path);
    return FT_OK;
}

static int append_line(const char *path, const cJSON *j) {
    char *line = cJSON_PrintUnformatted(j);
    if (!line) return ft_error(FT_ERR_NOMEM, "eval: out of memory");
    FILE *f = fopen(path, "a");
    int rc = f ? FT_OK : ft_error(FT_ERR_IO, "%s: cannot append: %s", path, strerror(errno));
    if (f) { fputs(line, f); fputc('\n', f); if (fclose(f) != 0) rc = ft_error(FT_ERR_IO, "%s: write failed", path); }
    cJSON_free(line);
    return rc;
}

/* the score the report sorts examples by: ROUGE-L, else the first metric computed */
static int sort_metric(unsigned metrics) {
    if (metrics & FT_TEXT_ROUGE) return FT_TS_ROUGEL;
    for (int k = 0; k < FT_TS_COUNT; k++)
        if (ft_text_score_group(k) & metrics && ft_text_score_group(k) != FT_TEXT_DISTINCT) return k;
    return -1;
}

/* ---------------------------------------------------------------------------------------- the command */

int ft_cmd_eval_generate(const ft_opt *opts, const char *dir, const char *data) {
    long max_examples, max_new, beams, top_k, seed, batch, bootstrap, ngram;
    double temperature, top_p, len_pen;
    if (ft_opt_int(opts, "max-examples", 0, &max_examples) || ft_opt_int(opts, "max-new-tokens", 128, &max_new) ||
        ft_opt_int(opts, "num-beams", 1, &beams) || ft_opt_int(opts, "top-k", 0, &top_k) || ft_opt_int(opts, "seed", 0, &seed) ||
        ft_opt_int(opts, "batch", 8, &batch) || ft_opt_int(opts, "bootstrap", 1000, &bootstrap) ||
        ft_opt_int(opts, "no-repeat-ngram-size", 0, &ngram) || ft_opt_float(opts, "temperature", 0.0, &temperature) ||
        ft_opt_float(opts, "top-p", 1.0, &top_p) || ft_opt_float(opts, "length-penalty", 1.0, &len_pen))
        return 2;
    if (max_examples < 0 || max_new < 1 || beams < 1 || top_k < 0 || batch < 1 || bootstrap < 0 || ngram < 0 ||
        temperature < 0 || top_p <= 0 || top_p > 1) {
        fprintf(stderr, "finetune eval: invalid value: need --max-examples >= 0, --max-new-tokens >= 1, --num-beams >= 1, "
                        "--batch >= 1, --bootstrap >= 0, --temperature >= 0, 0 < --top-p <= 1\n");
        return 2;
    }
    if (beams > 1 && (temperature > 0 || top_k > 0 || top_p < 1)) {
        fprintf(stderr, "finetune eval: --num-beams is a deterministic beam search: it takes no --temperature, --top-k or --top-p\n");
        return 2;
    }
    unsigned metrics = FT_TEXT_ALL;
    const char *mlist = ft_opt_str(opts, "metrics", NULL);
    if (mlist && ft_text_metrics_parse(mlist, &metrics) < 0) return ft_cli_fail("eval", FT_ERR_INVALID);
    const char *oos_path = ft_opt_str(opts, "out-of-scope", NULL);
    const char *fmt_re_s = ft_opt_str(opts, "format-regex", NULL), *ref_re_s = ft_opt_str(opts, "refusal-regex", NULL);
    if (oos_path && !ref_re_s) ref_re_s = DEFAULT_REFUSAL_RE;

    char out_dir[4096];
    const char *out_opt = ft_opt_str(opts, "out", NULL);
    if (out_opt) snprintf(out_dir, sizeof out_dir, "%s", out_opt);
    else {
        time_t t = time(NULL);
        struct tm tmv;
        localtime_r(&t, &tmv);
        strftime(out_dir, sizeof out_dir, "runs/eval-%Y%m%d-%H%M%S", &tmv);
    }

    ft_tokenizer *tok = NULL;
    ft_model *m = NULL;
    ft_chat_template *tmpl = NULL;
    ft_dataset *ds = NULL, *oos = NULL;
    pcre2_code *fmt_re = NULL, *ref_re = NULL;
    ft_text_stats *st = NULL;
    eval_set set = {0};
    cJSON *summary = NULL;
    char tbuf[4096], path[4200];
    int skipped = 0, oos_skipped = 0;
    int rc = FT_OK;
    if (fmt_re_s) rc = compile_re(&fmt_re, fmt_re_s, "format-regex");
    if (rc == FT_OK && ref_re_s) rc = compile_re(&ref_re, ref_re_s, "refusal-regex");
    if (rc == FT_OK) rc = ft_tokenizer_load(&tok, ft_cli_tokenizer_dir(dir, tbuf, sizeof tbuf));
    if (rc == FT_OK) rc = ft_cli_load_model(&m, dir, ft_opt_str(opts, "adapter", NULL), ft_backend_cpu());
    ft_data_options o = ft_data_default_options();
    int capacity = 0;
    if (rc == FT_OK) {
        capacity = ft_model_get_config(m)->max_seq_len;
        o.seq_len = capacity;
        o.text_column = ft_opt_str(opts, "text-column", "text");
        o.train_on = FT_TRAIN_ON_COMPLETION;
        rc = ft_data_format_from_name(ft_opt_str(opts, "format", "auto"), &o.format);
    }
    if (rc == FT_OK && ft_opt_str(opts, "train-on", NULL)) rc = ft_train_on_from_name(ft_opt_str(opts, "train-on", NULL), &o.train_on);
    if (rc == FT_OK) {
        if (ft_chat_template_load(&tmpl, ft_cli_tokenizer_dir(dir, tbuf, sizeof tbuf)) == FT_OK) o.chat_template = tmpl;
        else ft_error_clear();   /* no template: the built-in layouts */
    }
    if (rc == FT_OK) rc = ft_dataset_load(&ds, data, tok, &o);
    if (rc == FT_OK && (ft_dataset_stats(ds)->format == FT_DATA_TEXT || ft_dataset_stats(ds)->format == FT_DATA_CSV))
        rc = ft_error(FT_ERR_INVALID, "%s: read as %s data, which has no prompt / completion split: eval --generate needs "
                                      "prompt-completion, chat, Alpaca, ShareGPT or dialogue data (--format)", data,
                      ft_data_format_name(ft_dataset_stats(ds)->format));
    if (rc == FT_OK) rc = add_dataset(&set, ds, tok, capacity, max_examples, 0, &skipped);
    int n_in = set.n;
    if (rc == FT_OK && n_in == 0)
        rc = ft_error(FT_ERR_INVALID, "%s: no example has a prompt followed by a completion to generate (eval --generate needs "
                                      "prompt-completion, chat, Alpaca, ShareGPT or dialogue data)", data);
    if (rc == FT_OK && oos_path) {
        size_t pl = strlen(oos_path);
        if (pl > 4 && strcmp(oos_path + pl - 4, ".txt") == 0) rc = add_text_prompts(&set, oos_path, tok, tmpl, capacity, &oos_skipped);
        else {
            rc = ft_dataset_load(&oos, oos_path, tok, &o);
            if (rc == FT_OK) rc = add_dataset(&set, oos, tok, capacity, 0, 1, &oos_skipped);
        }
    }
    if (rc == FT_OK && skipped + oos_skipped)
        fprintf(stderr, "finetune eval: %d examples skipped (no prompt, no completion, or a prompt that fills the %d-token context)\n",
                skipped + oos_skipped, capacity);

    /* decoding settings */
    gen_opts go = {.gp = ft_generate_default_params(), .bp = ft_beam_default_params(), .batch = (int)batch};
    go.gp.max_new_tokens = (int)max_new;
    go.gp.temperature = (float)temperature;
    go.gp.top_k = (int)top_k;
    go.gp.top_p = (float)top_p;
    go.gp.seed = (uint64_t)seed;
    const char *stops[16];
    char *stop_copy = NULL;
    if (tmpl) {
        const char *const *cs;
        int nc = ft_chat_turn_stops(&cs);
        for (int i = 0; i < nc && go.gp.n_stop < 8; i++) stops[go.gp.n_stop++] = cs[i];
    }
    const char *stop_arg = ft_opt_str(opts, "stop", NULL);
    /* dialogue data: the reference is one turn, so a prediction ends with its line */
    ft_data_format fmt = ds ? ft_dataset_stats(ds)->format : FT_DATA_AUTO;
    if (!stop_arg && (fmt == FT_DATA_DIALOGUE || fmt == FT_DATA_DAILYDIALOG)) stops[go.gp.n_stop++] = "\n";
    /* the built-in layouts (no chat template): the answer ends where the next turn or instruction would begin */
    if (!stop_arg && !tmpl && (fmt == FT_DATA_CHAT || fmt == FT_DATA_SHAREGPT)) stops[go.gp.n_stop++] = "\nUser:";
    if (!stop_arg && !tmpl && fmt == FT_DATA_ALPACA) stops[go.gp.n_stop++] = "\n### ";
    if (stop_arg && *stop_arg && (stop_copy = strdup(stop_arg)))
        for (char *sv, *t = strtok_r(stop_copy, "|", &sv); t && go.gp.n_stop < 16; t = strtok_r(NULL, "|", &sv)) stops[go.gp.n_stop++] = t;
    go.gp.stop = stops;
    go.bp.num_beams = (int)beams;
    go.bp.max_new_tokens = (int)max_new;
    go.bp.length_penalty = (float)len_pen;
    go.bp.early_stopping = ft_opt_flag(opts, "early-stopping") ? FT_BEAM_STOP_EARLY : FT_BEAM_STOP_HEURISTIC;
    go.bp.no_repeat_ngram_size = (int)ngram;
    if (rc == FT_OK) {
        fprintf(stderr, "finetune eval: %d prompts (%d in scope%s), %s, at most %ld new tokens\n", set.n, n_in,
                oos_path ? ", the rest out of scope" : "",
                beams > 1 ? "beam search" : temperature > 0 ? "sampling" : "greedy", max_new);
        rc = generate_all(m, tok, &set, &go);
    }

    /* scores */
    ft_text_scores ts;
    ft_text_bootstrap bs;
    memset(&ts, 0, sizeof ts);
    memset(&bs, 0, sizeof bs);
    ft_text_metric_opts mo = ft_text_metric_default_opts();
    mo.metrics = metrics;
    mo.rouge_stem = ft_opt_flag(opts, "stem");
    const char **hyp = NULL, **ref = NULL;
    if (rc == FT_OK) {
        hyp = malloc(sizeof(char *) * (size_t)n_in);
        ref = malloc(sizeof(char *) * (size_t)n_in);
        if (!hyp || !ref) rc = ft_error(FT_ERR_NOMEM, "eval: out of memory");
        for (int i = 0; rc == FT_OK && i < n_in; i++) { hyp[i] = set.ex[i].prediction; ref[i] = set.ex[i].reference; }
        const char *const *refs[1] = {ref};
        if (rc == FT_OK) rc = ft_text_stats_compute(&st, hyp, refs, 1, n_in, &mo);
        if (rc == FT_OK) rc = ft_text_stats_scores(st, &ts);
        if (rc == FT_OK && bootstrap > 0) rc = ft_text_stats_bootstrap(st, (int)bootstrap, 12345, &bs);
        for (int i = 0; rc == FT_OK && i < n_in; i++) rc = ft_text_stats_example(st, i, set.ex[i].scores);
    }
    int fmt_hits = 0, refused_in = 0, refused_out = 0, n_out = set.n - n_in;
    for (int i = 0; rc == FT_OK && i < set.n; i++) {
        example *e = &set.ex[i];
        if (fmt_re && !e->out_of_scope) fmt_hits += (e->format_ok = re_match(fmt_re, e->prediction));
        if (ref_re) {
            e->refused = re_match(ref_re, e->prediction);
            if (e->out_of_scope) refused_out += e->refused;
            else refused_in += e->refused;
        }
    }

    /* outputs */
    if (rc == FT_OK) rc = ft_mkdirs(out_dir);
    if (rc == FT_OK) rc = ft_path_join(path, sizeof path, out_dir, "predictions.jsonl");
    if (rc == FT_OK) rc = write_predictions(path, &set, metrics);
    if (rc == FT_OK) {
        summary = cJSON_CreateObject();
        cJSON_AddStringToObject(summary, "type", "generate");
        cJSON_AddStringToObject(summary, "model", dir);
        if (ft_opt_str(opts, "adapter", NULL)) cJSON_AddStringToObject(summary, "adapter", ft_opt_str(opts, "adapter", NULL));
        cJSON_AddStringToObject(summary, "data", data);
        cJSON_AddNumberToObject(summary, "examples", n_in);
        cJSON_AddNumberToObject(summary, "skipped", skipped);
        cJSON *dec = cJSON_AddObjectToObject(summary, "decoding");
        cJSON_AddStringToObject(dec, "method", beams > 1 ? "beam" : temperature > 0 ? "sample" : "greedy");
        cJSON_AddNumberToObject(dec, "max_new_tokens", max_new);
        if (beams > 1) {
            cJSON_AddNumberToObject(dec, "num_beams", beams);
            cJSON_AddNumberToObject(dec, "length_penalty", len_pen);
            cJSON_AddBoolToObject(dec, "early_stopping", go.bp.early_stopping == FT_BEAM_STOP_EARLY);
        } else if (temperature > 0) {
            cJSON_AddNumberToObject(dec, "temperature", temperature);
            cJSON_AddNumberToObject(dec, "top_p", top_p);
            cJSON_AddNumberToObject(dec, "top_k", top_k);
            cJSON_AddNumberToObject(dec, "seed", seed);
        }
        cJSON *sc = cJSON_AddObjectToObject(summary, "scores");
        for (int k = 0; k < FT_TS_COUNT; k++) {
            if (!(ft_text_score_group(k) & metrics)) continue;
            cJSON *one = cJSON_AddObjectToObject(sc, ft_text_score_name(k));
            json_num(one, "score", ts.v[k]);
            if (bootstrap > 0) { json_num(one, "low", bs.low[k]); json_num(one, "high", bs.high[k]); json_num(one, "ci", bs.ci[k]); }
        }
        if (bootstrap > 0) cJSON_AddNumberToObject(summary, "bootstrap_samples", bootstrap);
        if (metrics & FT_TEXT_BLEU) cJSON_AddStringToObject(summary, "bleu_signature", ts.bleu_signature);
        if (metrics & FT_TEXT_CHRF) cJSON_AddStringToObject(summary, "chrf_signature", ts.chrf_signature);
        if (fmt_re) {
            cJSON *f = cJSON_AddObjectToObject(summary, "format");
            cJSON_AddStringToObject(f, "regex", fmt_re_s);
            cJSON_AddNumberToObject(f, "matched", fmt_hits);
            json_num(f, "rate", (double)fmt_hits / n_in);
        }
        if (ref_re) {
            cJSON *r = cJSON_AddObjectToObject(summary, "refusal");
            cJSON_AddStringToObject(r, "regex", ref_re_s);
            cJSON_AddNumberToObject(r, "in_scope", n_in);
            cJSON_AddNumberToObject(r, "in_scope_refused", refused_in);
            json_num(r, "false_refusal_rate", (double)refused_in / n_in);
            if (oos_path) {
                cJSON_AddNumberToObject(r, "out_of_scope", n_out);
                cJSON_AddNumberToObject(r, "out_of_scope_refused", refused_out);
                json_num(r, "refusal_rate", n_out ? (double)refused_out / n_out : NAN);
            }
        }
        int sm = sort_metric(metrics);
        if (sm >= 0) cJSON_AddStringToObject(summary, "sort_metric", ft_text_score_name(sm));
        cJSON_AddStringToObject(summary, "predictions", "predictions.jsonl");
        cJSON_AddStringToObject(summary, "out", out_dir);
        rc = ft_path_join(path, sizeof path, out_dir, "metrics.jsonl");
        if (rc == FT_OK) rc = append_line(path, summary);
        if (rc == FT_OK) rc = ft_report_write(out_dir);
    }
    int status = 0;
    if (rc < 0) status = ft_cli_fail("eval", rc);
    else if (ft_opt_flag(opts, "json")) {
        char *s = cJSON_PrintUnformatted(summary);
        if (s) puts(s);
        cJSON_free(s);
    } else {
        printf("%d examples, %s decoding, max %ld new tokens\n", n_in, beams > 1 ? "beam" : temperature > 0 ? "sampled" : "greedy", max_new);
        printf("%-12s %10s  %s\n", "metric", "score", bootstrap > 0 ? "95% bootstrap interval" : "");
        for (int k = 0; k < FT_TS_COUNT; k++) {
            if (!(ft_text_score_group(k) & metrics)) continue;
            printf("%-12s %10.4f", ft_text_score_name(k), ts.v[k]);
            if (bootstrap > 0 && isfinite(bs.low[k])) printf("  [%.4f, %.4f]", bs.low[k], bs.high[k]);
            else if (bootstrap > 0) printf("  (not resampled)");
            printf("\n");
        }
        if (fmt_re) printf("format match %d / %d (%.1f%%)\n", fmt_hits, n_in, 100.0 * fmt_hits / n_in);
        if (ref_re) {
            if (oos_path) printf("out-of-scope refused %d / %d (%.1f%%)\n", refused_out, n_out, n_out ? 100.0 * refused_out / n_out : 0.0);
            printf("in-scope wrongly refused %d / %d (%.1f%%)\n", refused_in, n_in, 100.0 * refused_in / n_in);
        }
        printf("predictions: %s/predictions.jsonl  report: %s/report.html\n", out_dir, out_dir);
    }
    free(hyp);
    free(ref);
    free(stop_copy);
    cJSON_Delete(summary);
    ft_text_stats_free(st);
    set_free(&set);
    if (fmt_re) pcre2_code_free(fmt_re);
    if (ref_re) pcre2_code_free(ref_re);
    ft_dataset_free(ds);
    ft_dataset_free(oos);
    ft_chat_template_free(tmpl);
    ft_model_free(m);
    ft_tokenizer_free(tok);
    return status;
}
