/* cmd_explain.c — `finetune explain`: token attributions for one text (explain.h): Shapley values (exact or
 * sampled), Integrated Gradients, attention maps; a text table, JSON, or a self-contained HTML page.
 * Encoder classifiers explain the probability (or logit) of a class; decoders the log-probability of a given
 * continuation. */
#include "cli.h"
#include "finetune/encoder.h"
#include "finetune/explain.h"
#include "finetune/generate.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct explain_run {
    ft_tokenizer *tok;
    ft_encoder_model *enc;
    ft_model *dec;
    ft_explainer *e;
    int *ids, T, n_text;        /* ids [T]; decoders: text tokens first */
    int *feature, nf;           /* [T] */
    char **tok_str;             /* [T] display strings of the tokens */
    char **feat_str;            /* [nf] display strings of the features */
    double *tok_score;          /* [T] (NaN: special / continuation) */
    double *feat_score;         /* [nf] */
    float *att;                 /* [L, NH, T, T] or NULL */
    int L, NH;
    const char *method;
} explain_run;

static void run_free(explain_run *r) {
    ft_explainer_free(r->e);
    ft_encoder_close(r->enc);
    ft_model_free(r->dec);
    ft_tokenizer_free(r->tok);
    for (int t = 0; r->tok_str && t < r->T; t++) free(r->tok_str[t]);
    for (int i = 0; r->feat_str && i < r->nf; i++) free(r->feat_str[i]);
    free(r->tok_str); free(r->feat_str); free(r->ids); free(r->feature); free(r->tok_score); free(r->feat_score); free(r->att);
}

/* the display string of ids[0..n): WordPiece pieces as the vocabulary spells them ("##ing"), one piece joined by
 * decoding; a word (several pieces) decoded; leading spaces dropped */
static char *display(const ft_tokenizer *tok, const int *ids, int n) {
    char *s = NULL;
    size_t len = 0;
    if (n == 1 && (ft_tokenizer_get_kind(tok) == FT_TOK_WORDPIECE || ft_tokenizer_is_special(tok, ids[0]))) {
        const char *v = ft_tokenizer_token_str(tok, ids[0]);
        return strdup(v ? v : "?");
    }
    if (ft_tokenizer_decode(tok, ids, n, 0, &s, &len) < 0) return strdup("?");
    char *p = s;
    while (*p == ' ') p++;
    memmove(s, p, strlen(p) + 1);
    return s;
}

/* --target: a label name (config.json id2label) or a class index */
static int parse_target(const ft_encoder_model *m, const char *s, int *out) {
    int K = ft_encoder_get_config(m)->num_labels;
    for (int k = 0; k < K; k++) {
        const char *n = ft_encoder_label_name(m, k);
        if (n && strcmp(n, s) == 0) { *out = k; return FT_OK; }
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end && v >= 0 && v < K) { *out = (int)v; return FT_OK; }
    char names[512] = "";
    for (int k = 0; k < K; k++) {
        const char *n = ft_encoder_label_name(m, k);
        size_t u = strlen(names);
        snprintf(names + u, sizeof names - u, "%s%s", k ? ", " : "", n ? n : "?");
    }
    return ft_error(FT_ERR_INVALID, "--target %s: not a label of the model (labels: %s; or an index 0..%d)", s, names, K - 1);
}

static const char *label_of(const ft_encoder_model *m, int k, char *buf, size_t cap) {
    const char *n = ft_encoder_label_name(m, k);
    if (n) return n;
    snprintf(buf, cap, "LABEL_%d", k);
    return buf;
}

