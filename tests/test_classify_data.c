/* test_classify_data.c — classification data: CSV/TSV/JSONL datasets, label maps, encoder inputs and
 * batches, class weights, resampling, stratified splits, CoNLL reading and subtoken label alignment,
 * texts without labels (masked LM), ft_mlm_mask statistics and invariants, token-classification features.
 * Fixtures: tests/fixtures/classify (subsets of SST-2 dev, AG News test, WNUT-17 dev; mlm_lines.txt) and the BERT
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

/* ---- texts only (masked LM): .txt lines, CSV / JSONL without a label column ---- */
static void test_no_labels(void **state) {
    (void)state;
    ft_cls_options o = ft_cls_default_options();
    o.no_labels = 1;
    o.format = FT_CLS_JSONL;   /* ignored for a .txt name when no_labels */
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, ft_fixture("classify/mlm_lines.txt"), &o), FT_OK);
    printf("txt: %lld texts, %d labels, lines", (long long)ds.n, ds.labels.n);
    for (int64_t i = 0; i < ds.n; i++) printf(" %d", ds.line[i]);
    printf("\n");
    assert_int_equal(ds.n, 4);
    assert_int_equal(ds.labels.n, 0);
    assert_null(ds.pair);
    assert_string_equal(ds.text[0], "The first line of plain text.");
    assert_string_equal(ds.text[1], "A second line, with a comma, stays whole");   /* CRLF: \r dropped */
    assert_string_equal(ds.text[2], "\tthird line keeps its leading tab");
    assert_string_equal(ds.text[3], "last line without a newline");
    static const int lines[] = {1, 4, 5, 6};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ds.line[i], lines[i]);
        assert_int_equal(ds.label[i], 0);
    }
    /* the texts encode like any other dataset */
    ft_cls_features f;
    assert_int_equal(ft_cls_features_build(&f, &ds, g_bert, 0), FT_OK);
    printf("txt features: %lld examples, max_len %d\n", (long long)f.n, f.max_len);
    assert_int_equal(f.n, 4);
    assert_int_equal(f.ids[0], 101);
    assert_int_equal(f.labels[3], 0);
    ft_cls_features_free(&f);
    ft_cls_dataset_free(&ds);

    /* CSV without a label column */
    o.format = FT_CLS_AUTO;
    const char *csv = "id,text\n1,hello world\n\n2,\"a, quoted\nfield\"\n";
    assert_int_equal(parse(&ds, "nolab.csv", csv, &o), FT_OK);
    printf("csv no labels: %lld rows, %d labels, line[1] %d\n", (long long)ds.n, ds.labels.n, ds.line[1]);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.labels.n, 0);
    assert_string_equal(ds.text[0], "hello world");
    assert_string_equal(ds.text[1], "a, quoted\nfield");
    assert_int_equal(ds.line[1], 4);
    assert_int_equal(ds.label[0], 0);
    assert_int_equal(ds.label[1], 0);
    ft_cls_dataset_free(&ds);
    /* a label column that is there is not read (an empty label is no error) */
    assert_int_equal(parse(&ds, "lab.tsv", "text\tlabel\nx\tpos\ny\t\n", &o), FT_OK);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.labels.n, 0);
    assert_int_equal(ds.label[0], 0);
    ft_cls_dataset_free(&ds);
    /* JSONL without labels, with a pair column */
    o.pair_column = "b";
    assert_int_equal(parse(&ds, "nolab.jsonl", "{\"text\": \"one\", \"b\": \"two\"}\n{\"text\": \"three\", \"b\": \"four\", \"label\": 5}\n", &o), FT_OK);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.labels.n, 0);
    assert_string_equal(ds.pair[1], "four");
    assert_int_equal(ds.label[1], 0);
    ft_cls_dataset_free(&ds);
    o.pair_column = NULL;
    /* nothing but blank lines */
    assert_int_equal(parse(&ds, "blank.txt", "\n  \n\r\n", &o), FT_ERR_FORMAT);
    printf("blank txt: %s\n", ft_last_error());

    /* no_labels = 0: unchanged (a label column is required; .txt is CSV) */
    o.no_labels = 0;
    assert_int_equal(parse(&ds, "nolab.csv", csv, &o), FT_ERR_NOT_FOUND);
    printf("labels required: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "no label column 'label'"));
    assert_int_equal(parse(&ds, "x.txt", "text,label\na,b\n", &o), FT_OK);
    assert_int_equal(ds.n, 1);
    assert_int_equal(ds.labels.n, 1);
    assert_string_equal(ds.labels.names[0], "b");
    ft_cls_dataset_free(&ds);
}

