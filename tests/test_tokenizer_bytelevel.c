/* test_tokenizer_bytelevel.c — byte-level BPE from tokenizer.json with a Split pre-tokenizer.
 *
 * A Llama-3-style tokenizer (the Llama-3 pattern in a Split pre-tokenizer + ByteLevel without regex,
 * ignore_merges, merges as [a, b] pairs, BOS from a TemplateProcessing post-processor) and the same
 * vocabulary in Qwen2's layout (NFC normalizer, single-digit pattern, chat special tokens): ids
 * identical to HF PreTrainedTokenizerFast on lines.txt and on the lines joined with newlines. Also
 * the Split behaviors and Digits pre-tokenizer on tiny hand-made tokenizers. */
#include "test_tokenizer_common.h"

#include <unistd.h>

static int ascii_only(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if ((unsigned char)s[i] >= 0x80) return 0;
    return !strstr(s, "<|");
}

static void test_llama3_identity(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/llama3/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/llama3"), 0);
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_BYTE_BPE);
    int bos = ft_tokenizer_token_id(tok, "<|begin_of_text|>");
    printf("llama3: vocab %d, bos %d (<|begin_of_text|> = %d), eos %d\n", ft_tokenizer_vocab_size(tok), ft_tokenizer_bos(tok),
           bos, ft_tokenizer_eos(tok));
    assert_int_equal(ft_tokenizer_bos(tok), bos);
    assert_int_equal(ft_tokenizer_eos(tok), ft_tokenizer_token_id(tok, "<|end_of_text|>"));
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/llama3_ids.txt"), 0);
    assert_int_equal(tt_compare("llama3-style vs HF PreTrainedTokenizerFast", tok, &lines, &ref, 0), 0);
    assert_int_equal(tt_compare_chunk("llama3", tok, &lines, 1), 0);
    assert_int_equal(tt_roundtrip("llama3", tok, &lines, 0, 0, NULL), 0);
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, "Hi", 2, FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    assert_int_equal(ids[0], bos);
    assert_int_not_equal(ids[n - 1], ft_tokenizer_eos(tok));
    free(ids);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void test_qwen2_identity(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/qwen2/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/qwen2"), 0);
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_BYTE_BPE);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/qwen2_ids.txt"), 0);
    assert_int_equal(tt_compare("qwen2-style (NFC, single digits) vs HF", tok, &lines, &ref, 0), 0);
    assert_int_equal(tt_compare_chunk("qwen2", tok, &lines, 0), 0);
    /* NFC changes some lines; ASCII ones come back exactly */
    assert_int_equal(tt_roundtrip("qwen2 (ASCII lines)", tok, &lines, 0, 0, ascii_only), 0);

    /* chat special tokens are parsed; no BOS is added (ByteLevel post-processor) */
    const char *chat = "<|im_start|>user Hi<|im_end|>";
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, chat, strlen(chat), FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    assert_int_equal(ids[0], ft_tokenizer_token_id(tok, "<|im_start|>"));
    assert_int_equal(ids[n - 1], ft_tokenizer_token_id(tok, "<|im_end|>"));
    assert_true(ft_tokenizer_is_special(tok, ids[0]));
    char *s; size_t len;
    assert_int_equal(ft_tokenizer_decode(tok, ids, n, FT_TOK_SKIP_SPECIAL, &s, &len), 0);
    assert_string_equal(s, "user Hi");
    free(s); free(ids);
    /* NFC: e + combining acute == precomposed é */
    int *a, na, *b, nb;
    assert_int_equal(ft_tokenizer_encode(tok, "Cafe\xcc\x81", 6, 0, &a, &na), 0);
    assert_int_equal(ft_tokenizer_encode(tok, "Caf\xc3\xa9", 5, 0, &b, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof *a * (size_t)na);
    free(a); free(b);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

/* A tiny byte-level tokenizer.json: the 256 byte symbols, the given pieces (byte-level strings),
 * no merges, ignore_merges; so each piece of the pre-tokenizer that is in `pieces` is one token. */
static int gpt2_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    return 256 + (b <= 32 ? b : b <= 160 ? 33 + b - 127 : 67);
}

