/* test_augment.c — data augmentation (augment.h, wordnet.h) and `finetune data augment`.
 *  - the WordNet reader on a hand-made database (offsets, multi-word lemmas, adjective markers, malformed lines)
 *    and on Debian's wordnet-base files (skipped when /usr/share/wordnet is absent: scripts/setup.sh installs it);
 *  - EDA on the SST-2 subset (tests/fixtures/classify/sst2_dev200.tsv): every synonym replacement is a WordNet
 *    synonym of the word it replaces, insertions keep the original as a subsequence, swaps keep the words,
 *    deletions leave a non-empty subsequence, n copies per text, the same seed gives the same texts;
 *  - counterfactual swaps: exact outputs, case kept, both directions, every changed word is its partner;
 *  - masked-LM substitution with the tiny BERT fixture (a fresh MLM head): whole words, different from the
 *    original, among the model's top predictions, reproducible;
 *  - the command: labels kept (checked through augmented_from against the input), counts, --labels, the
 *    same command twice gives the same file. */
#include "testutil.h"

#include "finetune/augment.h"
#include "finetune/classify_data.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/predict.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"
#include "finetune/wordnet.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[256];
static ft_wordnet *g_wn;   /* the system database, NULL when absent */

static int setup(void **s) {
    (void)s;
    if (ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_augment") != 0) return -1;
    char idx[512];
    snprintf(idx, sizeof idx, "%s/index.noun", ft_wordnet_default_dir());
    if (ft_path_exists(idx)) {
        if (ft_wordnet_open(&g_wn, NULL) != FT_OK) return -1;
    } else {
        printf("SKIP (WordNet parts): %s not found (install Debian's wordnet-base: scripts/setup.sh)\n", idx);
    }
    return 0;
}
static int teardown(void **s) {
    (void)s;
    ft_wordnet_close(g_wn);
    return ft_test_tmpdir_remove(g_dir);
}

static int has(char **v, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], w)) return 1;
    return 0;
}

/* ---- WordNet ---- */

static void test_wordnet_memory(void **s) {
    (void)s;
    /* synset lines sit at the byte offsets the index names */
    const char *data =
        "  1 license line\n"                                                          /* 0..16 */
        "00000017 05 n 03 movie 0 film 0 motion_picture 0 000 | a film\n"            /* 17..78 */
        "00000079 05 n 02 goose 0 fathead 0 000 | a silly person\n";
    const char *index =
        "  1 license line\n"
        "film n 1 0 1 0 00000017  \n"
        "goose n 2 1 @ 2 0 00000079 00000017  \n"
        "broken n 3 0 1 0 00000017\n"           /* synset_cnt disagrees with the offsets: skipped */
        "far n 1 0 1 0 99999999\n"              /* offset outside the data: skipped */
        "odd n 1 0 1 0 00000005\n";             /* offset not at a line start: no words */
    const char *adj_data = "00000000 00 s 02 big(a) 0 large 0 000 | g\n";
    const char *adj_index = "big a 1 0 1 0 00000000\nlarge a 1 0 1 0 00000000\n";
    ft_wordnet_files f;
    memset(&f, 0, sizeof f);
    f.index[FT_WN_NOUN] = index; f.index_len[FT_WN_NOUN] = strlen(index);
    f.data[FT_WN_NOUN] = data; f.data_len[FT_WN_NOUN] = strlen(data);
    f.exc[FT_WN_NOUN] = "geese goose\n"; f.exc_len[FT_WN_NOUN] = 12;
    f.index[FT_WN_ADJ] = adj_index; f.index_len[FT_WN_ADJ] = strlen(adj_index);
    f.data[FT_WN_ADJ] = adj_data; f.data_len[FT_WN_ADJ] = strlen(adj_data);
    ft_wordnet *wn;
    assert_int_equal(ft_wordnet_parse(&wn, &f), FT_OK);
    assert_int_equal(ft_wordnet_lemma_count(wn, FT_WN_NOUN), 3);   /* film, goose, odd ("far" points outside the data) */
    char **v; int n;
    assert_int_equal(ft_wordnet_synonyms(wn, "Films", &v, &n), FT_OK);   /* -s detached, case folded */
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "movie");
    assert_string_equal(v[1], "motion picture");
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_synonyms(wn, "geese", &v, &n), FT_OK);  /* exception list, then two synsets */
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "fathead");
    assert_true(has(v, n, "film"));
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_synonyms(wn, "big", &v, &n), FT_OK);    /* the (a) marker dropped */
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "large");
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_synonyms(wn, "large", &v, &n), FT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "big");
    ft_wordnet_strings_free(v, n);
    const char *none[] = {"broken", "far", "odd", "absent", ""};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ft_wordnet_synonyms(wn, none[i], &v, &n), FT_OK);
        assert_int_equal(n, 0);
        ft_wordnet_strings_free(v, n);
    }
    ft_wordnet_close(wn);
    ft_wordnet *bad;
    assert_int_equal(ft_wordnet_open(&bad, g_dir), FT_ERR_NOT_FOUND);
    assert_non_null(strstr(ft_last_error(), "wordnet-base"));
}

