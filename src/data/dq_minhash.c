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

/* Records with the same shingle set form a group (its first record is the representative): only the
 * representatives get signatures and go through the bands, so 10,000 copies of "thank you" cost one entry per band
 * instead of 50 million candidate pairs. A group of up to FT_DQ_CLIQUE members reports all its pairs (J = 1); a
 * larger one a star (representative, member). A confirmed pair of representatives is reported for every member pair
 * of the two groups (only the representative of a group larger than FT_DQ_CLIQUE). */
#define FT_DQ_CLIQUE 64

typedef struct dq_group { int64_t first, n, *m; int has_first, has_second; } dq_group;
typedef struct set_key { uint64_t h; int64_t rec; } set_key;
static int cmp_set_key(const void *a, const void *b) { return cmp_band(a, b); }

static int emit(pair_vec *out, int64_t a, int64_t b, double j, int cross, int64_t n_first) {
    if (a > b) { int64_t t = a; a = b; b = t; }
    if (cross && !(a < n_first && b >= n_first)) return FT_OK;
    return push_pair(out, a, b, j);
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
    size_t n1 = (size_t)(n ? n : 1);
    uint64_t **set = calloc(n1, sizeof *set);
    int64_t *ns = calloc(n1, sizeof *ns);
    uint64_t *seeds = malloc((size_t)o.num_perm * sizeof *seeds);
    set_key *sk = malloc(n1 * sizeof *sk);
    int64_t *members = malloc(n1 * sizeof *members);
    dq_group *g = calloc(n1, sizeof *g);
    band_key *keys = malloc(n1 * sizeof *keys);
    uint64_t *sig = NULL;      /* [ngroups * num_perm] */
    int64_t ng = 0, nk = 0;
    pair_vec cand = {0}, out = {0};
    int rc = FT_OK;
    if (!set || !ns || !seeds || !sk || !members || !g || !keys) { rc = ft_error(FT_ERR_NOMEM, "out of memory (minhash of %lld texts)", (long long)n); goto done; }
    for (int p = 0; p < o.num_perm; p++) seeds[p] = mix64(o.seed * 0x9e3779b97f4a7c15ull + (uint64_t)p + 1);
    for (int64_t i = 0; i < n && rc == FT_OK; i++) {
        rc = shingle_set(texts[i] ? texts[i] : "", o.shingle, &set[i], &ns[i]);
        if (rc == FT_OK && ns[i]) sk[nk++] = (set_key){fnv1a(0xcbf29ce484222325ull, set[i], (size_t)ns[i] * sizeof **set), i};
    }
    if (rc != FT_OK) goto done;
    /* groups of equal shingle sets (equal hash and equal contents; members in record order) */
    if (nk) qsort(sk, (size_t)nk, sizeof *sk, cmp_set_key);
    int64_t nm = 0;
    for (int64_t s0 = 0; s0 < nk;) {
        int64_t e = s0 + 1;
        while (e < nk && sk[e].h == sk[s0].h) e++;
        /* within one hash: split by contents (a collision is one more group) */
        for (int64_t x = s0; x < e; x++) {
            if (sk[x].rec < 0) continue;
            int64_t r0 = sk[x].rec;
            dq_group *G = &g[ng++];
            G->first = r0;
            G->m = members + nm;
            for (int64_t y = x; y < e; y++) {
                int64_t r = sk[y].rec;
                if (r < 0 || ns[r] != ns[r0] || memcmp(set[r], set[r0], (size_t)ns[r] * sizeof **set)) continue;
                members[nm++] = r;
                G->n++;
                G->has_first |= r < n_first;
                G->has_second |= r >= n_first;
                if (y > x) sk[y].rec = -1;
            }
        }
        s0 = e;
    }
    sig = malloc((size_t)(ng ? ng : 1) * (size_t)o.num_perm * sizeof *sig);
    if (!sig) { rc = ft_error(FT_ERR_NOMEM, "out of memory (minhash signatures)"); goto done; }
    for (int64_t k = 0; k < ng; k++) {
        int64_t i = g[k].first;
        uint64_t *sg = sig + (size_t)k * (size_t)o.num_perm;
        for (int p = 0; p < o.num_perm; p++) sg[p] = UINT64_MAX;
        for (int64_t q = 0; q < ns[i]; q++)
            for (int p = 0; p < o.num_perm; p++) {
                uint64_t h = mix64(set[i][q] ^ seeds[p]);
                if (h < sg[p]) sg[p] = h;
            }
    }
    /* banding over the groups: per band, sort (band hash, group) and pair the groups of equal hashes */
    for (int bnd = 0; bnd < o.bands && rc == FT_OK; bnd++) {
        for (int64_t k = 0; k < ng; k++) {
            const uint64_t *sg = sig + (size_t)k * (size_t)o.num_perm + (size_t)bnd * (size_t)rows;
            keys[k] = (band_key){fnv1a(0xcbf29ce484222325ull + (uint64_t)bnd, sg, (size_t)rows * sizeof *sg), k};
        }
        if (ng) qsort(keys, (size_t)ng, sizeof *keys, cmp_band);
        for (int64_t s0 = 0; s0 < ng && rc == FT_OK;) {
            int64_t e = s0 + 1;
            while (e < ng && keys[e].h == keys[s0].h) e++;
            for (int64_t x = s0; x < e && rc == FT_OK; x++)
                for (int64_t y = x + 1; y < e && rc == FT_OK; y++) {
                    const dq_group *A = &g[keys[x].rec], *B = &g[keys[y].rec];
                    if (cross && !((A->has_first && B->has_second) || (B->has_first && A->has_second))) continue;
                    rc = push_pair(&cand, keys[x].rec, keys[y].rec, 0);
                }
            s0 = e;
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
    /* within groups: J = 1 */
    for (int64_t k = 0; k < ng && rc == FT_OK; k++) {
        const dq_group *G = &g[k];
        for (int64_t x = 0; x < G->n && rc == FT_OK; x++)
            for (int64_t y = x + 1; y < G->n && rc == FT_OK && (x == 0 || G->n <= FT_DQ_CLIQUE); y++)
                rc = emit(&out, G->m[x], G->m[y], 1.0, cross, n_first);
    }
    /* confirmed candidates, expanded to the members */
    for (int64_t k = 0; k < cand.n && rc == FT_OK; k++) {
        const dq_group *A = &g[cand.p[k].a], *B = &g[cand.p[k].b];
        double j = jaccard(set[A->first], ns[A->first], set[B->first], ns[B->first]);
        if (j < o.threshold) continue;
        int64_t na = A->n <= FT_DQ_CLIQUE ? A->n : 1, nb = B->n <= FT_DQ_CLIQUE ? B->n : 1;
        for (int64_t x = 0; x < na && rc == FT_OK; x++)
            for (int64_t y = 0; y < nb && rc == FT_OK; y++) rc = emit(&out, A->m[x], B->m[y], j, cross, n_first);
    }
    if (rc == FT_OK && out.n > 1) qsort(out.p, (size_t)out.n, sizeof *out.p, cmp_pair);
done:
    if (set) for (int64_t i = 0; i < n; i++) free(set[i]);
    free(set); free(ns); free(seeds); free(sig); free(keys); free(cand.p); free(sk); free(members); free(g);
    if (rc != FT_OK) { free(out.p); return rc; }
    *pairs = out.p;
    *npairs = out.n;
    return FT_OK;
}
