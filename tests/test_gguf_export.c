/* test_gguf_export.c — the GGUF writer, ggml's quantizers and `finetune export` (export.h).
 *
 *   writer:     every metadata value type (arrays, string arrays) and tensors of every written type read
 *               back by our GGUF reader; offsets aligned to general.alignment; a key set twice keeps its
 *               place with the new value; duplicate tensors, unsupported types, rows that do not split
 *               into blocks are refused; the write is atomic (an existing file is replaced whole, a
 *               failed write leaves no temporary file and the old file intact).
 *   quantizers: Q8_0 / Q4_0 / Q5_0 / Q4_K bytes equal a committed fixture made by gguf-py's numpy
 *               quantizers and llama.cpp's ggml_quantize_chunk (tests/gguf/make_quant_fixture.py);
 *               the AVX-512 Q8_0 / Q4_0 equal the scalar references on random and edge-case rows;
 *               dequantization error within each type's bound; F16 rounds to nearest-even.
 *   export:     stories260K as F32 GGUF read back by our llama GGUF importer equals the model (the q/k
 *               rows, permuted to llama.cpp's interleaved order, come back through the importer's
 *               inverse); tokenizer metadata; Q8_0 export; a LoRA adapter GGUF (names, shapes, alpha,
 *               q rows of B permuted); an adapter of another base, an unsupported type and a tokenizer
 *               larger than the model's vocabulary are refused;
 *               safetensors export in f32 (weights identical after reload) and bf16 sharded (index
 *               file, reload within bf16 rounding).
 * llama.cpp's own verdict on these files is tests/gguf/llama_cpp_check.py (test_gguf_export_llama_cpp). */
#include "testutil.h"
#include "finetune/adapter.h"
#include "finetune/convert.h"
#include "finetune/export.h"
#include "finetune/fileio.h"
#include "finetune/gguf_quantize.h"
#include "finetune/gguf_write.h"
#include "finetune/model.h"
#include "finetune/quant.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "finetune/tokenizer.h"
#include "quant/ggml_quantize.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORIES "models/stories260K"