static void test_wordnet_system(void **s) {
    (void)s;
    if (!g_wn) { skip(); return; }
    printf("WordNet: %lld lemmas\n", (long long)ft_wordnet_lemma_count(g_wn, -1));
    assert_true(ft_wordnet_lemma_count(g_wn, -1) > 100000);
    char **v; int n;
    assert_int_equal(ft_wordnet_synonyms(g_wn, "movie", &v, &n), FT_OK);
    assert_true(has(v, n, "film") && has(v, n, "picture") && has(v, n, "flick") && has(v, n, "motion picture"));
    assert_false(has(v, n, "movie"));
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_base_forms(g_wn, "geese", FT_WN_NOUN, &v, &n), FT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "goose");
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_base_forms(g_wn, "running", FT_WN_VERB, &v, &n), FT_OK);
    assert_true(has(v, n, "run"));
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_base_forms(g_wn, "better", FT_WN_ADJ, &v, &n), FT_OK);
    assert_true(has(v, n, "good") && has(v, n, "well"));
    ft_wordnet_strings_free(v, n);
    assert_int_equal(ft_wordnet_synonyms(g_wn, "xqzzyv", &v, &n), FT_OK);
    assert_int_equal(n, 0);
}

/* ---- EDA ---- */

typedef struct words { char *w[512]; int n; char *buf; } words;
static void split(words *v, const char *text) {
    v->buf = strdup(text);
    v->n = 0;
    for (char *t = strtok(v->buf, " \t\n"); t && v->n < 512; t = strtok(NULL, " \t\n")) v->w[v->n++] = t;
}

/* a (from word j) = o (from word i) with some words replaced, each by one WordNet synonym (possibly several
 * words) of the word it replaces; returns the replaced words, -1 when no such reading exists (backtracking:
 * "work" has both "act" and "act upon") */
static int match_sr(const words *o, int i, const words *a, int j) {
    if (i == o->n) return j == a->n ? 0 : -1;
    if (j < a->n && !strcmp(a->w[j], o->w[i])) {
        int r = match_sr(o, i + 1, a, j + 1);
        if (r >= 0) return r;
    }
    char **syn; int ns, best = -1;
    assert_int_equal(ft_wordnet_synonyms(g_wn, o->w[i], &syn, &ns), FT_OK);
    for (int k = 0; k < ns && best < 0; k++) {
        words sw;
        char low[256];
        snprintf(low, sizeof low, "%s", syn[k]);
        for (char *c = low; *c; c++) *c = (char)tolower((unsigned char)*c);
        split(&sw, low);
        int m = sw.n > 0;
        for (int t = 0; t < sw.n && m; t++) m = j + t < a->n && !strcmp(a->w[j + t], sw.w[t]);
        if (m) {
            int r = match_sr(o, i + 1, a, j + sw.n);
            if (r >= 0) best = r + 1;
        }
        free(sw.buf);
    }
    ft_wordnet_strings_free(syn, ns);
    return best;
}
static int check_sr(const words *o, const words *a) { return match_sr(o, 0, a, 0); }

