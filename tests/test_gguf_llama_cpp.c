/* test_gguf_llama_cpp.c — our logits on GGUF files against llama.cpp's own (llama-cpp-python, installed by
 * scripts/setup.sh; the test says SKIP and passes when it is absent). tests/gguf/llama_cpp_logits.py runs
 * llama.cpp with logits_all on the same token ids; we run the full forward (prompt path) and the KV-cache
 * decode one token at a time (the batch-1 kernels, int8 activations as llama.cpp's CPU backend uses).
 * Tolerances (max |ours - llama.cpp| / max |llama.cpp|, measured values printed):
 *   F32 file: 1e-4 (float summation orders only);
 *   Q8_0 / Q4_0 / Q4_K: 5e-2 on the decode path and on the forward (both sides quantize the activations,
 *   or not, differently: llama.cpp to Q8_0 / Q8_K blocks, our forward uses f32 activations), and the
 *   greedy token agrees at most positions (printed; asserted at >= 3/4). */
#include "testutil.h"

#include "finetune/model.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_SEQ 10
static const int k_ids[T_SEQ] = {1, 403, 407, 261, 378, 275, 429, 291, 270, 261};

static int g_have_llama_cpp = -1;

static int have_llama_cpp(void) {
    if (g_have_llama_cpp < 0) g_have_llama_cpp = system("python3 -c 'import llama_cpp' >/dev/null 2>&1") == 0;
    return g_have_llama_cpp;
}

/* max |a - b| / max |b| (testutil's max-norm relative error) */
static double max_rel(const float *a, const float *b, size_t n) { return ft_compare_f32(a, b, n).max_rel; }

static int argmax(const float *x, int n) {
    int k = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[k]) k = i;
    return k;
}

static void check_file(const char *rel, double tol) {
    char dir[4096], cmd[8192];
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "gguf_llama_cpp"), FT_OK);
    const char *out = ft_test_path(dir, "logits.bin");
    int n = snprintf(cmd, sizeof cmd, "python3 tests/gguf/llama_cpp_logits.py '%s' '%s'", ft_fixture(rel), out);
    for (int t = 0; t < T_SEQ; t++) n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %d", k_ids[t]);
    assert_int_equal(system(cmd), 0);
    ft_model *m = NULL;
    assert_int_equal(ft_model_load(&m, ft_fixture(rel), ft_backend_cpu()), FT_OK);
    int V = ft_model_get_config(m)->vocab_size;
    size_t nv = (size_t)(T_SEQ * V);
    float *ref = malloc(sizeof(float) * nv), *dec = malloc(sizeof(float) * nv), *fwd = malloc(sizeof(float) * nv);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    assert_int_equal(fread(ref, sizeof(float), nv, f), nv);
    fclose(f);
    assert_int_equal(ft_model_kv_reset(m), FT_OK);
    for (int t = 0; t < T_SEQ; t++) assert_int_equal(ft_model_decode(m, &k_ids[t], 1, t, dec + (size_t)t * V), FT_OK);
    assert_int_equal(ft_model_prepare(m, 1, T_SEQ), FT_OK);
    float loss;
    assert_int_equal(ft_model_forward(m, k_ids, NULL, NULL, NULL, 1, T_SEQ, &loss), FT_OK);
    memcpy(fwd, ft_model_logits(m), sizeof(float) * nv);
    double e_dec = max_rel(dec, ref, nv), e_fwd = max_rel(fwd, ref, nv);
    int same = 0;
    for (int t = 0; t < T_SEQ; t++) same += argmax(dec + (size_t)t * V, V) == argmax(ref + (size_t)t * V, V);
    printf("  %s vs llama.cpp: decode %.2e, forward %.2e (tolerance %.0e), greedy token equal at %d/%d\n", rel, e_dec, e_fwd, tol, same,
           T_SEQ);
    assert_true(e_dec <= tol && e_fwd <= tol);
    assert_true(same * 4 >= T_SEQ * 3);
    free(ref); free(dec); free(fwd);
    ft_model_free(m);
    ft_test_tmpdir_remove(dir);
}

static void test_f32(void **state) {
    (void)state;
    if (!have_llama_cpp()) { printf("SKIP: llama-cpp-python is not installed (scripts/setup.sh installs it)\n"); skip(); return; }
    check_file("convert/stories260K.gguf", 1e-4);
}

static void test_quantized(void **state) {
    (void)state;
    if (!have_llama_cpp()) { printf("SKIP: llama-cpp-python is not installed (scripts/setup.sh installs it)\n"); skip(); return; }
    check_file("gguf/stories260K-q8_0.gguf", 5e-2);
    check_file("gguf/stories260K-q4_0.gguf", 5e-2);
    check_file("gguf/tiny-q4_k.gguf", 5e-2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_quantized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
