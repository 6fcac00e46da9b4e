/* test_tokenizer_roberta.c — RoBERTa byte-level BPE and sentence pairs on the BPE tokenizers.
 *
 * A RoBERTa-layout BPE trained by tests/parity/make_wordpiece_fixtures.py (<s>=0 <pad>=1 </s>=2
 * <unk>=3, <mask> last with lstrip from tokenizer_config.json): ids identical to HF
 * RobertaTokenizerFast (transformers 5) with <s> ... </s> on lines.txt, loaded from vocab.json +
 * merges.txt (+ config), from the tokenizer.json transformers saves (RobertaProcessing), and with
 * add_prefix_space true; pairs <s> A </s></s> B </s> with type ids all 0; decode round trips.
 * Pairs on the other BPE tokenizers: GPT-2 (no post-processor: A B, types 0 / 1) and the Llama-3
 * style TemplateProcessing pair ("<|begin_of_text|> $A <|begin_of_text|> $B:1"). */
#include "test_tokenizer_common.h"

static void expect_ids(const ft_tokenizer *tok, const char *text, int flags, const int *want, int nwant) {
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, text, strlen(text), flags, &ids, &n), 0);
    int same = n == nwant && (n == 0 || memcmp(ids, want, sizeof *ids * (size_t)n) == 0);
    if (!same) { printf("    '%s'\n", text); tt_print_ids("want", want, nwant); tt_print_ids("got", ids, n); }
    assert_true(same);
    free(ids);
}

static void check_roberta_specials(const ft_tokenizer *tok) {
    int mask = ft_tokenizer_vocab_size(tok) - 1;
    printf("  kind %d, vocab %d, bos %d eos %d pad %d unk %d cls %d sep %d mask %d ('%s')\n", ft_tokenizer_get_kind(tok),
           ft_tokenizer_vocab_size(tok), ft_tokenizer_bos(tok), ft_tokenizer_eos(tok), ft_tokenizer_pad(tok), ft_tokenizer_unk(tok),
           ft_tokenizer_cls(tok), ft_tokenizer_sep(tok), ft_tokenizer_mask(tok), ft_tokenizer_token_str(tok, mask));
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_BYTE_BPE);
    assert_int_equal(ft_tokenizer_bos(tok), 0);
    assert_int_equal(ft_tokenizer_eos(tok), 2);
    assert_int_equal(ft_tokenizer_cls(tok), 0);
    assert_int_equal(ft_tokenizer_sep(tok), 2);
    assert_int_equal(ft_tokenizer_unk(tok), 3);
    assert_int_equal(ft_tokenizer_mask(tok), mask);
    assert_string_equal(ft_tokenizer_token_str(tok, mask), "<mask>");
    for (int id = 0; id < 4; id++) assert_true(ft_tokenizer_is_special(tok, id));
    assert_true(ft_tokenizer_is_special(tok, mask));
    assert_int_equal(ft_tokenizer_num_special_tokens(tok, 0), 2);
    assert_int_equal(ft_tokenizer_num_special_tokens(tok, 1), 4);
    /* <mask> has lstrip: the space before it goes with it */
    int *a, na, *b, nb;
    assert_int_equal(ft_tokenizer_encode(tok, "Hello", 5, 0, &a, &na), 0);
    assert_int_equal(ft_tokenizer_encode(tok, " world", 6, 0, &b, &nb), 0);
    int want[64], k = 0;
    want[k++] = 0;
    for (int i = 0; i < na; i++) want[k++] = a[i];
    want[k++] = mask;
    for (int i = 0; i < nb; i++) want[k++] = b[i];
    want[k++] = 2;
    expect_ids(tok, "Hello   <mask> world", FT_TOK_ADD_SPECIAL, want, k);
    free(a); free(b);
}

/* <mask> takes the space before it (lstrip), so such lines do not decode back exactly */
static int no_mask(const char *s, size_t n) { (void)n; return strstr(s, "<mask>") == NULL; }

