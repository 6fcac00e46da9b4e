/* test_dataquality.c — finetune data inspect / clean (dataquality.h).
 *
 * - near duplicates on a constructed set: recall and precision of the MinHash + LSH search against a brute-force
 *   Jaccard over every pair computed here (an independent shingling: texts of space-separated lower-case words);
 * - inspect on real data copied into tests/fixtures/dataquality (SST-2, DailyDialog, Bitext) checked against
 *   tests/parity/make_dataquality_fixtures.py's expected.json (Python set / Counter / brute-force Jaccard):
 *   exact duplicates, every near-duplicate pair, label counts, conflicting labels, train / dev overlap;
 * - planted personal data, invalid UTF-8, control characters and languages found at their lines;
 * - each cleaning step's output, counts and log; the neardup step against the greedy rule over the expected pairs;
 * - Snowball English (libstemmer) equal to NLTK's SnowballStemmer on 6,700 words (snowball_en.tsv);
 * - CSV / TSV / DailyDialog / JSON written back and read again;
 * - the command line: finetune data inspect (JSON, HTML) and finetune data clean. */
#include "testutil.h"

#include "core/json_util.h"
#include "data/dq_internal.h"
#include "finetune/dataquality.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_tmp[256];
static cJSON *g_exp;

static int setup(void **state) {
    (void)state;
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_dq") != 0) return -1;
    return ft__json_parse_file(&g_exp, ft_fixture("dataquality/expected.json")) == FT_OK ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    cJSON_Delete(g_exp);
    return ft_test_tmpdir_remove(g_tmp);
}

static const char *write_tmp(const char *name, const char *content) {
    const char *p = ft_test_path(g_tmp, name);
    assert_int_equal(ft_file_write_atomic(p, content, strlen(content)), FT_OK);
    return p;
}

static int64_t jnum(const cJSON *o, const char *k) { return (int64_t)ft__json_num(o, k, -1); }

/* ---- near duplicates on a constructed set ---- */
static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return g_rng; }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* sorted distinct 3-word shingles of a text of space-separated words (independent of dq_minhash.c) */
static char **shingles(const char *text, int *n) {
    char *copy = strdup(text);
    char *w[256];
    int nw = 0;
    for (char *t = strtok(copy, " "); t && nw < 256; t = strtok(NULL, " ")) w[nw++] = t;
    int m = nw >= 3 ? nw - 2 : (nw ? 1 : 0);
    char **s = calloc((size_t)m + 1, sizeof *s);
    for (int i = 0; i < m; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s %s %s", w[i], i + 1 < nw ? w[i + 1] : "", i + 2 < nw ? w[i + 2] : "");
        s[i] = strdup(buf);
    }
    qsort(s, (size_t)m, sizeof *s, cmp_str);
    int u = 0;
    for (int i = 0; i < m; i++) {
        if (u && !strcmp(s[u - 1], s[i])) { free(s[i]); continue; }
        s[u++] = s[i];
    }
    free(copy);
    *n = u;
    return s;
}

static double jaccard_str(char **a, int na, char **b, int nb) {
    int i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        int c = strcmp(a[i], b[j]);
        if (!c) { inter++; i++; j++; } else if (c < 0) i++; else j++;
    }
    return na + nb - inter ? (double)inter / (na + nb - inter) : 0;
}

