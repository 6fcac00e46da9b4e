/* test_limits.c — bounds wherever input decides a size (issue 14). Each case is the exact hostile or
 * broken input and the clean error (or behaviour) expected instead of a crash, a hang or gigabytes:
 * config.json sizes and numbers, adapter_config.json, tokenizer ids, quadratic header checks, records
 * tokenized whole, FIFOs and directories where files are expected. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "finetune/convert.h"
#include "finetune/data.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"
#include "util/testutil.h"

static char g_dir[256];

/* the time bounds below are on CPU time (all threads), not the wall clock: they fail on the quadratic or
 * whole-record work they guard against, not on a loaded machine (test_limits failed once at load 18) */
static double cpu_s(void) { return ft_test_cpu_seconds(); }

static long peak_rss_mb(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static cJSON *read_json(const char *path) {
    char *t;
    assert_int_equal(ft_file_read_all(path, &t, NULL), FT_OK);
    cJSON *j = cJSON_Parse(t);
    free(t);
    assert_non_null(j);
    return j;
}

static void write_json(const char *path, const cJSON *j) {
    char *t = cJSON_Print(j);
    write_text(path, t);
    free(t);
}

/* the embedded stories260K config.json with one field replaced by a raw JSON value, parsed */
static int llama_config_with(const char *key, const char *raw, ft_model_config *c) {
    cJSON *j = read_json("models/stories260K/config.json");
    cJSON *v = cJSON_Parse(raw);
    assert_non_null(v);
    if (strchr(key, '.')) {   /* "rope_scaling.factor": an object member */
        char obj[64];
        snprintf(obj, sizeof obj, "%.*s", (int)(strchr(key, '.') - key), key);
        cJSON *o = cJSON_GetObjectItem(j, obj);
        if (!cJSON_IsObject(o)) {
            cJSON_DeleteItemFromObject(j, obj);
            o = cJSON_AddObjectToObject(j, obj);
            cJSON_AddStringToObject(o, "rope_type", "llama3");
        }
        cJSON_DeleteItemFromObject(o, strchr(key, '.') + 1);
        cJSON_AddItemToObject(o, strchr(key, '.') + 1, v);
    } else {
        cJSON_DeleteItemFromObject(j, key);
        cJSON_AddItemToObject(j, key, v);
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    int rc = ft_model_config_from_json(c, text, "config.json");
    free(text);
    return rc;
}

static void expect_config_error(const char *key, const char *raw, const char *want) {
    ft_model_config c;
    int rc = llama_config_with(key, raw, &c);
    printf("  %s = %s -> %s\n", key, raw, rc ? ft_last_error() : "accepted");
    assert_true(rc < 0);
    assert_non_null(strstr(ft_last_error(), "config.json"));
    assert_non_null(strstr(ft_last_error(), want));
}

/* config.json: every size bounded, every positive / finite number checked; messages name the file, the
 * field and the limit */
static void test_decoder_config_bounds(void **state) {
    (void)state;
    ft_model_config c;
    assert_int_equal(llama_config_with("num_hidden_layers", "5", &c), FT_OK);
    /* the crash of the issue: int overflow in the parameter layout after allocating ~17 GB */
    expect_config_error("num_hidden_layers", "300000000", "\"num_hidden_layers\" is 300000000; it must be an integer in [1, 1024]");
    expect_config_error("num_hidden_layers", "1e300", "\"num_hidden_layers\" is 1e+300");
    expect_config_error("num_hidden_layers", "-3", "[1, 1024]");
    expect_config_error("num_hidden_layers", "2.5", "it must be an integer");
    expect_config_error("hidden_size", "1e12", "\"hidden_size\"");
    expect_config_error("vocab_size", "2147483648", "\"vocab_size\"");
    expect_config_error("intermediate_size", "0", "\"intermediate_size\"");
    expect_config_error("num_key_value_heads", "\"4\"", "\"num_key_value_heads\" must be an integer in [1, 1024], got a string");
    expect_config_error("max_position_embeddings", "1e15", "\"max_position_embeddings\"");
    expect_config_error("head_dim", "100000", "\"head_dim\"");
    /* numbers that must be positive and finite */
    expect_config_error("rms_norm_eps", "-1", "\"rms_norm_eps\" is -1; it must be a finite number in (0, 1)");
    expect_config_error("rms_norm_eps", "0", "\"rms_norm_eps\"");
    expect_config_error("rope_theta", "0", "\"rope_theta\" is 0; it must be a finite number in (0,");
    expect_config_error("rope_theta", "-10000", "\"rope_theta\"");
    expect_config_error("rope_theta", "1e39", "\"rope_theta\" is 1e+39; it must be a finite number in (0, 1e+30]");
    expect_config_error("attention_dropout", "1.5", "\"attention_dropout\"");
    expect_config_error("initializer_range", "-0.02", "\"initializer_range\"");
    /* rope scaling: a zero factor, a divisor of zero */
    expect_config_error("rope_scaling.factor", "0", "(rope_scaling): \"factor\" is 0");
    expect_config_error("rope_scaling.factor", "-8", "\"factor\"");
    expect_config_error("rope_scaling.low_freq_factor", "4", "\"high_freq_factor\" (4) must be greater than \"low_freq_factor\" (4)");
    expect_config_error("rope_scaling.original_max_position_embeddings", "0", "\"original_max_position_embeddings\"");
    /* sizes inside the limits whose product passes the parameter limit */
    cJSON *j = read_json("models/stories260K/config.json");
    cJSON_ReplaceItemInObject(j, "num_hidden_layers", cJSON_CreateNumber(1024));
    cJSON_ReplaceItemInObject(j, "hidden_size", cJSON_CreateNumber(65536));
    cJSON_ReplaceItemInObject(j, "num_attention_heads", cJSON_CreateNumber(64));
    cJSON_ReplaceItemInObject(j, "num_key_value_heads", cJSON_CreateNumber(64));
    cJSON_ReplaceItemInObject(j, "head_dim", cJSON_CreateNumber(1024));
    cJSON_ReplaceItemInObject(j, "intermediate_size", cJSON_CreateNumber(1 << 20));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    int rc = ft_model_config_from_json(&c, text, "config.json");
    free(text);
    printf("  1024 layers of width 65536: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_RANGE);
    assert_non_null(strstr(ft_last_error(), "parameters"));
    assert_non_null(strstr(ft_last_error(), "the limit is"));
    /* token ids outside the vocabulary are dropped, not used to index the embedding */
    assert_int_equal(llama_config_with("eos_token_id", "70000", &c), FT_OK);
    assert_int_equal(c.eos_token_id, -1);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(llama_config_with("pad_token_id", "-7", &c), FT_OK);
    assert_int_equal(c.pad_token_id, -1);
    /* GPT-2 keys */
    const char *gpt2 = "{\"model_type\": \"gpt2\", \"vocab_size\": 100, \"n_positions\": 32, \"n_embd\": 1e300, \"n_layer\": 2, \"n_head\": 2}";
    assert_int_equal(ft_model_config_from_json(&c, gpt2, "config.json"), FT_ERR_FORMAT);
    printf("  %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "\"n_embd\""));
    gpt2 = "{\"model_type\": \"gpt2\", \"vocab_size\": 100, \"n_positions\": 32, \"n_embd\": 8, \"n_layer\": 2, \"n_head\": 2, "
           "\"layer_norm_epsilon\": -1e-5}";
    assert_int_equal(ft_model_config_from_json(&c, gpt2, "config.json"), FT_ERR_FORMAT);
    assert_non_null(strstr(ft_last_error(), "\"layer_norm_epsilon\""));
    gpt2 = "{\"model_type\": \"gpt2\", \"vocab_size\": 100, \"n_positions\": 32, \"n_embd\": 8, \"n_layer\": 2, \"n_head\": 2}";
    assert_int_equal(ft_model_config_from_json(&c, gpt2, "config.json"), FT_OK);
}

/* a config that asks for more than its weights hold stops before allocating (it allocated and zeroed the
 * whole layout first) */
static void test_config_weights_mismatch(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m1000", g_dir);
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp models/stories260K/model.safetensors models/stories260K/tokenizer.json %s/", dir);
    assert_int_equal(system(cmd), 0);
    cJSON *j = read_json("models/stories260K/config.json");
    cJSON_ReplaceItemInObject(j, "num_hidden_layers", cJSON_CreateNumber(1000));
    cJSON_ReplaceItemInObject(j, "hidden_size", cJSON_CreateNumber(4096));
    cJSON_ReplaceItemInObject(j, "num_attention_heads", cJSON_CreateNumber(32));
    cJSON_ReplaceItemInObject(j, "num_key_value_heads", cJSON_CreateNumber(32));
    cJSON_ReplaceItemInObject(j, "head_dim", cJSON_CreateNumber(128));
    cJSON_ReplaceItemInObject(j, "intermediate_size", cJSON_CreateNumber(11008));
    write_json(ft_test_path(dir, "config.json"), j);
    cJSON_Delete(j);
    long before = peak_rss_mb();
    double t0 = cpu_s();
    ft_model *m;
    int rc = ft_model_load(&m, dir, NULL);
    printf("  %s (%.3f CPU s, peak RSS %ld -> %ld MB)\n", ft_last_error(), cpu_s() - t0, before, peak_rss_mb());
    assert_int_equal(rc, FT_ERR_SHAPE);
    assert_non_null(strstr(ft_last_error(), "do not belong together"));
    assert_true(peak_rss_mb() < before + 100);
    /* the real one loads */
    assert_int_equal(ft_model_load(&m, "models/stories260K", NULL), FT_OK);
    ft_model_free(m);
}

/* encoder config.json keys (BERT / DistilBERT) */
static void test_encoder_config_bounds(void **state) {
    (void)state;
    static const struct { const char *json, *want; } cases[] = {
        {"{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 16, \"num_hidden_layers\": 300000000, "
         "\"num_attention_heads\": 2, \"intermediate_size\": 32, \"max_position_embeddings\": 64}", "\"num_hidden_layers\" is 300000000"},
        {"{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 32, \"max_position_embeddings\": 64, \"layer_norm_eps\": -1}", "\"layer_norm_eps\" is -1"},
        {"{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 32, \"max_position_embeddings\": 64, \"pad_token_id\": 100}", "\"pad_token_id\" is 100; it must be an integer in [0, 99]"},
        {"{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 32, \"max_position_embeddings\": 64, \"hidden_dropout_prob\": 1e300}", "\"hidden_dropout_prob\""},
        {"{\"model_type\": \"distilbert\", \"vocab_size\": 100, \"dim\": 1e300, \"n_layers\": 2, \"n_heads\": 2, "
         "\"hidden_dim\": 32, \"max_position_embeddings\": 64}", "\"dim\" is 1e+300"},
        {"{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 32, \"max_position_embeddings\": 64}", NULL},
    };
    char dir[512];
    snprintf(dir, sizeof dir, "%s/enc", g_dir);
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_text(ft_test_path(dir, "config.json"), cases[i].json);
        ft_encoder_config c;
        int rc = ft_encoder_config_load(&c, dir);
        printf("  encoder case %zu: %s\n", i, rc ? ft_last_error() : "accepted");
        if (!cases[i].want) { assert_int_equal(rc, FT_OK); continue; }
        assert_int_equal(rc, FT_ERR_FORMAT);
        assert_non_null(strstr(ft_last_error(), "config.json"));
        assert_non_null(strstr(ft_last_error(), cases[i].want));
    }
}

/* BERT / DistilBERT / RoBERTa: a tiny checkpoint under a config.json that asks for 10^4 or 10^3 layers, a width of
 * 65536, a vocabulary of 2^24 or an FFN of 2^20 is a clear error naming config.json and the field, before the
 * layout is allocated (it allocated the whole layout first: tens of GB, or an abort under ASan). The real configs
 * still load. */
static void test_encoder_config_weights_mismatch(void **state) {
    (void)state;
    static const struct { const char *fixture, *key; double value; const char *key2; double value2; int rc; const char *want; } cases[] = {
        {"bert_tiny", "num_hidden_layers", 10000, NULL, 0, FT_ERR_FORMAT, "\"num_hidden_layers\" is 10000"},
        {"bert_tiny", "num_hidden_layers", 1000, NULL, 0, FT_ERR_SHAPE, "\"num_hidden_layers\" is 1000 but the weights in"},
        {"bert_tiny", "num_hidden_layers", 1000, "hidden_size", 4096, FT_ERR_SHAPE, "\"num_hidden_layers\" is 1000 but the weights in"},
        {"bert_tiny", "hidden_size", 65536, NULL, 0, FT_ERR_SHAPE, "\"hidden_size\" is 65536 but the word embeddings in"},
        {"distilbert_tiny", "n_layers", 10000, NULL, 0, FT_ERR_FORMAT, "\"n_layers\" is 10000"},
        {"distilbert_tiny", "n_layers", 1000, NULL, 0, FT_ERR_SHAPE, "\"n_layers\" is 1000 but the weights in"},
        {"distilbert_tiny", "vocab_size", 1 << 24, NULL, 0, FT_ERR_SHAPE, "\"vocab_size\" is 16777216 but the word embeddings in"},
        {"roberta_tiny", "num_hidden_layers", 10000, NULL, 0, FT_ERR_FORMAT, "\"num_hidden_layers\" is 10000"},
        {"roberta_tiny", "num_hidden_layers", 1000, NULL, 0, FT_ERR_SHAPE, "\"num_hidden_layers\" is 1000 but the weights in"},
        {"roberta_tiny", "hidden_size", 65536, NULL, 0, FT_ERR_SHAPE, "\"hidden_size\" is 65536 but the word embeddings in"},
        {"roberta_tiny", "intermediate_size", 1 << 20, NULL, 0, FT_ERR_SHAPE, "\"intermediate_size\" 1048576, \"vocab_size\" 100"},
        {"distilbert_tiny", "hidden_dim", 1 << 20, "max_position_embeddings", 1 << 24, FT_ERR_SHAPE, "\"hidden_dim\" 1048576"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char src[256], dir[512], cmd[1200];
        snprintf(src, sizeof src, "tests/fixtures/encoder/%s", cases[i].fixture);
        snprintf(dir, sizeof dir, "%s/enc_mismatch_%zu", g_dir, i);
        assert_int_equal(ft_mkdirs(dir), FT_OK);
        snprintf(cmd, sizeof cmd, "cp %s/model.safetensors %s/", src, dir);
        assert_int_equal(system(cmd), 0);
        char cfg[512];
        snprintf(cfg, sizeof cfg, "%s/config.json", src);
        cJSON *j = read_json(cfg);
        /* the real config loads */
        ft_encoder_model *m = NULL;
        assert_int_equal(ft_encoder_load(&m, src, 0, NULL), FT_OK);
        ft_encoder_close(m);
        cJSON_ReplaceItemInObject(j, cases[i].key, cJSON_CreateNumber(cases[i].value));
        if (cases[i].key2) cJSON_ReplaceItemInObject(j, cases[i].key2, cJSON_CreateNumber(cases[i].value2));
        write_json(ft_test_path(dir, "config.json"), j);
        cJSON_Delete(j);
        long before = peak_rss_mb();
        double t0 = cpu_s();
        m = NULL;
        int rc = ft_encoder_load(&m, dir, 0, NULL);
        printf("  %s %s=%g: %s (%.3f CPU s, peak RSS %ld -> %ld MB)\n", cases[i].fixture, cases[i].key, cases[i].value,
               rc ? ft_last_error() : "accepted", cpu_s() - t0, before, peak_rss_mb());
        ft_encoder_close(m);
        assert_int_equal(rc, cases[i].rc);
        assert_non_null(strstr(ft_last_error(), "config.json"));
        assert_non_null(strstr(ft_last_error(), cases[i].want));
        assert_true(peak_rss_mb() < before + 100);
        /* the same through QLoRA's loader */
        rc = ft_encoder_load_quantized(&m, dir, NULL, NULL, FT_NF4);
        ft_encoder_close(m);
        assert_int_equal(rc, cases[i].rc);
        assert_non_null(strstr(ft_last_error(), cases[i].want));
    }
}

/* adapter_config.json: lora_alpha 1e300 was accepted (scale inf: garbage) */
static void test_adapter_config_bounds(void **state) {
    (void)state;
    if (!ft_fixture_present("lora/llama_gqa_qv/adapter")) return;
    static const struct { const char *key, *raw, *want; } cases[] = {
        {"lora_alpha", "1e300", "\"lora_alpha\" is 1e+300; it must be a finite number in (0, 1000000]"},
        {"lora_alpha", "-16", "\"lora_alpha\""},
        {"r", "1e9", "\"r\" is 1000000000; it must be an integer in [1, 65536]"},
        {"r", "0", "\"r\""},
        {"lora_dropout", "2", "\"lora_dropout\""},
    };
    ft_model *m;
    assert_int_equal(ft_model_load(&m, ft_fixture("decoder/llama_gqa"), NULL), FT_OK);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/adapter", g_dir);
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %s/adapter_model.safetensors %s/", ft_fixture("lora/llama_gqa_qv/adapter"), dir);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *j = read_json(ft_fixture("lora/llama_gqa_qv/adapter/adapter_config.json"));
        cJSON_ReplaceItemInObject(j, cases[i].key, cJSON_Parse(cases[i].raw));
        write_json(ft_test_path(dir, "adapter_config.json"), j);
        cJSON_Delete(j);
        int rc = ft_model_load_adapter(m, dir);
        printf("  %s = %s -> %s\n", cases[i].key, cases[i].raw, rc ? ft_last_error() : "accepted");
        assert_int_equal(rc, FT_ERR_FORMAT);
        assert_non_null(strstr(ft_last_error(), "adapter_config.json"));
        assert_non_null(strstr(ft_last_error(), cases[i].want));
    }
    ft_model_free(m);
}

/* tokenizer.json with one token id of 10^8 allocated 3 GB */
static void test_tokenizer_id_bound(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tok", g_dir);
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    cJSON *j = read_json("models/stories260K/tokenizer.json");
    cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab");
    assert_non_null(vocab);
    cJSON_AddNumberToObject(vocab, "hostile", 1e8);
    write_json(ft_test_path(dir, "tokenizer.json"), j);
    long before = peak_rss_mb();
    ft_tokenizer *tok;
    int rc = ft_tokenizer_load(&tok, dir);
    printf("  token id 10^8: %s (peak RSS %ld -> %ld MB)\n", rc ? ft_last_error() : "loaded", before, peak_rss_mb());
    assert_int_equal(rc, FT_ERR_FORMAT);
    assert_non_null(strstr(ft_last_error(), "token id 100000000 is far beyond the"));
    assert_true(peak_rss_mb() < before + 100);
    /* ids that are no integers at all (undefined behaviour in the old cast) */
    cJSON_ReplaceItemInObject(vocab, "hostile", cJSON_CreateNumber(1e300));
    write_json(ft_test_path(dir, "tokenizer.json"), j);
    assert_int_equal(ft_tokenizer_load(&tok, dir), FT_ERR_FORMAT);
    /* an added token just past the vocabulary is fine (a gap is allowed) */
    cJSON_DeleteItemFromObject(vocab, "hostile");
    cJSON *added = cJSON_GetObjectItem(j, "added_tokens");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", 600);
    cJSON_AddStringToObject(a, "content", "<extra>");
    cJSON_AddBoolToObject(a, "special", 1);
    cJSON_AddItemToArray(added, a);
    write_json(ft_test_path(dir, "tokenizer.json"), j);
    cJSON_Delete(j);
    assert_int_equal(ft_tokenizer_load(&tok, dir), FT_OK);
    assert_int_equal(ft_tokenizer_vocab_size(tok), 601);
    assert_int_equal(ft_tokenizer_token_id(tok, "<extra>"), 600);
    ft_tokenizer_free(tok);
}

/* duplicate-key checks were quadratic: an 80,000-key header took seconds */
static void test_headers_hashed(void **state) {
    (void)state;
    enum { N = 80000 };
    /* safetensors: N metadata keys */
    char path[512];
    snprintf(path, sizeof path, "%s/meta.safetensors", g_dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t cap = (size_t)N * 24 + 64, n = 0;
    char *h = malloc(cap);
    n += (size_t)sprintf(h + n, "{\"__metadata__\": {");
    for (int i = 0; i < N; i++) n += (size_t)sprintf(h + n, "%s\"k%d\": \"v\"", i ? ", " : "", i);
    n += (size_t)sprintf(h + n, "}}");
    while (n % 8) h[n++] = ' ';
    uint64_t hl = n;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, n, f);
    fclose(f);
    double t0 = cpu_s();
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, path), FT_OK);
    double dt = cpu_s() - t0;
    printf("  safetensors header with %d metadata keys (%zu bytes): %.3f CPU s\n", N, n, dt);
    assert_string_equal(ft_st_metadata(st, "k79999"), "v");
    assert_null(ft_st_metadata(st, "k80000"));
    ft_st_close(st);
    assert_true(dt < 2.0);
    /* GGUF v3: N uint32 metadata keys, then the same with one duplicate at the end */
    for (int dup = 0; dup < 2; dup++) {
        snprintf(path, sizeof path, "%s/meta%d.gguf", g_dir, dup);
        f = fopen(path, "wb");
        assert_non_null(f);
        uint32_t v3 = 3, type_u32 = 4, val = 7;
        uint64_t nt = 0, nkv = N;
        fwrite("GGUF", 1, 4, f);
        fwrite(&v3, 4, 1, f);
        fwrite(&nt, 8, 1, f);
        fwrite(&nkv, 8, 1, f);
        for (int i = 0; i < N; i++) {
            char key[32];
            uint64_t kl = (uint64_t)snprintf(key, sizeof key, "k%d", dup && i == N - 1 ? 17 : i);
            fwrite(&kl, 8, 1, f);
            fwrite(key, 1, kl, f);
            fwrite(&type_u32, 4, 1, f);
            fwrite(&val, 4, 1, f);
        }
        fclose(f);
        t0 = cpu_s();
        ft_gguf *g;
        int rc = ft_gguf_open(&g, path);
        dt = cpu_s() - t0;
        printf("  GGUF with %d metadata keys%s: %s, %.3f CPU s\n", N, dup ? " (one duplicate)" : "", rc ? ft_last_error() : "ok", dt);
        assert_true(dt < 2.0);
        if (dup) {
            assert_int_equal(rc, FT_ERR_FORMAT);
            assert_non_null(strstr(ft_last_error(), "duplicate metadata key 'k17'"));
        } else {
            assert_int_equal(rc, FT_OK);
            int64_t x;
            assert_int_equal(ft_gguf_get_int(g, "k12345", &x), FT_OK);
            assert_int_equal(x, 7);
            ft_gguf_close(g);
        }
    }
    free(h);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_limits: blocked (alarm): a FIFO was opened for reading\n";
    if (write(2, msg, sizeof msg - 1) < 0) {}
    _exit(3);
}

