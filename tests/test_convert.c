/* test_convert.c — llama2.c .bin and GGUF import, HF export (convert.h).
 *
 * On the real stories260K files (tests/fixtures/convert): the .bin and the .gguf convert to
 * byte-identical model.safetensors / config.json / tokenizer.json; tensor values match the .bin
 * (q/k through the rotate_half permutation, checked with explicit index arithmetic); the
 * permutation preserves attention scores (interleaved rope vs rotate_half rope). On synthetic
 * files built here: llama2.c version 1 and unshared classifier, a tiny GGUF with every metadata
 * value type and an F16 tensor; errors for truncated / wrong-magic / bad-version / IQ4_NL /
 * unknown-architecture / data-past-EOF inputs and for unwritable output, each naming the file. */
#include "testutil.h"
#include "finetune/convert.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* stories260K */
enum { C_ = 64, H_ = 172, L_ = 5, NH_ = 8, NKV_ = 4, V_ = 512, T_ = 512, HS_ = 8, KV_ = 32 };

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_convert");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

static const char *tmp_path(const char *name) { return ft_test_path(g_tmp, name); }

static void write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static char *read_file(const char *path, size_t *n) {
    char *d = NULL;
    int rc = ft_file_read_all(path, &d, n);
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    return d;
}

static int files_equal(const char *a, const char *b, size_t *na_out) {
    size_t na, nb;
    char *da = read_file(a, &na), *db = read_file(b, &nb);
    int eq = na == nb && memcmp(da, db, na) == 0;
    if (na_out) *na_out = na;
    free(da); free(db);
    return eq;
}

/* Expects rc == want and the error message to contain every given needle. */
static void expect_error(int rc, int want, const char *n1, const char *n2) {
    const char *msg = ft_last_error();
    printf("  -> rc=%d (%s): %s\n", rc, ft_strerror(rc), msg);
    assert_int_equal(rc, want);
    if (n1) assert_non_null(strstr(msg, n1));
    if (n2) assert_non_null(strstr(msg, n2));
}

static int have_real_fixtures(void) {
    return ft_fixture_present("convert/stories260K.bin") && ft_fixture_present("convert/stories260K.gguf") &&
           ft_fixture_present("convert/tok512.bin");
}

/* ------------------------------------------------------------------------------------------ */

static void convert_ok(const char *src, const char *tok, const char *dir, int ctx) {
    ft_convert_opts o = {.context_length = ctx};
    ft_convert_summary s;
    int rc = ft_convert_to_hf(src, tok, dir, &o, &s);
    if (rc) printf("  convert %s failed: %s\n", src, ft_last_error());
    assert_int_equal(rc, 0);
    printf("  %s (%s): dim %d hidden %d layers %d heads %d/%d vocab %d seq %d %s, %lld params, %d tensors\n",
           src, s.format, s.dim, s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads, s.vocab_size, s.seq_len,
           s.tied ? "tied" : "untied", (long long)s.n_params, s.n_tensors);
}