static void test_near_duplicates_constructed(void **state) {
    (void)state;
    /* 150 base texts of 30 words from a 400-word vocabulary; each with 4 variants of 0..6 words replaced
     * and 2 with 3 words inserted: Jaccard similarities spread over 0.4 .. 1 */
    enum { NB = 150, NV = 6, N = NB * (NV + 1), L = 30 };
    char **texts = calloc(N, sizeof *texts);
    int k = 0;
    for (int b = 0; b < NB; b++) {
        int w[L + 8];
        for (int i = 0; i < L; i++) w[i] = (int)(rnd() % 400);
        for (int v = 0; v <= NV; v++) {
            int x[L + 8], n = L;
            memcpy(x, w, sizeof w);
            if (v >= 1 && v <= 4) {
                int changes = (int)(rnd() % 7);
                for (int c = 0; c < changes; c++) x[rnd() % L] = 400 + (int)(rnd() % 100000);
            } else if (v > 4) {
                for (int c = 0; c < 3; c++) {
                    int at = (int)(rnd() % (unsigned)n);
                    memmove(x + at + 1, x + at, (size_t)(n - at) * sizeof *x);
                    x[at] = 500000 + (int)(rnd() % 1000);
                    n++;
                }
            }
            char buf[1024];
            int o = 0;
            for (int i = 0; i < n; i++) o += snprintf(buf + o, sizeof buf - (size_t)o, "%sw%d", i ? " " : "", x[i]);
            texts[k++] = strdup(buf);
        }
    }
    assert_int_equal(k, N);
    char ***sh = calloc(N, sizeof *sh);
    int *ns = calloc(N, sizeof *ns);
    for (int i = 0; i < N; i++) sh[i] = shingles(texts[i], &ns[i]);
    ft_dq_minhash_options o = ft_dq_minhash_default_options();
    ft_dq_pair *p = NULL;
    int64_t np = 0;
    assert_int_equal(ft_dq_near_duplicates(&p, &np, (const char *const *)texts, N, 0, &o), FT_OK);
    int64_t truth = 0, found_true = 0, found_false = 0, near_border = 0;
    for (int a = 0; a < N; a++)
        for (int b = a + 1; b < N; b++) {
            double j = jaccard_str(sh[a], ns[a], sh[b], ns[b]);
            if (j >= o.threshold) truth++;
            if (j >= 0.5 && j < o.threshold) near_border++;
        }
    for (int64_t q = 0; q < np; q++) {
        double j = jaccard_str(sh[p[q].a], ns[p[q].a], sh[p[q].b], ns[p[q].b]);
        assert_true(p[q].a < p[q].b);
        assert_true(p[q].jaccard >= o.threshold);
        if (j >= o.threshold) found_true++; else found_false++;
    }
    double recall = (double)found_true / (double)truth, precision = np ? (double)found_true / (double)np : 1;
    printf("  constructed set: %d texts, %lld true pairs (J >= %.2f), %lld pairs with 0.5 <= J < 0.7; found %lld: "
           "recall %.4f, precision %.4f\n", N, (long long)truth, o.threshold, (long long)near_border, (long long)np,
           recall, precision);
    assert_true(truth > 200);
    assert_true(near_border > 50);
    assert_int_equal(found_false, 0);
    assert_true(recall >= 0.95);
    /* cross mode: only pairs across the boundary */
    ft_dq_pair *pc = NULL;
    int64_t npc = 0;
    assert_int_equal(ft_dq_near_duplicates(&pc, &npc, (const char *const *)texts, N, N / 2, &o), FT_OK);
    for (int64_t q = 0; q < npc; q++) assert_true(pc[q].a < N / 2 && pc[q].b >= N / 2);
    free(pc);
    free(p);
    /* 5,000 copies of one text (and one of another case / punctuation): a star of 5,000 pairs, not 12.5 million */
    {
        enum { M = 5001 };
        const char **many = malloc(M * sizeof *many);
        for (int i = 0; i < M - 1; i++) many[i] = "thank you so much";
        many[M - 1] = "Thank you, so much!";
        ft_dq_pair *q = NULL;
        int64_t nq = 0;
        assert_int_equal(ft_dq_near_duplicates(&q, &nq, many, M, 0, &o), FT_OK);
        assert_int_equal(nq, M - 1);
        for (int64_t x = 0; x < nq; x++) { assert_int_equal(q[x].a, 0); assert_int_equal(q[x].b, x + 1); }
        free(q);
        /* across a boundary: every copy after it is paired with the first one before it */
        assert_int_equal(ft_dq_near_duplicates(&q, &nq, many, M, 100, &o), FT_OK);
        assert_int_equal(nq, M - 100);
        free(q);
        free(many);
    }
    for (int i = 0; i < N; i++) {
        for (int s = 0; s < ns[i]; s++) free(sh[i][s]);
        free(sh[i]);
        free(texts[i]);
    }
    free(sh); free(ns); free(texts);
}

/* every expected pair found, nothing else */
static void check_pairs(const ft_dq_report *r, const cJSON *pairs) {
    int64_t n = cJSON_GetArraySize(pairs);
    assert_int_equal(r->npairs, n);
    int64_t k = 0;
    for (const cJSON *e = pairs->child; e; e = e->next, k++) {
        assert_int_equal(r->pairs[k].a, (int64_t)cJSON_GetArrayItem(e, 0)->valuedouble);
        assert_int_equal(r->pairs[k].b, (int64_t)cJSON_GetArrayItem(e, 1)->valuedouble);
    }
}

static int64_t label_count(const ft_dq_report *r, const char *name) {
    for (int k = 0; k < r->nlabels; k++) if (!strcmp(r->labels[k].name, name)) return r->labels[k].count;
    return -1;
}