static int subsequence(const words *small, const words *big) {
    int j = 0;
    for (int i = 0; i < big->n && j < small->n; i++)
        if (!strcmp(big->w[i], small->w[j])) j++;
    return j == small->n;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_eda_on_sst2(void **s) {
    (void)s;
    if (!g_wn) { skip(); return; }
    ft_cls_options co = ft_cls_default_options();
    co.text_column = "sentence";
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, ft_fixture("classify/sst2_dev200.tsv"), &co), FT_OK);
    int64_t counts[5] = {0}, sr_words = 0, same_seed = 0, other_seed_diff = 0;
    for (int64_t i = 0; i < ds.n; i++) {
        words o;
        split(&o, ds.text[i]);
        for (int op = FT_AUG_SR; op <= FT_AUG_RD; op++) {
            ft_rng r;
            ft_rng_seed(&r, 100 + (uint64_t)i);
            char *out;
            assert_int_equal(ft_eda_apply(&out, ds.text[i], (ft_aug_op)op, 0.2, g_wn, &r), FT_OK);
            words a;
            split(&a, out);
            int differs = a.n != o.n;
            for (int k = 0; k < a.n && !differs; k++) differs = strcmp(a.w[k], o.w[k]) != 0;
            counts[op] += differs;
            switch (op) {
            case FT_AUG_SR: {
                int c = check_sr(&o, &a);
                if (c < 0) printf("SR: '%s' -> '%s'\n", ds.text[i], out);
                assert_true(c >= 0);
                sr_words += c;
                break;
            }
            case FT_AUG_RI: assert_true(subsequence(&o, &a)); assert_true(a.n >= o.n); break;
            case FT_AUG_RS: {
                assert_int_equal(a.n, o.n);
                qsort(a.w, (size_t)a.n, sizeof *a.w, cmp_str);
                words ob;
                split(&ob, ds.text[i]);
                qsort(ob.w, (size_t)ob.n, sizeof *ob.w, cmp_str);
                for (int k = 0; k < a.n; k++) assert_string_equal(a.w[k], ob.w[k]);
                free(ob.buf);
                break;
            }
            case FT_AUG_RD: assert_true(a.n >= 1 && a.n <= o.n); assert_true(subsequence(&a, &o)); break;
            }

            free(a.buf);
            free(out);
        }
        /* eda(): n copies, reproducible by seed */
        ft_eda_options eo = ft_eda_default_options();
        eo.n_aug = 5;
        char **t1, **t2, **t3; ft_aug_op *k1, *k2, *k3; int n1, n2, n3;
        ft_rng r1, r2, r3;
        ft_rng_seed(&r1, 7); ft_rng_seed(&r2, 7); ft_rng_seed(&r3, 8);
        assert_int_equal(ft_eda_augment(&t1, &k1, &n1, ds.text[i], &eo, g_wn, &r1), FT_OK);
        assert_int_equal(ft_eda_augment(&t2, &k2, &n2, ds.text[i], &eo, g_wn, &r2), FT_OK);
        assert_int_equal(ft_eda_augment(&t3, &k3, &n3, ds.text[i], &eo, g_wn, &r3), FT_OK);
        assert_int_equal(n1, 5);
        assert_int_equal(n2, 5);
        int same = 1, diff = 0;
        for (int k = 0; k < 5; k++) {
            same &= !strcmp(t1[k], t2[k]) && k1[k] == k2[k];
            diff |= strcmp(t1[k], t3[k]) != 0;
        }
        same_seed += same;
        other_seed_diff += diff;
        ft_aug_texts_free(t1, n1); ft_aug_texts_free(t2, n2); ft_aug_texts_free(t3, n3);
        free(k1); free(k2); free(k3);
        free(o.buf);
    }
    printf("EDA on %lld SST-2 texts (alpha 0.2): changed by SR %lld (%lld words replaced by WordNet synonyms), RI %lld, RS %lld, RD %lld;"
           " same seed same copies %lld/%lld, another seed different %lld/%lld\n", (long long)ds.n, (long long)counts[FT_AUG_SR],
           (long long)sr_words, (long long)counts[FT_AUG_RI], (long long)counts[FT_AUG_RS], (long long)counts[FT_AUG_RD],
           (long long)same_seed, (long long)ds.n, (long long)other_seed_diff, (long long)ds.n);
    assert_int_equal(same_seed, ds.n);
    assert_true(other_seed_diff > ds.n / 2);
    assert_true(counts[FT_AUG_SR] > ds.n / 2 && sr_words >= counts[FT_AUG_SR]);
    assert_true(counts[FT_AUG_RI] > ds.n / 2 && counts[FT_AUG_RD] > ds.n / 4 && counts[FT_AUG_RS] > ds.n / 2);
    ft_cls_dataset_free(&ds);
}

/* ---- counterfactual ---- */

