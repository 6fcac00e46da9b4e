/* test_tokenizer_wordpiece.c — BERT WordPiece tokenizers and sentence pairs.
 *
 * Identity with HF BertTokenizerFast (transformers 5) built from the real all-MiniLM-L6-v2 vocab.txt
 * (tests/fixtures/tokenizer/bert, reference ids from tests/parity/make_wordpiece_fixtures.py) on
 * lines.txt: uncased (the model's config), cased, cased + strip_accents, uncased without accent
 * stripping, without CJK spacing; sentence pairs [CLS] A [SEP] B [SEP] with token type ids; decode
 * (HF's WordPiece decoder with cleanup, with and without skipping specials); a WordPiece
 * tokenizer.json written by HF tokenizers (bert_small: cased, strip_accents, max 20 characters per
 * word, BertProcessing, decoder without cleanup); the tokenizer.json loader on our own save of the
 * real vocabulary; edge cases (long words, specials, control characters, invalid UTF-8), long inputs,
 * threads, errors. The fixture script also runs every Unicode code point through HF and the C code
 * (through `finetune tokenize`) for five normalizer settings. */
#include "test_tokenizer_common.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_tok_wp");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

static const char *tmp_path(const char *name) { return ft_test_path(g_tmp, name); }

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static ft_tokenizer *load_bert(void) {
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/bert"), 0);
    return tok;
}

static void expect_ids(const ft_tokenizer *tok, const char *text, int flags, const int *want, int nwant) {
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, text, strlen(text), flags, &ids, &n), 0);
    int same = n == nwant && (n == 0 || memcmp(ids, want, sizeof *ids * (size_t)n) == 0);
    if (!same) { printf("    '%s'\n", text); tt_print_ids("want", want, nwant); tt_print_ids("got", ids, n); }
    assert_true(same);
    free(ids);
}