static void test_inspect_sst2(void **state) {
    (void)state;
    const cJSON *e = cJSON_GetObjectItem(g_exp, "sst2");
    ft_dq_table t, v;
    assert_int_equal(ft_dq_table_load(&t, ft_fixture("dataquality/sst2_train.tsv"), NULL), FT_OK);
    assert_int_equal(ft_dq_table_load(&v, ft_fixture("dataquality/sst2_dev.tsv"), NULL), FT_OK);
    assert_int_equal(t.format, FT_DQ_TSV);
    ft_dq_inspect_options io = ft_dq_inspect_default_options();
    io.max_pairs = -1;
    ft_dq_report r;
    assert_int_equal(ft_dq_inspect(&r, &t, &v, &io), FT_OK);
    assert_int_equal(r.records, jnum(e, "records"));
    assert_string_equal(r.text_fields, "sentence");
    assert_string_equal(r.label_field, "label");
    assert_int_equal(r.exact_dup, jnum(e, "exact"));
    check_pairs(&r, cJSON_GetObjectItem(e, "pairs"));
    const cJSON *labels = cJSON_GetObjectItem(e, "labels");
    assert_int_equal(r.nlabels, cJSON_GetArraySize(labels));
    for (const cJSON *l = labels->child; l; l = l->next) assert_int_equal(label_count(&r, l->string), (int64_t)l->valuedouble);
    assert_int_equal(r.conflict_texts, jnum(e, "conflicting_texts"));
    assert_int_equal(r.valid_records, jnum(e, "valid_records"));
    assert_int_equal(r.leak_exact, jnum(e, "leak_exact"));
    assert_int_equal(r.leak_near, jnum(e, "leak_near"));
    assert_int_equal(r.nleak_pairs, jnum(e, "leak_pairs"));
    assert_true(r.score > 50 && r.score < 100);
    /* the score is its parts with their weights */
    double s = 0;
    for (int k = 0; k < FT_DQ_PARTS; k++) s += 100 * ft_dq_part_weight[k] * r.part[k];
    assert_true(s - r.score < 1e-9 && r.score - s < 1e-9);
    assert_true(r.part[FT_DQ_PART_UNIQUENESS] < 1.0 - (double)r.exact_dup / (double)r.records + 1e-12);
    printf("  sst2: %lld records, %lld exact, %lld near (%lld pairs = brute force), dev overlap %lld exact + %lld near, score %.1f\n",
           (long long)r.records, (long long)r.exact_dup, (long long)r.near_dup, (long long)r.npairs,
           (long long)r.leak_exact, (long long)r.leak_near, r.score);
    ft_dq_report_free(&r);
    ft_dq_table_free(&v);
    ft_dq_table_free(&t);
}

static void test_inspect_dailydialog_bitext(void **state) {
    (void)state;
    const cJSON *e = cJSON_GetObjectItem(g_exp, "dailydialog");
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, ft_fixture("dataquality/dailydialog.txt"), NULL), FT_OK);
    assert_int_equal(t.format, FT_DQ_DAILYDIALOG);
    int64_t turns = 0;
    for (int64_t i = 0; i < t.n; i++) {
        turns++;
        for (const char *p = t.cell[i]; *p; p++) turns += *p == '\n';
    }
    assert_int_equal(turns, jnum(e, "turns"));
    ft_dq_inspect_options io = ft_dq_inspect_default_options();
    io.max_pairs = -1;
    ft_dq_report r;
    assert_int_equal(ft_dq_inspect(&r, &t, NULL, &io), FT_OK);
    assert_int_equal(r.records, jnum(e, "records"));
    assert_int_equal(r.exact_dup, jnum(e, "exact"));
    check_pairs(&r, cJSON_GetObjectItem(e, "pairs"));
    assert_null(r.label_field);
    ft_dq_report_free(&r);
    ft_dq_table_free(&t);

    e = cJSON_GetObjectItem(g_exp, "bitext");
    ft_dq_table_options to = ft_dq_table_default_options();
    to.label_column = "intent";
    to.text_columns = "instruction";
    assert_int_equal(ft_dq_table_load(&t, ft_fixture("dataquality/bitext.csv"), &to), FT_OK);
    const cJSON *fields = cJSON_GetObjectItem(e, "fields");
    assert_int_equal(t.nfields, cJSON_GetArraySize(fields));
    int f = 0;
    for (const cJSON *x = fields->child; x; x = x->next, f++) assert_string_equal(t.fields[f], x->valuestring);
    assert_int_equal(ft_dq_inspect(&r, &t, NULL, &io), FT_OK);
    assert_int_equal(r.records, jnum(e, "records"));
    assert_int_equal(r.exact_dup, jnum(e, "exact_instruction"));
    const cJSON *intents = cJSON_GetObjectItem(e, "intents");
    assert_int_equal(r.nlabels, cJSON_GetArraySize(intents));
    for (const cJSON *l = intents->child; l; l = l->next) assert_int_equal(label_count(&r, l->string), (int64_t)l->valuedouble);
    /* the responses hold newlines inside quoted fields: every record has all 11 fields present */
    int resp = -1;
    for (int k = 0; k < t.nfields; k++) if (!strcmp(t.fields[k], "response")) resp = k;
    assert_true(resp >= 0);
    assert_int_equal(r.present[resp], r.records);
    assert_non_null(strchr(t.cell[resp], '\n'));
    ft_dq_report_free(&r);
    ft_dq_table_free(&t);
}

static int hit_at(const ft_dq_report *r, int kind, int line) {
    for (int64_t h = 0; h < r->nhits; h++) if (r->hits[h].kind == kind && r->hits[h].line == line) return 1;
    return 0;
}

