/* cmd_data_augment.c — `finetune data augment IN --out OUT --method eda|mlm|counterfactual`: more labelled
 * examples from the ones there are (include/finetune/augment.h has the methods).
 *
 *   finetune data augment train.tsv --out aug.jsonl --method eda [--n 4] [--alpha 0.1] [--seed 42]
 *   finetune data augment train.tsv --out aug.jsonl --method mlm --model DIR_OF_A_MASKED_LM [--n 2] [--top-k 10]
 *   finetune data augment train.tsv --out cf.jsonl  --method counterfactual [--pairs FILE]
 *
 * Every input record is written first (augmentation "original", augmented_from null, unless
 * --no-originals), then its augmented copies, each with the record's label and pair text,
 * augmented_from = the record's 0-based index and the operation's name. --labels L1,L2 augments only the
 * records with those labels (the others are copied). Record i draws from its own seeded stream
 * (seed mixed with i), so a record's copies do not depend on the records before it. A summary goes to
 * stderr. */
#include "cli.h"
#include "data_records.h"
#include "finetune/augment.h"
#include "finetune/encoder.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"
#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: finetune data augment IN --out OUT [--method eda|mlm|counterfactual (default eda)] [--n K] [--seed S] [--alpha A]\n"
    "                             [--labels L1,L2] [--wordnet DIR] [--pairs FILE] [--model MLM_DIR] [--top-k K]";

static int fail(int rc) { return ft_cli_fail("data augment", rc); }

/* 1 when label name is in the comma-separated list (NULL list: every label) */
static int label_selected(const char *list, const char *name) {
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == n && !strncmp(s, name, n)) return 1;
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

typedef struct aug_ctx {
    int                 method;   /* 0 eda, 1 mlm, 2 counterfactual */
    ft_eda_options      eda;
    ft_mlm_aug_options  mlm;
    int                 n;
    ft_wordnet         *wn;
    ft_cf_pairs        *pairs;
    ft_encoder_model   *m;
    ft_tokenizer       *tok;
    int64_t             per_op[FT_AUG_COUNTERFACTUAL + 1];
    int64_t             unchanged;  /* copies equal to their original */
} aug_ctx;

static int augment_one(aug_ctx *c, ft_cli_cls_out *w, const ft_cls_dataset *ds, int64_t i, uint64_t seed) {
    const char *text = ds->text[i], *pair = ds->pair ? ds->pair[i] : NULL;
    const char *label = ft_label_map_name(&ds->labels, ds->label[i]);
    ft_rng r;
    ft_rng_seed(&r, ft__mix64(seed + (uint64_t)i * FT__GOLDEN_GAMMA));
    if (c->method == 0) {
        char **t;
        ft_aug_op *ops;
        int n;
        FT_TRY(ft_eda_augment(&t, &ops, &n, text, &c->eda, c->wn, &r));
        int rc = FT_OK;
        for (int k = 0; k < n && rc == FT_OK; k++) {
            rc = ft_cli_cls_out_row(w, t[k], pair, label, i, ft_aug_op_name(ops[k]));
            c->per_op[ops[k]]++;
            c->unchanged += !strcmp(t[k], text);
        }
        ft_aug_texts_free(t, n);
        free(ops);
        return rc;
    }
    if (c->method == 1) {
        for (int k = 0; k < c->n; k++) {
            char *t;
            int nr;
            FT_TRY(ft_mlm_augment(&t, &nr, c->m, c->tok, text, &c->mlm, &r));
            int rc = nr > 0 ? ft_cli_cls_out_row(w, t, pair, label, i, "mlm") : FT_OK;
            c->per_op[FT_AUG_MLM] += nr > 0;
            c->unchanged += nr == 0;
            free(t);
            FT_TRY(rc);
        }
        return FT_OK;
    }
    char *t;
    int ns;
    FT_TRY(ft_cf_swap(&t, &ns, c->pairs, text));
    char *tp = NULL;
    int np = 0, rc = FT_OK;
    if (pair) rc = ft_cf_swap(&tp, &np, c->pairs, pair);
    if (rc == FT_OK && ns + np > 0) {
        rc = ft_cli_cls_out_row(w, t, pair ? tp : NULL, label, i, "counterfactual");
        c->per_op[FT_AUG_COUNTERFACTUAL]++;
    }
    free(t);
    free(tp);
    return rc;
}