/* ---- identity with HF ---- */
static void test_bert_identity(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    double t0 = tt_now();
    ft_tokenizer *tok = load_bert();
    printf("bert: loaded vocab.txt + tokenizer_config.json in %.1f ms (vocab %d)\n", 1e3 * (tt_now() - t0), ft_tokenizer_vocab_size(tok));
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_WORDPIECE);
    assert_int_equal(ft_tokenizer_vocab_size(tok), 30522);
    assert_int_equal(ft_tokenizer_cls(tok), 101);
    assert_int_equal(ft_tokenizer_sep(tok), 102);
    assert_int_equal(ft_tokenizer_pad(tok), 0);
    assert_int_equal(ft_tokenizer_unk(tok), 100);
    assert_int_equal(ft_tokenizer_mask(tok), 103);
    assert_int_equal(ft_tokenizer_bos(tok), -1);   /* BERT has none (HF: bos_token None) */
    assert_int_equal(ft_tokenizer_eos(tok), -1);
    assert_int_equal(ft_tokenizer_model_max_length(tok), 512);
    assert_int_equal(ft_tokenizer_num_special_tokens(tok, 0), 2);
    assert_int_equal(ft_tokenizer_num_special_tokens(tok, 1), 3);
    for (int id = 0; id < 5; id++) printf("  %-7s %d special %d\n", ft_tokenizer_token_str(tok, id == 0 ? 0 : 99 + id),
                                          id == 0 ? 0 : 99 + id, ft_tokenizer_is_special(tok, id == 0 ? 0 : 99 + id));
    assert_true(ft_tokenizer_is_special(tok, 101) && ft_tokenizer_is_special(tok, 0) && !ft_tokenizer_is_special(tok, 1));
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/bert_ids.txt"), 0);
    t0 = ft_test_cpu_seconds();
    int bad = tt_compare("bert uncased (all-MiniLM-L6-v2 vocab.txt) vs HF BertTokenizerFast", tok, &lines, &ref, FT_TOK_ADD_SPECIAL);
    double dt = ft_test_cpu_seconds() - t0;
    assert_int_equal(bad, 0);
    assert_true(dt < 5.0);   /* CPU s, blind to the machine's load */
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void test_bert_variants(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    static const char *const names[] = { "cased", "cased_strip", "uncased_nostrip", "nocjk" };
    tt_lines lines;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    int bad = 0;
    for (int v = 0; v < 4; v++) {
        char cfg[256], ids[256], vocab[4096], label[128];
        snprintf(cfg, sizeof cfg, "tokenizer/bert_variants/%s.json", names[v]);
        snprintf(ids, sizeof ids, "tokenizer/bert_%s_ids.txt", names[v]);
        snprintf(vocab, sizeof vocab, "%s", ft_fixture("tokenizer/bert/vocab.txt"));
        ft_tokenizer *tok;
        int rc = ft_tokenizer_load_wordpiece(&tok, vocab, ft_fixture(cfg));
        if (rc < 0) printf("%s\n", ft_last_error());
        assert_int_equal(rc, 0);
        tt_ids ref;
        assert_int_equal(tt_read_ids(&ref, ids), 0);
        snprintf(label, sizeof label, "bert %s vs HF BertTokenizerFast", names[v]);
        bad += tt_compare(label, tok, &lines, &ref, FT_TOK_ADD_SPECIAL);
        tt_ids_free(&ref);
        ft_tokenizer_free(tok);
    }
    assert_int_equal(bad, 0);
    /* without a config: BertTokenizer's defaults (uncased), the same as the model's config */
    ft_tokenizer *a, *b;
    assert_int_equal(ft_tokenizer_load_wordpiece(&a, ft_fixture("tokenizer/bert/vocab.txt"), NULL), 0);
    b = load_bert();
    for (int i = 0; i < lines.n; i += 5) {
        int *x, nx, *y, ny;
        assert_int_equal(ft_tokenizer_encode(a, lines.s[i], lines.len[i], FT_TOK_ADD_SPECIAL, &x, &nx), 0);
        assert_int_equal(ft_tokenizer_encode(b, lines.s[i], lines.len[i], FT_TOK_ADD_SPECIAL, &y, &ny), 0);
        bad += nx != ny || memcmp(x, y, sizeof *x * (size_t)nx) != 0;
        free(x); free(y);
    }
    printf("bert: vocab.txt without a config == with the model's config: %d mismatching lines\n", bad);
    assert_int_equal(bad, 0);
    assert_int_equal(ft_tokenizer_model_max_length(a), 0);
    ft_tokenizer_free(a); ft_tokenizer_free(b);
    tt_lines_free(&lines);
}

/* pairs file: "n0 id id ..." for the pair (line i, line i+1); "*" = not compared */
static int compare_pairs(const char *name, const ft_tokenizer *tok, const char *rel) {
    tt_lines lines, ref;
    if (tt_read_lines(&lines, "tokenizer/lines.txt") < 0 || tt_read_lines(&ref, rel) < 0) return 1;
    int bad = 0, pairs = 0;
    long tokens = 0;
    for (int i = 0; i < ref.n && i + 1 < lines.n; i++) {
        if (strcmp(ref.s[i], "*") == 0) continue;
        int *want, nwant;
        tt_parse_id_list(ref.s[i], &want, &nwant);
        int n0 = want[0];
        int *ids, *types, n;
        if (ft_tokenizer_encode_pair(tok, lines.s[i], lines.len[i], lines.s[i + 1], lines.len[i + 1], FT_TOK_ADD_SPECIAL,
                                     &ids, &types, &n) < 0) {
            printf("    pair %d: %s\n", i + 1, ft_last_error()); bad++; free(want); continue;
        }
        pairs++;
        tokens += nwant - 1;
        int ok = n == nwant - 1 && memcmp(ids, want + 1, sizeof *ids * (size_t)n) == 0;
        for (int k = 0; ok && k < n; k++) ok = types[k] == (k >= n0);
        /* build_inputs from the two sequences encoded alone gives the same */
        int *a, na, *b, nb, *ids2, *types2, n2;
        assert_int_equal(ft_tokenizer_encode(tok, lines.s[i], lines.len[i], 0, &a, &na), 0);
        assert_int_equal(ft_tokenizer_encode(tok, lines.s[i + 1], lines.len[i + 1], 0, &b, &nb), 0);
        assert_int_equal(ft_tokenizer_build_inputs(tok, a, na, b, nb, &ids2, &types2, &n2), 0);
        ok = ok && n2 == n && memcmp(ids2, ids, sizeof *ids * (size_t)n) == 0 && memcmp(types2, types, sizeof *types * (size_t)n) == 0;
        ok = ok && n == na + nb + ft_tokenizer_num_special_tokens(tok, 1);
        if (!ok && ++bad <= 3) {
            printf("    MISMATCH pair %d: '%s' | '%s'\n", i + 1, lines.s[i], lines.s[i + 1]);
            tt_print_ids("ref", want + 1, nwant - 1);
            tt_print_ids("got", ids, n);
            tt_print_ids("types", types, n);
        }
        free(want); free(ids); free(types); free(a); free(b); free(ids2); free(types2);
    }
    printf("%s: %d pairs, %ld tokens compared (ids and type ids), %d mismatching\n", name, pairs, tokens, bad);
    tt_lines_free(&lines); tt_lines_free(&ref);
    return bad + (pairs == 0);
}

