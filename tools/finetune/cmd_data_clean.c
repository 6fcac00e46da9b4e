/* cmd_data_clean.c — `finetune data clean IN --out OUT --steps ...`: ft_dq_clean_file (dataquality.h) with
 * the counts of each step on stderr and the per-record log as JSONL (--log). */
#include "cli.h"
#include "finetune/dataquality.h"
#include "finetune/status.h"

#include <stdio.h>
#include <string.h>

static const char *k_usage =
    "usage: finetune data clean IN --out OUT [--steps lower,html,punct,space,urls,mentions,hashtags,stopwords,stem,\n"
    "                                                 neardup,length,lang,conflicts] [--log LOG.jsonl]\n\n"
    "Cleans IN (CSV, TSV, JSONL, JSON, text, DailyDialog) into OUT in the same format. The steps run in the order\n"
    "given, each over all records still kept; text steps change the text fields only. Each step's count is printed,\n"
    "every change and drop written to the log (record, line, step, before / after or the reason).";

int ft_cmd_data_clean(int argc, char **argv) {
    ft_opt opts[] = {
        {"out", 1, "the cleaned file (same format as IN)", NULL},
        {"steps", 1, "comma-separated steps in order (default html,urls,space,neardup,length,conflicts)", NULL},
        {"log", 1, "per-record log, JSONL (default OUT.log.jsonl)", NULL},
        FT_CLI_DQ_TABLE_OPTS,
        {"lang", 1, "language of the stop words and the stemmer (default en)", NULL},
        {"stemmer", 1, "snowball (default: Snowball of --lang, libstemmer) or porter (NLTK's PorterStemmer)", NULL},
        {"keep-lang", 1, "lang step: languages kept, comma-separated (default en; undetermined texts are kept)", NULL},
        {"min-words", 1, "length step: fewer words are dropped (default 1)", NULL},
        {"max-words", 1, "length step: more words are dropped (default 0: no limit)", NULL},
        {"min-chars", 1, "length step: fewer characters are dropped (default 0)", NULL},
        {"max-chars", 1, "length step: more characters are dropped (default 0: no limit)", NULL},
        {"conflicts", 1, "identical texts with different labels: majority (default), drop, report", NULL},
        {"threshold", 1, "neardup step: Jaccard threshold (default 0.7)", NULL},
        {"stopwords", 1, "folder of <lang>.txt stop-word lists (default: the shipped data/stopwords)", NULL},
        {NULL, 0, NULL, NULL},
    };
    const char *in, *out;
    int st = ft_cli_data_input(argc, argv, opts, k_usage, &in, &out);
    if (st >= 0) return st;
    ft_dq_table_options to;
    if (ft_cli_dq_table_options(opts, &to) != FT_OK) return ft_cli_fail("data clean", FT_ERR_INVALID);
    ft_dq_clean_options o = ft_dq_clean_default_options();
    if (ft_dq_steps_parse(ft_opt_str(opts, "steps", "html,urls,space,neardup,length,conflicts"), o.steps,
                          (int)(sizeof o.steps / sizeof *o.steps), &o.nsteps) != FT_OK)
        return ft_cli_fail("data clean", FT_ERR_INVALID);
    o.lang = ft_opt_str(opts, "lang", "en");
    const char *stemmer = ft_opt_str(opts, "stemmer", NULL);
    o.stemmer = stemmer && strcmp(stemmer, "snowball") ? stemmer : NULL;
    o.keep_langs = ft_opt_str(opts, "keep-lang", "en");
    o.stopwords_dir = ft_opt_str(opts, "stopwords", ft_default_stopwords_dir());
    long v;
    double thr;
    if (ft_opt_int(opts, "min-words", 1, &v)) return 2;
    o.min_words = (int)v;
    if (ft_opt_int(opts, "max-words", 0, &v)) return 2;
    o.max_words = (int)v;
    if (ft_opt_int(opts, "min-chars", 0, &v)) return 2;
    o.min_chars = (int)v;
    if (ft_opt_int(opts, "max-chars", 0, &v)) return 2;
    o.max_chars = (int)v;
    if (ft_opt_float(opts, "threshold", o.minhash.threshold, &thr)) return 2;
    o.minhash.threshold = thr;
    const char *cf = ft_opt_str(opts, "conflicts", "majority");
    if (!strcmp(cf, "majority")) o.conflicts = FT_DQ_CONFLICT_MAJORITY;
    else if (!strcmp(cf, "drop")) o.conflicts = FT_DQ_CONFLICT_DROP;
    else if (!strcmp(cf, "report")) o.conflicts = FT_DQ_CONFLICT_REPORT;
    else { fprintf(stderr, "finetune data clean: --conflicts: expected majority, drop or report, got '%s'\n", cf); return 2; }
    char logbuf[4096];
    const char *log = ft_opt_str(opts, "log", NULL);
    if (!log) { snprintf(logbuf, sizeof logbuf, "%s.log.jsonl", out); log = logbuf; }
    ft_dq_clean_stats stats;
    int rc = ft_dq_clean_file(in, out, log, &to, &o, &stats);
    if (rc != FT_OK) return ft_cli_fail("data clean", rc);
    fprintf(stderr, "%s -> %s: ", in, out);
    ft_dq_clean_stats_print(&stats, stderr);
    fprintf(stderr, "log: %s\n", log);
    return 0;
}