static void test_bin_and_gguf_identical(void **state) {
    (void)state;
    if (!have_real_fixtures()) return;
    char bin[512], gguf[512], tok[512];
    snprintf(bin, sizeof bin, "%s", ft_fixture("convert/stories260K.bin"));
    snprintf(gguf, sizeof gguf, "%s", ft_fixture("convert/stories260K.gguf"));
    snprintf(tok, sizeof tok, "%s", ft_fixture("convert/tok512.bin"));
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s", tmp_path("from_bin"));
    snprintf(b, sizeof b, "%s", tmp_path("from_gguf"));
    snprintf(c, sizeof c, "%s", tmp_path("from_bin_beside"));
    convert_ok(bin, tok, a, 0);
    /* the GGUF says context_length 2048 (llama.cpp's converter default); the model trained at 512 */
    convert_ok(gguf, NULL, b, T_);
    convert_ok(bin, NULL, c, 0);   /* tok512.bin found beside the .bin */
    const char *files[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"};
    for (int i = 0; i < 5; i++) {
        char pa[600], pb[600], pc[600];
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        snprintf(pc, sizeof pc, "%s/%s", c, files[i]);
        size_t n;
        int eq = files_equal(pa, pb, &n), eq2 = files_equal(pa, pc, NULL);
        printf("  %-24s %8zu bytes  .bin vs .gguf: %s  .bin vs .bin(tokenizer beside): %s\n", files[i], n,
               eq ? "identical" : "DIFFERENT", eq2 ? "identical" : "DIFFERENT");
        assert_true(eq);
        assert_true(eq2);
    }
    /* nothing else left in the output directory (temporary tokenizer dirs removed) */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 5", b);
    assert_int_equal(system(cmd), 0);

    /* the shipped model directory must be what the converter produces now */
    if (ft_path_exists("models/stories260K/model.safetensors")) {
        for (int i = 0; i < 5; i++) {
            char pa[600], ps[600];
            snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
            snprintf(ps, sizeof ps, "models/stories260K/%s", files[i]);
            int eq = files_equal(pa, ps, NULL);
            printf("  models/stories260K/%-22s %s\n", files[i], eq ? "identical to the converter output" : "DIFFERENT (regenerate it)");
            assert_true(eq);
        }
    }
}

static void test_gguf_default_context(void **state) {
    (void)state;
    if (!have_real_fixtures()) return;
    char gguf[512];
    snprintf(gguf, sizeof gguf, "%s", ft_fixture("convert/stories260K.gguf"));
    convert_ok(gguf, NULL, tmp_path("gguf_ctx"), 0);
    size_t n;
    char *cfg = read_file(tmp_path("gguf_ctx/config.json"), &n);
    printf("  without --context-length: %s\n", strstr(cfg, "\"max_position_embeddings\": 2048") ? "max_position_embeddings 2048 (from llama.context_length)" : "?");
    assert_non_null(strstr(cfg, "\"max_position_embeddings\": 2048"));
    assert_non_null(strstr(cfg, "\"rms_norm_eps\": 1e-05"));       /* f32 1e-5 printed as 1e-05 */
    assert_non_null(strstr(cfg, "\"rope_theta\": 10000.0"));
    assert_non_null(strstr(cfg, "\"tie_word_embeddings\": true"));  /* output.weight == token_embd.weight */
    free(cfg);
}

/* Values in model.safetensors against the raw .bin floats, with explicit index arithmetic. */
static void test_values_match_bin(void **state) {
    (void)state;
    if (!have_real_fixtures()) return;
    char bin[512], tok[512];
    snprintf(bin, sizeof bin, "%s", ft_fixture("convert/stories260K.bin"));
    snprintf(tok, sizeof tok, "%s", ft_fixture("convert/tok512.bin"));
    convert_ok(bin, tok, tmp_path("values"), 0);
    size_t nbytes;
    char *raw = read_file(bin, &nbytes);
    const float *w = (const float *)(raw + 28);
    /* legacy layout offsets */
    size_t o_emb = 0, o_att = o_emb + (size_t)V_ * C_, o_wq = o_att + (size_t)L_ * C_, o_wk = o_wq + (size_t)L_ * C_ * C_,
           o_wv = o_wk + (size_t)L_ * KV_ * C_, o_wo = o_wv + (size_t)L_ * KV_ * C_, o_ffn = o_wo + (size_t)L_ * C_ * C_,
           o_w1 = o_ffn + (size_t)L_ * C_, o_w2 = o_w1 + (size_t)L_ * H_ * C_, o_w3 = o_w2 + (size_t)L_ * C_ * H_,
           o_fin = o_w3 + (size_t)L_ * H_ * C_;
    ft_safetensors *st;
    int rc = ft_st_open(&st, tmp_path("values/model.safetensors"));
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ft_st_count(st), 9 * L_ + 2);
    assert_null(ft_st_find(st, "lm_head.weight"));
    size_t nmax = (size_t)V_ * C_;
    float *got = malloc(nmax * sizeof(float)), *ref = malloc(nmax * sizeof(float));
    int64_t sh[2];
    int ok = 1;
#define CHECK(name, rows, cols, ...) do { \
        sh[0] = rows; sh[1] = cols; \
        assert_int_equal(ft_st_read_f32(st, name, sh, (cols) ? 2 : 1, got), 0); \
        size_t n_ = (size_t)(rows) * ((cols) ? (size_t)(cols) : 1); \
        for (size_t i_ = 0; i_ < n_; i_++) { __VA_ARGS__; } \
        ok &= ft_check_close(name, got, ref, n_, 0.0); } while (0)
    CHECK("model.embed_tokens.weight", V_, C_, ref[i_] = w[o_emb + i_]);
    CHECK("model.norm.weight", C_, 0, ref[i_] = w[o_fin + i_]);
    for (int l = 0; l < L_; l += 2) {
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        CHECK(name, C_, 0, ref[i_] = w[o_att + (size_t)l * C_ + i_]);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        CHECK(name, C_, 0, ref[i_] = w[o_ffn + (size_t)l * C_ + i_]);
        /* q_proj row (h, r*HS/2 + i) is .bin wq row (h, 2i + r) */
        snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.weight", l);
        CHECK(name, C_, C_, {
            size_t row = i_ / C_, col = i_ % C_, h = row / HS_, j = row % HS_;
            size_t r = j / (HS_ / 2), ii = j % (HS_ / 2), src = h * HS_ + 2 * ii + r;
            ref[i_] = w[o_wq + (size_t)l * C_ * C_ + src * C_ + col]; });
        snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.weight", l);
        CHECK(name, KV_, C_, {
            size_t row = i_ / C_, col = i_ % C_, h = row / HS_, j = row % HS_;
            size_t r = j / (HS_ / 2), ii = j % (HS_ / 2), src = h * HS_ + 2 * ii + r;
            ref[i_] = w[o_wk + (size_t)l * KV_ * C_ + src * C_ + col]; });
        snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.weight", l);
        CHECK(name, KV_, C_, ref[i_] = w[o_wv + (size_t)l * KV_ * C_ + i_]);
        snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", l);
        CHECK(name, C_, C_, ref[i_] = w[o_wo + (size_t)l * C_ * C_ + i_]);
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_proj.weight", l);
        CHECK(name, H_, C_, ref[i_] = w[o_w1 + (size_t)l * H_ * C_ + i_]);
        snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", l);
        CHECK(name, H_, C_, ref[i_] = w[o_w3 + (size_t)l * H_ * C_ + i_]);
        snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
        CHECK(name, C_, H_, ref[i_] = w[o_w2 + (size_t)l * C_ * H_ + i_]);
    }
#undef CHECK
    assert_true(ok);
    /* the q permutation really moves rows (it is not the identity on this model) */
    sh[0] = C_; sh[1] = C_;
    assert_int_equal(ft_st_read_f32(st, "model.layers.0.self_attn.q_proj.weight", sh, 2, got), 0);
    assert_true(memcmp(got, w + o_wq, (size_t)C_ * C_ * sizeof(float)) != 0);
    /* config.json */
    size_t n;
    char *cfg = read_file(tmp_path("values/config.json"), &n);
    const char *keys[] = {"\"hidden_size\": 64", "\"intermediate_size\": 172", "\"num_hidden_layers\": 5",
                          "\"num_attention_heads\": 8", "\"num_key_value_heads\": 4", "\"vocab_size\": 512",
                          "\"max_position_embeddings\": 512", "\"rms_norm_eps\": 1e-05", "\"rope_theta\": 10000.0",
                          "\"tie_word_embeddings\": true", "\"hidden_act\": \"silu\"", "\"bos_token_id\": 1",
                          "\"eos_token_id\": 2", "\"torch_dtype\": \"float32\"", "\"model_type\": \"llama\"", "LlamaForCausalLM"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!strstr(cfg, keys[i])) printf("  config.json lacks %s\n", keys[i]);
        assert_non_null(strstr(cfg, keys[i]));
    }
    printf("  config.json has all %zu expected entries\n", sizeof keys / sizeof keys[0]);
    free(cfg);
    char *tc = read_file(tmp_path("values/tokenizer_config.json"), &n);
    assert_non_null(strstr(tc, "\"add_bos_token\": true"));
    assert_non_null(strstr(tc, "\"bos_token\": \"<s>\""));
    assert_non_null(strstr(tc, "\"eos_token\": \"</s>\""));
    assert_non_null(strstr(tc, "\"unk_token\": \"<unk>\""));
    assert_non_null(strstr(tc, "\"model_max_length\": 512"));
    assert_non_null(strstr(tc, "\"tokenizer_class\": \"LlamaTokenizerFast\""));
    free(tc);
    ft_st_close(st);
    free(got); free(ref); free(raw);
}