static void test_bert_pairs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    ft_tokenizer *tok = load_bert();
    assert_int_equal(compare_pairs("bert pairs [CLS] A [SEP] B [SEP] vs HF", tok, "tokenizer/bert_pairs.txt"), 0);

    /* one sequence: encode's ids, type ids 0; pairs without specials: A then B, types 0 then 1 */
    const char *a = "How old are you?", *b = "I'm six.";
    int *ids, *types, n, *x, nx;
    assert_int_equal(ft_tokenizer_encode_pair(tok, a, strlen(a), NULL, 0, FT_TOK_ADD_SPECIAL, &ids, &types, &n), 0);
    assert_int_equal(ft_tokenizer_encode(tok, a, strlen(a), FT_TOK_ADD_SPECIAL, &x, &nx), 0);
    assert_int_equal(n, nx);
    assert_memory_equal(ids, x, sizeof *ids * (size_t)n);
    for (int i = 0; i < n; i++) assert_int_equal(types[i], 0);
    free(ids); free(types); free(x);
    /* HF: tokenizer("How old are you?", "I'm six.") */
    static const int want[] = { 101, 2129, 2214, 2024, 2017, 1029, 102, 1045, 1005, 1049, 2416, 1012, 102 };
    assert_int_equal(ft_tokenizer_encode_pair(tok, a, strlen(a), b, strlen(b), FT_TOK_ADD_SPECIAL, &ids, &types, &n), 0);
    tt_print_ids("pair ids", ids, n);
    tt_print_ids("type ids", types, n);
    assert_int_equal(n, 13);
    assert_memory_equal(ids, want, sizeof want);
    for (int i = 0; i < n; i++) assert_int_equal(types[i], i >= 7);
    free(ids); free(types);
    assert_int_equal(ft_tokenizer_encode_pair(tok, a, strlen(a), b, strlen(b), 0, &ids, &types, &n), 0);
    assert_int_equal(n, 10);
    assert_memory_equal(ids, want + 1, sizeof *ids * 5);
    assert_memory_equal(ids + 5, want + 7, sizeof *ids * 5);
    for (int i = 0; i < n; i++) assert_int_equal(types[i], i >= 5);
    free(ids); free(types);
    /* type_ids may be NULL; an empty B is a sequence ([CLS] A [SEP] [SEP]) */
    assert_int_equal(ft_tokenizer_encode_pair(tok, "", 0, "", 0, FT_TOK_ADD_SPECIAL, &ids, NULL, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 101); assert_int_equal(ids[1], 102); assert_int_equal(ids[2], 102);
    free(ids);
    assert_int_equal(ft_tokenizer_build_inputs(tok, NULL, 0, NULL, 0, &ids, &types, &n), 0);
    assert_int_equal(n, 2);
    free(ids); free(types);
    assert_int_equal(ft_tokenizer_encode_pair(tok, NULL, 3, NULL, 0, 0, &ids, &types, &n), FT_ERR_INVALID);
    ft_tokenizer_free(tok);
}