static ft_cf_pairs *load_pairs(void) {
    char path[512];
    snprintf(path, sizeof path, "data/augment/counterfactual_en.txt");
    ft_cf_pairs *p;
    assert_int_equal(ft_cf_pairs_load(&p, path), FT_OK);
    return p;
}

static void test_counterfactual(void **s) {
    (void)s;
    ft_cf_pairs *p = load_pairs();
    assert_true(ft_cf_pairs_count(p) > 50);
    struct { const char *in, *out; int swaps; } cases[] = {
        {"He said his wife was a great actress.", "She said her husband was a great actor.", 4},
        {"SHE gave HIM her book; the Queen smiled at Mary's brother", "HE gave HER his book; the King smiled at John's sister", 6},
        {"men and women, boys and girls", "women and men, girls and boys", 4},
        {"the expressive power of the camera", "the expressive power of the camera", 0},
        {"theme, heat, hence: no partial words", "theme, heat, hence: no partial words", 0},
        {"caf\xc3\xa9he \xc3\xa9he he", "caf\xc3\xa9he \xc3\xa9he she", 1},
        {"", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out; int n;
        assert_int_equal(ft_cf_swap(&out, &n, p, cases[i].in), FT_OK);
        printf("  '%s' -> '%s' (%d)\n", cases[i].in, out, n);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, cases[i].swaps);
        free(out);
    }
    /* both directions: a swap of a swap is the text again when no word is in two pairs */
    char *a, *b;
    assert_int_equal(ft_cf_swap(&a, NULL, p, "The King told his son that the actor was a man"), FT_OK);
    assert_int_equal(ft_cf_swap(&b, NULL, p, a), FT_OK);
    assert_string_equal(a, "The Queen told her daughter that the actress was a woman");
    assert_string_equal(b, "The King told his son that the actor was a man");
    free(a); free(b);
    ft_cf_pairs_free(p);
    ft_cf_pairs *bad;
    assert_int_equal(ft_cf_pairs_parse(&bad, "he she\nonlyone\n", 16, "pairs.txt"), FT_ERR_FORMAT);
    assert_non_null(strstr(ft_last_error(), "pairs.txt: line 2"));
    assert_int_equal(ft_cf_pairs_parse(&bad, "# nothing\n\n", 11, "p"), FT_ERR_FORMAT);
    assert_int_equal(ft_cf_pairs_parse(&bad, "He she\n", 7, "p"), FT_ERR_FORMAT);
}

/* ---- masked LM ---- */

static void test_mlm(void **s) {
    (void)s;
    const char *dir = ft_fixture("train_encoder/tiny_bert");
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, d), FT_OK);
    ft_encoder_options eo = ft_encoder_default_options();
    eo.task = FT_TASK_MLM;
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load_ex(&m, d, &eo, NULL), FT_OK);
    ft_mlm_aug_options o = ft_mlm_aug_default_options();
    const char *texts[] = {"the movie is good and the story is sweet", "a funny film", "it is a bad movie"};
    int replaced_total = 0;
    for (int t = 0; t < 3; t++) {
        ft_rng r1, r2;
        ft_rng_seed(&r1, 5); ft_rng_seed(&r2, 5);
        char *a, *b; int na, nb;
        assert_int_equal(ft_mlm_augment(&a, &na, m, tok, texts[t], &o, &r1), FT_OK);
        assert_int_equal(ft_mlm_augment(&b, &nb, m, tok, texts[t], &o, &r2), FT_OK);
        printf("  mlm: '%s' -> '%s' (%d replaced)\n", texts[t], a, na);
        assert_string_equal(a, b);
        words wo, wa;
        split(&wo, texts[t]);
        split(&wa, a);
        assert_int_equal(wo.n, wa.n);
        int diff = 0, at = -1;
        for (int i = 0; i < wo.n; i++) {
            if (!strcmp(wo.w[i], wa.w[i])) continue;
            diff++;
            at = i;
            for (char *c = wa.w[i]; *c; c++) assert_true(isalpha((unsigned char)*c));
            assert_false(ft_aug_is_stop_word(wo.w[i]));
        }
        assert_int_equal(diff, na);
        replaced_total += na;
        /* one replacement: the new word is among the model's top-k for that masked word */
        if (na == 1) {
            char masked[256] = "";
            for (int i = 0; i < wo.n; i++) {
                strcat(masked, i ? " " : "");
                strcat(masked, i == at ? "[MASK]" : wo.w[i]);
            }
            ft_predict_options po = ft_predict_default_options();
            po.top_k = o.top_k;
            ft_prediction p;
            assert_int_equal(ft_encoder_predict(&p, m, tok, masked, NULL, &po), FT_OK);
            int found = 0;
            for (int k = 0; k < p.top_k; k++) found |= !strcmp(p.tokens[k], wa.w[at]);
            assert_true(found);
            ft_prediction_free(&p);
        }
        free(wo.buf); free(wa.buf); free(a); free(b);
    }
    assert_true(replaced_total >= 2);
    ft_encoder_close(m);
    /* a model with another task is refused */
    eo.task = FT_TASK_CLASSIFY;
    assert_int_equal(ft_encoder_load_ex(&m, d, &eo, NULL), FT_OK);
    ft_rng r;
    ft_rng_seed(&r, 1);
    char *out;
    assert_int_equal(ft_mlm_augment(&out, NULL, m, tok, "a film", &o, &r), FT_ERR_INVALID);
    ft_encoder_close(m);
    ft_tokenizer_free(tok);
}