/* ---- rope: interleaved pairs on W  ==  rotate_half on permuted W (attention scores) ---- */
static void rope_interleaved(float *q, int hs, int pos) {
    for (int i = 0; i < hs / 2; i++) {
        double f = pow(10000.0, -2.0 * i / hs), a = pos * f, c = cos(a), s = sin(a);
        double x0 = q[2 * i], x1 = q[2 * i + 1];
        q[2 * i] = (float)(x0 * c - x1 * s);
        q[2 * i + 1] = (float)(x0 * s + x1 * c);
    }
}
static void rope_half(float *q, int hs, int pos) {
    int h = hs / 2;
    for (int i = 0; i < h; i++) {
        double f = pow(10000.0, -2.0 * i / hs), a = pos * f, c = cos(a), s = sin(a);
        double x0 = q[i], x1 = q[i + h];
        q[i] = (float)(x0 * c - x1 * s);
        q[i + h] = (float)(x1 * c + x0 * s);
    }
}
static void matvec(float *y, const float *W, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)W[r * cols + c] * x[c];
        y[r] = (float)s;
    }
}

static void test_rope_permutation_preserves_scores(void **state) {
    (void)state;
    enum { NH = 3, HS = 16, C = 24 };
    float Wq[NH * HS * C], Wk[NH * HS * C], Pq[NH * HS * C], Pk[NH * HS * C], x[C], y[C];
    uint32_t s = 12345;
#define RND() ((s = s * 1664525u + 1013904223u), ((float)(s >> 8) / (float)(1u << 24) - 0.5f))
    for (int i = 0; i < NH * HS * C; i++) { Wq[i] = RND(); Wk[i] = RND(); }
    for (int i = 0; i < C; i++) { x[i] = RND(); y[i] = RND(); }
#undef RND
    ft_rope_interleaved_to_half(Pq, Wq, NH, HS, C);
    ft_rope_interleaved_to_half(Pk, Wk, NH, HS, C);
    double max_err = 0;
    int n = 0;
    for (int pq = 0; pq < 40; pq += 7)
        for (int pk = 0; pk <= pq; pk += 3) {
            float q1[NH * HS], k1[NH * HS], q2[NH * HS], k2[NH * HS];
            matvec(q1, Wq, x, NH * HS, C); matvec(k1, Wk, y, NH * HS, C);
            matvec(q2, Pq, x, NH * HS, C); matvec(k2, Pk, y, NH * HS, C);
            for (int h = 0; h < NH; h++) {
                rope_interleaved(q1 + h * HS, HS, pq); rope_interleaved(k1 + h * HS, HS, pk);
                rope_half(q2 + h * HS, HS, pq); rope_half(k2 + h * HS, HS, pk);
                double d1 = 0, d2 = 0;
                for (int i = 0; i < HS; i++) { d1 += (double)q1[h * HS + i] * k1[h * HS + i]; d2 += (double)q2[h * HS + i] * k2[h * HS + i]; }
                if (fabs(d1 - d2) > max_err) max_err = fabs(d1 - d2);
                n++;
            }
        }
    printf("  %d attention scores: interleaved rope on W vs rotate_half on permuted W: max abs diff %.3e\n", n, max_err);
    assert_true(max_err < 1e-5);
}

/* ---- synthetic llama2.c files ---- */
/* A small legacy checkpoint: C=8, H=12, L=2, NH=2, NKV=1, V=6, T=5; values = index * 0.001 + tag. */
enum { SC = 8, SH = 12, SL = 2, SNH = 2, SNKV = 1, SV = 6, ST = 5, SHS = 4, SKV = 4 };
static size_t small_floats(int with_cls) {
    return (size_t)SV * SC + SL * SC * 2 + SL * ((size_t)SC * SC * 2 + (size_t)SKV * SC * 2) + (size_t)SL * SH * SC * 3 + SC +
           (with_cls ? (size_t)SV * SC : 0);
}
static float *small_weights(int with_cls) {
    size_t n = small_floats(with_cls);
    float *w = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) w[i] = (float)((double)i * 0.001 - 0.25);
    return w;
}
static void write_legacy(const char *path, int unshared, size_t truncate_to) {
    int32_t h[7] = {SC, SH, SL, SNH, SNKV, unshared ? -SV : SV, ST};
    size_t nw = small_floats(unshared);
    float *w = small_weights(unshared);
    size_t nfreq = (size_t)ST * SHS;
    size_t nbytes = 28 + (nw + nfreq) * 4;
    char *buf = calloc(1, nbytes);
    memcpy(buf, h, 28);
    size_t before_cls = small_floats(0);
    memcpy(buf + 28, w, before_cls * 4);                                   /* ... rms_final */
    /* freq_cis (garbage, skipped) */
    for (size_t i = 0; i < nfreq; i++) { float f = 99.0f; memcpy(buf + 28 + (before_cls + i) * 4, &f, 4); }
    if (unshared) memcpy(buf + 28 + (before_cls + nfreq) * 4, w + before_cls, (size_t)SV * SC * 4);
    write_file(path, buf, truncate_to ? truncate_to : nbytes);
    free(buf); free(w);
}

