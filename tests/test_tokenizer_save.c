/* test_tokenizer_save.c — ft_tokenizer_save_json.
 *
 * tok512.bin saved as tokenizer.json is byte-identical to tests/fixtures/tokenizer/tok512_saved.json
 * (the file the fixture script checked in HF PreTrainedTokenizerFast: same ids as llama2.c on every
 * line), and loads back with the llama2.c ids. For every fixture tokenizer (GPT-2, SPM in both layouts,
 * Llama-3-style, Qwen2-style, tok512, BERT WordPiece from vocab.txt and from tokenizer.json, RoBERTa
 * from vocab files and from tokenizer.json): save -> load gives identical ids on all of lines.txt (with
 * and without FT_TOK_ADD_SPECIAL) and on sentence pairs (ids and type ids), the same
 * BOS/EOS/CLS/SEP/MASK/kind/vocabulary, and saving the reloaded tokenizer gives the same bytes again
 * (deterministic, a fixed point). Errors: non-UTF-8 tokens, bad paths. */
#include "test_tokenizer_common.h"

#include <dirent.h>
#include <unistd.h>

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ft_test_tok_save_XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static int same_file(const char *a, const char *b, size_t *size) {
    char *x, *y; size_t nx, ny;
    if (ft_file_read_all(a, &x, &nx) < 0) return 0;
    if (ft_file_read_all(b, &y, &ny) < 0) { free(x); return 0; }
    int same = nx == ny && memcmp(x, y, nx) == 0;
    if (size) *size = nx;
    free(x); free(y);
    return same;
}

/* Lines whose ids differ between two tokenizers. */
static int compare_tokenizers(const char *name, const ft_tokenizer *a, const ft_tokenizer *b, const tt_lines *lines, int flags) {
    int bad = 0;
    long tokens = 0;
    for (int i = 0; i < lines->n; i++) {
        int *x, nx, *y, ny;
        assert_int_equal(ft_tokenizer_encode(a, lines->s[i], lines->len[i], flags, &x, &nx), 0);
        assert_int_equal(ft_tokenizer_encode(b, lines->s[i], lines->len[i], flags, &y, &ny), 0);
        tokens += nx;
        if (nx != ny || memcmp(x, y, sizeof *x * (size_t)nx) != 0) {
            if (++bad <= 3) { printf("    line %d: '%s'\n", i + 1, lines->s[i]); tt_print_ids("orig", x, nx); tt_print_ids("saved", y, ny); }
        }
        free(x); free(y);
    }
    printf("%s: saved+reloaded vs original (flags %d): %d lines, %ld tokens, %d mismatching lines\n", name, flags, lines->n, tokens, bad);
    return bad;
}