/* decoded file: one line of text per line of lines.txt ("*" = not compared); ids from ref */
static int compare_decoded(const char *name, const ft_tokenizer *tok, const char *ids_rel, const char *dec_rel, int flags) {
    tt_lines lines, dec;
    tt_ids ref;
    if (tt_read_lines(&lines, "tokenizer/lines.txt") < 0 || tt_read_lines(&dec, dec_rel) < 0 || tt_read_ids(&ref, ids_rel) < 0) return 1;
    int bad = 0, checked = 0;
    for (int i = 0; i < dec.n && i < ref.lines; i++) {
        if (strcmp(dec.s[i], "*") == 0) continue;
        int *ids = ref.ids[i], n = ref.n[i], own = 0;
        if (n < 0) {   /* no reference ids on this line: encode it (the ids are checked elsewhere) */
            assert_int_equal(ft_tokenizer_encode(tok, lines.s[i], lines.len[i], FT_TOK_ADD_SPECIAL, &ids, &n), 0);
            own = 1;
        }
        char *s; size_t len;
        assert_int_equal(ft_tokenizer_decode(tok, ids, n, flags, &s, &len), 0);
        checked++;
        int ok = len == dec.len[i] && memcmp(s, dec.s[i], len) == 0;
        if (ok && !flags) {   /* decode_piece concatenates to the same */
            char buf[1024];
            size_t k = 0;
            for (int j = 0; j < n && ok; j++) {
                int m = ft_tokenizer_decode_piece(tok, j ? ids[j - 1] : -1, ids[j], buf, sizeof buf);
                ok = m >= 0 && k + (size_t)m <= len && memcmp(s + k, buf, (size_t)m) == 0;
                k += (size_t)(m > 0 ? m : 0);
            }
            ok = ok && k == len;
        }
        if (!ok && ++bad <= 3) printf("    MISMATCH line %d:\n      hf  '%s'\n      got '%s'\n", i + 1, dec.s[i], s);
        free(s);
        if (own) free(ids);
    }
    printf("%s: %d lines decoded, %d differ from HF\n", name, checked, bad);
    tt_lines_free(&lines); tt_lines_free(&dec); tt_ids_free(&ref);
    return bad + (checked == 0);
}

static void test_bert_decode(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    ft_tokenizer *tok = load_bert();
    assert_int_equal(compare_decoded("bert decode vs HF", tok, "tokenizer/bert_ids.txt", "tokenizer/bert_decoded.txt", 0), 0);
    assert_int_equal(compare_decoded("bert decode (skip special) vs HF", tok, "tokenizer/bert_ids.txt",
                                     "tokenizer/bert_decoded_skip.txt", FT_TOK_SKIP_SPECIAL), 0);
    /* the WordPiece decoder by hand: "##" glues, cleanup per token, a leading "##" stays */
    int ing = ft_tokenizer_token_id(tok, "##ing");
    int ids[] = { ing, ft_tokenizer_token_id(tok, "play"), ing, 1012, 1005, 1055, 1029 };
    char *s; size_t n;
    assert_int_equal(ft_tokenizer_decode(tok, ids, 7, 0, &s, &n), 0);
    printf("  decode ##ing play ##ing . ' s ? -> '%s'\n", s);
    assert_string_equal(s, "##ing playing. ' s?");   /* HF gives the same */
    free(s);
    char buf[16];
    assert_int_equal(ft_tokenizer_decode_piece(tok, -1, ing, buf, sizeof buf), 5);
    assert_string_equal(buf, "##ing");
    assert_int_equal(ft_tokenizer_decode_piece(tok, 7, ing, buf, sizeof buf), 3);
    assert_string_equal(buf, "ing");
    assert_int_equal(ft_tokenizer_decode_piece(tok, 7, 1012, buf, sizeof buf), 1);
    assert_string_equal(buf, ".");
    assert_int_equal(ft_tokenizer_decode_piece(tok, 7, ft_tokenizer_token_id(tok, "play"), buf, 3), FT_ERR_RANGE);
    ft_tokenizer_free(tok);
}

