/* test_tokenizer_spm.c — SentencePiece-style BPE with byte fallback.
 *
 * A Llama-2-style tokenizer.json (Prepend + Replace normalizer, merges as "a b" strings, trained by
 * the fixture script) and the same model in the newer Metaspace layout: ids identical to HF
 * PreTrainedTokenizerFast on every line of lines.txt and on the lines joined with newlines; BOS rules
 * from tokenizer_config.json; byte fallback for characters outside the vocabulary; decoding (dummy
 * prefix, byte tokens, streaming pieces). llama2.c's tok512.bin: ids identical to a transcription of
 * llama2.c's encode, BOS with FT_TOK_ADD_SPECIAL, decode like llama2.c's decode. */
#include "test_tokenizer_common.h"

/* Lines that SentencePiece-style tokenizers cannot give back: special-token strings (parsed as
 * specials, and the text after them gets a dummy prefix) and U+2581 itself (decodes to ' '). */
static int no_specials(const char *s, size_t n) {
    (void)n;
    return !strstr(s, "<s>") && !strstr(s, "</s>") && !strstr(s, "<unk>") && !strstr(s, "\xe2\x96\x81");
}

static int no_specials_no_leading_space(const char *s, size_t n) { return no_specials(s, n) && s[0] != ' '; }

static void test_spm_identity(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/spm/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/spm"), 0);
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_SPM_BPE);
    printf("spm: vocab %d, bos %d, eos %d, pad %d\n", ft_tokenizer_vocab_size(tok), ft_tokenizer_bos(tok),
           ft_tokenizer_eos(tok), ft_tokenizer_pad(tok));
    assert_int_equal(ft_tokenizer_bos(tok), 1);
    assert_int_equal(ft_tokenizer_eos(tok), 2);
    assert_int_equal(ft_tokenizer_pad(tok), -1);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/spm_ids.txt"), 0);
    assert_int_equal(tt_compare("spm (Llama-2 layout) vs HF PreTrainedTokenizerFast", tok, &lines, &ref, 0), 0);
    assert_int_equal(tt_compare_chunk("spm", tok, &lines, 1), 0);
    assert_int_equal(tt_roundtrip("spm", tok, &lines, 0, 0, no_specials), 0);
    assert_int_equal(tt_roundtrip("spm with BOS, skipping specials", tok, &lines, FT_TOK_ADD_SPECIAL, FT_TOK_SKIP_SPECIAL, no_specials), 0);

    /* BOS from tokenizer_config.json (add_bos_token true, add_eos_token false) */
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, "Hello", 5, FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    assert_true(n >= 2);
    assert_int_equal(ids[0], 1);
    assert_int_not_equal(ids[n - 1], 2);
    char *s; size_t len;
    assert_int_equal(ft_tokenizer_decode(tok, ids, n, 0, &s, &len), 0);
    printf("  decode([<s>, Hello...]) = '%s'\n", s);
    assert_string_equal(s, "<s>Hello");
    free(s);
    free(ids);
    ft_tokenizer_free(tok);

    /* the bare tokenizer.json: BOS from its TemplateProcessing post-processor */
    assert_int_equal(tt_load(&tok, "tokenizer/spm/tokenizer.json"), 0);
    assert_int_equal(ft_tokenizer_encode(tok, "Hello", 5, FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    assert_int_equal(ids[0], 1);
    free(ids);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void test_spm_byte_fallback(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/spm/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/spm"), 0);
    const char *text = "\xf0\x9f\x98\x80";   /* U+1F600, not in the small vocabulary */
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, text, 4, 0, &ids, &n), 0);
    printf("  '%s' ->", text);
    for (int i = 0; i < n; i++) printf(" %d(%s)", ids[i], ft_tokenizer_token_str(tok, ids[i]));
    printf("\n");
    assert_true(n >= 4);
    const char *want[4] = { "<0xF0>", "<0x9F>", "<0x98>", "<0x80>" };
    for (int i = 0; i < 4; i++) assert_string_equal(ft_tokenizer_token_str(tok, ids[n - 4 + i]), want[i]);
    assert_int_equal(ft_tokenizer_token_id(tok, "<0x0A>"), 3 + 10);
    char *s; size_t len;
    assert_int_equal(ft_tokenizer_decode(tok, ids, n, 0, &s, &len), 0);
    assert_string_equal(s, text);
    free(s);
    /* streaming: the pieces of the byte tokens are single bytes; concatenated they give the text */
    char buf[16], acc[32];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int m = ft_tokenizer_decode_piece(tok, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
        assert_true(m >= 0);
        memcpy(acc + k, buf, (size_t)m);
        k += (size_t)m;
    }
    assert_int_equal(k, 4);
    assert_memory_equal(acc, text, 4);
    free(ids);
    ft_tokenizer_free(tok);
}