static void test_inspect_planted(void **state) {
    (void)state;
    const cJSON *e = cJSON_GetObjectItem(g_exp, "planted");
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, ft_fixture("dataquality/planted.jsonl"), NULL), FT_OK);
    assert_int_equal(t.format, FT_DQ_JSONL);
    ft_dq_inspect_options io = ft_dq_inspect_default_options();
    io.stopwords_dir = "data/stopwords";
    ft_dq_report r;
    assert_int_equal(ft_dq_inspect(&r, &t, NULL, &io), FT_OK);
    assert_int_equal(r.records, jnum(e, "records"));
    static const struct { const char *key; int kind; } kinds[] = {
        {"url_lines", FT_DQ_HIT_URL}, {"email_lines", FT_DQ_HIT_EMAIL}, {"phone_lines", FT_DQ_HIT_PHONE},
        {"invalid_utf8_lines", FT_DQ_HIT_INVALID_UTF8}, {"control_lines", FT_DQ_HIT_CONTROL}};
    for (unsigned k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        const cJSON *lines = cJSON_GetObjectItem(e, kinds[k].key);
        assert_int_equal(r.hit_records[kinds[k].kind], cJSON_GetArraySize(lines));
        for (const cJSON *l = lines->child; l; l = l->next) assert_true(hit_at(&r, kinds[k].kind, (int)l->valuedouble));
    }
    /* two phone numbers on line 3, the order number and the date on line 5 are not */
    assert_int_equal(r.hit_count[FT_DQ_HIT_PHONE], 2);
    assert_int_equal(r.empty_text, jnum(e, "empty_text"));
    assert_int_equal(r.conflict_texts, jnum(e, "conflicting_texts"));
    /* the language guess of the French, German and Spanish lines */
    const cJSON *langs = cJSON_GetObjectItem(e, "langs");
    for (const cJSON *l = langs->child; l; l = l->next) {
        int line = (int)l->child->valuedouble;
        char *text = ft_dq_table_text(&t, line - 1, NULL);
        ft_dq_stopwords *sw;
        assert_int_equal(ft_dq_stopwords_load(&sw, "data/stopwords"), FT_OK);
        assert_string_equal(ft_dq_guess_lang(sw, text, strlen(text)), l->string);
        assert_string_equal(ft_dq_guess_lang(sw, "The movie was great and the actors were excellent", 50), "en");
        ft_dq_stopwords_free(sw);
        free(text);
    }
    int64_t fr = 0;
    for (int k = 0; k < r.nlangs; k++) if (!strcmp(r.langs[k].name, "fr")) fr = r.langs[k].count;
    assert_int_equal(fr, 1);
    assert_int_equal(r.part[FT_DQ_PART_VALIDITY] < 1, 1);
    /* JSON and HTML come out and say what they should */
    char *js = NULL;
    assert_int_equal(ft_dq_report_json(&r, &js), FT_OK);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    assert_int_equal(jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "issues"), "email"), "records"), 1);
    assert_int_equal(jnum(cJSON_GetObjectItem(j, "duplicates"), "exact"), 2);
    cJSON_Delete(j);
    free(js);
    /* invalid UTF-8 in texts, labels and field names never reaches the JSON: U+FFFD instead */
    {
        ft_dq_table b;
        ft_dq_table_options bo = ft_dq_table_default_options();
        bo.label_column = "lab\xFF" "el";
        assert_int_equal(ft_dq_table_load(&b, write_tmp("bad.csv", "te\xC3xt,lab\xFF" "el\nab\xFF cd ef,x\xFE\nab\xFF cd ef,y\n"), &bo), FT_OK);
        ft_dq_report br;
        assert_int_equal(ft_dq_inspect(&br, &b, NULL, NULL), FT_OK);
        assert_int_equal(br.npairs, 1);
        assert_int_equal(br.hit_records[FT_DQ_HIT_INVALID_UTF8], 2);   /* the labels are not scanned */
        assert_int_equal(br.conflict_texts, 1);
        char *bj = NULL;
        assert_int_equal(ft_dq_report_json(&br, &bj), FT_OK);
        size_t n = strlen(bj), i = 0;
        while (i < n) assert_true(ft__dq_utf8_next(bj, n, &i) >= 0);
        assert_non_null(strstr(bj, "ab\xEF\xBF\xBD cd ef"));
        free(bj);
        ft_dq_report_free(&br);
        ft_dq_table_free(&b);
    }
    const char *html = ft_test_path(g_tmp, "planted.html");
    assert_int_equal(ft_dq_report_write_html(&r, html), FT_OK);
    char *page = NULL;
    size_t len = 0;
    assert_int_equal(ft_file_read_all(html, &page, &len), FT_OK);
    assert_non_null(strstr(page, "<svg"));
    assert_non_null(strstr(page, "jane.doe@example.org"));
    assert_null(strstr(page, "<script"));
    free(page);
    ft_dq_report_free(&r);
    ft_dq_table_free(&t);
}