/* ---- a tokenizer.json written by HF tokenizers ---- */
static void test_bert_small_json(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert_small/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/bert_small/tokenizer.json"), 0);
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_WORDPIECE);
    int cls = ft_tokenizer_token_id(tok, "[CLS]"), sep = ft_tokenizer_token_id(tok, "[SEP]");
    printf("bert_small: vocab %d, cls %d, sep %d, pad %d, mask %d, unk %d\n", ft_tokenizer_vocab_size(tok), ft_tokenizer_cls(tok),
           ft_tokenizer_sep(tok), ft_tokenizer_pad(tok), ft_tokenizer_mask(tok), ft_tokenizer_unk(tok));
    assert_int_equal(ft_tokenizer_cls(tok), cls);
    assert_int_equal(ft_tokenizer_sep(tok), sep);
    assert_int_equal(ft_tokenizer_pad(tok), 0);   /* padding.pad_id */
    assert_int_equal(ft_tokenizer_mask(tok), ft_tokenizer_token_id(tok, "[MASK]"));
    assert_int_equal(ft_tokenizer_unk(tok), ft_tokenizer_token_id(tok, "[UNK]"));
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/bert_small_ids.txt"), 0);
    /* truncation (64) and padding in the file are ignored, as by transformers' __call__ */
    assert_int_equal(tt_compare("bert_small (HF-written tokenizer.json, BertProcessing) vs HF", tok, &lines, &ref, FT_TOK_ADD_SPECIAL), 0);
    assert_int_equal(compare_pairs("bert_small pairs (BertProcessing) vs HF", tok, "tokenizer/bert_small_pairs.txt"), 0);
    assert_int_equal(compare_decoded("bert_small decode (no cleanup) vs HF", tok, "tokenizer/bert_small_ids.txt",
                                     "tokenizer/bert_small_decoded.txt", 0), 0);
    /* max_input_chars_per_word 20: a 21-character word is [UNK] */
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, "aaaaaaaaaaaaaaaaaaaaa", 21, 0, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], ft_tokenizer_unk(tok));
    free(ids);
    assert_int_equal(ft_tokenizer_encode(tok, "aaaaaaaaaaaaaaaaaaaa", 20, 0, &ids, &n), 0);
    assert_true(n >= 1 && ids[0] != ft_tokenizer_unk(tok));
    free(ids);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

/* the tokenizer.json loader on the real vocabulary: our save of vocab.txt, loaded back */
static void test_bert_json_of_real_vocab(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    ft_tokenizer *tok = load_bert(), *back;
    assert_int_equal(ft_tokenizer_save_json(tok, tmp_path("bert.json")), 0);
    assert_int_equal(ft_tokenizer_load_json(&back, tmp_path("bert.json")), 0);
    assert_int_equal(ft_tokenizer_get_kind(back), FT_TOK_WORDPIECE);
    assert_int_equal(ft_tokenizer_cls(back), 101);
    assert_int_equal(ft_tokenizer_sep(back), 102);
    assert_int_equal(ft_tokenizer_mask(back), 103);
    assert_int_equal(ft_tokenizer_unk(back), 100);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/bert_ids.txt"), 0);
    assert_int_equal(tt_compare("bert tokenizer.json (our save of vocab.txt) vs HF", back, &lines, &ref, FT_TOK_ADD_SPECIAL), 0);
    assert_int_equal(compare_pairs("bert tokenizer.json pairs vs HF", back, "tokenizer/bert_pairs.txt"), 0);
    assert_int_equal(compare_decoded("bert tokenizer.json decode vs HF", back, "tokenizer/bert_ids.txt", "tokenizer/bert_decoded.txt", 0), 0);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok); ft_tokenizer_free(back);
}

