/* dq_stem.c — stemming one word: Snowball stemmers through Debian's libstemmer, or NLTK's Porter stemmer
 * (src/eval/porter.c, ft_porter_stem). */
#include "data/dq_internal.h"
#include "finetune/textmetrics.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>

struct ft_dq_stemmer {
    struct sb_stemmer *sb;  /* NULL: Porter */
};

static const char *snowball_name(const char *algo) {
    static const char *const codes[][2] = {
        {"en", "english"}, {"de", "german"}, {"fr", "french"}, {"es", "spanish"}, {"it", "italian"},
        {"nl", "dutch"}, {"pt", "portuguese"}, {"sv", "swedish"}, {"no", "norwegian"}, {"da", "danish"},
        {"fi", "finnish"}, {"ru", "russian"}, {"hu", "hungarian"}, {"ro", "romanian"}, {"tr", "turkish"},
    };
    for (unsigned i = 0; i < sizeof codes / sizeof *codes; i++) if (!strcmp(algo, codes[i][0])) return codes[i][1];
    return algo;
}

int ft_dq_stemmer_new(ft_dq_stemmer **out, const char *algo) {
    *out = NULL;
    ft_dq_stemmer *s = calloc(1, sizeof *s);
    if (!s) return ft_error(FT_ERR_NOMEM, "out of memory (stemmer)");
    if (algo && strcmp(algo, "porter") != 0) {
        s->sb = sb_stemmer_new(snowball_name(algo), "UTF_8");
        if (!s->sb) {
            free(s);
            return ft_error(FT_ERR_INVALID, "no Snowball stemmer for '%s' (libstemmer knows english, german, french, "
                            "spanish, italian, dutch, portuguese, russian, ...; or use porter)", algo);
        }
    }
    *out = s;
    return FT_OK;
}

void ft_dq_stemmer_free(ft_dq_stemmer *s) {
    if (!s) return;
    if (s->sb) sb_stemmer_delete(s->sb);
    free(s);
}

int ft_dq_stem(ft_dq_stemmer *s, const char *w, size_t n, char *out, size_t cap) {
    if (n > 1u << 20) return ft_error(FT_ERR_RANGE, "stem: word of %zu bytes", n);
    if (!s->sb) {
        /* NLTK's Porter works on ASCII letters; other words are left as they are */
        int ascii = 1;
        for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)w[i] < 0x80;
        if (!ascii || cap < n + 2) {
            if (cap < n + 1) return ft_error(FT_ERR_RANGE, "stem: output buffer of %zu bytes for %zu", cap, n);
            memcpy(out, w, n);
            out[n] = 0;
            return (int)n;
        }
        return ft_porter_stem(w, (int)n, out, (int)cap);
    }
    const sb_symbol *r = sb_stemmer_stem(s->sb, (const sb_symbol *)w, (int)n);
    if (!r) return ft_error(FT_ERR_NOMEM, "stem: out of memory");
    int len = sb_stemmer_length(s->sb);
    if ((size_t)len + 1 > cap) return ft_error(FT_ERR_RANGE, "stem: output buffer of %zu bytes for %d", cap, len);
    memcpy(out, r, (size_t)len);
    out[len] = 0;
    return len;
}