/* real tweets (WNUT17): URLs, mentions and hashtags counted from the tokens by the fixture script */
static void test_tweets(void **state) {
    (void)state;
    const cJSON *e = cJSON_GetObjectItem(g_exp, "tweets");
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, ft_fixture("dataquality/tweets.txt"), NULL), FT_OK);
    assert_int_equal(t.format, FT_DQ_TEXT);
    ft_dq_report r;
    assert_int_equal(ft_dq_inspect(&r, &t, NULL, NULL), FT_OK);
    assert_int_equal(r.records, jnum(e, "records"));
    assert_int_equal(r.hit_records[FT_DQ_HIT_URL], jnum(e, "url_records"));
    assert_int_equal(r.hit_count[FT_DQ_HIT_URL], jnum(e, "url_matches"));
    ft_dq_report_free(&r);
    ft_dq_clean_options o = ft_dq_clean_default_options();
    assert_int_equal(ft_dq_steps_parse("urls,mentions,hashtags", o.steps, FT_DQ_STEPS * 2, &o.nsteps), FT_OK);
    uint8_t *keep = malloc((size_t)t.n);
    ft_dq_clean_stats st;
    assert_int_equal(ft_dq_clean(&t, keep, &o, &st), FT_OK);
    printf("  tweets: %lld records, %lld with URLs, %lld with mentions, %lld with hashtags cleaned\n", (long long)t.n,
           (long long)st.changed[0], (long long)st.changed[1], (long long)st.changed[2]);
    assert_int_equal(st.changed[0], jnum(e, "url_records"));
    assert_int_equal(st.changed[1], jnum(e, "mention_records"));
    assert_int_equal(st.changed[2], jnum(e, "hashtag_records"));
    for (int64_t i = 0; i < t.n; i++) {
        const char *c = t.cell[i];
        assert_null(strstr(c, "http://"));
        assert_null(strstr(c, "https://"));
        for (const char *p = c; *p; p++)
            if ((*p == '@' || *p == '#') && (p == c || p[-1] == ' ') && ((p[1] | 0x20) >= 'a' && (p[1] | 0x20) <= 'z'))
                fail_msg("record %lld still has %s", (long long)i, p);
    }
    free(keep);
    ft_dq_table_free(&t);
}

/* ---- cleaning ---- */
static char *clean_one(const char *steps, const char *text) {
    char json[1024];
    snprintf(json, sizeof json, "{\"text\": \"%s\"}\n", text);
    const char *in = write_tmp("one.jsonl", json);
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, in, NULL), FT_OK);
    ft_dq_clean_options o = ft_dq_clean_default_options();
    o.stopwords_dir = "data/stopwords";
    o.min_words = 0;
    assert_int_equal(ft_dq_steps_parse(steps, o.steps, FT_DQ_STEPS * 2, &o.nsteps), FT_OK);
    uint8_t keep[1];
    ft_dq_clean_stats st;
    assert_int_equal(ft_dq_clean(&t, keep, &o, &st), FT_OK);
    char *r = strdup(t.cell[0]);
    ft_dq_table_free(&t);
    return r;
}

static void expect_clean(const char *steps, const char *in, const char *want) {
    char *got = clean_one(steps, in);
    if (strcmp(got, want)) printf("  %s: '%s' -> '%s', expected '%s'\n", steps, in, got, want);
    assert_string_equal(got, want);
    free(got);
}

static void test_clean_steps(void **state) {
    (void)state;
    expect_clean("lower", "Ünïcode ÉCOLE Straße", "ünïcode école straße");
    expect_clean("html", "<p>Great <b>service</b> &amp; fast&#33; &#x263A;</p>", " Great service & fast! \xE2\x98\xBA ");
    expect_clean("punct", "Well... it's a state-of-the-art film, 3.5 stars!", "Well    it's a state-of-the-art film  3.5 stars ");
    expect_clean("space", "  a \\t b \\n\\n c  ", "a b c");
    expect_clean("urls,space", "see https://example.com/x?y=1. or www.a.org, mail a.b@c.de now", "see . or , mail now");
    expect_clean("mentions,space", "@bob thanks! mail me@x.org", "thanks! mail me@x.org");
    expect_clean("hashtags", "so #happy today #2", "so happy today #2");
    expect_clean("stopwords", "The movie was not what I expected , but it is good", "movie expected , good");
    expect_clean("stem", "Running runners easily generously", "run runner easili generous");
    expect_clean("lower,html,punct,space", "<i>Hello</i>, WORLD!!", "hello world");
}