static void roundtrip_one(const char *name, const char *rel) {
    if (!ft_fixture_present(rel)) return;
    ft_tokenizer *orig, *back;
    assert_int_equal(tt_load(&orig, rel), 0);
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/%s.json", g_tmp, name);
    snprintf(p2, sizeof p2, "%s/%s.again.json", g_tmp, name);
    double t0 = tt_now();
    assert_int_equal(ft_tokenizer_save_json(orig, p1), 0);
    double dt = tt_now() - t0;
    assert_int_equal(ft_tokenizer_load_json(&back, p1), 0);
    assert_int_equal(ft_tokenizer_save_json(back, p2), 0);
    size_t size;
    int fixed = same_file(p1, p2, &size);
    printf("%s: saved %zu bytes in %.1f ms; saving the reloaded tokenizer gives %s\n", name, size, 1e3 * dt,
           fixed ? "the same bytes" : "DIFFERENT bytes");
    assert_true(fixed);
    assert_int_equal(ft_tokenizer_get_kind(back), ft_tokenizer_get_kind(orig));
    assert_int_equal(ft_tokenizer_vocab_size(back), ft_tokenizer_vocab_size(orig));
    assert_int_equal(ft_tokenizer_bos(back), ft_tokenizer_bos(orig));
    assert_int_equal(ft_tokenizer_eos(back), ft_tokenizer_eos(orig));
    assert_int_equal(ft_tokenizer_cls(back), ft_tokenizer_cls(orig));
    assert_int_equal(ft_tokenizer_sep(back), ft_tokenizer_sep(orig));
    assert_int_equal(ft_tokenizer_mask(back), ft_tokenizer_mask(orig));
    assert_int_equal(ft_tokenizer_unk(back), ft_tokenizer_unk(orig));
    for (int id = 0; id < ft_tokenizer_vocab_size(orig); id++) {
        assert_string_equal(ft_tokenizer_token_str(back, id), ft_tokenizer_token_str(orig, id));
        assert_int_equal(ft_tokenizer_is_special(back, id), ft_tokenizer_is_special(orig, id));
    }
    tt_lines lines;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/lines.txt"), 0);
    assert_int_equal(compare_tokenizers(name, orig, back, &lines, 0), 0);
    assert_int_equal(compare_tokenizers(name, orig, back, &lines, FT_TOK_ADD_SPECIAL), 0);
    /* decoding agrees too */
    int bad = 0;
    for (int i = 0; i < lines.n; i += 7) {
        int *ids, n;
        char *a, *b; size_t na, nb;
        assert_int_equal(ft_tokenizer_encode(orig, lines.s[i], lines.len[i], FT_TOK_ADD_SPECIAL, &ids, &n), 0);
        assert_int_equal(ft_tokenizer_decode(orig, ids, n, 0, &a, &na), 0);
        assert_int_equal(ft_tokenizer_decode(back, ids, n, 0, &b, &nb), 0);
        bad += na != nb || memcmp(a, b, na) != 0;
        free(ids); free(a); free(b);
    }
    assert_int_equal(bad, 0);
    /* sentence pairs: ids and type ids, with and without specials */
    int pairs = 0;
    for (int i = 0; i + 1 < lines.n; i += 5) {
        for (int flags = 0; flags <= FT_TOK_ADD_SPECIAL; flags += FT_TOK_ADD_SPECIAL) {
            int *x, *tx, nx, *y, *ty, ny;
            assert_int_equal(ft_tokenizer_encode_pair(orig, lines.s[i], lines.len[i], lines.s[i + 1], lines.len[i + 1], flags, &x, &tx, &nx), 0);
            assert_int_equal(ft_tokenizer_encode_pair(back, lines.s[i], lines.len[i], lines.s[i + 1], lines.len[i + 1], flags, &y, &ty, &ny), 0);
            bad += nx != ny || memcmp(x, y, sizeof *x * (size_t)nx) != 0 || memcmp(tx, ty, sizeof *tx * (size_t)nx) != 0;
            pairs++;
            free(x); free(tx); free(y); free(ty);
        }
    }
    printf("%s: saved+reloaded vs original on %d sentence pairs: %d differ\n", name, pairs, bad);
    assert_int_equal(bad, 0);
    tt_lines_free(&lines);
    ft_tokenizer_free(orig); ft_tokenizer_free(back);
}

static void test_save_roundtrip_gpt2(void **state) { (void)state; roundtrip_one("gpt2", "tokenizer/gpt2"); }
static void test_save_roundtrip_spm(void **state) { (void)state; roundtrip_one("spm", "tokenizer/spm"); }
static void test_save_roundtrip_spm_meta(void **state) { (void)state; roundtrip_one("spm_meta", "tokenizer/spm_meta"); }
static void test_save_roundtrip_llama3(void **state) { (void)state; roundtrip_one("llama3", "tokenizer/llama3"); }
static void test_save_roundtrip_qwen2(void **state) { (void)state; roundtrip_one("qwen2", "tokenizer/qwen2"); }
static void test_save_roundtrip_tok512(void **state) { (void)state; roundtrip_one("tok512", "tokenizer/tok512.bin"); }
static void test_save_roundtrip_bert(void **state) { (void)state; roundtrip_one("bert", "tokenizer/bert"); }
static void test_save_roundtrip_bert_small(void **state) { (void)state; roundtrip_one("bert_small", "tokenizer/bert_small/tokenizer.json"); }
static void test_save_roundtrip_roberta(void **state) { (void)state; roundtrip_one("roberta", "tokenizer/roberta"); }
static void test_save_roundtrip_roberta_json(void **state) { (void)state; roundtrip_one("roberta_json", "tokenizer/roberta_json"); }