static void roberta_identity(const char *name, const char *rel, const char *ids_rel) {
    if (!ft_fixture_present(rel)) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, rel), 0);
    check_roberta_specials(tok);
    assert_int_equal(ft_tokenizer_pad(tok), 1);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, ids_rel), 0);
    assert_int_equal(tt_compare(name, tok, &lines, &ref, FT_TOK_ADD_SPECIAL), 0);
    assert_int_equal(tt_roundtrip(name, tok, &lines, 0, 0, no_mask), 0);
    /* with specials: decode gives "<s>" text "</s>" (HF's decode), and the text back when skipping them */
    int bad = 0;
    for (int i = 0; i < lines.n; i += 11) {
        if (!no_mask(lines.s[i], lines.len[i])) continue;
        int *ids, n;
        char *s; size_t len;
        assert_int_equal(ft_tokenizer_encode(tok, lines.s[i], lines.len[i], FT_TOK_ADD_SPECIAL, &ids, &n), 0);
        assert_int_equal(ft_tokenizer_decode(tok, ids, n, 0, &s, &len), 0);
        bad += len != lines.len[i] + 7 || memcmp(s, "<s>", 3) != 0 || memcmp(s + 3, lines.s[i], lines.len[i]) != 0 ||
               memcmp(s + 3 + lines.len[i], "</s>", 4) != 0;
        free(s);
        assert_int_equal(ft_tokenizer_decode(tok, ids, n, FT_TOK_SKIP_SPECIAL, &s, &len), 0);
        bad += len != lines.len[i] || memcmp(s, lines.s[i], len) != 0;
        free(s); free(ids);
    }
    assert_int_equal(bad, 0);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void test_roberta_vocab_files(void **state) {
    (void)state;
    roberta_identity("roberta vocab.json + merges.txt vs HF RobertaTokenizerFast", "tokenizer/roberta", "tokenizer/roberta_ids.txt");
}

static void test_roberta_tokenizer_json(void **state) {
    (void)state;
    roberta_identity("roberta tokenizer.json (RobertaProcessing) vs HF", "tokenizer/roberta_json", "tokenizer/roberta_ids.txt");
}

static void test_roberta_add_prefix_space(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/roberta_prefix/vocab.json")) return;
    ft_tokenizer *tok, *plain;
    assert_int_equal(tt_load(&tok, "tokenizer/roberta_prefix"), 0);
    assert_int_equal(tt_load(&plain, "tokenizer/roberta"), 0);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/roberta_prefix_ids.txt"), 0);
    assert_int_equal(tt_compare("roberta add_prefix_space=true vs HF", tok, &lines, &ref, FT_TOK_ADD_SPECIAL), 0);
    /* "Hello" and " Hello" encode alike with the prefix space, differently without (the default) */
    int *a, na, *b, nb;
    assert_int_equal(ft_tokenizer_encode(tok, "Hello", 5, 0, &a, &na), 0);
    expect_ids(tok, " Hello", 0, a, na);
    free(a);
    assert_int_equal(ft_tokenizer_encode(plain, "Hello", 5, 0, &a, &na), 0);
    assert_int_equal(ft_tokenizer_encode(plain, " Hello", 6, 0, &b, &nb), 0);
    assert_true(na != nb || memcmp(a, b, sizeof *a * (size_t)na) != 0);
    free(a); free(b);
    /* the explicit-file loader reads no config: add_prefix_space false (HF's default) */
    char v[4096], m[4096];
    snprintf(v, sizeof v, "%s", ft_fixture("tokenizer/roberta_prefix/vocab.json"));
    snprintf(m, sizeof m, "%s", ft_fixture("tokenizer/roberta_prefix/merges.txt"));
    ft_tokenizer *files;
    assert_int_equal(ft_tokenizer_load_bpe_files(&files, v, m), 0);
    assert_int_equal(ft_tokenizer_cls(files), 0);
    assert_int_equal(ft_tokenizer_encode(files, " Hello", 6, 0, &a, &na), 0);
    expect_ids(plain, " Hello", 0, a, na);
    free(a);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok); ft_tokenizer_free(plain); ft_tokenizer_free(files);
}