/* a FIFO as --data blocked for ever; a directory as config.json was "cannot allocate 9223372036854775807 bytes" */
static void test_not_regular_files(void **state) {
    (void)state;
    char fifo[512], d[512];
    snprintf(fifo, sizeof fifo, "%s/fifo.jsonl", g_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    char *text;
    int rc = ft_file_read_all(fifo, &text, NULL);
    printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_IO);
    assert_non_null(strstr(ft_last_error(), "is a FIFO (named pipe); expected a regular file"));
    ft_mmap mm;
    assert_int_equal(ft_file_map(&mm, fifo), FT_ERR_IO);
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, "models/stories260K"), FT_OK);
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds;
    rc = ft_dataset_load(&ds, fifo, tok, &o);
    printf("  dataset: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_IO);
    assert_non_null(strstr(ft_last_error(), "FIFO"));
    /* the command line too */
    char *out = NULL;
    int st = ft_test_finetune(&out, "train --data %s --out %s/run_fifo --dry-run", fifo, g_dir);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(out, "FIFO"));
    free(out);
    alarm(0);
    ft_tokenizer_free(tok);
    /* a directory where config.json should be */
    snprintf(d, sizeof d, "%s/dirmodel/config.json", g_dir);
    assert_int_equal(ft_mkdirs(d), FT_OK);
    snprintf(d, sizeof d, "%s/dirmodel", g_dir);
    ft_model_config c;
    rc = ft_model_config_load(&c, d);
    printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_IO);
    assert_non_null(strstr(ft_last_error(), "config.json: is a directory; expected a regular file"));
    assert_null(strstr(ft_last_error(), "allocate"));
    /* /dev/zero (endless) is refused too */
    assert_int_equal(ft_file_read_all("/dev/zero", &text, NULL), FT_ERR_IO);
    assert_non_null(strstr(ft_last_error(), "a device"));
}