/* ---- masked LM: DataCollatorForLanguageModeling's 15% / 80-10-10 ---- */
static void check_binomial(const char *what, long long k, long long n, double p) {
    double sd = sqrt((double)n * p * (1 - p)), z = ((double)k - (double)n * p) / sd;
    printf("%-18s %lld / %lld = %.5f (expected %.3f, z = %+.2f)\n", what, k, n, (double)k / (double)n, p, z);
    assert_true(fabs(z) < 5.0);
}

static void test_mlm_mask(void **state) {
    (void)state;
    ft_cls_options o = ft_cls_default_options();
    o.text_column = "sentence";
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, ft_fixture("classify/sst2_dev200.tsv"), &o), FT_OK);
    ft_cls_features f;
    assert_int_equal(ft_cls_features_build(&f, &ds, g_bert, 0), FT_OK);
    ft_cls_batch b;
    assert_int_equal(ft_cls_batch_alloc(&b, (int)f.n, f.max_len), FT_OK);
    int64_t *idx = malloc((size_t)f.n * sizeof *idx);
    for (int64_t i = 0; i < f.n; i++) idx[i] = i;
    assert_int_equal(ft_cls_batch_fill(&b, &f, idx, (int)f.n, ft_cls_pad_id(g_bert), 0), FT_OK);
    int N = b.B * b.T, V = ft_tokenizer_vocab_size(g_bert), mask_id = ft_tokenizer_mask(g_bert);
    assert_int_equal(mask_id, 103);
    /* attention mask 0 also on some real tokens (every 5th position of every 3rd row) */
    int *attn = malloc((size_t)N * sizeof *attn), *ids = malloc((size_t)N * sizeof *ids), *lab = malloc((size_t)N * sizeof *lab);
    int *ids2 = malloc((size_t)N * sizeof *ids2), *lab2 = malloc((size_t)N * sizeof *lab2);
    int eligible = 0, special = 0, pad = 0, attn_off = 0;
    for (int i = 0; i < N; i++) {
        attn[i] = b.mask[i] && !((i / b.T) % 3 == 0 && (i % b.T) % 5 == 4);
        if (!b.mask[i]) pad++;
        else if (ft_tokenizer_is_special(g_bert, b.ids[i])) special++;
        else if (!attn[i]) attn_off++;
        eligible += attn[i] && !ft_tokenizer_is_special(g_bert, b.ids[i]);
    }
    printf("mlm batch: B=%d T=%d, %d positions: %d eligible, %d special, %d padding, %d real with mask 0\n",
           b.B, b.T, N, eligible, special, pad, attn_off);
    assert_true(special == 2 * b.B);
    assert_true(attn_off > 0);

    long long n_elig = 0, n_chosen = 0, n_mask = 0, n_rand = 0, n_keep = 0;
    double rand_sum = 0;
    const int seeds = 40;
    for (int s = 0; s < seeds; s++) {
        memcpy(ids, b.ids, (size_t)N * sizeof *ids);
        int nc = -1;
        assert_int_equal(ft_mlm_mask(ids, lab, attn, N, g_bert, mask_id, V, 0.15, 1000 + (uint64_t)s, &nc), FT_OK);
        int count = 0;
        for (int i = 0; i < N; i++) {
            int orig = b.ids[i];
            int elig = attn[i] && !ft_tokenizer_is_special(g_bert, orig);
            if (lab[i] == FT_CLS_IGNORE) {            /* not chosen: untouched */
                assert_int_equal(ids[i], orig);
                continue;
            }
            assert_true(elig);                        /* specials, padding, mask-0 never chosen */
            assert_int_equal(lab[i], orig);           /* the label is the original id */
            assert_true(ids[i] >= 0 && ids[i] < V);
            count++;
            if (ids[i] == mask_id) n_mask++;
            else if (ids[i] == orig) n_keep++;
            else { n_rand++; rand_sum += ids[i]; }
        }
        assert_int_equal(nc, count);
        n_elig += eligible;
        n_chosen += count;
    }
    /* a random id equals the mask id or the original with probability 1/V each: negligible here */
    check_binomial("chosen", n_chosen, n_elig, 0.15);
    check_binomial("-> [MASK]", n_mask, n_chosen, 0.8);
    check_binomial("-> random id", n_rand, n_chosen, 0.1);
    check_binomial("-> unchanged", n_keep, n_chosen, 0.1);
    double mean = rand_sum / (double)n_rand, mean_sd = (double)V / sqrt(12.0 * (double)n_rand);
    printf("random ids: mean %.1f (uniform [0, %d): %.1f, z = %+.2f)\n", mean, V, (V - 1) / 2.0, (mean - (V - 1) / 2.0) / mean_sd);
    assert_true(fabs(mean - (V - 1) / 2.0) < 5 * mean_sd);

    /* seeded: same seed, same result; another seed, another */
    memcpy(ids, b.ids, (size_t)N * sizeof *ids);
    memcpy(ids2, b.ids, (size_t)N * sizeof *ids2);
    assert_int_equal(ft_mlm_mask(ids, lab, b.mask, N, g_bert, mask_id, V, 0.15, 7, NULL), FT_OK);
    assert_int_equal(ft_mlm_mask(ids2, lab2, b.mask, N, g_bert, mask_id, V, 0.15, 7, NULL), FT_OK);
    assert_memory_equal(ids, ids2, (size_t)N * sizeof *ids);
    assert_memory_equal(lab, lab2, (size_t)N * sizeof *lab);
    memcpy(ids2, b.ids, (size_t)N * sizeof *ids2);
    assert_int_equal(ft_mlm_mask(ids2, lab2, b.mask, N, g_bert, mask_id, V, 0.15, 8, NULL), FT_OK);
    int diff = 0;
    for (int i = 0; i < N; i++) diff += lab[i] != lab2[i];
    printf("seed 7 vs 8: %d of %d labels differ\n", diff, N);
    assert_true(diff > 0);

    /* prob 0: nothing; prob 1: every eligible position (attention mask NULL: specials still skipped) */
    int nc;
    memcpy(ids, b.ids, (size_t)N * sizeof *ids);
    assert_int_equal(ft_mlm_mask(ids, lab, attn, N, g_bert, mask_id, V, 0.0, 1, &nc), FT_OK);
    assert_int_equal(nc, 0);
    assert_memory_equal(ids, b.ids, (size_t)N * sizeof *ids);
    assert_int_equal(ft_mlm_mask(ids, lab, attn, N, g_bert, mask_id, V, 1.0, 1, &nc), FT_OK);
    assert_int_equal(nc, eligible);
    memcpy(ids, b.ids, (size_t)N * sizeof *ids);
    assert_int_equal(ft_mlm_mask(ids, lab, NULL, N, g_bert, mask_id, V, 1.0, 1, &nc), FT_OK);
    printf("prob 1, no attention mask: %d chosen (%d non-special positions)\n", nc, N - special - pad);
    assert_int_equal(nc, N - special - pad);   /* padding is [PAD], a special id */

    /* bad arguments */
    assert_int_equal(ft_mlm_mask(ids, lab, NULL, N, g_bert, -1, V, 0.15, 1, NULL), FT_ERR_INVALID);
    printf("no mask id: %s\n", ft_last_error());
    assert_int_equal(ft_mlm_mask(ids, lab, NULL, N, g_bert, mask_id, 0, 0.15, 1, NULL), FT_ERR_INVALID);
    assert_int_equal(ft_mlm_mask(ids, lab, NULL, N, g_bert, mask_id, V, 1.5, 1, NULL), FT_ERR_INVALID);

    free(attn); free(ids); free(lab); free(ids2); free(lab2); free(idx);
    ft_cls_batch_free(&b);
    ft_cls_features_free(&f);
    ft_cls_dataset_free(&ds);
}

