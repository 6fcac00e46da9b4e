/* test_tokenizer.c — GPT-2 byte-level BPE (tokenizer.h), loaders, decoding, errors.
 *
 * Identity with HF GPT2TokenizerFast on tests/fixtures/tokenizer/lines.txt (a few thousand real
 * lines + edge cases; reference ids from tests/parity/make_tokenizer_fixtures.py), on the same lines
 * joined with newlines, decode(encode(x)) == x on every line and on random bytes (invalid UTF-8),
 * the three loaders (encoder.json + vocab.bpe, vocab.json + merges.txt written here in another JSON
 * style, tokenizer.json) giving the same ids, special tokens, long inputs, thread safety, errors. */
#include "test_tokenizer_common.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_tokenizer");
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

static void test_gpt2_identity(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json")) return;
    ft_tokenizer *tok;
    double t0 = tt_now();
    assert_int_equal(tt_load(&tok, "tokenizer/gpt2"), 0);
    printf("gpt2: loaded encoder.json + vocab.bpe in %.1f ms (vocab %d)\n", 1e3 * (tt_now() - t0), ft_tokenizer_vocab_size(tok));
    assert_int_equal(ft_tokenizer_get_kind(tok), FT_TOK_BYTE_BPE);
    assert_int_equal(ft_tokenizer_vocab_size(tok), 50257);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/gpt2_ids.txt"), 0);
    t0 = ft_test_cpu_seconds();
    int bad = tt_compare("gpt2 vs HF GPT2TokenizerFast", tok, &lines, &ref, 0);
    double dt = ft_test_cpu_seconds() - t0;
    assert_int_equal(bad, 0);
    assert_true(dt < 5.0);   /* CPU s: ~0.1 optimized; generous for sanitizer builds, blind to the machine's load */
    assert_int_equal(tt_compare_chunk("gpt2", tok, &lines, 1), 0);
    assert_int_equal(tt_roundtrip("gpt2", tok, &lines, 0, 0, NULL), 0);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

/* vocab.json in HF's style (raw UTF-8, no escapes but the required ones, one entry per line) */
static void write_vocab_json(const ft_tokenizer *tok, const char *path) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("{\n", f);
    int n = ft_tokenizer_vocab_size(tok);
    for (int id = 0; id < n; id++) {
        const char *s = ft_tokenizer_token_str(tok, id);
        assert_non_null(s);
        fputs(id ? ",\n  \"" : "  \"", f);
        for (const char *p = s; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', f);
            fputc(*p, f);
        }
        fprintf(f, "\": %d", id);
    }
    fputs("\n}\n", f);
    fclose(f);
}

static void test_gpt2_loaders_agree(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json")) return;
    ft_tokenizer *openai, *files, *dir, *json;
    assert_int_equal(tt_load(&openai, "tokenizer/gpt2"), 0);
    /* vocab.json + merges.txt: another JSON layout, merges copied with CRLF line ends */
    char d[512];
    snprintf(d, sizeof d, "%s/hf", g_tmp);
    assert_int_equal(mkdir(d, 0755), 0);
    write_vocab_json(openai, tmp_path("hf/vocab.json"));
    char *bpe; size_t n;
    assert_int_equal(ft_file_read_all(ft_fixture("tokenizer/gpt2/vocab.bpe"), &bpe, &n), 0);
    FILE *f = fopen(tmp_path("hf/merges.txt"), "wb");
    for (size_t i = 0; i < n; i++) { if (bpe[i] == '\n') fputc('\r', f); fputc(bpe[i], f); }
    fclose(f);
    free(bpe);
    char vp[512], mp[512];
    snprintf(vp, sizeof vp, "%s/hf/vocab.json", g_tmp);
    snprintf(mp, sizeof mp, "%s/hf/merges.txt", g_tmp);
    assert_int_equal(ft_tokenizer_load_bpe_files(&files, vp, mp), 0);
    assert_int_equal(ft_tokenizer_load(&dir, d), 0);
    /* tokenizer.json (our writer; HF's reading of it is checked by the fixture script) */
    assert_int_equal(ft_tokenizer_save_json(openai, tmp_path("tokenizer.json")), 0);
    assert_int_equal(ft_tokenizer_load_json(&json, tmp_path("tokenizer.json")), 0);

    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/gpt2_ids.txt"), 0);
    assert_int_equal(tt_compare("gpt2 vocab.json + merges.txt (load_bpe_files)", files, &lines, &ref, 0), 0);
    assert_int_equal(tt_compare("gpt2 vocab.json + merges.txt (load dir)", dir, &lines, &ref, 0), 0);
    assert_int_equal(tt_compare("gpt2 tokenizer.json", json, &lines, &ref, 0), 0);
    const ft_tokenizer *all[3] = { files, dir, json };
    for (int k = 0; k < 3; k++) {
        assert_int_equal(ft_tokenizer_vocab_size(all[k]), 50257);
        assert_int_equal(ft_tokenizer_bos(all[k]), 50256);
        assert_int_equal(ft_tokenizer_eos(all[k]), 50256);
        assert_true(ft_tokenizer_is_special(all[k], 50256));
        assert_int_equal(ft_tokenizer_get_kind(all[k]), FT_TOK_BYTE_BPE);
    }
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(openai); ft_tokenizer_free(files); ft_tokenizer_free(dir); ft_tokenizer_free(json);
}

