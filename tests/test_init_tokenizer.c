/* test_init_tokenizer.c — tokenizer files recognised by content, whatever their name: the detector on
 * every supported format (and on near misses), and `finetune init --tokenizer FILE` with fixtures copied
 * to neutral names (mytok.dat, ...): the model directory gets the file under the name the loaders look
 * for, a GPT-2 vocabulary / merges file brings its other half from the same directory, the tokenizer
 * encodes exactly like the original, and an unknown file fails with the list of recognised formats. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_bin[1024], g_tmp[1024];

static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *o = NULL;
    int rc = ft_test_run(cmd, &o);
    if (out) *out = o; else free(o);
    return rc;
}

/* copies fixture tests/fixtures/tokenizer/<rel> to g_tmp/<dst> */
static const char *put(const char *rel, const char *dst) {
    static char path[8][2048];
    static int k;
    k = (k + 1) % 8;
    char fx[1024];
    snprintf(fx, sizeof fx, "tokenizer/%s", rel);
    snprintf(path[k], sizeof path[k], "%s/%s", g_tmp, dst);
    assert_int_equal(sh(NULL, "mkdir -p \"$(dirname '%s')\" && cp '%s' '%s'", path[k], ft_fixture(fx), path[k]), 0);
    return path[k];
}

static void test_detect(void **s) {
    (void)s;
    struct { const char *rel, *as; ft_tokenizer_file_kind want; } cases[] = {
        {"tok512.bin", "d/a.dat", FT_TOKFILE_LLAMA2C},
        {"bert_small/tokenizer.json", "d/b.dat", FT_TOKFILE_HF_JSON},
        {"llama3/tokenizer.json", "d/c", FT_TOKFILE_HF_JSON},
        {"gpt2/encoder.json", "d/d.txt", FT_TOKFILE_BPE_VOCAB},
        {"roberta/vocab.json", "d/e.bin", FT_TOKFILE_BPE_VOCAB},
        {"gpt2/vocab.bpe", "d/f.json", FT_TOKFILE_BPE_MERGES},
        {"roberta/merges.txt", "d/g", FT_TOKFILE_BPE_MERGES},
        {"../train_encoder/tiny_bert/vocab.txt", "d/h.model", FT_TOKFILE_WORDPIECE},
        {"../train_encoder/tiny_bert/config.json", "d/i.json", FT_TOKFILE_UNKNOWN},
        {"roberta/tokenizer_config.json", "d/j.json", FT_TOKFILE_UNKNOWN},
        {"lines.txt", "d/k.txt", FT_TOKFILE_UNKNOWN},
        {"../train_encoder/tiny_bert/model.safetensors", "d/l", FT_TOKFILE_UNKNOWN},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *p = put(cases[i].rel, cases[i].as);
        ft_tokenizer_file_kind k;
        int rc = ft_tokenizer_detect_file(p, &k);
        int ok = k == cases[i].want && (rc == FT_OK) == (cases[i].want != FT_TOKFILE_UNKNOWN);
        printf("  %-45s as %-10s -> %-45s %s\n", cases[i].rel, cases[i].as, ft_tokenizer_file_kind_name(k), ok ? "OK" : "FAIL");
        if (rc < 0) assert_non_null(strstr(ft_last_error(), "recognised by content"));
        bad += !ok;
        ft_error_clear();
    }
    assert_int_equal(bad, 0);
    /* near misses from bytes: a llama2.c file cut short, merges without the #version line, a
     * WordPiece list without its special tokens */
    char *bin;
    size_t n;
    assert_int_equal(ft_file_read_all(ft_fixture("tokenizer/tok512.bin"), &bin, &n), 0);
    assert_int_equal(ft_tokenizer_classify_bytes(bin, n), FT_TOKFILE_LLAMA2C);
    assert_int_equal(ft_tokenizer_classify_bytes(bin, n - 1), FT_TOKFILE_UNKNOWN);
    free(bin);
    const char *pairs = "\xc4\xa0 t\n\xc4\xa0 a\nh e\n";
    assert_int_equal(ft_tokenizer_classify_bytes(pairs, strlen(pairs)), FT_TOKFILE_BPE_MERGES);
    const char *words = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n##s\n";
    assert_int_equal(ft_tokenizer_classify_bytes(words, strlen(words)), FT_TOKFILE_WORDPIECE);
    const char *plain = "the\nof\nand\n";
    assert_int_equal(ft_tokenizer_classify_bytes(plain, strlen(plain)), FT_TOKFILE_UNKNOWN);
    const char *prose = "Hello there, how are you today?\nFine.\n";
    assert_int_equal(ft_tokenizer_classify_bytes(prose, strlen(prose)), FT_TOKFILE_UNKNOWN);
}

/* the ids of a few texts, as one string */
static void ids_of(const ft_tokenizer *t, char *buf, size_t cap) {
    const char *texts[] = {"Hello world, this is a test.", "Once upon a time there was a little dog.", "unaffable  naïve 123"};
    buf[0] = 0;
    for (int i = 0; i < 3; i++) {
        int *ids = NULL, n = 0;
        assert_int_equal(ft_tokenizer_encode(t, texts[i], strlen(texts[i]), FT_TOK_ADD_SPECIAL, &ids, &n), FT_OK);
        for (int j = 0; j < n; j++) {
            size_t len = strlen(buf);
            snprintf(buf + len, cap - len, "%d ", ids[j]);
        }
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "| ");
        free(ids);
    }
}

