/* test_classify_data.c — classification data: CSV/TSV/JSONL datasets, label maps, encoder inputs and
 * batches, class weights, resampling, stratified splits, CoNLL reading and subtoken label alignment.
 * Fixtures: tests/fixtures/classify (subsets of SST-2 dev, AG News test, WNUT-17 dev) and the BERT
 * vocab in tests/fixtures/tokenizer/bert. Reference ids come from HF BertTokenizerFast on that vocab. */
#include "testutil.h"

#include "finetune/classify_data.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ft_tokenizer *g_bert;

static int setup(void **state) {
    (void)state;
    char vocab[4096];  /* ft_fixture returns one static buffer */
    snprintf(vocab, sizeof vocab, "%s", ft_fixture("tokenizer/bert/vocab.txt"));
    return ft_tokenizer_load_wordpiece(&g_bert, vocab, ft_fixture("tokenizer/bert/tokenizer_config.json")) == FT_OK ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    ft_tokenizer_free(g_bert);
    return 0;
}

static int parse(ft_cls_dataset *ds, const char *path, const char *text, const ft_cls_options *o) {
    return ft_cls_dataset_parse(ds, path, text, strlen(text), o);
}

static void test_sst2_subset(void **state) {
    (void)state;
    ft_cls_options o = ft_cls_default_options();
    o.text_column = "sentence";
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, ft_fixture("classify/sst2_dev200.tsv"), &o), FT_OK);
    int64_t c[2];
    assert_int_equal(ft_cls_class_counts(c, ds.label, ds.n, ds.labels.n), FT_OK);
    printf("sst2: %lld rows, %d labels, counts 0:%lld 1:%lld\n", (long long)ds.n, ds.labels.n, (long long)c[0], (long long)c[1]);
    assert_int_equal(ds.n, 200);
    assert_int_equal(ds.labels.n, 2);
    assert_string_equal(ds.labels.names[0], "0");
    assert_string_equal(ds.labels.names[1], "1");
    assert_int_equal(c[0], 92);
    assert_int_equal(c[1], 108);
    assert_string_equal(ds.text[0], "the expressive power of the camera ");
    assert_int_equal(ds.label[0], 1);
    assert_int_equal(ds.line[0], 2);
    assert_null(ds.pair);
    /* default column "text" is missing: error names the file and the columns */
    ft_cls_dataset bad;
    assert_int_equal(ft_cls_dataset_load(&bad, ft_fixture("classify/sst2_dev200.tsv"), NULL), FT_ERR_NOT_FOUND);
    printf("missing column: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "sst2_dev200.tsv: line 1: no text column 'text' (columns: sentence, label"));

    /* features and a padded batch */
    ft_cls_features f;
    assert_int_equal(ft_cls_features_build(&f, &ds, g_bert, 16), FT_OK);
    printf("sst2 features: max_len %d, truncated %lld\n", f.max_len, (long long)f.truncated);
    assert_true(f.max_len <= 16);
    assert_true(f.truncated > 0);
    /* "the expressive power of the camera" -> [CLS] the expressive power of the camera [SEP] */
    static const int ref0[] = {101, 1996, 22570, 2373, 1997, 1996, 4950, 102};
    assert_int_equal(f.off[1] - f.off[0], 8);
    assert_memory_equal(f.ids, ref0, sizeof ref0);
    ft_cls_batch b;
    assert_int_equal(ft_cls_batch_alloc(&b, 4, 16), FT_OK);
    int64_t idx[3] = {0, 2, 1};   /* lengths 8, ?, 3 ("well-conceived" = well - conceived) */
    assert_int_equal(ft_cls_batch_fill(&b, &f, idx, 3, ft_cls_pad_id(g_bert), 0), FT_OK);
    int l0 = (int)(f.off[1] - f.off[0]), l1 = (int)(f.off[2] - f.off[1]), l2 = (int)(f.off[3] - f.off[2]);
    int T = l0 > l2 ? l0 : l2;
    if (l1 > T) T = l1;
    printf("batch: B=%d T=%d (lengths %d %d %d)\n", b.B, b.T, l0, l2, l1);
    assert_int_equal(b.B, 3);
    assert_int_equal(b.T, T);
    int msum = 0;
    for (int i = 0; i < b.B * b.T; i++) msum += b.mask[i];
    assert_int_equal(msum, l0 + l1 + l2);
    assert_int_equal(b.ids[2 * b.T + l1], 0);  /* [PAD] */
    assert_int_equal(b.mask[2 * b.T + l1 - 1], 1);
    assert_int_equal(b.mask[2 * b.T + l1], 0);
    assert_int_equal(b.labels[0], 1);
    assert_int_equal(b.labels[2], ds.label[1]);
    assert_int_equal(ft_cls_batch_fill(&b, &f, idx, 3, 0, 1), FT_OK);
    assert_int_equal(b.T, 16);
    ft_cls_batch_free(&b);
    ft_cls_features_free(&f);
    ft_cls_dataset_free(&ds);
}

static void test_agnews_quoting_names(void **state) {
    (void)state;
    ft_cls_options o = ft_cls_default_options();
    o.header = 0;
    o.text_column = "1";
    o.label_column = "2";
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, ft_fixture("classify/agnews120.tsv"), &o), FT_OK);
    int64_t c[4];
    assert_int_equal(ds.n, 120);
    assert_int_equal(ds.labels.n, 4);
    assert_int_equal(ft_cls_class_counts(c, ds.label, ds.n, 4), FT_OK);
    printf("agnews: %lld rows; %s %lld, %s %lld, %s %lld, %s %lld\n", (long long)ds.n, ds.labels.names[0], (long long)c[0],
           ds.labels.names[1], (long long)c[1], ds.labels.names[2], (long long)c[2], ds.labels.names[3], (long long)c[3]);
    assert_string_equal(ds.labels.names[0], "Business");
    assert_string_equal(ds.labels.names[1], "Sci/Tech");
    assert_string_equal(ds.labels.names[2], "Sports");
    assert_string_equal(ds.labels.names[3], "World");
    assert_int_equal(c[0], 16);
    assert_int_equal(c[1], 45);
    assert_int_equal(c[2], 26);
    assert_int_equal(c[3], 33);
    int quoted = 0;
    for (int64_t i = 0; i < ds.n; i++)
        if (strncmp(ds.text[i], "Wiltshire Police warns about \"phishing\" after", 45) == 0) {
            quoted = 1;
            assert_string_equal(ds.labels.names[ds.label[i]], "Sci/Tech");
        }
    assert_true(quoted);
    ft_cls_dataset_free(&ds);
}

