/* dq_minhash.c — near-duplicate pairs: word shingles, MinHash signatures, LSH banding, and an exact
 * Jaccard check of every candidate (dataquality.h, part 2). */
#include "data/dq_internal.h"

#include <stdlib.h>
#include <string.h>

ft_dq_minhash_options ft_dq_minhash_default_options(void) {
    ft_dq_minhash_options o = {120, 24, 3, 0.7, 1};
    return o;
}

static uint64_t mix64(uint64_t x) {   /* splitmix64's finaliser */
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ull; }
    return h;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted, distinct shingle hashes of one text: *set malloc'd (NULL and 0 without words). */
static int shingle_set(const char *text, int k, uint64_t **set, int64_t *ns) {
    *set = NULL;
    *ns = 0;
    size_t n = strlen(text);
    char *low = NULL;
    size_t ln = 0;
    FT_TRY(ft__dq_lower(text, n, &low, &ln));
    ft_dq_span *w = NULL;
    int64_t nw = 0;
    int rc = ft__dq_words(low, ln, &w, &nw);
    if (rc < 0 || nw == 0) { free(low); free(w); return rc; }
    uint64_t *wh = malloc((size_t)nw * sizeof *wh);
    int64_t m = nw >= k ? nw - k + 1 : 1;
    uint64_t *s = malloc((size_t)m * sizeof *s);
    if (!wh || !s) { free(low); free(w); free(wh); free(s); return ft_error(FT_ERR_NOMEM, "out of memory (shingles)"); }
    for (int64_t i = 0; i < nw; i++) wh[i] = fnv1a(0xcbf29ce484222325ull, low + w[i].s, w[i].e - w[i].s);
    for (int64_t i = 0; i < m; i++) {
        uint64_t h = 0x9e3779b97f4a7c15ull;
        for (int64_t j = i; j < i + k && j < nw; j++) h = mix64(h ^ wh[j]) + (uint64_t)(j - i);
        s[i] = h;
    }
    qsort(s, (size_t)m, sizeof *s, cmp_u64);
    int64_t u = 0;
    for (int64_t i = 0; i < m; i++) if (!u || s[u - 1] != s[i]) s[u++] = s[i];
    free(low); free(w); free(wh);
    *set = s;
    *ns = u;
    return FT_OK;
}

static double jaccard(const uint64_t *a, int64_t na, const uint64_t *b, int64_t nb) {
    int64_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) { inter++; i++; j++; }
        else if (a[i] < b[j]) i++;
        else j++;
    }
    int64_t uni = na + nb - inter;
    return uni ? (double)inter / (double)uni : 0.0;
}

typedef struct band_key { uint64_t h; int64_t rec; } band_key;
static int cmp_band(const void *a, const void *b) {
    const band_key *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}
static int cmp_pair(const void *a, const void *b) {
    const ft_dq_pair *x = a, *y = b;
    if (x->a != y->a) return x->a < y->a ? -1 : 1;
    return (x->b > y->b) - (x->b < y->b);
}

typedef struct pair_vec { ft_dq_pair *p; int64_t n, cap; } pair_vec;
static int push_pair(pair_vec *v, int64_t a, int64_t b, double j) {
    if (v->n == v->cap) {
        int64_t nc = v->cap ? v->cap * 2 : 256;
        ft_dq_pair *q = realloc(v->p, (size_t)nc * sizeof *q);
        if (!q) return ft_error(FT_ERR_NOMEM, "out of memory (near-duplicate pairs)");
        v->p = q;
        v->cap = nc;
    }
    v->p[v->n++] = (ft_dq_pair){a, b, j};
    return FT_OK;
}