static int load_inputs(explain_run *r, const char *dir, const char *text, const char *cont, ft_explain_unit unit, long max_len) {
    ft_encoder_config ec;
    int is_enc = ft_encoder_config_load(&ec, dir) == FT_OK;
    char tdir[4096];
    FT_TRY(ft_tokenizer_load(&r->tok, is_enc ? dir : ft_cli_tokenizer_dir(dir, tdir, sizeof tdir)));
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    FT_TRY(ft_tokenizer_encode(r->tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &a, &na));
    if (is_enc) {
        if (cont) { free(a); return ft_error(FT_ERR_INVALID, "--continuation is for decoders; %s is an encoder (it explains a class: --target)", dir); }
        ft_encoder_options eo = ft_encoder_default_options();
        int rc = ft_encoder_load_ex(&r->enc, dir, &eo, ft_backend_cpu());
        if (rc < 0) { free(a); return rc; }
        int lim = ft_encoder_config_max_len(ft_encoder_get_config(r->enc));
        if (max_len > 0 && max_len < lim) lim = (int)max_len;
        if (na > lim) { free(a); return ft_error(FT_ERR_RANGE, "the text is %d tokens, the encoder takes %d", na, lim); }
        r->ids = a;
        r->T = r->n_text = na;
    } else {
        int rc = ft_cli_load_model(&r->dec, dir, NULL, ft_backend_cpu());
        if (rc == FT_OK && cont && *cont) {
            rc = ft_tokenizer_encode(r->tok, cont, strlen(cont), 0, &b, &nb);
            if (rc == FT_OK && nb == 0) rc = ft_error(FT_ERR_INVALID, "--continuation encodes to no token");
        } else if (rc == FT_OK) {
            /* no --continuation: explain the model's own greedy next token */
            ft_generate_params gp = ft_generate_default_params();
            gp.max_new_tokens = 1; gp.temperature = 0; gp.stop_at_eos = 0;
            ft_generation g = {0};
            rc = ft_generate(r->dec, r->tok, a, na, &gp, NULL, NULL, &g);
            if (rc == FT_OK && g.n_ids != 1) rc = ft_error(FT_ERR_INVALID, "the model produced no next token for this text; give --continuation");
            if (rc == FT_OK && !(b = malloc(sizeof(int)))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
            if (rc == FT_OK) {
                b[0] = g.ids[0]; nb = 1;
                char *piece = display(r->tok, b, 1);
                fprintf(stderr, "finetune explain: no --continuation: explaining the model's greedy next token '%s'\n", piece ? piece : "?");
                free(piece);
            }
            ft_generation_free(&g);
        }
        int *ids = rc == FT_OK ? realloc(a, sizeof(int) * (size_t)(na + nb)) : NULL;
        if (rc == FT_OK && !ids) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc < 0) { free(a); free(b); return rc; }
        memcpy(ids + na, b, sizeof(int) * (size_t)nb);
        free(b);
        r->ids = ids;
        r->T = na + nb;
        r->n_text = na;
    }
    int T = r->T;
    r->feature = malloc(sizeof(int) * (size_t)T);
    r->tok_str = calloc((size_t)T, sizeof(char *));
    r->tok_score = malloc(sizeof(double) * (size_t)T);
    if (!r->feature || !r->tok_str || !r->tok_score) return ft_error(FT_ERR_NOMEM, "out of memory");
    r->nf = ft_explain_features(r->tok, r->ids, r->n_text, unit, r->feature);
    for (int t = r->n_text; t < T; t++) r->feature[t] = -1;
    if (r->nf <= 0) return ft_error(FT_ERR_INVALID, "the text has no tokens to explain (only special tokens)");
    r->feat_str = calloc((size_t)r->nf, sizeof(char *));
    r->feat_score = calloc((size_t)r->nf, sizeof(double));
    if (!r->feat_str || !r->feat_score) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int t = 0; t < T; t++) {
        r->tok_str[t] = display(r->tok, r->ids + t, 1);
        r->tok_score[t] = NAN;
    }
    for (int i = 0; i < r->nf; i++) {
        int t0 = 0;
        while (r->feature[t0] != i) t0++;
        int t1 = t0;
        while (t1 < T && r->feature[t1] == i) t1++;
        r->feat_str[i] = display(r->tok, r->ids + t0, t1 - t0);
    }
    for (int t = 0; t < T; t++) if (!r->tok_str[t]) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->nf; i++) if (!r->feat_str[i]) return ft_error(FT_ERR_NOMEM, "out of memory");
    return FT_OK;
}

/* feature scores -> token scores: a word's score is shown on each of its tokens divided evenly (the table
 * lists features; the colours use these) */
static void spread_to_tokens(explain_run *r) {
    for (int i = 0; i < r->nf; i++) {
        int cnt = 0;
        for (int t = 0; t < r->T; t++) cnt += r->feature[t] == i;
        for (int t = 0; t < r->T; t++) if (r->feature[t] == i) r->tok_score[t] = r->feat_score[i] / cnt;
    }
}