static void test_llama2c_formats(void **state) {
    (void)state;
    /* legacy, shared */
    write_legacy(tmp_path("small.bin"), 0, 0);
    ft_llama_ckpt a, b;
    int rc = ft_llama2c_load(&a, tmp_path("small.bin"));
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(a.tied, 1);
    assert_int_equal(a.seq_len, ST);
    assert_true(a.wcls == a.token_embedding);
    /* version 1: same weights in the v1 order */
    float *w = small_weights(0);
    size_t nw = small_floats(0);
    char *v1 = calloc(1, 256 + nw * 4);
    uint32_t magic = 0x616b3432; int32_t ver = 1; int32_t h[7] = {SC, SH, SL, SNH, SNKV, SV, ST};
    memcpy(v1, &magic, 4); memcpy(v1 + 4, &ver, 4); memcpy(v1 + 8, h, 28); v1[36] = 1;
    /* sections of the legacy order: emb, att, wq, wk, wv, wo, ffn, w1, w2, w3, fin */
    size_t sz[11] = {(size_t)SV * SC, (size_t)SL * SC, (size_t)SL * SC * SC, (size_t)SL * SKV * SC, (size_t)SL * SKV * SC,
                     (size_t)SL * SC * SC, (size_t)SL * SC, (size_t)SL * SH * SC, (size_t)SL * SC * SH, (size_t)SL * SH * SC, SC};
    size_t off[11]; off[0] = 0;
    for (int i = 1; i < 11; i++) off[i] = off[i - 1] + sz[i - 1];
    int order[11] = {1, 6, 10, 0, 2, 3, 4, 5, 7, 8, 9};   /* v1: att, ffn, fin, emb, wq, wk, wv, wo, w1, w2, w3 */
    size_t pos = 256;
    for (int i = 0; i < 11; i++) { memcpy(v1 + pos, w + off[order[i]], sz[order[i]] * 4); pos += sz[order[i]] * 4; }
    write_file(tmp_path("small_v1.bin"), v1, pos);
    rc = ft_llama2c_load(&b, tmp_path("small_v1.bin"));
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(memcmp(a.mem, b.mem, nw * 4), 0);
    printf("  version 1 (\"ak42\") file: %zu weights identical to the legacy file\n", nw);
    ft_llama_ckpt_free(&b);
    /* version 2 (int8) and unknown versions */
    ver = 2; memcpy(v1 + 4, &ver, 4);
    write_file(tmp_path("small_v2.bin"), v1, pos);
    expect_error(ft_llama2c_load(&b, tmp_path("small_v2.bin")), FT_ERR_UNSUPPORTED, "small_v2.bin", "version 2");
    ver = 7; memcpy(v1 + 4, &ver, 4);
    write_file(tmp_path("small_v7.bin"), v1, pos);
    expect_error(ft_llama2c_load(&b, tmp_path("small_v7.bin")), FT_ERR_UNSUPPORTED, "small_v7.bin", "version 7");
    ver = 1; memcpy(v1 + 4, &ver, 4);
    write_file(tmp_path("small_v1_trunc.bin"), v1, pos - 4);
    expect_error(ft_llama2c_load(&b, tmp_path("small_v1_trunc.bin")), FT_ERR_FORMAT, "small_v1_trunc.bin", "truncated");
    free(v1); free(w);

    /* unshared classifier: lm_head.weight exported, tie_word_embeddings false */
    write_legacy(tmp_path("small_unshared.bin"), 1, 0);
    rc = ft_llama2c_load(&b, tmp_path("small_unshared.bin"));
    assert_int_equal(rc, 0);
    assert_int_equal(b.tied, 0);
    assert_int_equal(memcmp(a.mem, b.mem, nw * 4), 0);  /* freq_cis skipped correctly */
    rc = ft_llama_export_hf(&b, NULL, tmp_path("small_unshared_hf"), NULL, NULL);
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, tmp_path("small_unshared_hf/model.safetensors")), 0);
    const ft_st_entry *e = ft_st_find(st, "lm_head.weight");
    assert_non_null(e);
    assert_int_equal(e->shape[0], SV);
    assert_int_equal(memcmp(e->data, b.wcls, (size_t)SV * SC * 4), 0);
    assert_int_equal(ft_st_count(st), 9 * SL + 3);
    ft_st_close(st);
    size_t n;
    char *cfg = read_file(tmp_path("small_unshared_hf/config.json"), &n);
    assert_non_null(strstr(cfg, "\"tie_word_embeddings\": false"));
    free(cfg);
    printf("  unshared classifier: lm_head.weight [%d, %d] written, tie_word_embeddings false\n", SV, SC);
    ft_llama_ckpt_free(&b);
    ft_llama_ckpt_free(&a);
}

static void test_llama2c_errors(void **state) {
    (void)state;
    ft_llama_ckpt ck;
    write_legacy(tmp_path("trunc_small.bin"), 0, 28 + 100);
    expect_error(ft_llama2c_load(&ck, tmp_path("trunc_small.bin")), FT_ERR_FORMAT, "trunc_small.bin", "truncated");
    write_legacy(tmp_path("trunc_unshared.bin"), 1, 28 + small_floats(0) * 4 + (size_t)ST * SHS * 4 + 8);
    expect_error(ft_llama2c_load(&ck, tmp_path("trunc_unshared.bin")), FT_ERR_FORMAT, "trunc_unshared.bin", "unshared");
    write_file(tmp_path("tiny.bin"), "abc", 3);
    expect_error(ft_llama2c_load(&ck, tmp_path("tiny.bin")), FT_ERR_FORMAT, "tiny.bin", "header");
    const char *text = "this is a text file, not a checkpoint at all, but long enough\n";
    write_file(tmp_path("text.bin"), text, strlen(text));
    expect_error(ft_convert_to_hf(tmp_path("text.bin"), NULL, tmp_path("text_out"), NULL, NULL), FT_ERR_FORMAT, "text.bin", "magic");
    assert_false(ft_path_exists(tmp_path("text_out")));
    int32_t h[7] = {64, 172, 5, 8, 3, 512, 512};   /* 8 heads, 3 kv heads */
    write_file(tmp_path("badheads.bin"), h, sizeof h);
    expect_error(ft_llama2c_load(&ck, tmp_path("badheads.bin")), FT_ERR_FORMAT, "badheads.bin", "n_kv_heads");
    expect_error(ft_llama2c_load(&ck, tmp_path("missing.bin")), FT_ERR_NOT_FOUND, "missing.bin", NULL);
    if (!have_real_fixtures()) return;
    /* the real file, truncated by one float and by half */
    size_t n;
    char *raw = read_file(ft_fixture("convert/stories260K.bin"), &n);
    write_file(tmp_path("stories_trunc.bin"), raw, n - 4);
    expect_error(ft_llama2c_load(&ck, tmp_path("stories_trunc.bin")), FT_ERR_FORMAT, "stories_trunc.bin", "needs 1056540 bytes");
    write_file(tmp_path("stories_half.bin"), raw, n / 2);
    expect_error(ft_convert_to_hf(tmp_path("stories_half.bin"), ft_fixture("convert/tok512.bin"), tmp_path("half_out"), NULL, NULL),
                 FT_ERR_FORMAT, "stories_half.bin", "truncated");
    free(raw);
}