static void test_save_tok512_matches_hf_checked_file(void **state) {
    (void)state;
    if (!ft_fixture_present("tokenizer/tok512_saved.json")) return;
    ft_tokenizer *tok, *back;
    assert_int_equal(tt_load(&tok, "tokenizer/tok512.bin"), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/tok512/tokenizer.json", g_tmp);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tok512", g_tmp);
    assert_int_equal(ft_mkdirs(dir), 0);
    assert_int_equal(ft_tokenizer_save_json(tok, path), 0);
    size_t size;
    int same = same_file(path, ft_fixture("tokenizer/tok512_saved.json"), &size);
    printf("tok512: tokenizer.json (%zu bytes) %s the HF-checked tok512_saved.json\n", size, same ? "is byte-identical to" : "DIFFERS from");
    assert_true(same);
    /* the atomic write leaves nothing else behind */
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);

    assert_int_equal(ft_tokenizer_load(&back, dir), 0);   /* a directory with only tokenizer.json */
    tt_lines lines; tt_ids ref;
    assert_int_equal(tt_read_lines(&lines, "tokenizer/tok512_lines.txt"), 0);
    assert_int_equal(tt_read_ids(&ref, "tokenizer/tok512_ids.txt"), 0);
    assert_int_equal(tt_compare("tok512 saved as tokenizer.json vs llama2.c", back, &lines, &ref, 0), 0);
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(back, "Hi", 2, FT_TOK_ADD_SPECIAL, &ids, &n), 0);
    assert_int_equal(ids[0], 1);
    free(ids);
    tt_lines_free(&lines); tt_ids_free(&ref);
    ft_tokenizer_free(tok); ft_tokenizer_free(back);
}

static void test_save_errors(void **state) {
    (void)state;
    /* a llama2.c tokenizer with a token that is not UTF-8 cannot become JSON */
    char bin[512];
    snprintf(bin, sizeof bin, "%s/bad.bin", g_tmp);
    FILE *f = fopen(bin, "wb");
    int32_t maxlen = 8;
    fwrite(&maxlen, 4, 1, f);
    for (int id = 0; id < 3 + 256 + 1; id++) {
        char s[16];
        if (id < 3) snprintf(s, sizeof s, "%s", id == 0 ? "<unk>" : id == 1 ? "\n<s>\n" : "\n</s>\n");
        else if (id < 259) snprintf(s, sizeof s, "<0x%02X>", id - 3);
        else snprintf(s, sizeof s, "\xff\xfe");
        float score = id < 259 ? 0.0f : -1.0f;
        int32_t len = (int32_t)strlen(s);
        fwrite(&score, 4, 1, f); fwrite(&len, 4, 1, f); fwrite(s, 1, (size_t)len, f);
    }
    fclose(f);
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load_llama2c(&tok, bin), 0);
    char out[512];
    snprintf(out, sizeof out, "%s/bad.json", g_tmp);
    int rc = ft_tokenizer_save_json(tok, out);
    printf("  non-UTF-8 token -> %d: %s\n", rc, ft_last_error());
    assert_int_equal(rc, FT_ERR_UNSUPPORTED);
    assert_int_equal(access(out, F_OK), -1);
    /* encoding still works (byte tokens) */
    int *ids, n;
    assert_int_equal(ft_tokenizer_encode(tok, "\xff\xfe", 2, 0, &ids, &n), 0);
    assert_true(n >= 1);
    free(ids);
    ft_tokenizer_free(tok);
    if (!ft_fixture_present("tokenizer/tok512.bin")) return;
    assert_int_equal(tt_load(&tok, "tokenizer/tok512.bin"), 0);
    rc = ft_tokenizer_save_json(tok, "/nonexistent/dir/tokenizer.json");
    printf("  unwritable path -> %d: %s\n", rc, ft_last_error());
    assert_int_equal(rc, FT_ERR_IO);
    ft_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_tok512_matches_hf_checked_file),
        cmocka_unit_test(test_save_roundtrip_tok512),
        cmocka_unit_test(test_save_roundtrip_gpt2),
        cmocka_unit_test(test_save_roundtrip_spm),
        cmocka_unit_test(test_save_roundtrip_spm_meta),
        cmocka_unit_test(test_save_roundtrip_llama3),
        cmocka_unit_test(test_save_roundtrip_qwen2),
        cmocka_unit_test(test_save_roundtrip_bert),
        cmocka_unit_test(test_save_roundtrip_bert_small),
        cmocka_unit_test(test_save_roundtrip_roberta),
        cmocka_unit_test(test_save_roundtrip_roberta_json),
        cmocka_unit_test(test_save_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
