/* fuzz_dq_table.c — the data-quality tools on untrusted files (dataquality.h): the table reader (CSV / TSV with
 * RFC 4180 quoting, JSONL, JSON lists with per-element line numbers, text, DailyDialog), the report (duplicates,
 * MinHash, scripts, languages, the PCRE2 scans for URLs / e-mails / phone numbers, invalid UTF-8) and every
 * cleaning step, then the table written back. The first input byte picks the format; the rest is the file. */
#include "fuzz_util.h"
#include "data/dq_internal.h"
#include "finetune/dataquality.h"

static ft_dq_stopwords *g_sw;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    if (!g_sw && ft_dq_stopwords_load(&g_sw, "data/stopwords") != FT_OK) return 0;
    if (size < 1 || size > 1 << 16) return 0;
    static const ft_dq_format formats[] = {FT_DQ_AUTO, FT_DQ_CSV, FT_DQ_TSV, FT_DQ_JSONL, FT_DQ_JSON, FT_DQ_TEXT, FT_DQ_DAILYDIALOG};
    ft_dq_table_options to = ft_dq_table_default_options();
    to.format = formats[data[0] % (sizeof formats / sizeof *formats)];
    ft_dq_table t;
    if (ft_dq_table_parse(&t, "fuzz", (const char *)data + 1, size - 1, &to) != FT_OK) return 0;
    ft_dq_inspect_options io = ft_dq_inspect_default_options();
    io.stopwords = g_sw;
    ft_dq_report r;
    if (ft_dq_inspect(&r, &t, (data[0] & 0x80) ? &t : NULL, &io) == FT_OK) {
        char *js = NULL;
        if (ft_dq_report_json(&r, &js) == FT_OK) free(js);
        ft_dq_report_free(&r);
    }
    ft_dq_clean_options o = ft_dq_clean_default_options();
    o.stopwords = g_sw;
    ft_dq_steps_parse(t.label >= 0 ? "html,lower,urls,mentions,hashtags,punct,stopwords,stem,space,neardup,length,lang,conflicts"
                                   : "html,lower,urls,mentions,hashtags,punct,stopwords,stem,space,neardup,length,lang",
                      o.steps, FT_DQ_STEPS * 2, &o.nsteps);
    uint8_t *keep = malloc((size_t)t.n + 1);
    ft_dq_clean_stats st;
    if (keep && ft_dq_clean(&t, keep, &o, &st) == FT_OK) {
        char *out = NULL;
        size_t n = 0;
        if (ft__dq_table_render(&t, keep, &out, &n) == FT_OK) free(out);
    }
    free(keep);
    ft_dq_table_free(&t);
    return 0;
}