/* ---- a GGUF writer for synthetic files ---- */
typedef struct { char *p; size_t n, cap; } gbuf;
static void gput(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 256; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void g_u32(gbuf *b, uint32_t v) { gput(b, &v, 4); }
static void g_u64(gbuf *b, uint64_t v) { gput(b, &v, 8); }
static void g_str(gbuf *b, const char *s) { g_u64(b, strlen(s)); gput(b, s, strlen(s)); }
static void g_kv_u32(gbuf *b, const char *k, uint32_t v) { g_str(b, k); g_u32(b, FT_GGUF_UINT32); g_u32(b, v); }
static void g_kv_f32(gbuf *b, const char *k, float v) { g_str(b, k); g_u32(b, FT_GGUF_FLOAT32); gput(b, &v, 4); }
static void g_kv_str(gbuf *b, const char *k, const char *v) { g_str(b, k); g_u32(b, FT_GGUF_STRING); g_str(b, v); }

typedef struct { char name[64]; int nd; int64_t ne[2]; uint32_t type; size_t nbytes; } gt;

/* A tiny llama GGUF: C=32, H=48, L=1, NH=2, NKV=1, V=6 (C a multiple of the Q4_0 block). Tensor `odd` gets type `odd_type`;
 * arch: general.architecture. Extra metadata of every type. Returns the file size. */
static size_t write_tiny_gguf(const char *path, uint32_t version, const char *arch, const char *odd, uint32_t odd_type,
                              size_t truncate_to, int data_past_eof) {
    enum { TC = 32, TH = 48, TV = 6, TKV = 16 };
    gt t[12];
    size_t off_pos[12];
    int n = 0;
#define T2(nm, a, b_) do { snprintf(t[n].name, 64, "%s", nm); t[n].nd = (b_) ? 2 : 1; t[n].ne[0] = a; t[n].ne[1] = (b_) ? (b_) : 1; n++; } while (0)
    T2("token_embd.weight", TC, TV); T2("output_norm.weight", TC, 0);
    T2("blk.0.attn_norm.weight", TC, 0); T2("blk.0.attn_q.weight", TC, TC); T2("blk.0.attn_k.weight", TC, TKV);
    T2("blk.0.attn_v.weight", TC, TKV); T2("blk.0.attn_output.weight", TC, TC); T2("blk.0.ffn_norm.weight", TC, 0);
    T2("blk.0.ffn_gate.weight", TC, TH); T2("blk.0.ffn_up.weight", TC, TH); T2("blk.0.ffn_down.weight", TH, TC);
#undef T2
    for (int i = 0; i < n; i++) {
        size_t numel = (size_t)t[i].ne[0] * (size_t)t[i].ne[1];
        t[i].type = FT_GGML_F32;
        if (strcmp(t[i].name, "blk.0.attn_v.weight") == 0) t[i].type = FT_GGML_F16;   /* upcast paths */
        if (strcmp(t[i].name, "blk.0.attn_k.weight") == 0) t[i].type = FT_GGML_BF16;
        if (odd && strcmp(t[i].name, odd) == 0) t[i].type = odd_type;
        t[i].nbytes = t[i].type == FT_GGML_F32 ? numel * 4 : (t[i].type == FT_GGML_F16 || t[i].type == FT_GGML_BF16) ? numel * 2
                    : numel / 32 * 18;
    }
    gbuf b = {0};
    gput(&b, "GGUF", 4);
    g_u32(&b, version);
    g_u64(&b, (uint64_t)n);
    g_u64(&b, 19);
    g_kv_str(&b, "general.architecture", arch);
    g_kv_u32(&b, "llama.embedding_length", TC);
    g_kv_u32(&b, "llama.feed_forward_length", TH);
    g_kv_u32(&b, "llama.block_count", 1);
    g_kv_u32(&b, "llama.attention.head_count", 2);
    g_kv_u32(&b, "llama.attention.head_count_kv", 1);
    g_kv_u32(&b, "llama.context_length", 16);
    g_kv_f32(&b, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    g_kv_f32(&b, "llama.rope.freq_base", 500000.0f);
    /* every other value type */
    g_str(&b, "t.u8"); g_u32(&b, FT_GGUF_UINT8); gput(&b, "\xff", 1);
    g_str(&b, "t.i8"); g_u32(&b, FT_GGUF_INT8); gput(&b, "\xfe", 1);
    g_str(&b, "t.u16"); g_u32(&b, FT_GGUF_UINT16); gput(&b, "\x34\x12", 2);
    g_str(&b, "t.i16"); g_u32(&b, FT_GGUF_INT16); gput(&b, "\xff\xff", 2);
    g_str(&b, "t.i32"); g_u32(&b, FT_GGUF_INT32); { int32_t v = -7; gput(&b, &v, 4); }
    g_str(&b, "t.u64"); g_u32(&b, FT_GGUF_UINT64); g_u64(&b, 1ull << 40);
    g_str(&b, "t.i64"); g_u32(&b, FT_GGUF_INT64); { int64_t v = -(1ll << 40); gput(&b, &v, 8); }
    g_str(&b, "t.f64"); g_u32(&b, FT_GGUF_FLOAT64); { double v = 0.125; gput(&b, &v, 8); }
    g_str(&b, "t.bool"); g_u32(&b, FT_GGUF_BOOL); gput(&b, "\x01", 1);
    /* array of arrays of strings, and an array of int16 */
    g_str(&b, "t.nested"); g_u32(&b, FT_GGUF_ARRAY); g_u32(&b, FT_GGUF_ARRAY); g_u64(&b, 2);
    g_u32(&b, FT_GGUF_STRING); g_u64(&b, 2); g_str(&b, "a"); g_str(&b, "bc");
    g_u32(&b, FT_GGUF_STRING); g_u64(&b, 0);
    for (int i = 0; i < n; i++) {
        g_str(&b, t[i].name);
        g_u32(&b, (uint32_t)t[i].nd);
        for (int d = 0; d < t[i].nd; d++) g_u64(&b, (uint64_t)t[i].ne[d]);
        g_u32(&b, t[i].type);
        off_pos[i] = b.n;
        g_u64(&b, 0);   /* patched below */
    }
    size_t infos_end = b.n;
    size_t data_start = (infos_end + 31) / 32 * 32;
    while (b.n < data_start) gput(&b, "", 1);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t o = off + (data_past_eof && i == n - 1 ? 4096 : 0);
        memcpy(b.p + off_pos[i], &o, 8);
        size_t numel = (size_t)t[i].ne[0] * (size_t)t[i].ne[1];
        for (size_t k = 0; k < numel; k++) {
            float v = (float)(i * 100 + (int)k) * 0.01f;
            if (t[i].type == FT_GGML_F32) gput(&b, &v, 4);
            else if (t[i].type == FT_GGML_F16) { uint16_t h = ft_f32_to_f16(v); gput(&b, &h, 2); }
            else if (t[i].type == FT_GGML_BF16) { uint16_t h = ft_f32_to_bf16(v); gput(&b, &h, 2); }
        }
        if (t[i].type != FT_GGML_F32 && t[i].type != FT_GGML_F16 && t[i].type != FT_GGML_BF16) for (size_t k = 0; k < t[i].nbytes; k++) gput(&b, "\x11", 1);
        off += t[i].nbytes;
        off = (off + 31) / 32 * 32;
        while (b.n < data_start + off) gput(&b, "", 1);
    }
    size_t total = b.n;
    write_file(path, b.p, truncate_to && truncate_to < b.n ? truncate_to : b.n);
    free(b.p);
    return total;
}

static void test_gguf_reader(void **state) {
    (void)state;
    size_t total = write_tiny_gguf(tmp_path("tiny.gguf"), 3, "llama", NULL, 0, 0, 0);
    ft_gguf *g;
    int rc = ft_gguf_open(&g, tmp_path("tiny.gguf"));
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ft_gguf_version(g), 3);
    assert_int_equal(ft_gguf_n_kv(g), 19);
    assert_int_equal(ft_gguf_n_tensors(g), 11);
    int64_t i;
    double f;
    assert_int_equal(ft_gguf_get_int(g, "t.u8", &i), 0); assert_int_equal(i, 255);
    assert_int_equal(ft_gguf_get_int(g, "t.i8", &i), 0); assert_int_equal(i, -2);
    assert_int_equal(ft_gguf_get_int(g, "t.u16", &i), 0); assert_int_equal(i, 0x1234);
    assert_int_equal(ft_gguf_get_int(g, "t.i16", &i), 0); assert_int_equal(i, -1);
    assert_int_equal(ft_gguf_get_int(g, "t.i32", &i), 0); assert_int_equal(i, -7);
    assert_int_equal(ft_gguf_get_int(g, "t.u64", &i), 0); assert_true(i == (1ll << 40));
    assert_int_equal(ft_gguf_get_int(g, "t.i64", &i), 0); assert_true(i == -(1ll << 40));
    assert_int_equal(ft_gguf_get_int(g, "t.bool", &i), 0); assert_int_equal(i, 1);
    assert_int_equal(ft_gguf_get_float(g, "t.f64", &f), 0); assert_true(f == 0.125);
    assert_int_equal(ft_gguf_get_float(g, "llama.rope.freq_base", &f), 0); assert_true(f == 500000.0);
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, "t.nested");
    assert_non_null(kv);
    assert_int_equal(kv->arr_type, FT_GGUF_ARRAY);
    assert_int_equal(kv->arr_n, 2);
    expect_error(ft_gguf_get_int(g, "general.architecture", &i), FT_ERR_FORMAT, "tiny.gguf", "general.architecture");
    expect_error(ft_gguf_get_int(g, "no.such.key", &i), FT_ERR_NOT_FOUND, "tiny.gguf", "no.such.key");
    const ft_gguf_tensor *t = ft_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 48); assert_int_equal(t->ne[1], 32);
    float buf[48 * 32];
    int64_t ne_bad[2] = {32, 48};
    expect_error(ft_gguf_read_f32(g, "blk.0.ffn_down.weight", ne_bad, 2, buf), FT_ERR_SHAPE, "blk.0.ffn_down.weight", "(48, 32)");
    printf("  tiny GGUF v3: %zu bytes, %d keys of all 13 value types (nested arrays too), %d tensors\n",
           total, ft_gguf_n_kv(g), ft_gguf_n_tensors(g));
    ft_gguf_close(g);

    /* llama import: F16 upcast, eps / theta from metadata */
    ft_llama_ckpt ck;
    rc = ft_gguf_load_llama(&ck, tmp_path("tiny.gguf"));
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ck.vocab_size, 6);
    assert_int_equal(ck.tied, 1);
    assert_int_equal(ck.n_tokens, 0);
    assert_true(ck.norm_eps == 1e-6f);
    assert_true(ck.rope_theta == 500000.0f);
    /* attn_v is tensor 5 (F16): value (5*100 + k) * 0.01 through f16 */
    double max_err = 0;
    for (int k = 0; k < 32; k++) {
        double want = (5 * 100 + k) * 0.01;
        if (fabs(ck.wv[k] - want) > max_err) max_err = fabs(ck.wv[k] - want);
    }
    printf("  F16 tensor upcast: max abs error vs the f32 source %.3e (f16 rounding)\n", max_err);
    assert_true(max_err < 5e-3);
    /* attn_k is tensor 4 (BF16) */
    max_err = 0;
    for (int k = 0; k < 512; k++) {
        double want = (4 * 100 + k) * 0.01, rel = fabs(ck.wk[k] - want) / fabs(want);
        if (rel > max_err) max_err = rel;
    }
    printf("  BF16 tensor upcast: max rel error vs the f32 source %.3e (bf16 rounding bound 2^-8 = 3.9e-03)\n", max_err);
    assert_true(max_err <= 1.0 / 256 + 1e-7);
    assert_true(ck.wq[3] == (float)(3 * 100 + 3) * 0.01f);
    rc = ft_llama_export_hf(&ck, NULL, tmp_path("tiny_hf"), NULL, NULL);
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    size_t n;
    char *cfg = read_file(tmp_path("tiny_hf/config.json"), &n);
    assert_non_null(strstr(cfg, "\"rms_norm_eps\": 1e-06"));
    assert_non_null(strstr(cfg, "\"rope_theta\": 500000.0"));
    assert_non_null(strstr(cfg, "\"max_position_embeddings\": 16"));
    free(cfg);
    assert_false(ft_path_exists(tmp_path("tiny_hf/tokenizer.json")));
    ft_llama_ckpt_free(&ck);

    /* a v2 file reads the same */
    write_tiny_gguf(tmp_path("tiny_v2.gguf"), 2, "llama", NULL, 0, 0, 0);
    assert_int_equal(ft_gguf_open(&g, tmp_path("tiny_v2.gguf")), 0);
    assert_int_equal(ft_gguf_version(g), 2);
    ft_gguf_close(g);
}