static void print_table(const explain_run *r, const char *what) {
    int nf = r->nf, *ord = malloc(sizeof(int) * (size_t)nf);
    size_t w = 7;
    for (int i = 0; i < nf; i++) if (strlen(r->feat_str[i]) > w) w = strlen(r->feat_str[i]);
    if (w > 40) w = 40;
    /* fixed decimals unless every score is tiny (an untrained model): then exponents */
    double mx = 0;
    for (int i = 0; i < nf; i++) if (fabs(r->feat_score[i]) > mx) mx = fabs(r->feat_score[i]);
    const char *fmt = mx >= 1e-3 || mx == 0 ? "%-4d %-*s %+14.6f\n" : "%-4d %-*s %+14.4e\n";
    printf("\n%-4s %-*s %14s\n", "#", (int)w, "feature", what);
    for (int i = 0; i < nf; i++) printf(fmt, i, (int)w, r->feat_str[i], r->feat_score[i]);
    if (!ord) return;
    for (int i = 0; i < nf; i++) ord[i] = i;
    for (int i = 1; i < nf; i++)
        for (int j = i; j > 0 && r->feat_score[ord[j]] > r->feat_score[ord[j - 1]]; j--) { int x = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = x; }
    printf("\nsorted (most positive first):\n");
    for (int i = 0; i < nf; i++) printf(fmt, ord[i], (int)w, r->feat_str[ord[i]], r->feat_score[ord[i]]);
    free(ord);
}

static int write_html(const explain_run *r, const char *path, const char *title, const char *subtitle) {
    ft_explain_page pg = {title, subtitle, r->T, (const char *const *)r->tok_str, r->tok_score, r->att, r->L, r->NH};
    char *html = NULL;
    FT_TRY(ft_explain_html(&pg, &html));
    int rc = ft_file_write_atomic(path, html, strlen(html));
    free(html);
    return rc;
}