static void expect_ids(const ft_tokenizer *tok, const char *text, int flags, const int *want, int nwant) {
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, text, strlen(text), flags, &ids, &n), 0);
    printf("  '%s' (flags %d) ->", text, flags);
    for (int i = 0; i < n; i++) printf(" %d", ids[i]);
    printf("\n");
    assert_int_equal(n, nwant);
    for (int i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
}

static void test_gpt2_specials_and_api(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/gpt2"), 0);
    /* reference ids from HF GPT2TokenizerFast (split_special_tokens=True for the second) */
    expect_ids(tok, "text<|endoftext|>more", 0, (const int[]){ 5239, 50256, 3549 }, 3);
    expect_ids(tok, "text<|endoftext|>more", FT_TOK_NO_SPECIAL_PARSE,
               (const int[]){ 5239, 27, 91, 437, 1659, 5239, 91, 29, 3549 }, 9);
    expect_ids(tok, "Hello world<|endoftext|> it's  ok  ", FT_TOK_ADD_SPECIAL,   /* GPT-2 adds no BOS */
               (const int[]){ 15496, 995, 50256, 340, 338, 220, 12876, 220, 220 }, 9);
    expect_ids(tok, "", 0, NULL, 0);
    assert_string_equal(ft_tokenizer_token_str(tok, 15496), "Hello");
    assert_string_equal(ft_tokenizer_token_str(tok, 995), "\xc4\xa0world");   /* "Ġworld" */
    assert_int_equal(ft_tokenizer_token_id(tok, "\xc4\xa0world"), 995);
    assert_int_equal(ft_tokenizer_token_id(tok, "no such token"), -1);
    assert_null(ft_tokenizer_token_str(tok, 50257));
    assert_null(ft_tokenizer_token_str(tok, -1));
    assert_int_equal(ft_tokenizer_pad(tok), -1);

    int ids[] = { 15496, 50256, 995 };
    char *s; size_t n;
    assert_int_equal(ft_tokenizer_decode(tok, ids, 3, 0, &s, &n), 0);
    assert_string_equal(s, "Hello<|endoftext|> world");
    free(s);
    assert_int_equal(ft_tokenizer_decode(tok, ids, 3, FT_TOK_SKIP_SPECIAL, &s, &n), 0);
    assert_string_equal(s, "Hello world");
    assert_int_equal(n, 11);
    free(s);
    assert_int_equal(ft_tokenizer_decode(tok, NULL, 0, 0, &s, &n), 0);
    assert_string_equal(s, "");
    free(s);
    char buf[8];
    assert_int_equal(ft_tokenizer_decode_piece(tok, -1, 995, buf, sizeof buf), 6);
    assert_string_equal(buf, " world");
    assert_int_equal(ft_tokenizer_decode_piece(tok, -1, 995, buf, 3), FT_ERR_RANGE);
    assert_int_equal(ft_tokenizer_decode_piece(tok, -1, 50257, buf, sizeof buf), FT_ERR_RANGE);
    int badid = 99999;
    assert_int_equal(ft_tokenizer_decode(tok, &badid, 1, 0, &s, &n), FT_ERR_RANGE);
    printf("  decode of id 99999: %s\n", ft_last_error());
    /* byte tokens: a lone 0xE2 byte decodes to exactly that byte */
    int e2 = ft_tokenizer_token_id(tok, "\xc3\xa2");   /* "â" is the symbol of byte 0xE2 */
    assert_true(e2 >= 0);
    assert_int_equal(ft_tokenizer_decode_piece(tok, -1, e2, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xE2);
    ft_tokenizer_free(tok);
}

static void test_gpt2_invalid_utf8_and_random_bytes(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/gpt2"), 0);
    unsigned rng = 12345;
    int bad = 0, total = 0;
    long bytes = 0;
    unsigned char text[600];
    for (int t = 0; t < 3000; t++) {
        int len = (int)((rng = rng * 1103515245u + 12345u) >> 16) % 512;
        for (int i = 0; i < len; i++) {
            rng = rng * 1103515245u + 12345u;
            unsigned r = rng >> 16;
            /* mix: ASCII letters/spaces/digits, UTF-8 lead and continuation bytes, anything */
            static const unsigned char mix[] = " aZ9'\n\t.\xc3\xa9\xe2\x82\xac\x80\xff";
            text[i] = (unsigned char)(t % 3 == 0 ? r : t % 3 == 1 ? mix[r % 15] : 0x20 + r % 0x5f);
        }
        int *ids, n;
        char *out; size_t olen;
        assert_int_equal(ft_tokenizer_encode(tok, (char *)text, (size_t)len, 0, &ids, &n), 0);
        assert_int_equal(ft_tokenizer_decode(tok, ids, n, 0, &out, &olen), 0);
        if (olen != (size_t)len || memcmp(out, text, olen) != 0) bad++;
        total++; bytes += len;
        free(ids); free(out);
    }
    printf("gpt2: random byte strings (invalid UTF-8 included): %d of %d (%ld bytes) decode exactly\n", total - bad, total, bytes);
    assert_int_equal(bad, 0);
    ft_tokenizer_free(tok);
}

static void test_gpt2_long_inputs(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/gpt2"), 0);
    assert_int_equal(tt_long_inputs("gpt2", tok), 0);
    ft_tokenizer_free(tok);
}

typedef struct { const ft_tokenizer *tok; const tt_lines *lines; const tt_ids *ref; int bad; } thread_job;

static void *thread_main(void *p) {
    thread_job *j = p;
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < j->lines->n; i++) {
            int *ids, n;
            if (ft_tokenizer_encode(j->tok, j->lines->s[i], j->lines->len[i], 0, &ids, &n) < 0) { j->bad++; continue; }
            if (n != j->ref->n[i] || memcmp(ids, j->ref->ids[i], sizeof *ids * (size_t)n) != 0) j->bad++;
            free(ids);
        }
    return NULL;
}