static void test_gguf_errors(void **state) {
    (void)state;
    ft_gguf *g;
    ft_llama_ckpt ck;
    /* unsupported tensor type */
    write_tiny_gguf(tmp_path("q4.gguf"), 3, "llama", "blk.0.ffn_up.weight", 20 /* IQ4_NL: 18 bytes per 32, as Q4_0 */, 0, 0);
    assert_int_equal(ft_gguf_open(&g, tmp_path("q4.gguf")), 0);   /* the reader sizes IQ4_NL blocks */
    ft_gguf_close(g);
    expect_error(ft_gguf_load_llama(&ck, tmp_path("q4.gguf")), FT_ERR_UNSUPPORTED, "blk.0.ffn_up.weight", "IQ4_NL");
    assert_non_null(strstr(ft_last_error(), "q4.gguf"));
    expect_error(ft_convert_to_hf(tmp_path("q4.gguf"), NULL, tmp_path("q4_out"), NULL, NULL), FT_ERR_UNSUPPORTED, "q4.gguf", "IQ4_NL");
    assert_false(ft_path_exists(tmp_path("q4_out")));
    /* unknown ggml type id */
    write_tiny_gguf(tmp_path("t77.gguf"), 3, "llama", "blk.0.ffn_up.weight", 77, 0, 0);
    expect_error(ft_gguf_open(&g, tmp_path("t77.gguf")), FT_ERR_UNSUPPORTED, "t77.gguf", "type id 77");
    /* unknown architecture */
    write_tiny_gguf(tmp_path("falcon.gguf"), 3, "falcon", NULL, 0, 0, 0);
    expect_error(ft_gguf_load_llama(&ck, tmp_path("falcon.gguf")), FT_ERR_UNSUPPORTED, "falcon.gguf", "unknown architecture 'falcon'");
    /* versions */
    write_tiny_gguf(tmp_path("v1.gguf"), 1, "llama", NULL, 0, 0, 0);
    expect_error(ft_gguf_open(&g, tmp_path("v1.gguf")), FT_ERR_UNSUPPORTED, "v1.gguf", "version 1");
    write_tiny_gguf(tmp_path("v4.gguf"), 4, "llama", NULL, 0, 0, 0);
    expect_error(ft_convert_to_hf(tmp_path("v4.gguf"), NULL, tmp_path("v4_out"), NULL, NULL), FT_ERR_UNSUPPORTED, "v4.gguf", "version 4");
    write_tiny_gguf(tmp_path("be.gguf"), 0x03000000u, "llama", NULL, 0, 0, 0);
    expect_error(ft_gguf_open(&g, tmp_path("be.gguf")), FT_ERR_UNSUPPORTED, "be.gguf", "big-endian");
    /* data past the end */
    write_tiny_gguf(tmp_path("past.gguf"), 3, "llama", NULL, 0, 0, 1);
    expect_error(ft_gguf_open(&g, tmp_path("past.gguf")), FT_ERR_FORMAT, "past.gguf", "past the end");
    /* wrong magic */
    write_file(tmp_path("magic.gguf"), "GGUX\3\0\0\0", 8);
    expect_error(ft_gguf_open(&g, tmp_path("magic.gguf")), FT_ERR_FORMAT, "magic.gguf", "not a GGUF file");
    /* truncated everywhere: every prefix length of the tiny file must fail cleanly */
    size_t total = write_tiny_gguf(tmp_path("full.gguf"), 3, "llama", NULL, 0, 0, 0);
    int n_fail = 0, n_trunc_msg = 0;
    for (size_t cut = 0; cut < total; cut += (cut < 1200 ? 1 : 37)) {
        write_tiny_gguf(tmp_path("cut.gguf"), 3, "llama", NULL, 0, cut ? cut : 1, 0);
        int rc = ft_gguf_open(&g, tmp_path("cut.gguf"));
        if (rc == 0) { printf("  cut at %zu opened?!\n", cut); ft_gguf_close(g); continue; }
        n_fail++;
        const char *m = ft_last_error();
        if (strstr(m, "cut.gguf") && (strstr(m, "truncated") || strstr(m, "past the end") || strstr(m, "not a GGUF") ||
                                      strstr(m, "cannot fit")))
            n_trunc_msg++;
        else
            printf("  cut at %zu: unexpected message: %s\n", cut, m);
    }
    printf("  %d truncated copies of a %zu-byte GGUF: %d rejected, %d with a message naming the file and the truncation\n",
           n_fail, total, n_fail, n_trunc_msg);
    assert_int_equal(n_trunc_msg, n_fail);
    /* corrupted bytes in the metadata / tensor infos: open and import fail cleanly or succeed */
    {
        size_t n;
        char *full = read_file(tmp_path("full.gguf"), &n);
        int n_ok = 0, n_err = 0;
        uint32_t s = 777;
        for (int trial = 0; trial < 1500; trial++) {
            char *c = malloc(n);
            memcpy(c, full, n);
            s = s * 1664525u + 1013904223u;
            size_t at = 4 + (s >> 8) % 1300;                /* header + metadata + infos */
            c[at] = (char)(trial % 3 == 0 ? 0xff : trial % 3 == 1 ? 0x00 : (c[at] ^ (1 << (trial % 8))));
            write_file(tmp_path("corrupt.gguf"), c, n);
            free(c);
            ft_llama_ckpt ck2;
            int rc = ft_gguf_load_llama(&ck2, tmp_path("corrupt.gguf"));
            if (rc == 0) { n_ok++; ft_llama_ckpt_free(&ck2); }
            else { n_err++; assert_non_null(strstr(ft_last_error(), "corrupt.gguf")); }
        }
        printf("  1500 single-byte corruptions of the tiny GGUF: %d still load, %d rejected with a message naming the file\n",
               n_ok, n_err);
        free(full);
    }
    write_tiny_gguf(tmp_path("cut.gguf"), 3, "llama", NULL, 0, 200, 0);
    expect_error(ft_gguf_open(&g, tmp_path("cut.gguf")), FT_ERR_FORMAT, "cut.gguf", "truncated");
    if (!have_real_fixtures()) return;
    size_t n;
    char *raw = read_file(ft_fixture("convert/stories260K.gguf"), &n);
    write_file(tmp_path("stories_trunc.gguf"), raw, n - 100);
    expect_error(ft_convert_to_hf(tmp_path("stories_trunc.gguf"), NULL, tmp_path("trunc_out"), NULL, NULL), FT_ERR_FORMAT,
                 "stories_trunc.gguf", "past the end");
    write_file(tmp_path("stories_head.gguf"), raw, 5000);   /* inside the vocabulary array */
    expect_error(ft_convert_to_hf(tmp_path("stories_head.gguf"), NULL, tmp_path("trunc_out"), NULL, NULL), FT_ERR_FORMAT,
                 "stories_head.gguf", "truncated");
    assert_false(ft_path_exists(tmp_path("trunc_out")));
    free(raw);
}