static void test_clean_filters_and_log(void **state) {
    (void)state;
    const char *out = ft_test_path(g_tmp, "planted_clean.jsonl"), *log = ft_test_path(g_tmp, "planted_clean.log");
    ft_dq_clean_options o = ft_dq_clean_default_options();
    o.stopwords_dir = "data/stopwords";
    assert_int_equal(ft_dq_steps_parse("html,urls,mentions,hashtags,space,conflicts,length,lang", o.steps, FT_DQ_STEPS * 2, &o.nsteps), FT_OK);
    ft_dq_clean_stats st;
    assert_int_equal(ft_dq_clean_file(ft_fixture("dataquality/planted.jsonl"), out, log, NULL, &o, &st), FT_OK);
    assert_int_equal(st.records, 15);
    /* conflicts: 3 identical texts labelled pos, neg, pos -> the neg one dropped (majority pos) */
    assert_int_equal(st.conflict_texts, 1);
    assert_int_equal(st.changed[5], 1);
    /* length: the empty text; lang: fr, de, es */
    assert_int_equal(st.changed[6], 1);
    assert_int_equal(st.changed[7], 3);
    assert_int_equal(st.kept, 15 - 1 - 1 - 3);
    assert_int_equal(st.changed[0], 1);   /* html: line 4 */
    assert_int_equal(st.changed[1], 3);   /* urls: lines 1, 2 (e-mail), 14 */
    assert_int_equal(st.changed[2], 2);   /* mentions: lines 2, 14 */
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, out, NULL), FT_OK);
    assert_int_equal(t.n, st.kept);
    assert_string_equal(t.cell[0], "Loving the new release! Details at . launch AI");
    assert_string_equal(t.cell[1 * t.nfields], "my order never arrived, mail me at");
    assert_string_equal(t.cell[3 * t.nfields], "Great service & fast delivery");
    ft_dq_table_free(&t);
    /* the log: one line per change or drop, each naming record, line and step */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ft_file_read_all(log, &text, &len), FT_OK);
    int64_t lines = 0, drops = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    for (char *p = text; (p = strstr(p, "\"drop\"")); p++) drops++;
    int64_t changes = 0;
    for (int k = 0; k < st.nsteps; k++) changes += st.changed[k];
    assert_int_equal(drops, st.records - st.kept);
    assert_true(lines >= changes);   /* a record changed in two fields logs twice */
    assert_non_null(strstr(text, "\"line\": 4, \"step\": \"html\""));
    assert_non_null(strstr(text, "\"line\": 12, \"step\": \"conflicts\""));
    free(text);
}

static void test_clean_neardup_sst2(void **state) {
    (void)state;
    /* the greedy rule (drop b when a is kept, pairs by b) over the brute-force pairs gives the expected drops */
    const cJSON *e = cJSON_GetObjectItem(g_exp, "sst2");
    int64_t n = jnum(e, "records");
    uint8_t *keep = malloc((size_t)n);
    memset(keep, 1, (size_t)n);
    const cJSON *pairs = cJSON_GetObjectItem(e, "pairs");
    int64_t np = cJSON_GetArraySize(pairs), expect = 0;
    for (int64_t b = 0; b < n; b++)
        for (const cJSON *x = pairs->child; x; x = x->next) {
            int64_t pa = (int64_t)cJSON_GetArrayItem(x, 0)->valuedouble, pb = (int64_t)cJSON_GetArrayItem(x, 1)->valuedouble;
            if (pb == b && keep[pa] && keep[b]) { keep[b] = 0; expect++; }
        }
    const char *out = ft_test_path(g_tmp, "sst2_clean.tsv");
    ft_dq_clean_options o = ft_dq_clean_default_options();
    assert_int_equal(ft_dq_steps_parse("neardup", o.steps, FT_DQ_STEPS * 2, &o.nsteps), FT_OK);
    ft_dq_clean_stats st;
    assert_int_equal(ft_dq_clean_file(ft_fixture("dataquality/sst2_train.tsv"), out, NULL, NULL, &o, &st), FT_OK);
    printf("  sst2 neardup: %lld pairs, %lld records dropped (expected %lld)\n", (long long)np, (long long)st.changed[0], (long long)expect);
    assert_int_equal(st.changed[0], expect);
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, out, NULL), FT_OK);
    assert_int_equal(t.n, n - expect);
    ft_dq_report r;
    assert_int_equal(ft_dq_inspect(&r, &t, NULL, NULL), FT_OK);
    assert_int_equal(r.npairs, 0);
    assert_int_equal(r.exact_dup, 0);
    ft_dq_report_free(&r);
    ft_dq_table_free(&t);
    free(keep);
}

/* ---- stemming parity with NLTK ---- */
static void test_snowball_equals_nltk(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ft_file_read_all(ft_fixture("dataquality/snowball_en.tsv"), &text, &len), FT_OK);
    ft_dq_stemmer *s;
    assert_int_equal(ft_dq_stemmer_new(&s, "english"), FT_OK);
    int64_t n = 0, diff = 0;
    char out[256];
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        int k = ft_dq_stem(s, line, strlen(line), out, sizeof out);
        assert_true(k >= 0);
        if (strcmp(out, tab + 1)) {
            if (diff < 10) printf("  %s: libstemmer %s, NLTK %s\n", line, out, tab + 1);
            diff++;
        }
        n++;
    }
    printf("  Snowball English: %lld words, %lld differ from NLTK's SnowballStemmer\n", (long long)n, (long long)diff);
    assert_true(n > 5000);
    assert_int_equal(diff, 0);
    ft_dq_stemmer_free(s);
    /* Porter (NLTK's PorterStemmer) is the other choice */
    assert_int_equal(ft_dq_stemmer_new(&s, "porter"), FT_OK);
    assert_int_equal(ft_dq_stem(s, "generously", 10, out, sizeof out), 5);
    assert_string_equal(out, "gener");
    ft_dq_stemmer_free(s);
    assert_int_equal(ft_dq_stemmer_new(&s, "klingon"), FT_ERR_INVALID);
    free(text);
}

