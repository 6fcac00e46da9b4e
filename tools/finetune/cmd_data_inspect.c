/* cmd_data_inspect.c — `finetune data inspect FILE`: the data-quality report of dataquality.h on the console,
 * as JSON (--json) and as an HTML page (--html). */
#include "cli.h"
#include "finetune/dataquality.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>

static const char *k_usage =
    "usage: finetune data inspect FILE [--model DIR] [--format F] [--valid FILE2] [--html OUT] [--json OUT]\n\n"
    "A data-quality report of FILE (CSV, TSV, JSONL, JSON, text, DailyDialog): fields and completeness, exact and\n"
    "near duplicates (MinHash over word shingles with LSH, pairs listed), lengths in characters / words / tokens,\n"
    "labels and imbalance, scripts and a stop-word language guess, invalid UTF-8 and control characters, URLs,\n"
    "e-mails and phone numbers, overlap with a validation file, and a quality score with its parts.";

int ft_cmd_data_inspect(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "model or tokenizer directory: lengths in its tokens", NULL},
        FT_CLI_DQ_TABLE_OPTS,
        {"valid", 1, "a validation file: exact and near overlap with FILE (leakage)", NULL},
        {"html", 1, "write the report as a self-contained HTML page", NULL},
        {"json", 1, "write the report as JSON", NULL},
        {"threshold", 1, "near-duplicate Jaccard threshold (default 0.7)", NULL},
        {"shingle", 1, "words per shingle (default 3)", NULL},
        {"stopwords", 1, "folder of <lang>.txt stop-word lists for the language guess (default: the shipped data/stopwords)", NULL},
        {"max-pairs", 1, "pairs listed in the JSON / HTML (default 1000; all are counted)", NULL},
        {"quiet", 0, "no summary on stderr", NULL},
        {NULL, 0, NULL, NULL},
    };
    const char *in;
    int st = ft_cli_data_input(argc, argv, opts, k_usage, &in, NULL);
    if (st >= 0) return st;
    ft_dq_table_options to;
    if (ft_cli_dq_table_options(opts, &to) != FT_OK) return ft_cli_fail("data inspect", FT_ERR_INVALID);
    ft_dq_inspect_options io = ft_dq_inspect_default_options();
    long shingle, maxp;
    double thr;
    if (ft_opt_float(opts, "threshold", io.minhash.threshold, &thr) || ft_opt_int(opts, "shingle", io.minhash.shingle, &shingle) ||
        ft_opt_int(opts, "max-pairs", io.max_pairs, &maxp))
        return 2;
    io.minhash.threshold = thr;
    io.minhash.shingle = (int)shingle;
    io.max_pairs = maxp;
    io.stopwords_dir = ft_opt_str(opts, "stopwords", ft_default_stopwords_dir());

    ft_dq_table t = {0}, v = {0};
    ft_tokenizer *tok = NULL;
    ft_dq_report r;
    int rc = ft_dq_table_load(&t, in, &to);
    const char *valid = ft_opt_str(opts, "valid", NULL);
    if (rc == FT_OK && valid) rc = ft_dq_table_load(&v, valid, &to);
    const char *model = ft_opt_str(opts, "model", NULL);
    char tbuf[4096];
    if (rc == FT_OK && model) rc = ft_tokenizer_load(&tok, ft_cli_tokenizer_dir(model, tbuf, sizeof tbuf));
    io.tokenizer = tok;
    if (rc == FT_OK) rc = ft_dq_inspect(&r, &t, valid ? &v : NULL, &io);
    if (rc == FT_OK) {
        if (!ft_opt_flag(opts, "quiet")) ft_dq_report_print(&r, stderr);
        const char *js = ft_opt_str(opts, "json", NULL), *html = ft_opt_str(opts, "html", NULL);
        if (js) rc = ft_dq_report_write_json(&r, js);
        if (rc == FT_OK && html) rc = ft_dq_report_write_html(&r, html);
        if (rc == FT_OK && js) fprintf(stderr, "wrote %s\n", js);
        if (rc == FT_OK && html) fprintf(stderr, "wrote %s\n", html);
        ft_dq_report_free(&r);
    }
    ft_tokenizer_free(tok);
    ft_dq_table_free(&v);
    ft_dq_table_free(&t);
    return rc == FT_OK ? 0 : ft_cli_fail("data inspect", rc);
}