static void test_output_errors(void **state) {
    (void)state;
    if (!have_real_fixtures()) return;
    char bin[512], tok[512];
    snprintf(bin, sizeof bin, "%s", ft_fixture("convert/stories260K.bin"));
    snprintf(tok, sizeof tok, "%s", ft_fixture("convert/tok512.bin"));
    /* a path under a regular file cannot be created (root can write anywhere, so no chmod test) */
    write_file(tmp_path("afile"), "x", 1);
    expect_error(ft_convert_to_hf(bin, tok, tmp_path("afile/model"), NULL, NULL), FT_ERR_IO, "afile", NULL);
    expect_error(ft_convert_to_hf(bin, tok, tmp_path("afile"), NULL, NULL), FT_ERR_IO, "afile", "not a directory");
    /* a failure after some files were written removes them: config.json (written last) is a directory */
    char cfgdir[600];
    snprintf(cfgdir, sizeof cfgdir, "%s/config.json", tmp_path("rollback"));
    assert_int_equal(ft_mkdirs(cfgdir), 0);
    int rc = ft_convert_to_hf(bin, tok, tmp_path("rollback"), NULL, NULL);
    printf("  -> rc=%d: %s\n", rc, ft_last_error());
    assert_int_equal(rc, FT_ERR_IO);
    assert_non_null(strstr(ft_last_error(), "config.json"));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = config.json", tmp_path("rollback"));
    assert_int_equal(system(cmd), 0);
    printf("  after the failed write only the pre-existing config.json/ remains in the output directory\n");
    /* missing tokenizer */
    expect_error(ft_convert_to_hf(bin, tmp_path("nope.bin"), tmp_path("notok"), NULL, NULL), FT_ERR_NOT_FOUND, "nope.bin", NULL);
    assert_false(ft_path_exists(tmp_path("notok")));
    /* a .bin without --tokenizer and no tokenizer beside it */
    assert_int_equal(ft_mkdirs(tmp_path("lonely")), 0);
    write_legacy(tmp_path("lonely/small.bin"), 0, 0);
    expect_error(ft_convert_to_hf(tmp_path("lonely/small.bin"), NULL, tmp_path("lonely_out"), NULL, NULL), FT_ERR_NOT_FOUND,
                 "tok6.bin", "--tokenizer");
    assert_false(ft_path_exists(tmp_path("lonely_out")));
}

int main(void) {
    ft_mkdirs("/tmp");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rope_permutation_preserves_scores),
        cmocka_unit_test(test_bin_and_gguf_identical),
        cmocka_unit_test(test_gguf_default_context),
        cmocka_unit_test(test_values_match_bin),
        cmocka_unit_test(test_llama2c_formats),
        cmocka_unit_test(test_llama2c_errors),
        cmocka_unit_test(test_gguf_reader),
        cmocka_unit_test(test_gguf_errors),
        cmocka_unit_test(test_output_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