/* ---- tables written back ---- */
static void test_table_roundtrip(void **state) {
    (void)state;
    static const struct { const char *name, *content; ft_dq_format f; } cases[] = {
        {"a.csv", "text,label\n\"a, \"\"quoted\"\"\nline\",1\nplain,0\n", FT_DQ_CSV},
        {"a.tsv", "sentence\tlabel\nhello world \t1\n\"tab\there\"\t0\n", FT_DQ_TSV},
        {"a.txt", "Hi there . __eou__ Hello ! __eou__\nBye . __eou__\n", FT_DQ_DAILYDIALOG},
        {"a.json", "[\n {\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Yo\"}]},\n"
                   " {\"messages\": [{\"role\": \"user\", \"content\": \"A\"}]}\n]\n", FT_DQ_JSON},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *in = write_tmp(cases[c].name, cases[c].content);
        ft_dq_table t, u;
        assert_int_equal(ft_dq_table_load(&t, in, NULL), FT_OK);
        assert_int_equal(t.format, cases[c].f);
        char out[300];
        snprintf(out, sizeof out, "%s", ft_test_path(g_tmp, "out"));
        strcat(out, strrchr(cases[c].name, '.'));
        assert_int_equal(ft_dq_table_write(&t, NULL, out), FT_OK);
        assert_int_equal(ft_dq_table_load(&u, out, NULL), FT_OK);
        assert_int_equal(u.n, t.n);
        assert_int_equal(u.nfields, t.nfields);
        for (int64_t i = 0; i < t.n * t.nfields; i++) {
            assert_true((t.cell[i] == NULL) == (u.cell[i] == NULL));
            if (t.cell[i]) assert_string_equal(t.cell[i], u.cell[i]);
        }
        ft_dq_table_free(&u);
        ft_dq_table_free(&t);
    }
    /* chat JSON: the text is the contents, not the roles; line numbers of list elements */
    ft_dq_table t;
    assert_int_equal(ft_dq_table_load(&t, ft_test_path(g_tmp, "a.json"), NULL), FT_OK);
    assert_string_equal(t.cell[0], "Hi\nYo");
    assert_int_equal(t.line[0], 2);
    assert_int_equal(t.line[1], 3);
    ft_dq_table_free(&t);
    /* cleaning a chat file changes the contents, never the roles; the other keys stay */
    {
        const char *in = write_tmp("chat.jsonl", "{\"id\": 7, \"messages\": [{\"role\": \"User\", \"content\": \"HELLO  There\"}, "
                                                 "{\"role\": \"assistant\", \"content\": \"<b>Hi</b>!\"}]}\n");
        const char *outp = ft_test_path(g_tmp, "chat_clean.jsonl");
        ft_dq_clean_options o = ft_dq_clean_default_options();
        assert_int_equal(ft_dq_steps_parse("lower,html,space", o.steps, FT_DQ_STEPS * 2, &o.nsteps), FT_OK);
        ft_dq_clean_stats st;
        assert_int_equal(ft_dq_clean_file(in, outp, NULL, NULL, &o, &st), FT_OK);
        char *text = NULL;
        assert_int_equal(ft_file_read_all(outp, &text, NULL), FT_OK);
        assert_string_equal(text, "{\"id\":7,\"messages\":[{\"role\":\"User\",\"content\":\"hello there\"},"
                                  "{\"role\":\"assistant\",\"content\":\"hi!\"}]}\n");
        free(text);
    }
    /* DailyDialog: the turns are separate units for cleaning */
    assert_int_equal(ft_dq_table_load(&t, ft_test_path(g_tmp, "a.txt"), NULL), FT_OK);
    assert_string_equal(t.cell[0], "Hi there .\nHello !");
    ft_dq_table_free(&t);
    /* errors */
    assert_int_equal(ft_dq_table_load(&t, write_tmp("empty.jsonl", "\n\n"), NULL), FT_ERR_FORMAT);
    ft_dq_table_options to = ft_dq_table_default_options();
    to.label_column = "nope";
    assert_int_equal(ft_dq_table_load(&t, ft_test_path(g_tmp, "a.csv"), &to), FT_ERR_NOT_FOUND);
    int steps[4], n;
    assert_int_equal(ft_dq_steps_parse("lower,bogus", steps, 4, &n), FT_ERR_INVALID);
}