int ft_cmd_explain(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "an encoder classifier (finetune train --task classify) or a decoder directory (default: the embedded model)", NULL},
        {"text", 1, "the text to explain (required)", NULL},
        {"method", 1, "shap (default), ig (Integrated Gradients) or attention", NULL},
        {"target", 1, "classifiers: the class explained, a label name or index (default: the predicted one)", NULL},
        {"logit", 0, "classifiers: explain the target's logit instead of its softmax probability", NULL},
        {"unit", 1, "token (default) or word: the features that are masked together", NULL},
        {"continuation", 1, "decoders: f = log p(continuation | text) (default: the model's greedy next token)", NULL},
        {"max-exact", 1, "exact Shapley values up to this many features (default 14), sampled above", NULL},
        {"samples", 1, "sampled Shapley: permutations (antithetic pairs; default 256)", NULL},
        {"seed", 1, "sampled Shapley: seed (default 1234)", NULL},
        {"steps", 1, "Integrated Gradients: Gauss-Legendre steps (default 50, Captum's n_steps)", NULL},
        {"baseline", 1, "Integrated Gradients: mask (default: the mask token's embedding) or zero", NULL},
        {"seq-len", 1, "encoders: refuse texts longer than this many tokens (default: the model's limit)", NULL},
        {"html", 1, "also write a self-contained HTML page (tokens coloured, attention heat maps)", NULL},
        {"json", 0, "print one JSON object instead of the table", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
                            "usage: finetune explain --model DIR --text TEXT [--method shap|ig|attention] [--target LABEL] [--unit token|word]\n"
                            "                        [--continuation TEXT] [--html OUT.html] [--json] [--samples N --seed S] [--steps N]");
    if (prc) return prc == 1 ? 0 : prc;
    const char *dir = ft_opt_str(opts, "model", NULL), *text = ft_opt_str(opts, "text", NULL);
    const char *method = ft_opt_str(opts, "method", "shap"), *unit_s = ft_opt_str(opts, "unit", "token");
    const char *base_s = ft_opt_str(opts, "baseline", "mask"), *html = ft_opt_str(opts, "html", NULL);
    if (!text) { fprintf(stderr, "finetune explain: --text TEXT is required\n"); return 2; }
    if (!dir) dir = ft_default_model_dir();
    if (strcmp(method, "shap") && strcmp(method, "ig") && strcmp(method, "attention")) {
        fprintf(stderr, "finetune explain: --method %s: expected shap, ig or attention\n", method);
        return 2;
    }
    if (strcmp(unit_s, "token") && strcmp(unit_s, "word")) { fprintf(stderr, "finetune explain: --unit %s: expected token or word\n", unit_s); return 2; }
    if (strcmp(base_s, "mask") && strcmp(base_s, "zero")) { fprintf(stderr, "finetune explain: --baseline %s: expected mask or zero\n", base_s); return 2; }
    long max_exact, samples, seed, steps, seq_len, threads;
    if (ft_opt_int(opts, "max-exact", 14, &max_exact) || ft_opt_int(opts, "samples", 256, &samples) || ft_opt_int(opts, "seed", 1234, &seed) ||
        ft_opt_int(opts, "steps", 50, &steps) || ft_opt_int(opts, "seq-len", 0, &seq_len) || ft_opt_int(opts, "threads", 0, &threads))
        return 2;
    if (max_exact < 0 || max_exact > FT_SHAP_EXACT_MAX) { fprintf(stderr, "finetune explain: --max-exact %ld: expected 0..%d\n", max_exact, FT_SHAP_EXACT_MAX); return 2; }
    if (samples <= 0 || samples > 1000000) { fprintf(stderr, "finetune explain: --samples %ld: expected 1..1000000\n", samples); return 2; }
    if (steps <= 0 || steps > 10000) { fprintf(stderr, "finetune explain: --steps %ld: expected 1..10000\n", steps); return 2; }
    if (threads > 0) ft_set_threads((int)threads);
    int json = ft_opt_flag(opts, "json");
    ft_explain_unit unit = strcmp(unit_s, "word") == 0 ? FT_EXPLAIN_WORD : FT_EXPLAIN_TOKEN;

    explain_run r = {0};
    r.method = method;
    int rc = load_inputs(&r, dir, text, ft_opt_str(opts, "continuation", NULL), unit, seq_len);
    int mask_id = rc == FT_OK ? ft_explain_mask_id(r.tok) : -1;
    if (rc == FT_OK && r.enc) {
        ft_explain_encoder_options eo = ft_explain_encoder_default_options();
        if (ft_opt_flag(opts, "logit")) eo.output = FT_EXPLAIN_LOGIT;
        if (ft_opt_str(opts, "target", NULL)) rc = parse_target(r.enc, ft_opt_str(opts, "target", NULL), &eo.target);
        if (rc == FT_OK) rc = ft_explainer_encoder(&r.e, r.enc, r.ids, NULL, r.T, r.feature, r.nf, mask_id, &eo);
    } else if (rc == FT_OK) {
        if (ft_opt_str(opts, "target", NULL) || ft_opt_flag(opts, "logit"))
            rc = ft_error(FT_ERR_INVALID, "--target / --logit are for classifiers; a decoder explains log p(--continuation | --text)");
        else rc = ft_explainer_decoder(&r.e, r.dec, r.ids, r.T, r.n_text, r.feature, r.nf, mask_id, 0);
    }
    if (rc < 0) { run_free(&r); return ft_cli_fail("explain", rc); }

    /* what f is, in words */
    char fdesc[512], lb[32];
    const char *fkind = r.dec ? "logprob" : ft_opt_flag(opts, "logit") ? "logit" : "prob";
    int target = ft_explainer_target(r.e), K = 0;
    const float *logits = ft_explainer_logits(r.e, &K);
    double conf = NAN;
    if (r.dec) snprintf(fdesc, sizeof fdesc, "f = log p(continuation | text) = %.6f (sum over %d continuation tokens)", ft_explainer_f_input(r.e), r.T - r.n_text);
    else if (target < 0) snprintf(fdesc, sizeof fdesc, "f = the regression output = %.6f", ft_explainer_f_input(r.e));
    else {
        double mx = logits[0], s = 0;
        for (int k = 1; k < K; k++) if (logits[k] > mx) mx = logits[k];
        for (int k = 0; k < K; k++) s += exp((double)logits[k] - mx);
        conf = exp((double)logits[target] - mx) / s;
        if (!strcmp(fkind, "prob")) snprintf(fdesc, sizeof fdesc, "f = P(%s | text) = %.6f (softmax probability of the target class)", label_of(r.enc, target, lb, sizeof lb), conf);
        else snprintf(fdesc, sizeof fdesc, "f = logit of %s = %.6f (P = %.6f)", label_of(r.enc, target, lb, sizeof lb), ft_explainer_f_input(r.e), conf);
    }
    char mdesc[512] = "";
    ft_shap_result sr = {0};
    ft_ig_result ir = {0};
    if (!strcmp(method, "shap")) {
        rc = r.nf <= max_exact ? ft_explain_shap_exact(r.e, r.feat_score, &sr) : ft_explain_shap_sample(r.e, (int)samples, (uint64_t)seed, r.feat_score, &sr);
        if (rc == FT_OK) {
            spread_to_tokens(&r);
            if (sr.exact)
                snprintf(mdesc, sizeof mdesc, "exact Shapley values over %d %ss (%lld coalitions); masked %ss -> %s", r.nf, unit_s,
                         (long long)sr.evaluations, unit_s, ft_tokenizer_token_str(r.tok, mask_id));
            else
                snprintf(mdesc, sizeof mdesc, "sampled Shapley values over %d %ss (%d permutations in antithetic pairs, seed %ld, %lld evaluations); masked %ss -> %s",
                         r.nf, unit_s, sr.permutations, seed, (long long)sr.evaluations, unit_s, ft_tokenizer_token_str(r.tok, mask_id));
        }
    } else if (!strcmp(method, "ig")) {
        ft_ig_options io = ft_ig_default_options();
        io.steps = (int)steps;
        io.baseline = strcmp(base_s, "zero") == 0 ? FT_IG_BASELINE_ZERO : FT_IG_BASELINE_MASK;
        double *attr = malloc(sizeof(double) * (size_t)r.T);
        rc = attr ? ft_explain_ig(r.e, &io, attr, &ir) : ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc == FT_OK) {
            ft_explain_feature_sums(r.feature, r.T, r.nf, attr, r.feat_score);
            for (int t = 0; t < r.T; t++) r.tok_score[t] = r.feature[t] >= 0 ? attr[t] : NAN;
            snprintf(mdesc, sizeof mdesc, "Integrated Gradients on the word embeddings, %d Gauss-Legendre steps, baseline: %s", ir.steps,
                     io.baseline == FT_IG_BASELINE_ZERO ? "zero vectors" : ft_tokenizer_token_str(r.tok, mask_id));
        }
        free(attr);
    }
    if (rc == FT_OK && (html || !strcmp(method, "attention") || json)) rc = ft_explain_attention(r.e, &r.att, &r.L, &r.NH);
    if (rc == FT_OK && !strcmp(method, "attention")) {
        /* the score of a token: the attention on it in the last layer, mean over the heads, from the first token
         * (encoders: [CLS] pools the sequence) or from the last text token (decoders: it predicts the continuation) */
        int T = r.T, q = r.enc ? 0 : r.n_text - 1;
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int h = 0; h < r.NH; h++) s += r.att[(((size_t)(r.L - 1) * r.NH + h) * T + q) * T + t];
            r.tok_score[t] = r.feature[t] >= 0 ? s / r.NH : NAN;
        }
        for (int t = 0; t < T; t++) if (r.feature[t] >= 0 && !isnan(r.tok_score[t])) r.feat_score[r.feature[t]] += r.tok_score[t];
        snprintf(mdesc, sizeof mdesc, "attention of the %s on each token, last layer, mean over %d heads", r.enc ? "first token" : "last text token", r.NH);
    }
    if (rc < 0) { run_free(&r); return ft_cli_fail("explain", rc); }

    const char *what = !strcmp(method, "shap") ? "shapley" : !strcmp(method, "ig") ? "ig" : "attention";
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", dir);
        cJSON_AddStringToObject(o, "text", text);
        if (r.dec) cJSON_AddStringToObject(o, "continuation", ft_opt_str(opts, "continuation", ""));
        cJSON_AddStringToObject(o, "method", method);
        cJSON_AddStringToObject(o, "unit", unit_s);
        cJSON_AddStringToObject(o, "f", fkind);
        cJSON_AddNumberToObject(o, "f_input", ft_explainer_f_input(r.e));
        if (target >= 0) {
            cJSON_AddStringToObject(o, "target", label_of(r.enc, target, lb, sizeof lb));
            cJSON_AddNumberToObject(o, "target_index", target);
            cJSON_AddNumberToObject(o, "confidence", conf);
            cJSON *pr = cJSON_AddObjectToObject(o, "probabilities");
            double mx = logits[0], s = 0;
            for (int k = 1; k < K; k++) if (logits[k] > mx) mx = logits[k];
            for (int k = 0; k < K; k++) s += exp((double)logits[k] - mx);
            for (int k = 0; k < K; k++) cJSON_AddNumberToObject(pr, label_of(r.enc, k, lb, sizeof lb), exp((double)logits[k] - mx) / s);
        }
        cJSON_AddStringToObject(o, "mask_token", ft_tokenizer_token_str(r.tok, mask_id));
        cJSON *fa = cJSON_AddArrayToObject(o, "features");
        for (int i = 0; i < r.nf; i++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "feature", r.feat_str[i]);
            cJSON_AddNumberToObject(f, "score", r.feat_score[i]);
            cJSON_AddItemToArray(fa, f);
        }
        cJSON *ta = cJSON_AddArrayToObject(o, "tokens");
        for (int t = 0; t < r.T; t++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "token", r.tok_str[t]);
            cJSON_AddNumberToObject(x, "id", r.ids[t]);
            cJSON_AddNumberToObject(x, "feature", r.feature[t]);
            if (isnan(r.tok_score[t])) cJSON_AddNullToObject(x, "score");
            else cJSON_AddNumberToObject(x, "score", r.tok_score[t]);
            cJSON_AddItemToArray(ta, x);
        }
        if (!strcmp(method, "shap")) {
            cJSON *s = cJSON_AddObjectToObject(o, "shap");
            cJSON_AddBoolToObject(s, "exact", sr.exact);
            cJSON_AddNumberToObject(s, "f_masked", sr.f_masked);
            cJSON_AddNumberToObject(s, "sum", sr.sum);
            cJSON_AddNumberToObject(s, "efficiency_gap", sr.gap);
            cJSON_AddNumberToObject(s, "evaluations", (double)sr.evaluations);
            if (!sr.exact) { cJSON_AddNumberToObject(s, "permutations", sr.permutations); cJSON_AddNumberToObject(s, "seed", (double)seed); }
        } else if (!strcmp(method, "ig")) {
            cJSON *s = cJSON_AddObjectToObject(o, "ig");
            cJSON_AddNumberToObject(s, "steps", ir.steps);
            cJSON_AddStringToObject(s, "baseline", base_s);
            cJSON_AddNumberToObject(s, "f_baseline", ir.f_baseline);
            cJSON_AddNumberToObject(s, "sum", ir.sum);
            cJSON_AddNumberToObject(s, "completeness_gap", ir.gap);
        }
        if (r.att) {
            cJSON_AddNumberToObject(o, "layers", r.L);
            cJSON_AddNumberToObject(o, "heads", r.NH);
        }
        char *line = cJSON_PrintUnformatted(o);
        if (line) puts(line);
        free(line);
        cJSON_Delete(o);
    } else {
        printf("%s\n%s\n", fdesc, mdesc);
        if (!strcmp(method, "shap"))
            printf("efficiency: sum phi = %.9f, f(x) - f(all masked) = %.9f - %.9f = %.9f, gap %.3g\n", sr.sum, sr.f_input, sr.f_masked,
                   sr.f_input - sr.f_masked, sr.gap);
        else if (!strcmp(method, "ig"))
            printf("completeness: sum attr = %.9f, f(x) - f(baseline) = %.9f - %.9f = %.9f, gap %.3g\n", ir.sum, ir.f_input, ir.f_baseline,
                   ir.f_input - ir.f_baseline, ir.gap);
        print_table(&r, what);
    }
    int status = 0;
    if (html) {
        char title[600];
        snprintf(title, sizeof title, "finetune explain: %s", text);
        char sub[1100];
        snprintf(sub, sizeof sub, "%s. %s.", fdesc, mdesc);
        if ((rc = write_html(&r, html, title, sub)) < 0) status = ft_cli_fail("explain", rc);
        else if (!json) printf("\nwrote %s\n", html);
    }
    fflush(stdout);
    run_free(&r);
    return status;
}