/* ---- token-classification features and batches from CoNLL ---- */

/* Words of sentence s that fit in room subtokens, each word encoded on its own (an independent count). */
static int words_that_fit(const ft_conll *c, int64_t s, int room) {
    int used = 0, w = 0;
    for (int64_t k = c->sent_off[s]; k < c->sent_off[s + 1]; k++, w++) {
        int *ids, n;
        assert_int_equal(ft_tokenizer_encode(g_bert, c->tokens[k], strlen(c->tokens[k]), FT_TOK_NO_SPECIAL_PARSE, &ids, &n), FT_OK);
        free(ids);
        if (used + n > room) break;
        used += n;
    }
    return w;
}

static void check_tok_features(const ft_tok_features *f, const ft_conll *c, int max_len, int64_t *expect_truncated) {
    int longest = 0;
    *expect_truncated = 0;
    for (int64_t s = 0; s < f->n; s++) {
        int64_t a = f->off[s], w0 = c->sent_off[s];
        int n = (int)(f->off[s + 1] - a), n_words = (int)(c->sent_off[s + 1] - w0);
        if (n > longest) longest = n;
        /* the same as ft_conll_encode */
        int *ids, *labels, *wids, m;
        assert_int_equal(ft_conll_encode(g_bert, (const char *const *)c->tokens + w0, c->tags + w0, n_words, max_len,
                                         &ids, &labels, &wids, &m), FT_OK);
        assert_int_equal(m, n);
        assert_memory_equal(f->ids + a, ids, (size_t)n * sizeof *ids);
        assert_memory_equal(f->labels + a, labels, (size_t)n * sizeof *labels);
        assert_memory_equal(f->word_ids + a, wids, (size_t)n * sizeof *wids);
        free(ids); free(labels); free(wids);
        /* alignment: [CLS] words [SEP]; word ids step by 0 or 1 from 0; a word's first subtoken has its tag */
        assert_int_equal(f->ids[a], 101);
        assert_int_equal(f->ids[a + n - 1], 102);
        assert_int_equal(f->word_ids[a], -1);
        assert_int_equal(f->word_ids[a + n - 1], -1);
        assert_int_equal(f->labels[a], FT_CLS_IGNORE);
        assert_int_equal(f->labels[a + n - 1], FT_CLS_IGNORE);
        int prev = -1;
        for (int t = 1; t < n - 1; t++) {
            int w = f->word_ids[a + t];
            assert_true(w == prev || w == prev + 1);
            assert_int_equal(f->labels[a + t], w != prev ? c->tags[w0 + w] : FT_CLS_IGNORE);
            assert_int_equal(f->type_ids[a + t], 0);
            prev = w;
        }
        int fit = max_len > 0 ? words_that_fit(c, s, max_len - 2) : n_words;
        assert_int_equal(prev + 1, fit);            /* whole words kept, in order */
        *expect_truncated += fit < n_words;
        if (max_len > 0) assert_true(n <= max_len);
    }
    assert_int_equal(f->max_len, longest);
}