/* ---- the command ---- */

/* rows of a JSONL output: [n] cJSON objects */
static cJSON **read_jsonl(const char *path, int *n) {
    char *buf; size_t len;
    assert_int_equal(ft_file_read_all(path, &buf, &len), FT_OK);
    cJSON **rows = NULL;
    *n = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        rows = realloc(rows, (size_t)(*n + 1) * sizeof *rows);
        rows[*n] = cJSON_Parse(line);
        assert_non_null(rows[*n]);
        (*n)++;
    }
    free(buf);
    return rows;
}

static void free_rows(cJSON **rows, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);
    free(rows);
}

static void test_cli(void **s) {
    (void)s;
    ft_cls_options co = ft_cls_default_options();
    co.text_column = "sentence";
    ft_cls_dataset ds;
    const char *in = ft_fixture("classify/sst2_dev200.tsv");
    char inp[512];
    snprintf(inp, sizeof inp, "%s", in);
    assert_int_equal(ft_cls_dataset_load(&ds, inp, &co), FT_OK);
    char *out;
    ft_cls_dataset back;
    if (g_wn) {
        char a1[512], a2[512];
        snprintf(a1, sizeof a1, "%s", ft_test_path(g_dir, "eda1.jsonl"));
        snprintf(a2, sizeof a2, "%s", ft_test_path(g_dir, "eda2.jsonl"));
        assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method eda --n 3 --seed 3", inp, a1), 0);
        printf("%s", out);
        free(out);
        assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method eda --n 3 --seed 3", inp, a2), 0);
        free(out);
        assert_true(ft_test_files_equal(a1, a2));
        int n;
        cJSON **rows = read_jsonl(a1, &n);
        assert_int_equal(n, (int)ds.n * 4);
        int originals = 0;
        for (int i = 0; i < n; i++) {
            const cJSON *from = cJSON_GetObjectItem(rows[i], "augmented_from"), *lab = cJSON_GetObjectItem(rows[i], "label");
            const char *op = cJSON_GetObjectItem(rows[i], "augmentation")->valuestring;
            assert_true(cJSON_IsNumber(lab));
            if (cJSON_IsNull(from)) {
                assert_string_equal(op, "original");
                assert_string_equal(cJSON_GetObjectItem(rows[i], "sentence")->valuestring, ds.text[originals]);
                assert_int_equal(lab->valueint, atoi(ds.labels.names[ds.label[originals]]));
                originals++;
            } else {
                int f = from->valueint;
                assert_true(f >= 0 && f < ds.n && f == originals - 1);   /* copies follow their original */
                assert_int_equal(lab->valueint, atoi(ds.labels.names[ds.label[f]]));
                assert_true(strstr("synonym_replacement random_insertion random_swap random_deletion", op) != NULL);
            }
        }
        assert_int_equal(originals, ds.n);
        free_rows(rows, n);
        /* reads back as a classification file with the same label ids */
        co.text_column = "sentence";
        assert_int_equal(ft_cls_dataset_load(&back, a1, &co), FT_OK);
        assert_int_equal(back.n, ds.n * 4);
        ft_cls_dataset_free(&back);
        /* --labels: only label 0 is augmented */
        char t2[512];
        snprintf(t2, sizeof t2, "%s", ft_test_path(g_dir, "zeros.tsv"));
        assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method eda --n 2 --labels 0 --no-originals", inp, t2), 0);
        free(out);
        int64_t zeros = 0;
        for (int64_t i = 0; i < ds.n; i++) zeros += !strcmp(ds.labels.names[ds.label[i]], "0");
        assert_int_equal(ft_cls_dataset_load(&back, t2, &co), FT_OK);
        assert_int_equal(back.n, zeros * 2);
        for (int64_t i = 0; i < back.n; i++) assert_string_equal(back.labels.names[back.label[i]], "0");
        ft_cls_dataset_free(&back);
    }
    /* counterfactual: one copy for each text with a listed word, every changed word its partner */
    char cf[512];
    snprintf(cf, sizeof cf, "%s", ft_test_path(g_dir, "cf.jsonl"));
    assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method counterfactual", inp, cf), 0);
    free(out);
    ft_cf_pairs *p = load_pairs();
    int expect = 0;
    for (int64_t i = 0; i < ds.n; i++) {
        words w;
        split(&w, ds.text[i]);
        int any = 0;
        for (int k = 0; k < w.n; k++) {
            char word[64]; int m = 0;
            for (const char *c = w.w[k]; *c && m < 63; c++) {
                if (isalpha((unsigned char)*c)) word[m++] = *c;
                else { word[m] = 0; any |= m && ft_cf_partner(p, word) != NULL; m = 0; }
            }
            word[m] = 0;
            any |= m && ft_cf_partner(p, word) != NULL;
        }
        expect += any;
        free(w.buf);
    }
    int n;
    cJSON **rows = read_jsonl(cf, &n);
    printf("counterfactual: %d rows, %d texts with a pair word\n", n, expect);
    assert_true(expect > 5);
    assert_int_equal(n, (int)ds.n + expect);
    for (int i = 0; i < n; i++) {
        const cJSON *from = cJSON_GetObjectItem(rows[i], "augmented_from");
        if (cJSON_IsNull(from)) continue;
        int f = from->valueint;
        assert_int_equal(cJSON_GetObjectItem(rows[i], "label")->valueint, atoi(ds.labels.names[ds.label[f]]));
        words a, b;
        split(&a, cJSON_GetObjectItem(rows[i], "sentence")->valuestring);
        split(&b, ds.text[f]);
        assert_int_equal(a.n, b.n);
        int changed = 0;
        for (int t = 0; t < a.n; t++) {
            if (!strcmp(a.w[t], b.w[t])) continue;
            changed++;
            char *cs;   /* the word swapped on its own gives the same word */
            assert_int_equal(ft_cf_swap(&cs, NULL, p, b.w[t]), FT_OK);
            assert_string_equal(cs, a.w[t]);
            free(cs);
        }
        assert_true(changed > 0);
        free(a.buf); free(b.buf);
    }
    free_rows(rows, n);
    ft_cf_pairs_free(p);
    /* mlm through the command */
    char ml[512], model[512];
    snprintf(ml, sizeof ml, "%s", ft_test_path(g_dir, "mlm.jsonl"));
    snprintf(model, sizeof model, "%s", ft_fixture("train_encoder/tiny_bert"));
    assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method mlm --model %s --n 1 --labels 1", inp, ml, model), 0);
    printf("%s", out);
    free(out);
    rows = read_jsonl(ml, &n);
    int copies = 0;
    for (int i = 0; i < n; i++)
        if (!cJSON_IsNull(cJSON_GetObjectItem(rows[i], "augmented_from"))) {
            copies++;
            assert_int_equal(cJSON_GetObjectItem(rows[i], "label")->valueint, 1);
            assert_string_equal(cJSON_GetObjectItem(rows[i], "augmentation")->valuestring, "mlm");
        }
    assert_true(copies > 0);
    free_rows(rows, n);
    /* usage errors */
    assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method nope", inp, ml), 2);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "data augment %s --out %s --method mlm", inp, ml), 2);
    free(out);
    ft_cls_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wordnet_memory),
        cmocka_unit_test(test_wordnet_system),
        cmocka_unit_test(test_eda_on_sst2),
        cmocka_unit_test(test_counterfactual),
        cmocka_unit_test(test_mlm),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