int ft_cmd_data_augment(int argc, char **argv) {
    ft_opt opts[] = {
        {"out", 1, "output file: .jsonl, .csv or .tsv", NULL},
        {"method", 1, "eda | mlm | counterfactual", NULL},
        {"n", 1, "augmented copies per record (eda: 4, mlm: 1; counterfactual: one when a word was swapped)", NULL},
        {"seed", 1, "random seed (42)", NULL},
        {"alpha", 1, "eda: alpha of all four operations (0.1); mlm: share of the words replaced (0.15)", NULL},
        {"alpha-sr", 1, "eda: synonym replacement alpha (0 leaves it out)", NULL},
        {"alpha-ri", 1, "eda: random insertion alpha", NULL},
        {"alpha-rs", 1, "eda: random swap alpha", NULL},
        {"p-rd", 1, "eda: random deletion probability", NULL},
        {"labels", 1, "augment only the records with these labels (comma-separated names)", NULL},
        {"no-originals", 0, "write only the augmented copies", NULL},
        {"wordnet", 1, "WordNet database directory (default $WNSEARCHDIR or /usr/share/wordnet)", NULL},
        {"pairs", 1, "counterfactual word pairs (default data/augment/counterfactual_en.txt)", NULL},
        {"model", 1, "mlm: a masked-LM encoder directory (BertForMaskedLM, RobertaForMaskedLM, ...)", NULL},
        {"top-k", 1, "mlm: predictions considered per masked word (10)", NULL},
        {"threads", 1, "CPU threads (mlm)", NULL},
        FT_CLI_CLS_COLUMN_OPTS,
        {NULL, 0, NULL, NULL},
    };
    const char *in, *out;
    int st = ft_cli_data_input(argc, argv, opts, k_usage, &in, &out);
    if (st >= 0) return st;
    const char *method = ft_opt_str(opts, "method", NULL);
    if (!method) method = "eda"; /* the default: needs nothing but Debian's WordNet */
    aug_ctx c;
    memset(&c, 0, sizeof c);
    c.method = !strcmp(method, "eda") ? 0 : !strcmp(method, "mlm") ? 1 : !strcmp(method, "counterfactual") ? 2 : -1;
    if (c.method < 0) { fprintf(stderr, "finetune data augment: --method: eda, mlm or counterfactual, not '%s'\n", method); return 2; }
    long n, seed, top_k, threads;
    double alpha;
    c.eda = ft_eda_default_options();
    c.mlm = ft_mlm_aug_default_options();
    if (ft_opt_int(opts, "n", c.method == 0 ? 4 : 1, &n) || ft_opt_int(opts, "seed", 42, &seed) ||
        ft_opt_int(opts, "top-k", 10, &top_k) || ft_opt_int(opts, "threads", 0, &threads) ||
        ft_opt_float(opts, "alpha", c.method == 1 ? 0.15 : 0.1, &alpha) ||
        ft_opt_float(opts, "alpha-sr", alpha, &c.eda.alpha_sr) || ft_opt_float(opts, "alpha-ri", alpha, &c.eda.alpha_ri) ||
        ft_opt_float(opts, "alpha-rs", alpha, &c.eda.alpha_rs) || ft_opt_float(opts, "p-rd", alpha, &c.eda.p_rd))
        return 2;
    if (n < 0 || n > 1000 || !(alpha >= 0 && alpha <= 1)) { fprintf(stderr, "finetune data augment: --n 0..1000, --alpha 0..1\n"); return 2; }
    if (threads > 0) ft_set_threads((int)threads);
    c.n = (int)n;
    c.eda.n_aug = (int)n;
    c.mlm.alpha = alpha;
    c.mlm.top_k = (int)top_k;

    int rc = FT_OK;
    if (c.method == 0) rc = ft_wordnet_open(&c.wn, ft_opt_str(opts, "wordnet", NULL));
    else if (c.method == 2) {
        char buf[4096];
        const char *pairs = ft_opt_str(opts, "pairs", NULL);
        rc = ft_cf_pairs_load(&c.pairs, pairs ? pairs : ft_cli_repo_path("data/augment/counterfactual_en.txt", buf, sizeof buf));
    } else {
        const char *dir = ft_opt_str(opts, "model", NULL);
        if (!dir) { fprintf(stderr, "finetune data augment: --method mlm needs --model DIR (a *ForMaskedLM encoder)\n"); return 2; }
        ft_encoder_options eo = ft_encoder_default_options();
        eo.task = FT_TASK_MLM;
        rc = ft_tokenizer_load(&c.tok, dir);
        if (rc == FT_OK) rc = ft_encoder_load_ex(&c.m, dir, &eo, ft_backend_cpu());
    }
    ft_cls_dataset ds;
    memset(&ds, 0, sizeof ds);
    const char *tc, *lc, *pc;
    if (rc == FT_OK) rc = ft_cli_cls_load(&ds, in, opts, &tc, &lc, &pc);
    ft_cli_cls_out w;
    memset(&w, 0, sizeof w);
    if (rc == FT_OK) rc = ft_cli_cls_out_open(&w, out, tc, lc, pc);
    const char *labels = ft_opt_str(opts, "labels", NULL);
    int originals = !ft_opt_flag(opts, "no-originals");
    int64_t selected = 0;
    for (int64_t i = 0; i < ds.n && rc == FT_OK; i++) {
        const char *label = ft_label_map_name(&ds.labels, ds.label[i]);
        if (originals) rc = ft_cli_cls_out_row(&w, ds.text[i], ds.pair ? ds.pair[i] : NULL, label, -1, "original");
        if (rc == FT_OK && label_selected(labels, label)) {
            selected++;
            rc = augment_one(&c, &w, &ds, i, (uint64_t)seed);
        }
    }
    int crc = ft_cli_cls_out_close(&w);
    if (rc == FT_OK) rc = crc;
    int status = 0;
    if (rc < 0) status = fail(rc);
    else {
        fprintf(stderr, "finetune data augment: %lld records read, %lld augmented, %lld rows written to %s\n",
                (long long)ds.n, (long long)selected, (long long)w.rows, out);
        for (int k = 1; k <= FT_AUG_COUNTERFACTUAL; k++)
            if (c.per_op[k]) fprintf(stderr, "  %-20s %lld\n", ft_aug_op_name((ft_aug_op)k), (long long)c.per_op[k]);
        if (c.unchanged) fprintf(stderr, "  %lld copies came out equal to their original (%s)\n", (long long)c.unchanged,
                                 c.method == 1 ? "no whole-word prediction differed: not written" : "kept, as EDA does");
    }
    ft_cls_dataset_free(&ds);
    ft_wordnet_close(c.wn);
    ft_cf_pairs_free(c.pairs);
    if (c.m) ft_encoder_close(c.m);
    if (c.tok) ft_tokenizer_free(c.tok);
    return status;
}