static void test_gpt2_threads(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/gpt2/encoder.json")) return;
    ft_tokenizer *tok;
    assert_int_equal(tt_load(&tok, "tokenizer/gpt2"), 0);
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/gpt2_ids.txt"), 0);
    pthread_t th[4];
    thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){ tok, &lines, &ref, 0 };
        assert_int_equal(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
    }
    int bad = 0;
    for (int t = 0; t < 4; t++) { pthread_join(th[t], NULL); bad += jobs[t].bad; }
    printf("gpt2: 4 threads x 2 passes over %d lines on one tokenizer: %d mismatches\n", lines.n, bad);
    assert_int_equal(bad, 0);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok);
}

static void expect_error(int rc, int want, const char *what) {
    printf("  %-44s -> %d (%s): %s\n", what, rc, ft_strerror(rc), ft_last_error());
    assert_int_equal(rc, want);
}

static void test_errors(void **state) {
    (void)state;
    ft_tokenizer *tok = (ft_tokenizer *)1;
    expect_error(ft_tokenizer_load(&tok, "/nonexistent/dir"), FT_ERR_NOT_FOUND, "missing directory");
    assert_null(tok);
    char d[512];
    snprintf(d, sizeof d, "%s/empty", g_tmp);
    assert_int_equal(mkdir(d, 0755), 0);
    expect_error(ft_tokenizer_load(&tok, d), FT_ERR_NOT_FOUND, "directory without tokenizer files");

    snprintf(d, sizeof d, "%s/wp", g_tmp);
    assert_int_equal(mkdir(d, 0755), 0);
    /* WordPiece is supported (tests/test_tokenizer_wordpiece.c); without [UNK] it cannot encode */
    write_file(tmp_path("wp/vocab.txt"), "[PAD]\n[CLS]\nhello\n");
    expect_error(ft_tokenizer_load(&tok, d), FT_ERR_FORMAT, "WordPiece vocab.txt without [UNK]");
    write_file(tmp_path("wordpiece.json"), "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}");
    expect_error(ft_tokenizer_load_json(&tok, tmp_path("wordpiece.json")), FT_ERR_FORMAT, "WordPiece tokenizer.json without [UNK]");
    write_file(tmp_path("unigram.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    expect_error(ft_tokenizer_load_json(&tok, tmp_path("unigram.json")), FT_ERR_UNSUPPORTED, "Unigram tokenizer.json");
    write_file(tmp_path("broken.json"), "{\"model\": {\"type\": \"BPE\",\n \"vocab\": {\"a\": 0,}}");
    expect_error(ft_tokenizer_load_json(&tok, tmp_path("broken.json")), FT_ERR_FORMAT, "invalid JSON");
    assert_non_null(strstr(ft_last_error(), "line 2"));
    write_file(tmp_path("badmerge.json"),
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}");
    expect_error(ft_tokenizer_load_json(&tok, tmp_path("badmerge.json")), FT_ERR_FORMAT, "merge result missing from vocab");
    write_file(tmp_path("badpre.json"),
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"UnicodeScripts\"}}");
    expect_error(ft_tokenizer_load_json(&tok, tmp_path("badpre.json")), FT_ERR_UNSUPPORTED, "unsupported pre-tokenizer");
    write_file(tmp_path("badre.json"),
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": "
               "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\", \"invert\": false}}");
    expect_error(ft_tokenizer_load_json(&tok, tmp_path("badre.json")), FT_ERR_FORMAT, "bad regex");

    char vp[512], mp[512];
    snprintf(vp, sizeof vp, "%s/vocab.json", g_tmp);
    snprintf(mp, sizeof mp, "%s/merges.txt", g_tmp);
    write_file(vp, "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    write_file(mp, "#version: 0.2\na b\nab\n");
    expect_error(ft_tokenizer_load_bpe_files(&tok, vp, mp), FT_ERR_FORMAT, "malformed merges.txt line");
    assert_non_null(strstr(ft_last_error(), "line 3"));
    write_file(mp, "#version: 0.2\na c\n");
    expect_error(ft_tokenizer_load_bpe_files(&tok, vp, mp), FT_ERR_FORMAT, "merge of unknown token");

    write_file(tmp_path("short.bin"), "\x07\x00");
    expect_error(ft_tokenizer_load_llama2c(&tok, tmp_path("short.bin")), FT_ERR_FORMAT, "truncated llama2.c tokenizer");
    /* a token length that runs past the end */
    FILE *f = fopen(tmp_path("trunc.bin"), "wb");
    int32_t hdr[3] = { 7, 0, 0 };
    float score = 0;
    int32_t len = 100;
    fwrite(hdr, 4, 1, f); fwrite(&score, 4, 1, f); fwrite(&len, 4, 1, f); fwrite("abc", 1, 3, f);
    fclose(f);
    expect_error(ft_tokenizer_load_llama2c(&tok, tmp_path("trunc.bin")), FT_ERR_FORMAT, "llama2.c token past the end");
    (void)hdr;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_identity),
        cmocka_unit_test(test_gpt2_loaders_agree),
        cmocka_unit_test(test_gpt2_specials_and_api),
        cmocka_unit_test(test_gpt2_invalid_utf8_and_random_bytes),
        cmocka_unit_test(test_gpt2_long_inputs),
        cmocka_unit_test(test_gpt2_threads),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