/* a 50 MB JSONL string was tokenized whole before truncation to seq_len tokens */
static void test_long_record_truncated_early(void **state) {
    (void)state;
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, "models/stories260K"), FT_OK);
    static const char *words[] = {"the", "little", "dog", "ran", "to", "a", "big", "tree", "and", "saw", "bird", "happy"};
    for (int big = 0; big < 2; big++) {
        size_t target = big ? (size_t)50 << 20 : 300000;
        char *text = malloc(target + 64);
        size_t n = 0;
        uint32_t x = 12345;
        while (n < target) {
            x = x * 1103515245u + 12345u;
            n += (size_t)sprintf(text + n, "%s%s", n ? " " : "", words[(x >> 16) % 12]);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/long%d.jsonl", g_dir, big);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fprintf(f, "{\"prompt\": \"Tell a story.\", \"completion\": \" %s\"}\n", text);
        fprintf(f, "{\"prompt\": \"Short.\", \"completion\": \" A dog.\"}\n");
        fclose(f);
        ft_data_options o = ft_data_default_options();
        o.seq_len = 64;
        o.train_on = FT_TRAIN_ON_ALL;
        ft_dataset *ds;
        double t0 = cpu_s();
        assert_int_equal(ft_dataset_load(&ds, path, tok, &o), FT_OK);
        double dt = cpu_s() - t0;
        const int *ids;
        const uint8_t *learned;
        int len;
        assert_int_equal(ft_dataset_size(ds), 2);
        assert_int_equal(ft_dataset_example(ds, 0, &ids, &learned, &len), FT_OK);
        assert_int_equal(len, 64);
        assert_true(ft_dataset_stats(ds)->truncated >= 1);
        printf("  a %zu-byte completion, seq_len 64: loaded in %.3f CPU s\n", n, dt);
        if (!big) {
            /* the ids kept are those of the whole text truncated: compare with the dataset of the record
             * rendered in full (truncation 'none' keeps every token) */
            ft_data_options full = o;
            full.truncate = FT_TRUNC_NONE;
            ft_dataset *dsf;
            assert_int_equal(ft_dataset_load(&dsf, path, tok, &full), FT_OK);
            const int *fids;
            int flen;
            assert_int_equal(ft_dataset_example(dsf, 0, &fids, &learned, &flen), FT_OK);
            assert_true(flen > 1000);
            assert_memory_equal(ids, fids, 64 * sizeof *ids);
            /* and left truncation keeps the same last tokens (the BOS stays first) */
            ft_data_options left = o;
            left.truncate = FT_TRUNC_LEFT;
            ft_dataset *dsl;
            assert_int_equal(ft_dataset_load(&dsl, path, tok, &left), FT_OK);
            const int *lids;
            int llen;
            assert_int_equal(ft_dataset_example(dsl, 0, &lids, &learned, &llen), FT_OK);
            assert_int_equal(llen, 64);
            assert_memory_equal(lids + 1, fids + flen - 63, 63 * sizeof *ids);
            ft_dataset_free(dsl);
            ft_dataset_free(dsf);   /* fids points into it: freed only after the left-truncation check */
        } else {
            /* tokenized whole, the 50 MB take minutes (5 MB alone: 20 s on the loaded 2-core machine); cut early,
             * 0.4 s plain. ASan makes reading and parsing 50 MB several times slower (5.1 s wall measured under
             * load). CPU time: a load of 18 does not count, the whole tokenization (minutes of CPU) still fails */
#ifdef __SANITIZE_ADDRESS__
            const double limit = 30.0;
#else
            const double limit = 5.0;
#endif
            assert_true(dt < limit);
        }
        ft_dataset_free(ds);
        free(text);
    }
    ft_tokenizer_free(tok);
}

static int setup(void **state) {
    (void)state;
    ft_log_set_level(FT_LOG_ERROR);
    return ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_limits");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_config_bounds),
        cmocka_unit_test(test_config_weights_mismatch),
        cmocka_unit_test(test_encoder_config_bounds),
        cmocka_unit_test(test_encoder_config_weights_mismatch),
        cmocka_unit_test(test_adapter_config_bounds),
        cmocka_unit_test(test_tokenizer_id_bound),
        cmocka_unit_test(test_headers_hashed),
        cmocka_unit_test(test_not_regular_files),
        cmocka_unit_test(test_long_record_truncated_early),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