static void test_tok_features(void **state) {
    (void)state;
    ft_conll c;
    assert_int_equal(ft_conll_load(&c, ft_fixture("classify/wnut17_dev.conll"), NULL), FT_OK);
    ft_tok_features f;
    int64_t expect;
    assert_int_equal(ft_tok_features_build(&f, &c, g_bert, 0), FT_OK);   /* 0: model_max_length (512) */
    check_tok_features(&f, &c, 512, &expect);
    int64_t first = 0;
    for (int64_t i = 0; i < f.off[f.n]; i++) first += f.labels[i] != FT_CLS_IGNORE;
    printf("tok features: %lld sentences, %lld ids, %lld labelled (words %lld), max_len %d, truncated %lld\n",
           (long long)f.n, (long long)f.off[f.n], (long long)first, (long long)c.n_tok, f.max_len, (long long)f.truncated);
    assert_int_equal(f.n, c.n_sent);
    assert_int_equal(first, c.n_tok);                 /* every word labelled once */
    assert_int_equal(f.truncated, 0);
    assert_int_equal(expect, 0);
    ft_tok_features_free(&f);

    assert_int_equal(ft_tok_features_build(&f, &c, g_bert, 16), FT_OK);
    check_tok_features(&f, &c, 16, &expect);
    printf("tok features, max_len 16: max_len %d, truncated %lld (independent count %lld)\n", f.max_len,
           (long long)f.truncated, (long long)expect);
    assert_int_equal(f.truncated, expect);
    assert_true(f.truncated > 0);
    ft_tok_features_free(&f);

    /* padded batches: labels -100, mask 0, [PAD] on padding */
    assert_int_equal(ft_tok_features_build(&f, &c, g_bert, 0), FT_OK);
    ft_cls_batch b;
    assert_int_equal(ft_cls_batch_alloc(&b, 4, f.max_len + 3), FT_OK);
    int64_t idx[3] = {3, 0, 17};
    for (int pad_to_T = 0; pad_to_T < 2; pad_to_T++) {
        assert_int_equal(ft_cls_batch_fill_tokens(&b, &f, idx, 3, ft_cls_pad_id(g_bert), pad_to_T), FT_OK);
        int T = 0, padded = 0;
        for (int r = 0; r < 3; r++) {
            int len = (int)(f.off[idx[r] + 1] - f.off[idx[r]]);
            if (len > T) T = len;
        }
        if (pad_to_T) T = f.max_len + 3;
        assert_int_equal(b.B, 3);
        assert_int_equal(b.T, T);
        for (int r = 0; r < 3; r++) {
            int64_t s = f.off[idx[r]];
            int len = (int)(f.off[idx[r] + 1] - s);
            for (int t = 0; t < T; t++) {
                int i = r * T + t;
                if (t < len) {
                    assert_int_equal(b.ids[i], f.ids[s + t]);
                    assert_int_equal(b.labels[i], f.labels[s + t]);
                    assert_int_equal(b.mask[i], 1);
                } else {
                    assert_int_equal(b.ids[i], 0);
                    assert_int_equal(b.labels[i], FT_CLS_IGNORE);
                    assert_int_equal(b.mask[i], 0);
                    assert_int_equal(b.type_ids[i], 0);
                    padded++;
                }
            }
        }
        printf("token batch (pad_to_T %d): B=%d T=%d, %d padding positions labelled -100\n", pad_to_T, b.B, b.T, padded);
        assert_true(padded > 0);
    }
    ft_cls_batch_free(&b);
    /* too long for the batch, index out of range */
    assert_int_equal(ft_cls_batch_alloc(&b, 2, 8), FT_OK);
    assert_int_equal(ft_cls_batch_fill_tokens(&b, &f, idx, 1, 0, 0), FT_ERR_RANGE);
    printf("too long: %s\n", ft_last_error());
    int64_t bad = f.n;
    assert_int_equal(ft_cls_batch_fill_tokens(&b, &f, &bad, 1, 0, 0), FT_ERR_RANGE);
    ft_cls_batch_free(&b);
    ft_tok_features_free(&f);
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
        cmocka_unit_test(test_no_labels),
        cmocka_unit_test(test_mlm_mask),
        cmocka_unit_test(test_tok_features),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