static void test_csv_quoting_pairs(void **state) {
    (void)state;
    const char *csv =
        "id,premise,hypothesis,label\r\n"
        "1,\"A man, a plan\",\"He said \"\"hi\"\"\",entailment\r\n"
        "2,\"two\nlines\",plain,contradiction\r\n"
        "\r\n"
        "3,it's 5\" tall,x,neutral\r\n";
    ft_cls_options o = ft_cls_default_options();
    o.text_column = "premise";
    o.pair_column = "hypothesis";
    ft_cls_dataset ds;
    assert_int_equal(parse(&ds, "pairs.csv", csv, &o), FT_OK);
    printf("pairs: %lld rows, labels %s/%s/%s\n", (long long)ds.n, ds.labels.names[0], ds.labels.names[1], ds.labels.names[2]);
    assert_int_equal(ds.n, 3);
    assert_string_equal(ds.text[0], "A man, a plan");
    assert_string_equal(ds.pair[0], "He said \"hi\"");
    assert_string_equal(ds.text[1], "two\nlines");
    assert_string_equal(ds.text[2], "it's 5\" tall");
    assert_int_equal(ds.line[1], 3);
    assert_int_equal(ds.line[2], 6);
    assert_int_equal(ds.label[0], 1);  /* contradiction, entailment, neutral */
    assert_int_equal(ds.label[1], 0);
    assert_int_equal(ds.label[2], 2);

    /* pair encoding: [CLS] A [SEP] B [SEP], type ids */
    int *ids, *tt, n, cut;
    assert_int_equal(ft_cls_encode_one(g_bert, "the expressive power of the camera", "jason x is this bad on purpose", 9,
                                       &ids, &tt, &n, &cut), FT_OK);
    static const int r1[] = {101, 1996, 22570, 2373, 102, 4463, 1060, 2003, 102}, t1[] = {0, 0, 0, 0, 0, 1, 1, 1, 1};
    printf("pair longest_first(9): n=%d cut=%d\n", n, cut);
    assert_int_equal(n, 9);
    assert_int_equal(cut, 7);
    assert_memory_equal(ids, r1, sizeof r1);
    assert_memory_equal(tt, t1, sizeof t1);
    free(ids); free(tt);
    assert_int_equal(ft_cls_encode_one(g_bert, "the expressive power of the camera is great", "jason x is this bad", 10,
                                       &ids, &tt, &n, &cut), FT_OK);
    static const int r2[] = {101, 1996, 22570, 2373, 1997, 102, 4463, 1060, 2003, 102}, t2[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    assert_int_equal(n, 10);
    assert_memory_equal(ids, r2, sizeof r2);
    assert_memory_equal(tt, t2, sizeof t2);
    free(ids); free(tt);
    ft_cls_dataset_free(&ds);

    /* malformed: text after a closing quote, unclosed quote, empty text, short row */
    ft_cls_dataset bad;
    assert_int_equal(parse(&bad, "q.csv", "text,label\n\"ab\"c,x\n", NULL), FT_ERR_FORMAT);
    printf("bad quote: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "q.csv: line 2: column 1: text after a closing quote"));
    assert_int_equal(parse(&bad, "q.csv", "text,label\nok,x\n\"never closed,y\n", NULL), FT_ERR_FORMAT);
    assert_non_null(strstr(ft_last_error(), "q.csv: line 3"));
    assert_int_equal(parse(&bad, "e.csv", "text,label\nok,x\n  ,y\n", NULL), FT_ERR_FORMAT);
    printf("empty text: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "e.csv: line 3: column 'text': empty text"));
    assert_int_equal(parse(&bad, "s.csv", "text,label\nok,x\nonly\n", NULL), FT_ERR_FORMAT);
    printf("short row: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "s.csv: line 3: column 'label' (2) missing"));
}

static void test_label_maps(void **state) {
    (void)state;
    /* JSONL with integer and string labels mixed -> names */
    const char *jl = "{\"text\": \"good\", \"label\": \"pos\"}\n{\"text\": \"bad\", \"label\": \"neg\"}\n\n"
                     "{\"text\": \"meh\", \"label\": \"neu\"}\n";
    ft_cls_dataset ds;
    assert_int_equal(parse(&ds, "d.jsonl", jl, NULL), FT_OK);
    assert_int_equal(ds.labels.n, 3);
    assert_string_equal(ds.labels.names[0], "neg");
    assert_int_equal(ds.label[0], 2);
    assert_int_equal(ds.line[2], 4);
    ft_cls_dataset_free(&ds);
    /* integer labels are ids (gap kept) */
    assert_int_equal(parse(&ds, "d.jsonl", "{\"text\":\"a\",\"label\":3}\n{\"text\":\"b\",\"label\":0}\n", NULL), FT_OK);
    assert_int_equal(ds.labels.n, 4);
    assert_int_equal(ds.label[0], 3);
    assert_string_equal(ds.labels.names[2], "2");
    ft_cls_dataset_free(&ds);

    /* a given map (a model's id2label): names and ids accepted, unknown label is an error */
    const char *names[] = {"negative", "positive"};
    ft_label_map m;
    assert_int_equal(ft_label_map_init(&m, names, 2), FT_OK);
    ft_cls_options o = ft_cls_default_options();
    o.label_map = &m;
    assert_int_equal(parse(&ds, "g.csv", "text,label\nx,positive\ny,0\nz,negative\n", &o), FT_OK);
    assert_int_equal(ds.label[0], 1);
    assert_int_equal(ds.label[1], 0);
    assert_int_equal(ds.label[2], 0);
    ft_cls_dataset_free(&ds);
    assert_int_equal(parse(&ds, "g.csv", "text,label\nx,positive\ny,neutral\n", &o), FT_ERR_NOT_FOUND);
    printf("unknown label: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "g.csv: line 3: column 'label': unknown label 'neutral' (the label map has: negative, positive)"));
    assert_int_equal(parse(&ds, "g.csv", "text,label\nx,7\n", &o), FT_ERR_NOT_FOUND);

    /* JSON save / load round trip, HF config.json layout */
    char dir[] = "/tmp/ft_test_classify_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/labels.json", dir);
    assert_int_equal(ft_label_map_save(&m, path), FT_OK);
    char *js;
    assert_int_equal(ft_label_map_to_json(&m, &js), FT_OK);
    printf("label map json: %s\n", js);
    assert_non_null(strstr(js, "\"id2label\""));
    assert_non_null(strstr(js, "\"1\":\t\"positive\""));
    assert_non_null(strstr(js, "\"negative\":\t0"));
    free(js);
    ft_label_map m2;
    assert_int_equal(ft_label_map_load(&m2, path), FT_OK);
    assert_int_equal(m2.n, 2);
    assert_string_equal(m2.names[0], "negative");
    assert_string_equal(m2.names[1], "positive");
    ft_label_map_free(&m2);
    const char *cfg = "{\"architectures\": [\"BertForSequenceClassification\"], \"label2id\": {\"B\": 1, \"A\": 0}}";
    assert_int_equal(ft_label_map_from_json(&m2, cfg, strlen(cfg), "config.json"), FT_OK);
    assert_string_equal(m2.names[0], "A");
    assert_int_equal(ft_label_map_id(&m2, "B"), 1);
    ft_label_map_free(&m2);
    assert_int_equal(ft_label_map_from_json(&m2, "{\"id2label\": {\"0\": \"a\", \"5\": \"b\"}}", 35, "bad.json"), FT_ERR_FORMAT);
    unlink(path);
    rmdir(dir);
    const char *dup[] = {"a", "a"};
    assert_int_equal(ft_label_map_init(&m2, dup, 2), FT_ERR_INVALID);
    ft_label_map_free(&m);
}

static void test_class_weights(void **state) {
    (void)state;
    int labels[10] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 2};   /* counts 6, 3, 1; n = 10, K = 4 (class 3 absent) */
    int64_t c[4];
    double w[4];
    assert_int_equal(ft_cls_class_counts(c, labels, 10, 4), FT_OK);
    assert_int_equal(ft_cls_class_weights(w, c, 4, FT_CLASS_WEIGHT_BALANCED), FT_OK);
    printf("balanced: %.6f %.6f %.6f %.6f\n", w[0], w[1], w[2], w[3]);
    assert_true(fabs(w[0] - 10.0 / 24) < 1e-15);
    assert_true(fabs(w[1] - 10.0 / 12) < 1e-15);
    assert_true(fabs(w[2] - 10.0 / 4) < 1e-15);
    assert_true(w[3] == 0);
    assert_int_equal(ft_cls_class_weights(w, c, 4, FT_CLASS_WEIGHT_INVERSE), FT_OK);
    printf("inverse: %.6f %.6f %.6f %.6f\n", w[0], w[1], w[2], w[3]);
    assert_true(fabs(w[0] - 10.0 / 6) < 1e-15);
    assert_true(fabs(w[1] - 10.0 / 3) < 1e-15);
    assert_true(fabs(w[2] - 10.0) < 1e-15);
    labels[3] = 4;
    assert_int_equal(ft_cls_class_counts(c, labels, 10, 4), FT_ERR_RANGE);
}

static void test_resample(void **state) {
    (void)state;
    int labels[10] = {0, 1, 0, 0, 2, 0, 1, 0, 1, 0};   /* counts 6, 3, 1 */
    int64_t *idx, m, c[3];
    int lab[32];
    assert_int_equal(ft_cls_resample(&idx, &m, labels, 10, 3, FT_RESAMPLE_OVER, 42), FT_OK);
    for (int64_t i = 0; i < m; i++) lab[i] = labels[idx[i]];
    assert_int_equal(ft_cls_class_counts(c, lab, m, 3), FT_OK);
    printf("over: %lld examples, counts %lld %lld %lld\n", (long long)m, (long long)c[0], (long long)c[1], (long long)c[2]);
    assert_int_equal(m, 18);
    assert_int_equal(c[0], 6); assert_int_equal(c[1], 6); assert_int_equal(c[2], 6);
    for (int64_t i = 1; i < m; i++) assert_true(idx[i - 1] <= idx[i]);
    int64_t *idx2, m2;
    assert_int_equal(ft_cls_resample(&idx2, &m2, labels, 10, 3, FT_RESAMPLE_OVER, 42), FT_OK);
    assert_memory_equal(idx, idx2, (size_t)m * sizeof *idx);
    free(idx); free(idx2);
    assert_int_equal(ft_cls_resample(&idx, &m, labels, 10, 3, FT_RESAMPLE_UNDER, 7), FT_OK);
    for (int64_t i = 0; i < m; i++) lab[i] = labels[idx[i]];
    assert_int_equal(ft_cls_class_counts(c, lab, m, 3), FT_OK);
    printf("under: %lld examples, counts %lld %lld %lld\n", (long long)m, (long long)c[0], (long long)c[1], (long long)c[2]);
    assert_int_equal(m, 3);
    assert_int_equal(c[0], 1); assert_int_equal(c[1], 1); assert_int_equal(c[2], 1);
    for (int64_t i = 1; i < m; i++) assert_true(idx[i - 1] < idx[i]);
    free(idx);
}

static void test_stratified(void **state) {
    (void)state;
    ft_cls_options o = ft_cls_default_options();
    o.header = 0; o.text_column = "1"; o.label_column = "2";
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, ft_fixture("classify/agnews120.tsv"), &o), FT_OK);
    int K = ds.labels.n;
    int64_t tot[4], cv[4];
    assert_int_equal(ft_cls_class_counts(tot, ds.label, ds.n, K), FT_OK);
    int64_t *tr, *va, ntr, nva, *tr2, *va2, ntr2, nva2;
    assert_int_equal(ft_cls_stratified_split(&tr, &ntr, &va, &nva, ds.label, ds.n, K, 0.25, 123), FT_OK);
    int lab[200];
    for (int64_t i = 0; i < nva; i++) lab[i] = ds.label[va[i]];
    assert_int_equal(ft_cls_class_counts(cv, lab, nva, K), FT_OK);
    printf("split 0.25: train %lld val %lld; val per class", (long long)ntr, (long long)nva);
    for (int k = 0; k < K; k++) {
        printf(" %lld/%lld", (long long)cv[k], (long long)tot[k]);
        assert_true(fabs((double)cv[k] - 0.25 * (double)tot[k]) <= 0.5 + 1e-9);
    }
    printf("\n");
    assert_int_equal(ntr + nva, ds.n);
    assert_int_equal(ft_cls_stratified_split(&tr2, &ntr2, &va2, &nva2, ds.label, ds.n, K, 0.25, 123), FT_OK);
    assert_int_equal(nva2, nva);
    assert_memory_equal(va, va2, (size_t)nva * sizeof *va);
    free(tr2); free(va2);
    assert_int_equal(ft_cls_stratified_split(&tr2, &ntr2, &va2, &nva2, ds.label, ds.n, K, 0.25, 124), FT_OK);
    assert_true(nva2 != nva || memcmp(va, va2, (size_t)nva * sizeof *va) != 0);
    free(tr); free(va); free(tr2); free(va2);

    /* 5 folds: every example in exactly one validation fold; per-class within one; sizes within one */
    int folds = 5;
    int *seen = calloc((size_t)ds.n, sizeof *seen);
    int64_t minsz = ds.n, maxsz = 0;
    for (int f = 0; f < folds; f++) {
        assert_int_equal(ft_cls_stratified_kfold(&tr, &ntr, &va, &nva, ds.label, ds.n, K, folds, f, 9), FT_OK);
        assert_int_equal(ntr + nva, ds.n);
        for (int64_t i = 0; i < nva; i++) { seen[va[i]]++; lab[i] = ds.label[va[i]]; }
        assert_int_equal(ft_cls_class_counts(cv, lab, nva, K), FT_OK);
        printf("fold %d: val %lld; per class", f, (long long)nva);
        for (int k = 0; k < K; k++) {
            printf(" %lld", (long long)cv[k]);
            assert_true(cv[k] == tot[k] / folds || cv[k] == (tot[k] + folds - 1) / folds);
        }
        printf("\n");
        if (nva < minsz) minsz = nva;
        if (nva > maxsz) maxsz = nva;
        assert_int_equal(ft_cls_stratified_kfold(&tr2, &ntr2, &va2, &nva2, ds.label, ds.n, K, folds, f, 9), FT_OK);
        assert_memory_equal(va, va2, (size_t)nva * sizeof *va);
        assert_memory_equal(tr, tr2, (size_t)ntr * sizeof *tr);
        free(tr); free(va); free(tr2); free(va2);
    }
    assert_true(maxsz - minsz <= 1);
    for (int64_t i = 0; i < ds.n; i++) assert_int_equal(seen[i], 1);
    free(seen);
    assert_int_equal(ft_cls_stratified_kfold(&tr, &ntr, &va, &nva, ds.label, ds.n, K, 5, 5, 9), FT_ERR_INVALID);
    ft_cls_dataset_free(&ds);
}

static void test_conll(void **state) {
    (void)state;
    ft_conll c;
    assert_int_equal(ft_conll_load(&c, ft_fixture("classify/wnut17_dev.conll"), NULL), FT_OK);
    printf("wnut17 subset: %lld sentences, %lld tokens, %d tags\n", (long long)c.n_sent, (long long)c.n_tok, c.tag_map.n);
    assert_int_equal(c.n_sent, 18);
    assert_int_equal(c.n_tok, 284);
    assert_int_equal(c.tag_map.n, 10);
    assert_string_equal(c.tag_map.names[0], "B-creative-work");
    assert_string_equal(c.tag_map.names[9], "O");
    assert_int_equal(c.sent_off[1], 12);
    assert_string_equal(c.tokens[0], "Stabilized");
    /* sentence 1: You should ' ve stayed on Redondo Beach Blvd . ... */
    int64_t s0 = c.sent_off[1];
    assert_string_equal(c.tokens[s0 + 6], "Redondo");
    assert_int_equal(c.tags[s0 + 6], ft_label_map_id(&c.tag_map, "B-location"));
    int *ids, *labels, *wids, n;
    assert_int_equal(ft_conll_encode(g_bert, (const char *const *)c.tokens + s0, c.tags + s0, 10, 0, &ids, &labels, &wids, &n), FT_OK);
    /* HF BertTokenizerFast(words, is_split_into_words=True) on the same vocab */
    static const int rids[] = {101, 2017, 2323, 1005, 2310, 4370, 2006, 2417, 15422, 2080, 3509, 1038, 2140, 16872, 1012, 102};
    static const int rw[] = {-1, 0, 1, 2, 3, 4, 5, 6, 6, 6, 7, 8, 8, 8, 9, -1};
    static const int rl[] = {-100, 9, 9, 9, 9, 9, 9, 2, -100, -100, 6, 6, -100, -100, 9, -100};
    printf("aligned: %d subtokens for 10 words\n", n);
    assert_int_equal(n, 16);
    assert_memory_equal(ids, rids, sizeof rids);
    assert_memory_equal(wids, rw, sizeof rw);
    assert_memory_equal(labels, rl, sizeof rl);
    free(ids); free(labels); free(wids);
    /* max_len 8: whole words only, 6 word-subtokens + 2 special */
    assert_int_equal(ft_conll_encode(g_bert, (const char *const *)c.tokens + s0, c.tags + s0, 10, 8, &ids, &labels, NULL, &n), FT_OK);
    assert_int_equal(n, 8);
    assert_int_equal(ids[7], 102);
    free(ids); free(labels);
    ft_conll_free(&c);

    /* -DOCSTART- skipped, given tag map, unknown tag error */
    assert_int_equal(ft_conll_load(&c, ft_fixture("classify/docstart.conll"), NULL), FT_OK);
    printf("docstart: %lld sentences, %lld tokens\n", (long long)c.n_sent, (long long)c.n_tok);
    assert_int_equal(c.n_sent, 2);
    assert_int_equal(c.n_tok, 6);
    assert_int_equal(c.sent_off[1], 4);
    const char *tags[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-MISC", "I-MISC", "B-LOC", "I-LOC"};
    ft_label_map m;
    assert_int_equal(ft_label_map_init(&m, tags, 9), FT_OK);
    ft_conll c2;
    assert_int_equal(ft_conll_load(&c2, ft_fixture("classify/docstart.conll"), &m), FT_OK);
    assert_int_equal(c2.tags[0], 3);
    assert_int_equal(c2.tags[5], 2);
    ft_conll_free(&c2);
    const char *bad = "a\tO\nb\tB-XYZ\n";
    assert_int_equal(ft_conll_parse(&c2, "bad.conll", bad, strlen(bad), &m), FT_ERR_NOT_FOUND);
    printf("unknown tag: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "bad.conll: line 2: unknown tag 'B-XYZ'"));
    ft_label_map_free(&m);
    ft_conll_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sst2_subset),
        cmocka_unit_test(test_agnews_quoting_names),
        cmocka_unit_test(test_csv_quoting_pairs),
        cmocka_unit_test(test_label_maps),
        cmocka_unit_test(test_class_weights),
        cmocka_unit_test(test_resample),
        cmocka_unit_test(test_stratified),
        cmocka_unit_test(test_conll),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