int ft_dq_near_duplicates(ft_dq_pair **pairs, int64_t *npairs, const char *const *texts, int64_t n, int64_t n_first,
                          const ft_dq_minhash_options *opt) {
    ft_dq_minhash_options o = opt ? *opt : ft_dq_minhash_default_options();
    *pairs = NULL;
    *npairs = 0;
    if (o.num_perm < 1 || o.bands < 1 || o.num_perm % o.bands || o.shingle < 1 || !(o.threshold > 0 && o.threshold <= 1))
        return ft_error(FT_ERR_INVALID, "minhash: num_perm (%d) must be a multiple of bands (%d) >= 1, shingle >= 1 "
                        "and the threshold in (0, 1]", o.num_perm, o.bands);
    int cross = n_first > 0 && n_first < n;
    int rows = o.num_perm / o.bands;
    uint64_t **set = calloc((size_t)(n ? n : 1), sizeof *set);
    int64_t *ns = calloc((size_t)(n ? n : 1), sizeof *ns);
    uint64_t *seeds = malloc((size_t)o.num_perm * sizeof *seeds);
    uint64_t *sig = malloc((size_t)(n ? n : 1) * (size_t)o.num_perm * sizeof *sig);   /* [n * num_perm] */
    band_key *keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    pair_vec cand = {0}, out = {0};
    int rc = FT_OK;
    if (!set || !ns || !seeds || !sig || !keys) { rc = ft_error(FT_ERR_NOMEM, "out of memory (minhash of %lld texts)", (long long)n); goto done; }
    for (int p = 0; p < o.num_perm; p++) seeds[p] = mix64(o.seed * 0x9e3779b97f4a7c15ull + (uint64_t)p + 1);
    for (int64_t i = 0; i < n && rc == FT_OK; i++) {
        rc = shingle_set(texts[i] ? texts[i] : "", o.shingle, &set[i], &ns[i]);
        uint64_t *sg = sig + (size_t)i * (size_t)o.num_perm;
        for (int p = 0; p < o.num_perm; p++) sg[p] = UINT64_MAX;
        for (int64_t k = 0; k < ns[i]; k++)
            for (int p = 0; p < o.num_perm; p++) {
                uint64_t h = mix64(set[i][k] ^ seeds[p]);
                if (h < sg[p]) sg[p] = h;
            }
    }
    /* banding: per band, sort (band hash, record) and pair the records of equal hashes */
    for (int bnd = 0; bnd < o.bands && rc == FT_OK; bnd++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!ns[i]) continue;
            const uint64_t *sg = sig + (size_t)i * (size_t)o.num_perm + (size_t)bnd * (size_t)rows;
            keys[m++] = (band_key){fnv1a(0xcbf29ce484222325ull + (uint64_t)bnd, sg, (size_t)rows * sizeof *sg), i};
        }
        qsort(keys, (size_t)m, sizeof *keys, cmp_band);
        for (int64_t s = 0; s < m && rc == FT_OK;) {
            int64_t e = s + 1;
            while (e < m && keys[e].h == keys[s].h) e++;
            for (int64_t x = s; x < e && rc == FT_OK; x++)
                for (int64_t y = x + 1; y < e && rc == FT_OK; y++) {
                    int64_t a = keys[x].rec, b = keys[y].rec;
                    if (cross && !(a < n_first && b >= n_first)) continue;
                    rc = push_pair(&cand, a, b, 0);
                }
            s = e;
        }
        /* keep the candidate list short: sort and drop repeats after every band */
        if (cand.n > 1) {
            qsort(cand.p, (size_t)cand.n, sizeof *cand.p, cmp_pair);
            int64_t u = 0;
            for (int64_t k = 0; k < cand.n; k++)
                if (!u || cand.p[u - 1].a != cand.p[k].a || cand.p[u - 1].b != cand.p[k].b) cand.p[u++] = cand.p[k];
            cand.n = u;
        }
    }
    for (int64_t k = 0; k < cand.n && rc == FT_OK; k++) {
        int64_t a = cand.p[k].a, b = cand.p[k].b;
        double j = jaccard(set[a], ns[a], set[b], ns[b]);
        if (j >= o.threshold) rc = push_pair(&out, a, b, j);
    }
done:
    if (set) for (int64_t i = 0; i < n; i++) free(set[i]);
    free(set); free(ns); free(seeds); free(sig); free(keys); free(cand.p);
    if (rc != FT_OK) { free(out.p); return rc; }
    *pairs = out.p;
    *npairs = out.n;
    return FT_OK;
}