/* ---- edge cases ---- */
static void test_bert_edge_cases(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    ft_tokenizer *tok = load_bert();
    const int cls = 101, sep = 102, unk = 100, mask = 103;
    expect_ids(tok, "", FT_TOK_ADD_SPECIAL, (const int[]){ cls, sep }, 2);
    expect_ids(tok, "", 0, NULL, 0);
    expect_ids(tok, " \t\n ", 0, NULL, 0);
    /* specials in the raw text (before lowercasing); FT_TOK_NO_SPECIAL_PARSE makes them text */
    int *ids, n;
    const char *m = "paris is the [MASK] of france.";
    assert_int_equal(ft_tokenizer_encode(tok, m, strlen(m), FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    int found = 0;
    for (int i = 0; i < n; i++) found += ids[i] == mask;
    assert_int_equal(found, 1);
    free(ids);
    assert_int_equal(ft_tokenizer_encode(tok, m, strlen(m), FT_TOK_NO_SPECIAL_PARSE, &ids, &n), 0);
    for (int i = 0; i < n; i++) assert_int_not_equal(ids[i], mask);
    free(ids);
    /* a word of 100 characters is split, of 101 it is [UNK]; control characters vanish */
    char w[128];
    memset(w, 'x', sizeof w);
    assert_int_equal(ft_tokenizer_encode(tok, w, 100, 0, &ids, &n), 0);
    assert_true(n > 1);
    for (int i = 0; i < n; i++) assert_int_not_equal(ids[i], unk);
    free(ids);
    expect_ids(tok, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0,
               (const int[]){ unk }, 1);
    int *a, na;
    assert_int_equal(ft_tokenizer_encode(tok, "hello", 5, 0, &a, &na), 0);
    expect_ids(tok, "he\x01ll\xc2\xado\xef\xbb\xbf", 0, a, na);   /* \x01, soft hyphen, BOM removed */
    expect_ids(tok, "H\xc3\x89LLO", 0, a, na);                      /* uncased: lowercase + accents stripped */
    expect_ids(tok, "He\xcc\x81llo", 0, a, na);                     /* a combining accent */
    free(a);
    /* whitespace of every kind separates words; CJK ideographs are words of their own */
    int *b, nb;
    assert_int_equal(ft_tokenizer_encode(tok, "hello world", 11, 0, &b, &nb), 0);
    expect_ids(tok, "hello\xe3\x80\x80world", 0, b, nb);            /* U+3000 */
    expect_ids(tok, "hello\xc2\xa0\r\n\tworld", 0, b, nb);
    free(b);
    assert_int_equal(ft_tokenizer_encode(tok, "\xe6\x97\xa5\xe6\x9c\xac", 6, 0, &b, &nb), 0);   /* 日本 */
    assert_int_equal(nb, 2);
    free(b);
    /* invalid UTF-8: the bytes stay in their word, which is then [UNK]; nothing crashes */
    expect_ids(tok, "ok \xff\xfe ok", 0, (const int[]){ 7929, unk, 7929 }, 3);
    ft_tokenizer_free(tok);
}

static void test_bert_random_bytes_and_long_inputs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    ft_tokenizer *tok = load_bert();
    unsigned rng = 777;
    unsigned char text[600];
    long total = 0, bytes = 0;
    for (int t = 0; t < 2000; t++) {
        int len = (int)((rng = rng * 1103515245u + 12345u) >> 16) % 512;
        for (int i = 0; i < len; i++) {
            rng = rng * 1103515245u + 12345u;
            unsigned r = rng >> 16;
            static const unsigned char mix[] = " aZ9'\n\t.\xc3\xa9\xe2\x82\xac\x80\xff\xe6\x97\xa5\xcc\x81";
            text[i] = (unsigned char)(t % 2 ? r : mix[r % 20]);
        }
        int *ids, n;
        assert_int_equal(ft_tokenizer_encode(tok, (char *)text, (size_t)len, FT_TOK_ADD_SPECIAL, &ids, &n), 0);
        char *s; size_t sl;
        assert_int_equal(ft_tokenizer_decode(tok, ids, n, 0, &s, &sl), 0);
        total += n; bytes += len;
        free(ids); free(s);
    }
    printf("bert: 2000 random byte strings (%ld bytes, invalid UTF-8 included) -> %ld tokens, encode and decode ok\n", bytes, total);
    /* 200 KB inputs of one kind each */
    const size_t N = 200000;
    char *s = malloc(N);
    const char *kinds[] = { "spaces then word", "one long word", "punctuation", "CJK", "mixed" };
    for (int k = 0; k < 5; k++) {
        for (size_t i = 0; i < N; i++) s[i] = k == 0 ? ' ' : k == 1 ? (char)('a' + i % 26) : k == 2 ? ".,!?"[i % 4] : k == 3 ? "\xe6\x97\xa5"[i % 3] : "ab \n\t1.\xc3\xa9"[i % 9];
        if (k == 0) memcpy(s + N - 4, "word", 4);
        double t0 = tt_now();
        int *ids, n;
        assert_int_equal(ft_tokenizer_encode(tok, s, N, 0, &ids, &n), 0);
        printf("bert: %zu bytes of %-16s -> %7d tokens in %6.1f ms\n", N, kinds[k], n, 1e3 * (tt_now() - t0));
        assert_true(k != 1 || (n == 1 && ids[0] == 100));   /* one word longer than 100 characters */
        free(ids);
    }
    free(s);
    ft_tokenizer_free(tok);
}

typedef struct { const ft_tokenizer *tok; const tt_lines *lines; const tt_ids *ref; int bad; } thread_job;

static void *thread_main(void *p) {
    thread_job *j = p;
    for (int i = 0; i < j->lines->n; i++) {
        int *ids, *types, n;
        if (ft_tokenizer_encode_pair(j->tok, j->lines->s[i], j->lines->len[i], NULL, 0, FT_TOK_ADD_SPECIAL, &ids, &types, &n) < 0) {
            j->bad++;
            continue;
        }
        if (n != j->ref->n[i] || memcmp(ids, j->ref->ids[i], sizeof *ids * (size_t)n) != 0) j->bad++;
        free(ids); free(types);
    }
    return NULL;
}

static void test_bert_threads(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/bert/vocab.txt")) return;
    ft_tokenizer *tok = load_bert();
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/bert_ids.txt"), 0);
    pthread_t th[4];
    thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){ tok, &lines, &ref, 0 };
        assert_int_equal(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
    }
    int bad = 0;
    for (int t = 0; t < 4; t++) { pthread_join(th[t], NULL); bad += jobs[t].bad; }
    printf("bert: 4 threads over %d lines on one tokenizer: %d mismatches\n", lines.n, bad);
    assert_int_equal(bad, 0);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void expect_error(int rc, int want, const char *what) {
    printf("  %-44s -> %d (%s): %s\n", what, rc, ft_strerror(rc), ft_last_error());
    assert_int_equal(rc, want);
}

static void test_wordpiece_small_and_errors(void **state) {
    (void)state;
    /* a hand-made vocabulary: greedy longest match, "##" pieces, unk for unmatchable words,
     * CRLF lines and trailing spaces trimmed as HF does */
    write_file(tmp_path("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\r\nunaff \n##aff\n##able\n##a\n##ble\n"
                                      "a\nb\n##b\n!\n");
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load_wordpiece(&tok, tmp_path("vocab.txt"), NULL), 0);
    assert_int_equal(ft_tokenizer_vocab_size(tok), 15);
    assert_string_equal(ft_tokenizer_token_str(tok, 5), "un");
    assert_string_equal(ft_tokenizer_token_str(tok, 6), "unaff");
    expect_ids(tok, "unaffable", 0, (const int[]){ 6, 8 }, 2);          /* unaff ##able, not un ##aff ##able */
    expect_ids(tok, "Unaffable!", FT_TOK_ADD_SPECIAL, (const int[]){ 2, 6, 8, 14, 3 }, 5);
    expect_ids(tok, "unaffc b", 0, (const int[]){ 1, 12 }, 2);           /* "c" is unknown: the word is [UNK] */
    expect_ids(tok, "bb[MASK]a", 0, (const int[]){ 12, 13, 4, 11 }, 4);
    char *s; size_t n;
    assert_int_equal(ft_tokenizer_decode(tok, (const int[]){ 2, 6, 8, 14, 12, 13, 3 }, 7, 0, &s, &n), 0);
    assert_string_equal(s, "[CLS] unaffable! bb [SEP]");
    free(s);
    assert_int_equal(ft_tokenizer_decode(tok, (const int[]){ 2, 6, 8, 14, 12, 13, 3 }, 7, FT_TOK_SKIP_SPECIAL, &s, &n), 0);
    assert_string_equal(s, "unaffable! bb");
    free(s);
    ft_tokenizer_free(tok);

    /* the directory loader takes vocab.txt and its config */
    char d[512];
    snprintf(d, sizeof d, "%s/wp", g_tmp);
    assert_int_equal(mkdir(d, 0755), 0);
    write_file(tmp_path("wp/vocab.txt"), "<unk>\n<s>\n</s>\nhello\n");
    write_file(tmp_path("wp/tokenizer_config.json"),
               "{\"unk_token\": \"<unk>\", \"cls_token\": \"<s>\", \"sep_token\": \"</s>\", \"pad_token\": null, "
               "\"mask_token\": null, \"do_lower_case\": false, \"model_max_length\": 1000000000000000019884624838656}");
    assert_int_equal(ft_tokenizer_load(&tok, d), 0);
    assert_int_equal(ft_tokenizer_cls(tok), 1);
    assert_int_equal(ft_tokenizer_sep(tok), 2);
    assert_int_equal(ft_tokenizer_pad(tok), -1);
    assert_int_equal(ft_tokenizer_mask(tok), -1);
    assert_int_equal(ft_tokenizer_model_max_length(tok), 0);   /* "unlimited" */
    expect_ids(tok, "hello Hello", FT_TOK_ADD_SPECIAL, (const int[]){ 1, 3, 0, 2 }, 4);
    ft_tokenizer_free(tok);

    ft_tokenizer *t2 = (ft_tokenizer *)1;
    expect_error(ft_tokenizer_load_wordpiece(&t2, tmp_path("nope.txt"), NULL), FT_ERR_NOT_FOUND, "missing vocab.txt");
    assert_null(t2);
    write_file(tmp_path("empty.txt"), "");
    expect_error(ft_tokenizer_load_wordpiece(&t2, tmp_path("empty.txt"), NULL), FT_ERR_FORMAT, "empty vocab.txt");
    write_file(tmp_path("nounk.txt"), "[CLS]\n[SEP]\nhello\n");
    expect_error(ft_tokenizer_load_wordpiece(&t2, tmp_path("nounk.txt"), NULL), FT_ERR_FORMAT, "vocab.txt without [UNK]");
    write_file(tmp_path("bad.json"), "{\"do_lower_case\": tru");
    char vp[512], cp[512];
    snprintf(vp, sizeof vp, "%s", tmp_path("vocab.txt"));
    snprintf(cp, sizeof cp, "%s", tmp_path("bad.json"));
    expect_error(ft_tokenizer_load_wordpiece(&t2, vp, cp), FT_ERR_FORMAT, "broken tokenizer_config.json");
    assert_non_null(strstr(ft_last_error(), "bad.json"));
    expect_error(ft_tokenizer_load_wordpiece(&t2, NULL, NULL), FT_ERR_INVALID, "no path");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_identity),
        cmocka_unit_test(test_bert_variants),
        cmocka_unit_test(test_bert_pairs),
        cmocka_unit_test(test_bert_decode),
        cmocka_unit_test(test_bert_small_json),
        cmocka_unit_test(test_bert_json_of_real_vocab),
        cmocka_unit_test(test_bert_edge_cases),
        cmocka_unit_test(test_bert_random_bytes_and_long_inputs),
        cmocka_unit_test(test_bert_threads),
        cmocka_unit_test(test_wordpiece_small_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