static void test_roberta_pairs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/roberta/vocab.json")) return;
    const char *rels[] = { "tokenizer/roberta", "tokenizer/roberta_json" };
    for (int r = 0; r < 2; r++) {
        ft_tokenizer *tok;
        assert_int_equal(tt_load(&tok, rels[r]), 0);
        tt_lines lines, ref;
        assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
        assert_int_equal(tt_read_lines(&ref, "tokenizer/roberta_pairs.txt"), 0);
        int bad = 0, pairs = 0;
        long tokens = 0;
        for (int i = 0; i < ref.n && i + 1 < lines.n; i++) {
            if (strcmp(ref.s[i], "*") == 0) continue;
            int *want, nwant, *ids, *types, n;
            tt_parse_id_list(ref.s[i], &want, &nwant);
            assert_int_equal(ft_tokenizer_encode_pair(tok, lines.s[i], lines.len[i], lines.s[i + 1], lines.len[i + 1],
                                                      FT_TOK_ADD_SPECIAL, &ids, &types, &n), 0);
            pairs++;
            tokens += n;
            int ok = want[0] == nwant - 1 && n == nwant - 1 && memcmp(ids, want + 1, sizeof *ids * (size_t)n) == 0;
            for (int k = 0; ok && k < n; k++) ok = types[k] == 0;
            if (!ok && ++bad <= 3) { printf("    MISMATCH pair %d\n", i + 1); tt_print_ids("ref", want + 1, nwant - 1); tt_print_ids("got", ids, n); }
            free(want); free(ids); free(types);
            /* without specials: A then B, type ids still all 0 (RobertaProcessing) */
            assert_int_equal(ft_tokenizer_encode_pair(tok, lines.s[i], lines.len[i], lines.s[i + 1], lines.len[i + 1], 0,
                                                      &ids, &types, &n), 0);
            for (int k = 0; k < n; k++) bad += types[k] != 0;
            free(ids); free(types);
        }
        printf("roberta pairs <s> A </s></s> B </s> (%s) vs HF: %d pairs, %ld tokens (type ids all 0), %d mismatching\n", rels[r],
               pairs, tokens, bad);
        assert_int_equal(bad, 0);
        assert_true(pairs > 100);
        tt_lines_free(&lines); tt_lines_free(&ref);
        ft_tokenizer_free(tok);
    }
}

/* pairs on tokenizers without a pair template, and with one from tokenizer.json */
static void test_bpe_pairs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json") || !ft_fixture_present("tokenizer/llama3/tokenizer.json")) return;
    ft_tokenizer *gpt2, *llama3;
    assert_int_equal(tt_load(&gpt2, "tokenizer/gpt2"), 0);
    assert_int_equal(tt_load(&llama3, "tokenizer/llama3"), 0);
    const char *a = "Hello world", *b = "second part";
    int *x, nx, *y, ny, *ids, *types, n;
    /* GPT-2: no post-processor; HF GPT2TokenizerFast("Hello world", "second part") = A B, types 0 0 1 1 */
    assert_int_equal(ft_tokenizer_encode(gpt2, a, strlen(a), 0, &x, &nx), 0);
    assert_int_equal(ft_tokenizer_encode(gpt2, b, strlen(b), 0, &y, &ny), 0);
    assert_int_equal(ft_tokenizer_encode_pair(gpt2, a, strlen(a), b, strlen(b), FT_TOK_ADD_SPECIAL, &ids, &types, &n), 0);
    assert_int_equal(n, nx + ny);
    assert_memory_equal(ids, x, sizeof *x * (size_t)nx);
    assert_memory_equal(ids + nx, y, sizeof *y * (size_t)ny);
    for (int i = 0; i < n; i++) assert_int_equal(types[i], i >= nx);
    assert_int_equal(ft_tokenizer_num_special_tokens(gpt2, 1), 0);
    free(x); free(y); free(ids); free(types);
    /* Llama-3 style: "<|begin_of_text|> $A <|begin_of_text|> $B:1" */
    int bos = ft_tokenizer_bos(llama3);
    assert_int_equal(ft_tokenizer_encode(llama3, a, strlen(a), 0, &x, &nx), 0);
    assert_int_equal(ft_tokenizer_encode(llama3, b, strlen(b), 0, &y, &ny), 0);
    assert_int_equal(ft_tokenizer_encode_pair(llama3, a, strlen(a), b, strlen(b), FT_TOK_ADD_SPECIAL, &ids, &types, &n), 0);
    tt_print_ids("llama3 pair", ids, n);
    tt_print_ids("type ids", types, n);
    assert_int_equal(n, nx + ny + 2);
    assert_int_equal(ids[0], bos);
    assert_memory_equal(ids + 1, x, sizeof *x * (size_t)nx);
    assert_int_equal(ids[1 + nx], bos);
    assert_memory_equal(ids + 2 + nx, y, sizeof *y * (size_t)ny);
    for (int i = 0; i < n; i++) assert_int_equal(types[i], i >= 2 + nx);   /* the second BOS has type 0, as written */
    free(x); free(y); free(ids); free(types);
    ft_tokenizer_free(gpt2); ft_tokenizer_free(llama3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roberta_vocab_files),
        cmocka_unit_test(test_roberta_tokenizer_json),
        cmocka_unit_test(test_roberta_add_prefix_space),
        cmocka_unit_test(test_roberta_pairs),
        cmocka_unit_test(test_bpe_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