static void write_tiny(const char *path, const char *pre, const char *const *pieces, int npieces) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "{\"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"vocab\": {");
    int id = 0;
    for (int b = 0; b < 256; b++, id++) {
        int cp = gpt2_cp(b);
        if (cp == '"' || cp == '\\') fprintf(f, "%s\"\\%c\": %d", id ? ", " : "", cp, id);
        else fprintf(f, "%s\"\\u%04x\": %d", id ? ", " : "", cp, id);
    }
    for (int i = 0; i < npieces; i++) fprintf(f, ", \"%s\": %d", pieces[i], id++);
    fprintf(f, "}, \"merges\": []}, \"pre_tokenizer\": %s, \"decoder\": {\"type\": \"ByteLevel\"}}", pre);
    fclose(f);
}

/* Encodes text and joins the decoded tokens with '|'. */
static void expect_pieces(const char *pre, const char *text, const char *const *pieces, int npieces, const char *want) {
    char path[] = "/tmp/ft_test_tok_tiny_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_tiny(path, pre, pieces, npieces);
    ft_tokenizer *tok;
    int rc = ft_tokenizer_load_json(&tok, path);
    if (rc < 0) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n), 0);
    char got[512];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (i) got[k++] = '|';
        int m = ft_tokenizer_decode_piece(tok, -1, ids[i], got + k, sizeof got - k - 1);
        assert_true(m >= 0);
        k += (size_t)m;
    }
    got[k] = 0;
    printf("  %-100.100s\n    '%s' -> '%s'\n", pre, text, got);
    assert_string_equal(got, want);
    free(ids);
    ft_tokenizer_free(tok);
    unlink(path);
}

static void test_split_behaviors(void **state) {
    (void)state;
    /* pieces in the vocabulary (byte-level strings: 'Ġ' is the space) */
    const char *const p[] = { "ab", "Ġab", "12", "1", "2", "123", "-", "ab-", "-ab", "--", "Ġ", "ĠĠ" };
    const int np = (int)(sizeof p / sizeof p[0]);
#define SEQ(x) "{\"type\": \"Sequence\", \"pretokenizers\": [" x ", {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}"
    expect_pieces(SEQ("{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Isolated\", \"invert\": false}"),
                  "ab-ab--ab", p, np, "ab|-|ab|-|-|ab");
    expect_pieces(SEQ("{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Removed\", \"invert\": false}"),
                  "ab-ab--ab", p, np, "ab|ab|ab");
    expect_pieces(SEQ("{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"MergedWithPrevious\", \"invert\": false}"),
                  "ab-ab--ab", p, np, "ab-|ab-|-|ab");
    expect_pieces(SEQ("{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"MergedWithNext\", \"invert\": false}"),
                  "ab-ab--ab", p, np, "ab|-ab|-|-ab");
    expect_pieces(SEQ("{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Contiguous\", \"invert\": false}"),
                  "ab-ab--ab", p, np, "ab|-|ab|--|ab");
    expect_pieces(SEQ("{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[a-z]+\"}, \"behavior\": \"Removed\", \"invert\": true}"),
                  "ab-ab--ab", p, np, "ab|ab|ab");   /* invert: the gaps are the delimiters */
    expect_pieces(SEQ("{\"type\": \"Digits\", \"individual_digits\": true}"), "ab123", p, np, "ab|1|2|3");
    expect_pieces(SEQ("{\"type\": \"Digits\", \"individual_digits\": false}"), "ab123", p, np, "ab|123");
    expect_pieces("{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}", "ab  ab", p, np, " ab| | ab");
#undef SEQ
}

static void test_llama3_long_inputs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/llama3/tokenizer.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/llama3"), 0);
    assert_int_equal(tt_long_inputs("llama3", tok), 0);
    ft_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_identity),
        cmocka_unit_test(test_qwen2_identity),
        cmocka_unit_test(test_llama3_long_inputs),
        cmocka_unit_test(test_split_behaviors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