/* `finetune init --tokenizer FILE` into g_tmp/<out>; the model directory's tokenizer encodes like ref */
static void init_and_compare(const char *file, const char *out, const char *want_name, const ft_tokenizer *ref) {
    char *o;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, out);
    int rc = sh(&o, "%s init --config %s/cfg.json --tokenizer '%s' --out '%s' 2>&1", g_bin, g_tmp, file, dir);
    printf("  init --tokenizer %s:\n%s", strrchr(file, '/') + 1, o);
    assert_int_equal(rc, 0);
    free(o);
    char p[2200];
    snprintf(p, sizeof p, "%s/%s", dir, want_name);
    assert_true(ft_path_exists(p));
    ft_tokenizer *t;
    assert_int_equal(ft_tokenizer_load(&t, dir), FT_OK);
    char a[4096], b[4096];
    ids_of(t, a, sizeof a);
    ids_of(ref, b, sizeof b);
    printf("    ids: %s\n    ref: %s %s\n", a, b, strcmp(a, b) ? "DIFFERENT" : "same");
    assert_string_equal(a, b);
    assert_int_equal(ft_tokenizer_vocab_size(t), ft_tokenizer_vocab_size(ref));
    ft_tokenizer_free(t);
}

/* g_tmp/cfg.json: a tiny GPT-2 whose vocabulary fits every fixture tokenizer */
static void write_cfg(void) {
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%s/cfg.json", g_tmp);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("{\"model_type\": \"gpt2\", \"n_embd\": 16, \"n_head\": 2, \"n_layer\": 1, \"n_positions\": 32, \"vocab_size\": 50304}\n", f);
    fclose(f);
}

static void test_init(void **s) {
    (void)s;
    write_cfg();
    ft_tokenizer *ref;
    /* llama2.c */
    assert_int_equal(ft_tokenizer_load_llama2c(&ref, ft_fixture("tokenizer/tok512.bin")), FT_OK);
    const char *p = put("tok512.bin", "x/mytok.dat");
    init_and_compare(p, "m-llama2c", "tokenizer.bin", ref);
    /* ft_tokenizer_load on the single file, whatever its name */
    ft_tokenizer *t;
    assert_int_equal(ft_tokenizer_load(&t, p), FT_OK);
    assert_int_equal(ft_tokenizer_vocab_size(t), 512);
    ft_tokenizer_free(t);
    ft_tokenizer_free(ref);
    /* HF tokenizer.json */
    assert_int_equal(ft_tokenizer_load_json(&ref, ft_fixture("tokenizer/bert_small/tokenizer.json")), FT_OK);
    init_and_compare(put("bert_small/tokenizer.json", "y/tokenizer-v2.cfg"), "m-json", "tokenizer.json", ref);
    ft_tokenizer_free(ref);
    /* WordPiece vocab.txt */
    assert_int_equal(ft_tokenizer_load_wordpiece(&ref, ft_fixture("train_encoder/tiny_bert/vocab.txt"), NULL), FT_OK);
    init_and_compare(put("../train_encoder/tiny_bert/vocab.txt", "z/words.lst"), "m-wordpiece", "vocab.txt", ref);
    ft_tokenizer_free(ref);
    /* GPT-2: either half given, the other found next to it by content */
    char v[1024], m[1024];
    snprintf(v, sizeof v, "%s", ft_fixture("tokenizer/gpt2/encoder.json"));
    snprintf(m, sizeof m, "%s", ft_fixture("tokenizer/gpt2/vocab.bpe"));
    assert_int_equal(ft_tokenizer_load_bpe_files(&ref, v, m), FT_OK);
    const char *pv = put("gpt2/encoder.json", "g/one.dat");
    put("gpt2/vocab.bpe", "g/two.dat");
    put("lines.txt", "g/notes.txt"); /* a bystander */
    init_and_compare(pv, "m-gpt2a", "merges.txt", ref);
    char pm[2048];
    snprintf(pm, sizeof pm, "%s/g/two.dat", g_tmp);
    init_and_compare(pm, "m-gpt2b", "vocab.json", ref);
    ft_tokenizer_free(ref);
    /* RoBERTa's merges without the #version line (pairs only) */
    snprintf(v, sizeof v, "%s", ft_fixture("tokenizer/roberta/vocab.json"));
    snprintf(m, sizeof m, "%s", ft_fixture("tokenizer/roberta/merges.txt"));
    assert_int_equal(ft_tokenizer_load_bpe_files(&ref, v, m), FT_OK);
    put("roberta/vocab.json", "r/v");
    assert_int_equal(sh(NULL, "tail -n +2 '%s' > '%s/r/m'", m, g_tmp), 0);
    char pr[2048];
    snprintf(pr, sizeof pr, "%s/r/m", g_tmp);
    init_and_compare(pr, "m-roberta", "vocab.json", ref);
    ft_tokenizer_free(ref);
}

static void test_init_errors(void **s) {
    (void)s;
    write_cfg();
    char *o;
    /* a vocabulary alone */
    const char *lone = put("gpt2/encoder.json", "lone/vocab.data");
    int rc = sh(&o, "%s init --config %s/cfg.json --tokenizer '%s' --out %s/m-err1 2>&1", g_bin, g_tmp, lone, g_tmp);
    printf("  vocabulary alone: exit %d: %s", rc, o);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(o, "needs its BPE merges"));
    free(o);
    /* not a tokenizer */
    const char *cfgjson = put("../train_encoder/tiny_bert/config.json", "bad/config.json");
    rc = sh(&o, "%s init --config %s/cfg.json --tokenizer '%s' --out %s/m-err2 2>&1", g_bin, g_tmp, cfgjson, g_tmp);
    printf("  a model config: exit %d: %s", rc, o);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(o, "not a tokenizer file I recognise"));
    assert_non_null(strstr(o, "llama2.c tokenizer.bin"));
    assert_non_null(strstr(o, "WordPiece vocab.txt"));
    free(o);
}

int main(void) {
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-init-tok") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_init_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
