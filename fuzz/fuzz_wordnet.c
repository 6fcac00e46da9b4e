/* fuzz_wordnet.c — the WordNet database reader (wordnet.h) and the counterfactual pair list (augment.h) on
 * arbitrary bytes. The input is cut at NUL bytes into up to 13 pieces: index.noun, data.noun, noun.exc,
 * index.verb, data.verb, verb.exc, index.adj, data.adj, adj.exc, index.adv, data.adv, adv.exc (a piece that is
 * not there is empty), and a pair list. The database is parsed and every first word of an index or exception
 * line (and a few fixed words) is looked up: base forms for each part of speech and synonyms; the pair list
 * is parsed and applied to the whole input as text. Lookups must stay inside the buffers whatever the
 * offsets, counts and line ends say. */
#include "fuzz_util.h"
#include "finetune/augment.h"
#include "finetune/wordnet.h"

static void lookup(const ft_wordnet *wn, const char *w) {
    char **v;
    int n;
    if (ft_wordnet_synonyms(wn, w, &v, &n) == FT_OK) ft_wordnet_strings_free(v, n);
    for (int p = 0; p < FT_WN_NPOS; p++)
        if (ft_wordnet_base_forms(wn, w, p, &v, &n) == FT_OK) ft_wordnet_strings_free(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    const char *piece[13] = {0};
    size_t len[13] = {0};
    size_t at = 0;
    for (int i = 0; i < 13 && at <= size; i++) {
        const uint8_t *nul = memchr(data + at, 0, size - at);
        size_t e = nul ? (size_t)(nul - data) : size;
        piece[i] = (const char *)data + at;
        len[i] = e - at;
        at = e + 1;
        if (!nul) break;
    }
    ft_wordnet_files f;
    memset(&f, 0, sizeof f);
    for (int p = 0; p < FT_WN_NPOS; p++) {
        f.index[p] = piece[3 * p]; f.index_len[p] = len[3 * p];
        f.data[p] = piece[3 * p + 1]; f.data_len[p] = len[3 * p + 1];
        f.exc[p] = piece[3 * p + 2]; f.exc_len[p] = len[3 * p + 2];
    }
    ft_wordnet *wn;
    if (ft_wordnet_parse(&wn, &f) == FT_OK) {
        static const char *const fixed[] = {"film", "films", "running", "geese", "better", "", " ", "a b"};
        for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) lookup(wn, fixed[i]);
        int looked = 0;
        for (int i = 0; i < 12 && looked < 64; i++) {
            const char *s = piece[i], *end = s ? s + len[i] : NULL;
            while (s && s < end && looked < 64) {
                const char *e = s;
                while (e < end && *e != ' ' && *e != '\n') e++;
                char *w = ft_fuzz_str((const uint8_t *)s, (size_t)(e - s));
                if (w) { lookup(wn, w); free(w); looked++; }
                const char *nl = memchr(s, '\n', (size_t)(end - s));
                s = nl ? nl + 1 : end;
            }
        }
        ft_wordnet_close(wn);
    }
    ft_cf_pairs *pairs;
    if (piece[12] && ft_cf_pairs_parse(&pairs, piece[12], len[12], "pairs") == FT_OK) {
        char *text = ft_fuzz_str(data, size), *out;
        int n;
        if (text && ft_cf_swap(&out, &n, pairs, text) == FT_OK) free(out);
        free(text);
        ft_cf_pairs_free(pairs);
    }
    ft_error_clear();
    return 0;
}