/* ---- the command line ---- */
static void test_cli(void **state) {
    (void)state;
    char *out = NULL;
    const char *js = ft_test_path(g_tmp, "cli.json"), *html = ft_test_path(g_tmp, "cli.html");
    char train[512];   /* ft_fixture returns one static buffer */
    snprintf(train, sizeof train, "%s", ft_fixture("dataquality/sst2_train.tsv"));
    assert_int_equal(ft_test_finetune(&out, "data inspect %s --valid %s --json %s --html %s", train,
                                      ft_fixture("dataquality/sst2_dev.tsv"), js, html), 0);
    assert_non_null(strstr(out, "duplicates: 293 exact"));
    free(out);
    cJSON *j;
    assert_int_equal(ft__json_parse_file(&j, js), FT_OK);
    assert_int_equal(jnum(cJSON_GetObjectItem(j, "overlap"), "exact"), 10);
    cJSON_Delete(j);
    assert_true(ft_path_exists(html));
    const char *clean = ft_test_path(g_tmp, "cli_clean.tsv");
    assert_int_equal(ft_test_finetune(&out, "data clean %s --out %s --steps lower,punct,space,neardup,conflicts --conflicts drop",
                                      ft_fixture("dataquality/sst2_train.tsv"), clean), 0);
    assert_non_null(strstr(out, "neardup"));
    free(out);
    /* the default steps on a file without labels: conflicts is skipped, said so */
    assert_int_equal(ft_test_finetune(&out, "data clean %s --out %s", ft_fixture("dataquality/dailydialog.txt"),
                                      ft_test_path(g_tmp, "dd_clean.txt")), 0);
    assert_non_null(strstr(out, "conflicts  0 records dropped (skipped: no label field)"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "data clean %s --out %s --steps bogus", ft_fixture("dataquality/sst2_train.tsv"), clean), 1);
    assert_non_null(strstr(out, "unknown cleaning step 'bogus'"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "data nope"), 2);
    free(out);
}

/* finetune train --clean: the training file gets every step, the validation file the text steps; the run trains on
 * the cleaned copies in RUN_DIR/clean/ and config.json points at them */
static void test_train_clean(void **state) {
    (void)state;
    char run[600], model[512], train[512], *out = NULL;
    snprintf(run, sizeof run, "%s", ft_test_path(g_tmp, "run_clean"));
    snprintf(model, sizeof model, "%s", ft_fixture("train_encoder/tiny_bert"));
    snprintf(train, sizeof train, "%s", ft_fixture("train_encoder/sst_train.tsv"));
    assert_int_equal(ft_test_finetune(&out, "train --task classify --model %s --data %s --val-data %s --text-column sentence "
                                      "--epochs 1 --batch-size 16 --clean lower,punct,space,neardup --out %s --no-db",
                                      model, train, ft_fixture("train_encoder/sst_dev.tsv"), run), 0);
    assert_non_null(strstr(out, "clean (lower,punct,space,neardup)"));
    free(out);
    char path[800];
    ft_dq_table t, orig;
    snprintf(path, sizeof path, "%s/clean/train.tsv", run);
    assert_int_equal(ft_dq_table_load(&t, path, NULL), FT_OK);
    assert_int_equal(ft_dq_table_load(&orig, train, NULL), FT_OK);
    assert_true(t.n > 100 && t.n <= orig.n);
    for (int64_t i = 0; i < t.n; i++) {
        const char *c = t.cell[i * t.nfields];
        for (const char *p = c; *p; p++) assert_true(!(*p >= 'A' && *p <= 'Z') && *p != ',' && *p != '!');
        assert_true(c[0] != ' ' && !strstr(c, "  "));
    }
    ft_dq_table_free(&orig);
    ft_dq_table_free(&t);
    snprintf(path, sizeof path, "%s/clean/val.tsv", run);
    assert_int_equal(ft_dq_table_load(&t, path, NULL), FT_OK);
    assert_int_equal(ft_dq_table_load(&orig, ft_fixture("train_encoder/sst_dev.tsv"), NULL), FT_OK);
    assert_int_equal(t.n, orig.n);   /* text steps only: no record dropped */
    ft_dq_table_free(&orig);
    ft_dq_table_free(&t);
    cJSON *cfg;
    snprintf(path, sizeof path, "%s/config.json", run);
    assert_int_equal(ft__json_parse_file(&cfg, path), FT_OK);
    assert_non_null(strstr(ft__json_str(cfg, "data", ""), "/clean/train.tsv"));
    assert_string_equal(ft__json_str(cfg, "clean", ""), "lower,punct,space,neardup");
    cJSON_Delete(cfg);
    /* a bad step is refused before training */
    assert_int_equal(ft_test_finetune(&out, "train --task classify --model %s --data %s --text-column sentence --clean bogus --out %s_bad --no-db",
                                      model, train, run), 1);
    assert_non_null(strstr(out, "unknown cleaning step"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_near_duplicates_constructed),
        cmocka_unit_test(test_inspect_sst2),
        cmocka_unit_test(test_inspect_dailydialog_bitext),
        cmocka_unit_test(test_inspect_planted),
        cmocka_unit_test(test_tweets),
        cmocka_unit_test(test_clean_steps),
        cmocka_unit_test(test_clean_filters_and_log),
        cmocka_unit_test(test_clean_neardup_sst2),
        cmocka_unit_test(test_snowball_equals_nltk),
        cmocka_unit_test(test_table_roundtrip),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_train_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
