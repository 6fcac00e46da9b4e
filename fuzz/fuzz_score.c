/* fuzz_score.c — `finetune score`'s input path on arbitrary bytes: the bytes after the first one are split at
 * the first NUL (or in the middle) into a predictions file and a references file, each parsed by
 * ft_text_file_parse (plain lines or JSONL, chosen by the first byte's low bit; AUTO when bit 1 is set), and,
 * when the line counts agree, scored with the metric groups named by the first byte's upper bits (all when 0):
 * corpus and per-example scores, a 3-resample bootstrap and a paired test of the predictions against themselves.
 * The halves are also scored directly as one text each (invalid UTF-8 must come back as an error). */
#include "fuzz_util.h"
#include "finetune/textmetrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    if (size < 1) return 0;
    uint8_t flags = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    const char *nul = memchr(p, 0, n);
    size_t a = nul ? (size_t)(nul - p) : n / 2, b0 = nul ? a + 1 : a;
    ft_text_file_format fmt = (flags & 2) ? FT_TEXT_FILE_AUTO : (flags & 1) ? FT_TEXT_FILE_JSONL : FT_TEXT_FILE_LINES;
    ft_text_metric_opts o = {(unsigned)(flags >> 3) & FT_TEXT_ALL, (flags >> 2) & 1};
    const char *pf[] = {"prediction", "text", NULL}, *rf[] = {"reference", "references", "text", NULL};
    ft_text_file hyp, ref;
    if (ft_text_file_parse(&hyp, p, a, "p.jsonl", fmt, pf) == FT_OK) {
        if (ft_text_file_parse(&ref, p + b0, n - b0, "r.txt", fmt, rf) == FT_OK) {
            if (hyp.n == ref.n && hyp.n > 0) {
                const char *const *streams[8];
                int ns = ref.n_cols < 8 ? ref.n_cols : 8;
                for (int c = 0; c < ns; c++) streams[c] = ft_text_file_column(&ref, c);
                /* absent predictions (JSONL null) are not scored: the command turns them into "" first */
                const char *const *h = ft_text_file_column(&hyp, 0);
                int ok = 1;
                for (int i = 0; i < hyp.n; i++) ok &= h[i] != NULL;
                ft_text_stats *st;
                if (ok && ft_text_stats_compute(&st, h, streams, ns, hyp.n, &o) == FT_OK) {
                    ft_text_scores sc;
                    ft_text_bootstrap bs;
                    ft_text_paired pr;
                    double ex[FT_TS_COUNT];
                    ft_text_stats_scores(st, &sc);
                    ft_text_stats_example(st, hyp.n - 1, ex);
                    ft_text_stats_bootstrap(st, 3, flags, &bs);
                    ft_text_stats_paired(st, st, 3, 7, &pr);
                    ft_text_stats_free(st);
                }
            }
            ft_text_file_free(&ref);
        }
        ft_text_file_free(&hyp);
    }
    /* the two halves as one text each */
    char *h1 = ft_fuzz_str((const uint8_t *)p, a), *r1 = ft_fuzz_str((const uint8_t *)p + b0, n - b0);
    if (h1 && r1) {
        const char *hv[1] = {h1}, *rv[1] = {r1};
        const char *const *streams[1] = {rv};
        ft_text_scores sc;
        ft_text_scores_compute(hv, streams, 1, 1, &o, &sc);
    }
    free(h1);
    free(r1);
    ft_error_clear();
    return 0;
}