static void test_spm_metaspace_layout(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/spm_meta/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/spm_meta"), 0);
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_SPM_BPE);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/spm_meta_ids.txt"), 0);
    assert_int_equal(tt_compare("spm (Metaspace prepend_scheme=first) vs HF", tok, &lines, &ref, 0), 0);
    assert_int_equal(tt_compare_chunk("spm_meta", tok, &lines, 0), 0);
    /* Metaspace turns a leading ' ' into the dummy prefix, so those lines lose it (as in HF) */
    assert_int_equal(tt_roundtrip("spm_meta", tok, &lines, 0, 0, no_specials_no_leading_space), 0);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void test_tok512_llama2c(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/tok512.bin")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/tok512.bin"), 0);
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_SPM_BPE);
    assert_int_equal(ft_tokenizer_vocab_size(tok), 512);
    assert_int_equal(ft_tokenizer_bos(tok), 1);
    assert_int_equal(ft_tokenizer_eos(tok), 2);
    assert_string_equal(ft_tokenizer_token_str(tok, 0), "<unk>");
    assert_string_equal(ft_tokenizer_token_str(tok, 1), "<s>");
    assert_string_equal(ft_tokenizer_token_str(tok, 2), "</s>");
    assert_string_equal(ft_tokenizer_token_str(tok, 3 + 0x0A), "<0x0A>");
    assert_string_equal(ft_tokenizer_token_str(tok, 259), "\xe2\x96\x81t");   /* "▁t" (stored as " t") */
    assert_true(ft_tokenizer_is_special(tok, 1));
    assert_false(ft_tokenizer_is_special(tok, 259));

    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/tok512_lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/tok512_ids.txt"), 0);
    assert_int_equal(tt_compare("tok512.bin vs llama2.c encode (Python transcription)", tok, &lines, &ref, 0), 0);
    assert_int_equal(tt_roundtrip("tok512", tok, &lines, 0, 0, NULL), 0);
    assert_int_equal(tt_roundtrip("tok512 with BOS, skipping specials", tok, &lines, FT_TOK_ADD_SPECIAL, FT_TOK_SKIP_SPECIAL, NULL), 0);

    /* FT_TOK_ADD_SPECIAL adds BOS; llama2.c decode strips the space after BOS */
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, lines.s[0], lines.len[0], FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    assert_int_equal(n, ref.n[0] + 1);
    assert_int_equal(ids[0], 1);
    assert_memory_equal(ids + 1, ref.ids[0], sizeof *ids * (size_t)ref.n[0]);
    char buf[64];
    int m = ft_tokenizer_decode_piece(tok, 1, ids[1], buf, sizeof buf);
    assert_true(m > 0);
    printf("  tok512: '%.40s...' -> BOS %d, first piece after BOS '%s' (token '%s')\n", lines.s[0], ids[0], buf,
           ft_tokenizer_token_str(tok, ids[1]));
    assert_true(buf[0] != ' ');
    m = ft_tokenizer_decode_piece(tok, ids[1], ids[2], buf, sizeof buf);
    char *s; size_t len;
    assert_int_equal(ft_tokenizer_decode(tok, ids, n, 0, &s, &len), 0);
    assert_int_equal(len, 3 + lines.len[0]);
    assert_memory_equal(s, "<s>", 3);
    assert_memory_equal(s + 3, lines.s[0], lines.len[0]);
    free(s);
    free(ids);

    /* all of lines.txt: lossless (no reference ids: the Python llama2.c transcription is slow) */
    tt_lines all;
    assert_int_equal(tt_read_lines(&all, "tokenizer/lines.txt"), 0);
    double t0 = tt_now();
    assert_int_equal(tt_roundtrip("tok512 on lines.txt", tok, &all, 0, 0, no_specials), 0);
    printf("  tok512: %d lines encoded+decoded in %.1f ms\n", all.n, 1e3 * (tt_now() - t0));
    tt_lines_free(&all);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

/* SentencePiece-style tokenizers have no pre-tokenizer: a 200 KB line is one BPE piece */
static void test_spm_long_inputs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/spm/tokenizer.json") || !ft_fixture_present("tokenizer/tok512.bin")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/spm"), 0);
    assert_int_equal(tt_long_inputs("spm", tok), 0);
    ft_tokenizer_free(tok);
    assert_int_equal(tt_load(&tok, "tokenizer/tok512.bin"), 0);
    assert_int_equal(tt_long_inputs("tok512", tok), 0);
    ft_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_identity),
        cmocka_unit_test(test_spm_byte_fallback),
        cmocka_unit_test(test_spm_metaspace_layout),
        cmocka_unit_test(test_tok512_llama2c),
        cmocka_unit_test(test_spm_long_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