static char g_tmp[256];
static int setup(void **s) { (void)s; return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_gguf_export"); }
static int teardown(void **s) { (void)s; return ft_test_tmpdir_remove(g_tmp); }
static const char *tmp(const char *name) { return ft_test_path(g_tmp, name); }

#define OK(x) do { int rc_ = (x); if (rc_ < 0) fail_msg("%s -> %d: %s", #x, rc_, ft_last_error()); } while (0)

/* ------------------------------------------------------------------ writer */

static void test_writer_round_trip(void **state) {
    (void)state;
    ft_gguf_writer *w;
    OK(ft_gguf_writer_create(&w));
    OK(ft_gguf_writer_set_u8(w, "t.u8", 200));
    OK(ft_gguf_writer_set_i8(w, "t.i8", -100));
    OK(ft_gguf_writer_set_u16(w, "t.u16", 60000));
    OK(ft_gguf_writer_set_i16(w, "t.i16", -30000));
    OK(ft_gguf_writer_set_u32(w, "t.u32", 4000000000u));
    OK(ft_gguf_writer_set_i32(w, "t.i32", -2000000000));
    OK(ft_gguf_writer_set_u64(w, "t.u64", 1ull << 60));
    OK(ft_gguf_writer_set_i64(w, "t.i64", -(1ll << 60)));
    OK(ft_gguf_writer_set_f32(w, "t.f32", 0.25f));
    OK(ft_gguf_writer_set_f64(w, "t.f64", -1.5e300));
    OK(ft_gguf_writer_set_bool(w, "t.bool", 1));
    OK(ft_gguf_writer_set_str(w, "t.str", "first"));
    OK(ft_gguf_writer_set_u32(w, "general.alignment", 64));
    int32_t ia[5] = {1, -2, 3, -4, 5};
    float fa[3] = {0.5f, -1.0f, 2.0f};
    OK(ft_gguf_writer_set_array(w, "t.arr_i32", FT_GGUF_INT32, ia, 5));
    OK(ft_gguf_writer_set_array(w, "t.arr_f32", FT_GGUF_FLOAT32, fa, 3));
    OK(ft_gguf_writer_set_array(w, "t.arr_empty", FT_GGUF_UINT8, NULL, 0));
    const char *sa[3] = {"a", "", "\xe2\x96\x81hello"};
    OK(ft_gguf_writer_set_str_array(w, "t.arr_str", sa, NULL, 3));
    OK(ft_gguf_writer_set_str(w, "t.str", "replaced"));          /* keeps its place */
    assert_int_equal(ft_gguf_writer_set_array(w, "t.bad", FT_GGUF_STRING, sa, 3), FT_ERR_INVALID);

    /* tensors: F32 1-D, F16 2-D, Q8_0, Q4_0, Q4_K with odd row counts */
    enum { R = 3 };
    static float x[R * 256];
    for (int i = 0; i < R * 256; i++) x[i] = sinf(0.37f * (float)i) * (1 + i % 7);
    int64_t ne1[1] = {5}, ne2[2] = {256, R};
    OK(ft_gguf_writer_add_tensor(w, "v.f32", FT_GGML_F32, 1, ne1, x, 0));
    uint32_t types[4] = {FT_GGML_F16, FT_GGML_Q8_0, FT_GGML_Q4_0, FT_GGML_Q4_K};
    const char *names[4] = {"m.f16", "m.q8_0", "m.q4_0", "m.q4_k"};
    void *q[4];
    for (int k = 0; k < 4; k++) {
        q[k] = malloc(ft_gguf_type_row_bytes(types[k], 256) * R);
        OK(ft_gguf_quantize(types[k], x, R, 256, q[k]));
        OK(ft_gguf_writer_add_tensor(w, names[k], types[k], 2, ne2, q[k], 0));
    }
    assert_int_equal(ft_gguf_writer_add_tensor(w, "m.f16", FT_GGML_F32, 1, ne1, x, 0), FT_ERR_INVALID);
    int64_t ne_bad[2] = {100, 2};
    assert_int_equal(ft_gguf_writer_add_tensor(w, "m.bad", FT_GGML_Q8_0, 2, ne_bad, x, 0), FT_ERR_SHAPE);
    assert_int_equal(ft_gguf_writer_add_tensor(w, "m.bad", 3 /* Q4_1 */, 1, ne1, x, 0), FT_ERR_UNSUPPORTED);
    const char *path = tmp("rt.gguf");
    OK(ft_gguf_writer_write(w, path));
    ft_gguf_writer_free(w);

    ft_gguf *g;
    OK(ft_gguf_open(&g, path));
    assert_int_equal(ft_gguf_version(g), 3);
    assert_int_equal(ft_gguf_n_kv(g), 17);
    assert_string_equal(ft_gguf_kv_at(g, 11)->key, "t.str");           /* replaced in place */
    assert_string_equal(ft_gguf_kv_at(g, 11)->str, "replaced");
    struct { const char *k; ft_gguf_type t; } kinds[] = {
        {"t.u8", FT_GGUF_UINT8}, {"t.i8", FT_GGUF_INT8}, {"t.u16", FT_GGUF_UINT16}, {"t.i16", FT_GGUF_INT16},
        {"t.u32", FT_GGUF_UINT32}, {"t.i32", FT_GGUF_INT32}, {"t.u64", FT_GGUF_UINT64}, {"t.i64", FT_GGUF_INT64},
        {"t.f32", FT_GGUF_FLOAT32}, {"t.f64", FT_GGUF_FLOAT64}, {"t.bool", FT_GGUF_BOOL}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) assert_int_equal(ft_gguf_find_kv(g, kinds[i].k)->type, kinds[i].t);
    assert_int_equal(ft_gguf_find_kv(g, "t.u8")->v.u, 200);
    assert_int_equal(ft_gguf_find_kv(g, "t.i8")->v.i, -100);
    assert_int_equal(ft_gguf_find_kv(g, "t.u16")->v.u, 60000);
    assert_int_equal(ft_gguf_find_kv(g, "t.i16")->v.i, -30000);
    assert_int_equal(ft_gguf_find_kv(g, "t.u32")->v.u, 4000000000u);
    assert_int_equal(ft_gguf_find_kv(g, "t.i32")->v.i, -2000000000);
    assert_true(ft_gguf_find_kv(g, "t.u64")->v.u == 1ull << 60);
    assert_true(ft_gguf_find_kv(g, "t.i64")->v.i == -(1ll << 60));
    assert_true(ft_gguf_find_kv(g, "t.f32")->v.f == 0.25);
    assert_true(ft_gguf_find_kv(g, "t.f64")->v.f == -1.5e300);
    assert_int_equal(ft_gguf_find_kv(g, "t.bool")->v.u, 1);
    int32_t *ib; float *fb; const char **sb; int64_t n;
    OK(ft_gguf_get_i32_array(g, "t.arr_i32", &ib, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(ib, ia, sizeof ia);
    free(ib);
    OK(ft_gguf_get_f32_array(g, "t.arr_f32", &fb, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(fb, fa, sizeof fa);
    free(fb);
    assert_int_equal(ft_gguf_find_kv(g, "t.arr_empty")->arr_n, 0);
    OK(ft_gguf_get_str_array(g, "t.arr_str", &sb, &n));
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(sb[i], sa[i]);
    free(sb);
    assert_int_equal(ft_gguf_n_tensors(g), 5);
    const ft_gguf_tensor *t = ft_gguf_find_tensor(g, "v.f32");
    assert_non_null(t);
    assert_memory_equal(t->data, x, 5 * sizeof(float));
    for (int k = 0; k < 4; k++) {
        t = ft_gguf_find_tensor(g, names[k]);
        assert_non_null(t);
        assert_int_equal(t->type, types[k]);
        assert_int_equal(t->ne[0], 256);
        assert_int_equal(t->ne[1], R);
        assert_int_equal(t->offset % 64, 0);
        assert_int_equal(t->nbytes, ft_gguf_type_row_bytes(types[k], 256) * R);
        assert_memory_equal(t->data, q[k], t->nbytes);
        free(q[k]);
    }
    /* F16 tensors read back through the reader's own upcast */
    float back[R * 256];
    int64_t ne_exp[2] = {256, R};
    OK(ft_gguf_read_f32(g, "m.f16", ne_exp, 2, back));
    for (int i = 0; i < R * 256; i++) assert_true(back[i] == ft_f16_to_f32(ft_f32_to_f16(x[i])));
    ft_gguf_close(g);
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_writer_atomic(void **state) {
    (void)state;
    const char *dir = tmp("atomic");
    OK(ft_mkdirs(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)i;
    int64_t ne[1] = {64};
    for (int round = 0; round < 2; round++) {
        ft_gguf_writer *w;
        OK(ft_gguf_writer_create(&w));
        OK(ft_gguf_writer_set_u32(w, "round", (uint32_t)round));
        OK(ft_gguf_writer_add_tensor(w, "x", FT_GGML_F32, 1, ne, x, 0));
        OK(ft_gguf_writer_write(w, path));
        ft_gguf_writer_free(w);
        assert_int_equal(count_dir_entries(dir), 1);   /* the file, no temporary left behind */
        ft_gguf *g;
        OK(ft_gguf_open(&g, path));
        assert_int_equal(ft_gguf_find_kv(g, "round")->v.u, (uint64_t)round);
        ft_gguf_close(g);
    }
    /* a failed write (the target is a directory) leaves the directory as it was */
    ft_gguf_writer *w;
    OK(ft_gguf_writer_create(&w));
    assert_true(ft_gguf_writer_write(w, dir) < 0);
    ft_gguf_writer_free(w);
    assert_int_equal(count_dir_entries(dir), 1);
    /* an owned buffer is freed even when the add fails (ASan would report the leak) */
    OK(ft_gguf_writer_create(&w));
    float *owned = malloc(64 * sizeof(float));
    int64_t bad[1] = {0};
    assert_int_equal(ft_gguf_writer_add_tensor(w, "y", FT_GGML_F32, 1, bad, owned, 1), FT_ERR_INVALID);
    ft_gguf_writer_free(w);
}

/* ------------------------------------------------------------------ quantizers */

static void test_quant_fixture(void **state) {
    (void)state;
    if (!ft_fixture_present("gguf/quant_vectors.safetensors")) return;
    ft_safetensors *st;
    OK(ft_st_open(&st, ft_fixture("gguf/quant_vectors.safetensors")));
    const ft_st_entry *x = ft_st_find(st, "x");
    assert_non_null(x);
    int64_t rows = x->shape[0], cols = x->shape[1];
    struct { const char *name; uint32_t type; } k[] = {
        {"q8_0", FT_GGML_Q8_0}, {"q4_0", FT_GGML_Q4_0}, {"q5_0", FT_GGML_Q5_0}, {"q4_k", FT_GGML_Q4_K}};
    for (int isa = 0; isa < 2; isa++) {
        /* the dispatcher's SIMD path (when the CPU has it) and the scalar reference */
        if (isa == 1 && ft_quant_isa_set(FT_QUANT_ISA_SCALAR) < 0) break;
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
            const ft_st_entry *ref = ft_st_find(st, k[i].name);
            assert_non_null(ref);
            size_t nb = ft_gguf_type_row_bytes(k[i].type, cols) * (size_t)rows;
            assert_int_equal(nb, ref->nbytes);
            uint8_t *got = malloc(nb);
            OK(ft_gguf_quantize(k[i].type, x->data, rows, cols, got));
            int same = memcmp(got, ref->data, nb) == 0;
            printf("  %-5s %s: %zu bytes %s gguf-py / llama.cpp\n", k[i].name, isa ? "scalar" : ft_quant_isa_name(ft_quant_isa_get()),
                   nb, same ? "==" : "!=");
            assert_true(same);
            free(got);
        }
    }
    ft_quant_isa_set(ft_quant_isa_best());
    ft_st_close(st);
}

static void test_quant_simd_equals_ref(void **state) {
    (void)state;
    if (ft_quant_isa_best() != FT_QUANT_ISA_AVX512) { printf("SKIP: no AVX-512 on this CPU\n"); return; }
    enum { K = 32 * 64 };
    static float x[K];
    static ft_block_q8_0 a8[K / 32], b8[K / 32];
    static ft_block_q4_0 a4[K / 32], b4[K / 32];
    uint64_t s = 12345;
    for (int trial = 0; trial < 200; trial++) {
        float scale = powf(10.0f, (float)(trial % 13) - 6.0f);
        for (int i = 0; i < K; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)(s >> 40) / (float)(1 << 24) - 0.5f;
            x[i] = u * scale;
            if (trial % 5 == 1 && i % 32 == 7) x[i] = 0.5f * scale;       /* ties of the maximum, both signs */
            if (trial % 5 == 1 && i % 32 == 9) x[i] = -0.5f * scale;
            if (trial % 5 == 2) x[i] = roundf(u * 254.0f) / 2.0f;          /* halves: roundf's ties */
            if (trial % 5 == 3 && i % 64 < 32) x[i] = 0.0f;                /* all-zero blocks */
        }
        ft__quantize_row_q8_0_ref(x, a8, K);
        ft__quantize_row_q8_0_avx512(x, b8, K);
        assert_memory_equal(a8, b8, sizeof a8);
        ft__quantize_row_q4_0_ref(x, a4, K);
        ft__quantize_row_q4_0_avx512(x, b4, K);
        assert_memory_equal(a4, b4, sizeof a4);
    }
}

static void test_quant_error_bounds(void **state) {
    (void)state;
    enum { K = 1024 };
    static float x[K], y[K];
    for (int i = 0; i < K; i++) x[i] = sinf(0.1f * (float)i) * (1.0f + (float)(i % 5));
    struct { uint32_t t; double bound; } k[] = {
        {FT_GGML_F16, 1e-3}, {FT_GGML_BF16, 8e-3}, {FT_GGML_Q8_0, 1.0 / 127}, {FT_GGML_Q5_0, 1.0 / 16}, {FT_GGML_Q4_0, 1.0 / 8}, {FT_GGML_Q4_K, 1.0 / 8}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        void *q = malloc(ft_gguf_type_row_bytes(k[i].t, K));
        OK(ft_gguf_quantize(k[i].t, x, 1, K, q));
        OK(ft_gguf_dequantize(k[i].t, q, K, y));
        double worst = 0;
        for (int b = 0; b < K; b += 32) {      /* error relative to each 32-block's largest magnitude */
            double amax = 0, err = 0;
            for (int j = b; j < b + 32; j++) { amax = fmax(amax, fabs(x[j])); err = fmax(err, fabs(x[j] - y[j])); }
            worst = fmax(worst, err / amax);
        }
        printf("  type %2u: max error / block max %.5f (bound %.5f)\n", k[i].t, worst, k[i].bound);
        assert_true(worst <= k[i].bound);
        free(q);
    }
    /* F16 rounds to nearest-even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 (even) */
    assert_int_equal(ft_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);
    assert_int_equal(ft_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    /* shapes and types the quantizer refuses */
    assert_int_equal(ft_gguf_quantize(FT_GGML_Q4_K, x, 1, 128, y), FT_ERR_SHAPE);
    assert_int_equal(ft_gguf_quantize(99, x, 1, 32, y), FT_ERR_UNSUPPORTED);
    assert_int_equal(ft_gguf_type_from_name("Q4_K"), FT_GGML_Q4_K);
    assert_int_equal(ft_gguf_type_from_name("q3_k"), -1);
}

/* ------------------------------------------------------------------ export */

static void test_export_stories_f32(void **state) {
    (void)state;
    ft_model *m;
    ft_tokenizer *tok;
    OK(ft_model_load(&m, STORIES, ft_backend_cpu()));
    OK(ft_tokenizer_load(&tok, STORIES));
    ft_export_gguf_opts o = ft_export_gguf_default_opts();
    o.tokenizer_dir = STORIES;
    o.name = "stories260K";
    ft_export_summary s;
    const char *path = tmp("stories.gguf");
    OK(ft_export_gguf(m, tok, &o, path, &s));
    assert_int_equal(s.n_tensors, 2 + 9 * 5);
    assert_int_equal(s.n_f32, s.n_tensors);

    /* metadata */
    ft_gguf *g;
    OK(ft_gguf_open(&g, path));
    const char *str;
    int64_t v;
    OK(ft_gguf_get_str(g, "general.architecture", &str));
    assert_string_equal(str, "llama");
    OK(ft_gguf_get_str(g, "general.name", &str));
    assert_string_equal(str, "stories260K");
    OK(ft_gguf_get_int(g, "llama.attention.head_count_kv", &v));
    assert_int_equal(v, 4);
    OK(ft_gguf_get_int(g, "llama.rope.dimension_count", &v));
    assert_int_equal(v, 8);
    OK(ft_gguf_get_str(g, "tokenizer.ggml.model", &str));
    assert_string_equal(str, "llama");
    const char **toks;
    int64_t n;
    OK(ft_gguf_get_str_array(g, "tokenizer.ggml.tokens", &toks, &n));
    assert_int_equal(n, 512);
    assert_string_equal(toks[1], "<s>");
    assert_string_equal(toks[13], "<0x0A>");
    free(toks);
    int32_t *tt;
    OK(ft_gguf_get_i32_array(g, "tokenizer.ggml.token_type", &tt, &n));
    assert_int_equal(tt[0], 2);   /* unknown */
    assert_int_equal(tt[1], 3);   /* control */
    assert_int_equal(tt[13], 6);  /* byte */
    assert_int_equal(tt[300], 1); /* normal */
    free(tt);
    float *sc;
    OK(ft_gguf_get_f32_array(g, "tokenizer.ggml.scores", &sc, &n));
    int merged = 0;
    for (int i = 0; i < n; i++) merged += sc[i] < 0 && sc[i] > -1000;
    assert_true(merged > 100);   /* merge products ranked by merge order */
    free(sc);
    OK(ft_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v));
    assert_int_equal(v, 1);
    assert_non_null(ft_gguf_find_kv(g, "tokenizer.ggml.add_bos_token"));
    assert_int_equal(ft_gguf_find_kv(g, "tokenizer.ggml.add_bos_token")->v.u, 1);
    ft_gguf_close(g);

    /* the weights through our own GGUF importer (interleaved rope order) back to HF order */
    ft_llama_ckpt ck;
    OK(ft_gguf_load_llama(&ck, path));
    assert_int_equal(ck.n_tokens, 512);
    assert_int_equal(ck.tied, 1);
    int C = 64, KV = 32;
    float *q = malloc(sizeof(float) * C * C), *k = malloc(sizeof(float) * KV * C);
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        const float *w = p->t.data;
        if (strcmp(p->name, "h.2.qkv_w") == 0) {
            ft_rope_interleaved_to_half(q, ck.wq + 2 * C * C, 8, 8, C);
            ft_rope_interleaved_to_half(k, ck.wk + 2 * KV * C, 4, 8, C);
            assert_memory_equal(q, w, sizeof(float) * C * C);
            assert_memory_equal(k, w + C * C, sizeof(float) * KV * C);
            assert_memory_equal(ck.wv + 2 * KV * C, w + C * C + KV * C, sizeof(float) * KV * C);
            /* the permutation really moved rows: interleaved != HF order */
            assert_true(memcmp(ck.wq + 2 * C * C, w, sizeof(float) * C * C) != 0);
        } else if (strcmp(p->name, "h.4.fc_w") == 0) {
            assert_memory_equal(ck.w1 + 4 * 172 * C, w, sizeof(float) * 172 * C);           /* gate rows */
            assert_memory_equal(ck.w3 + 4 * 172 * C, w + 172 * C, sizeof(float) * 172 * C); /* up rows */
        } else if (strcmp(p->name, "wte") == 0) {
            assert_memory_equal(ck.token_embedding, w, sizeof(float) * 512 * C);
        }
    }
    free(q); free(k);
    ft_llama_ckpt_free(&ck);

    /* Q8_0: the matrices whose rows split into 32-blocks are Q8_0, the 172-wide ffn_down falls back to F16 */
    o.type = FT_GGML_Q8_0;
    OK(ft_export_gguf(m, tok, &o, tmp("stories-q8.gguf"), &s));
    assert_int_equal(s.n_q8_0, 1 + 6 * 5);
    assert_int_equal(s.n_f16, 5);
    assert_int_equal(s.n_fallback, 5);
    OK(ft_gguf_open(&g, tmp("stories-q8.gguf")));
    const ft_gguf_tensor *t = ft_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_int_equal(t->type, FT_GGML_F16);
    assert_int_equal(ft_gguf_find_tensor(g, "blk.0.attn_norm.weight")->type, FT_GGML_F32);
    t = ft_gguf_find_tensor(g, "blk.0.attn_v.weight");   /* not permuted: equals quantizing the v rows */
    assert_int_equal(t->type, FT_GGML_Q8_0);
    ft_gguf_close(g);

    /* unsupported export type */
    o.type = FT_GGML_Q5_0;
    assert_int_equal(ft_export_gguf(m, tok, &o, tmp("bad.gguf"), NULL), FT_ERR_UNSUPPORTED);
    assert_false(ft_path_exists(tmp("bad.gguf")));
    ft_tokenizer_free(tok);
    ft_model_free(m);
}

/* `finetune export --model FILE.gguf`: an F32 GGUF read back (gguf-infer's loader, q/k permuted to HF order)
 * and exported again is the same tensors (the permutation undone and redone), with the same vocabulary */
static void test_export_from_gguf(void **state) {
    (void)state;
    char *out = NULL;
    const char *a = tmp("src-f32.gguf"), *b = tmp("re-f32.gguf");
    assert_int_equal(ft_test_finetune(&out, "export --model %s --format gguf --type f32 --out %s", STORIES, a), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "export --model %s --format gguf --type f32 --out %s", a, b), 0);
    free(out);
    ft_gguf *ga, *gb;
    OK(ft_gguf_open(&ga, a));
    OK(ft_gguf_open(&gb, b));
    assert_int_equal(ft_gguf_n_tensors(ga), ft_gguf_n_tensors(gb));
    for (int i = 0; i < ft_gguf_n_tensors(ga); i++) {
        const ft_gguf_tensor *x = ft_gguf_tensor_at(ga, i), *y = ft_gguf_find_tensor(gb, x->name);
        assert_non_null(y);
        assert_int_equal(x->nbytes, y->nbytes);
        if (memcmp(x->data, y->data, x->nbytes) != 0) fail_msg("%s differs after GGUF -> model -> GGUF", x->name);
    }
    const char **ta, **tb;
    int64_t na, nb;
    OK(ft_gguf_get_str_array(ga, "tokenizer.ggml.tokens", &ta, &na));
    OK(ft_gguf_get_str_array(gb, "tokenizer.ggml.tokens", &tb, &nb));
    assert_int_equal(na, nb);
    for (int64_t i = 0; i < na; i++) assert_string_equal(ta[i], tb[i]);
    free(ta); free(tb);
    ft_gguf_close(ga);
    ft_gguf_close(gb);
}

static void test_export_vocab_mismatch(void **state) {
    (void)state;
    if (!ft_fixture_present("decoder/mistral")) return;
    ft_model *m;
    ft_tokenizer *tok;
    OK(ft_model_load(&m, ft_fixture("decoder/mistral"), ft_backend_cpu()));   /* 400 embedding rows */
    OK(ft_tokenizer_load(&tok, STORIES));                                      /* 512 tokens */
    assert_int_equal(ft_export_gguf(m, tok, NULL, tmp("mismatch.gguf"), NULL), FT_ERR_SHAPE);
    printf("  %s\n", ft_last_error());
    assert_false(ft_path_exists(tmp("mismatch.gguf")));
    ft_tokenizer_free(tok);
    ft_model_free(m);
}

static void test_export_lora(void **state) {
    (void)state;
    const char *ad = tmp("adapter");
    OK(ft_test_make_lora_dir(STORIES, ad, "q_proj,v_proj,down_proj", 4, 7, 0.5f));
    ft_model *m;
    OK(ft_model_load(&m, STORIES, ft_backend_cpu()));
    ft_export_summary s;
    const char *path = tmp("lora.gguf");
    OK(ft_export_lora_gguf(m, ad, path, &s));
    assert_int_equal(s.n_tensors, 2 * 3 * 5);
    ft_adapter *a;
    OK(ft_adapter_load(&a, m, ad));
    ft_gguf *g;
    OK(ft_gguf_open(&g, path));
    const char *str;
    OK(ft_gguf_get_str(g, "general.type", &str));
    assert_string_equal(str, "adapter");
    OK(ft_gguf_get_str(g, "adapter.type", &str));
    assert_string_equal(str, "lora");
    double alpha;
    OK(ft_gguf_get_float(g, "adapter.lora.alpha", &alpha));
    assert_true(fabs(alpha - ft_adapter_scale(a) * 4) < 1e-6);
    const ft_gguf_tensor *la = ft_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_a");
    const ft_gguf_tensor *lb = ft_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_b");
    const ft_gguf_tensor *vb = ft_gguf_find_tensor(g, "blk.1.attn_v.weight.lora_b");
    assert_non_null(la); assert_non_null(lb); assert_non_null(vb);
    assert_non_null(ft_gguf_find_tensor(g, "blk.4.ffn_down.weight.lora_a"));
    assert_int_equal(la->ne[0], 64); assert_int_equal(la->ne[1], 4);    /* A [r, in] */
    assert_int_equal(lb->ne[0], 4);  assert_int_equal(lb->ne[1], 64);   /* B [out, r] */
    assert_int_equal(vb->ne[1], 32);
    /* module order is (layer, site, piece): find layer 1's q module */
    int found = 0;
    for (int k = 0; k < ft_adapter_module_count(a); k++) {
        float *A, *B;
        int rows, in, r;
        OK(ft_adapter_module_weights(a, k, &A, &B, &rows, &in, &r));
        if (k == 3) {   /* modules per layer: q, v, down -> layer 1 starts at 3 */
            assert_int_equal(rows, 64);
            assert_memory_equal(la->data, A, sizeof(float) * 4 * 64);
            const float *gb = lb->data;
            /* row h*8 + 2i + r of the GGUF B is row h*8 + r*4 + i of ours */
            for (int h = 0; h < 8; h++)
                for (int i = 0; i < 4; i++)
                    for (int rr = 0; rr < 2; rr++)
                        assert_memory_equal(gb + (h * 8 + 2 * i + rr) * 4, B + (h * 8 + rr * 4 + i) * 4, sizeof(float) * 4);
            found = 1;
        }
    }
    assert_true(found);
    ft_gguf_close(g);
    ft_adapter_free(a);

    /* an adapter of another base: GPT-2 module names on a Llama model */
    if (ft_fixture_present("lora/gpt2_tiny_attn/adapter")) {
        int rc = ft_export_lora_gguf(m, ft_fixture("lora/gpt2_tiny_attn/adapter"), tmp("other.gguf"), NULL);
        printf("  another base: %s\n", ft_last_error());
        assert_true(rc < 0);
        assert_false(ft_path_exists(tmp("other.gguf")));
    }
    ft_model_free(m);
}

static void test_export_safetensors(void **state) {
    (void)state;
    ft_model *m, *back;
    OK(ft_model_load(&m, STORIES, ft_backend_cpu()));
    ft_export_summary s;
    const char *d32 = tmp("st32"), *d16 = tmp("st16");
    OK(ft_export_safetensors(m, STORIES, d32, FT_F32, 0, &s));
    assert_int_equal(s.n_shards, 1);
    OK(ft_model_load(&back, d32, ft_backend_cpu()));
    for (int i = 0; i < ft_model_num_params(m); i++)
        assert_memory_equal(ft_model_param(m, i)->t.data, ft_model_param(back, i)->t.data,
                            sizeof(float) * (size_t)ft_tensor_numel(&ft_model_param(m, i)->t));
    ft_model_free(back);
    char p[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", d32);
    assert_true(ft_path_exists(p));

    OK(ft_export_safetensors(m, STORIES, d16, FT_BF16, 100000, &s));   /* 100 kB shards */
    assert_true(s.n_shards > 3);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d16);
    assert_true(ft_path_exists(p));
    snprintf(p, sizeof p, "%s/model-00001-of-%05d.safetensors", d16, s.n_shards);
    assert_true(ft_path_exists(p));
    char *cfg;
    snprintf(p, sizeof p, "%s/config.json", d16);
    OK(ft_file_read_all(p, &cfg, NULL));
    assert_non_null(strstr(cfg, "\"bfloat16\""));
    free(cfg);
    OK(ft_model_load(&back, d16, ft_backend_cpu()));
    for (int i = 0; i < ft_model_num_params(m); i++) {
        const float *a = ft_model_param(m, i)->t.data, *b = ft_model_param(back, i)->t.data;
        for (int64_t j = 0; j < ft_tensor_numel(&ft_model_param(m, i)->t); j++)
            assert_true(b[j] == ft_bf16_to_f32(ft_f32_to_bf16(a[j])));
    }
    ft_model_free(back);
    assert_int_equal(ft_export_safetensors(m, NULL, tmp("st8"), FT_I32, 0, NULL), FT_ERR_UNSUPPORTED);
    ft_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_atomic),
        cmocka_unit_test(test_quant_fixture),
        cmocka_unit_test(test_quant_simd_equals_ref),
        cmocka_unit_test(test_quant_error_bounds),
        cmocka_unit_test(test_export_stories_f32),
        cmocka_unit_test(test_export_from_gguf),
        cmocka_unit_test(test_export_vocab_mismatch),
        cmocka_unit_test(test_export_lora),
        cmocka_unit_test(test_export_safetensors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
