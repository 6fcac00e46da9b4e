/* test_core.c — the internal helpers of src/core/: the string builder (strbuf.h), the JSON getters
 * (json_util.h) and the 64-bit mixer (hash.h).
 *
 * The builder is checked for appends of bytes / printf / JSON strings (against the escapes Python's
 * json.dumps writes, with and without ensure_ascii), growth past many doublings, take / free and the
 * sticky error after a failed reservation. The mixer is checked against splitmix64's published
 * first outputs for seed 0 and against ft_rng_seed's state. */
#include "testutil.h"
#include "core/hash.h"
#include "core/json_util.h"
#include "core/strbuf.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_sb_append(void **state) {
    (void)state;
    ft__sb b = {0};
    assert_null(b.p);
    assert_int_equal(ft__sb_put(&b, "", 0), FT_OK);       /* an empty append gives a valid "" */
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    assert_int_equal(ft__sb_puts(&b, "ab"), FT_OK);
    assert_int_equal(ft__sb_putc(&b, 'c'), FT_OK);
    assert_int_equal(ft__sb_put(&b, "dexyz", 2), FT_OK);
    assert_int_equal(ft__sb_printf(&b, "|%d|%s|%.2f", 42, "x", 1.5), FT_OK);
    assert_string_equal(b.p, "abcde|42|x|1.50");
    assert_int_equal(b.n, strlen("abcde|42|x|1.50"));
    /* a printf longer than any first guess, and growth over many doublings */
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(ft__sb_printf(&b, "<%s>", big), FT_OK);
    for (int i = 0; i < 10000; i++) ft__sb_printf(&b, "%d,", i % 10);
    assert_int_equal(b.err, FT_OK);
    size_t want = 15 + 3001 + 20000;
    assert_int_equal(b.n, want);
    assert_int_equal(strlen(b.p), want);
    assert_true(b.cap > b.n);
    assert_int_equal(b.p[15], '<');
    assert_int_equal(b.p[15 + 3000], '>');
    assert_memory_equal(b.p + want - 4, "8,9,", 4);
    printf("  builder: %zu bytes, capacity %zu\n", b.n, b.cap);
    size_t len = 0;
    char *s = ft__sb_take(&b, &len);
    assert_non_null(s);
    assert_int_equal(len, want);
    assert_null(b.p);
    assert_int_equal(b.n, 0);
    free(s);
    /* take of an untouched builder gives "" */
    s = ft__sb_take(&b, &len);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    ft__sb_free(&b);
}

static void test_sb_sticky_error(void **state) {
    (void)state;
    ft__sb b = {0};
    ft__sb_puts(&b, "kept");
    assert_int_equal(ft__sb_reserve(&b, SIZE_MAX - 2), FT_ERR_NOMEM);   /* cannot be met */
    assert_int_equal(b.err, FT_ERR_NOMEM);
    assert_int_equal(ft__sb_puts(&b, "more"), FT_ERR_NOMEM);          /* later appends do nothing */
    assert_int_equal(ft__sb_printf(&b, "%d", 1), FT_ERR_NOMEM);
    assert_int_equal(ft__sb_put_json(&b, "x", 1, 0), FT_ERR_NOMEM);
    assert_string_equal(b.p, "kept");
    size_t len = 7;
    assert_null(ft__sb_take(&b, &len));                                /* the text is freed */
    assert_int_equal(len, 0);
    assert_null(b.p);
    assert_int_equal(b.err, FT_OK);                                    /* reusable */
    ft__sb_puts(&b, "again");
    assert_string_equal(b.p, "again");
    ft__sb_free(&b);
    printf("  sticky error: appends after FT_ERR_NOMEM are ignored, take returns NULL\n");
}

static void test_sb_json(void **state) {
    (void)state;
    static const struct { const char *in; size_t n; int flags; const char *want; } cases[] = {
        {"plain", 5, 0, "\"plain\""},
        {"q\"b\\s/", 6, 0, "\"q\\\"b\\\\s/\""},
        {"\n\r\t\b\f", 5, 0, "\"\\n\\r\\t\\b\\f\""},
        {"\x01\x1f\x7f", 3, 0, "\"\\u0001\\u001f\x7f\""},
        {"a\0b", 3, 0, "\"a\\u0000b\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 0, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, FT__SB_JSON_ASCII, "\"caf\\u00e9 \\u20ac \\ud83d\\ude00\""},
        {"\x7f", 1, FT__SB_JSON_ASCII, "\"\\u007f\""},
        {"\xff" "a", 2, FT__SB_JSON_ASCII, "\"\\u00ffa\""},                  /* invalid byte: its value */
        {"", 0, 0, "\"\""},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        ft__sb b = {0};
        assert_int_equal(ft__sb_put_json(&b, cases[i].in, cases[i].n, cases[i].flags), FT_OK);
        if (strcmp(b.p, cases[i].want)) printf("  case %d: got %s want %s\n", i, b.p, cases[i].want);
        assert_string_equal(b.p, cases[i].want);
        ft__sb_free(&b);
    }
    printf("  JSON strings: %d cases as json.dumps writes them\n", n);
}

static void test_json_getters(void **state) {
    (void)state;
    cJSON *o = cJSON_Parse("{\"i\": 7, \"f\": 2.5, \"s\": \"txt\", \"b\": true, \"z\": null, \"big\": 1e12,"
                           " \"tok\": {\"content\": \"<s>\"}}");
    assert_non_null(o);
    assert_int_equal(ft__json_int(o, "i", -1), 7);
    assert_int_equal(ft__json_int(o, "s", -1), -1);
    assert_int_equal(ft__json_int(NULL, "i", -1), -1);
    assert_true(ft__json_num(o, "f", 0) == 2.5);
    assert_true(isnan(ft__json_num(o, "missing", NAN)));
    assert_string_equal(ft__json_str(o, "s", NULL), "txt");
    assert_null(ft__json_str(o, "i", NULL));
    assert_int_equal(ft__json_bool(o, "b", 0), 1);
    assert_int_equal(ft__json_bool(o, "i", 5), 5);
    assert_string_equal(ft__json_token_text(cJSON_GetObjectItem(o, "tok")), "<s>");
    assert_string_equal(ft__json_token_text(cJSON_GetObjectItem(o, "s")), "txt");
    assert_null(ft__json_token_text(cJSON_GetObjectItem(o, "i")));

    int iv; double dv; const char *sv; int bv;
    assert_int_equal(ft__json_get_int(o, "i", 0, &iv, "cfg.json"), FT_OK);
    assert_int_equal(iv, 7);
    assert_int_equal(ft__json_get_int(o, "z", 3, &iv, "cfg.json"), FT_OK);   /* null: the default */
    assert_int_equal(iv, 3);
    assert_int_equal(ft__json_get_int(o, "nope", 4, &iv, "cfg.json"), FT_OK);
    assert_int_equal(iv, 4);
    assert_int_equal(ft__json_get_int(o, "f", 0, &iv, "cfg.json"), FT_ERR_FORMAT);
    printf("  %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "\"f\""));
    assert_int_equal(ft__json_get_int(o, "big", 0, &iv, "cfg.json"), FT_ERR_FORMAT);
    assert_int_equal(ft__json_get_int(o, "s", 9, &iv, "cfg.json"), FT_ERR_FORMAT);
    printf("  %s\n", ft_last_error());
    assert_string_equal(ft_last_error(), "cfg.json: \"s\" must be an integer, got a string");
    assert_int_equal(iv, 9);
    assert_int_equal(ft__json_get_num(o, "f", 0, &dv, "cfg.json"), FT_OK);
    assert_true(dv == 2.5);
    assert_int_equal(ft__json_get_num(o, "b", 0, &dv, "cfg.json"), FT_ERR_FORMAT);
    assert_string_equal(ft_last_error(), "cfg.json: \"b\" must be a number, got a boolean");
    assert_int_equal(ft__json_get_str(o, "s", NULL, &sv, "cfg.json"), FT_OK);
    assert_string_equal(sv, "txt");
    assert_int_equal(ft__json_get_str(o, "tok", "d", &sv, "cfg.json"), FT_ERR_FORMAT);
    assert_string_equal(ft_last_error(), "cfg.json: \"tok\" must be a string, got an object");
    assert_string_equal(sv, "d");
    assert_int_equal(ft__json_get_bool(o, "b", 0, &bv, "cfg.json"), FT_OK);
    assert_int_equal(bv, 1);
    assert_int_equal(ft__json_get_bool(o, "i", 0, &bv, "cfg.json"), FT_ERR_FORMAT);
    assert_string_equal(ft_last_error(), "cfg.json: \"i\" must be true or false, got a number");
    cJSON_Delete(o);
}

static void test_mix64(void **state) {
    (void)state;
    /* splitmix64 from state 0: the first three outputs (Vigna's reference splitmix64.c) */
    static const uint64_t want[3] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull, 0x06c45d188009454full};
    uint64_t x = 0;
    for (int i = 0; i < 3; i++) {
        assert_true(ft__splitmix64(x) == want[i]);
        x += FT__GOLDEN_GAMMA;
    }
    assert_true(ft__mix64(FT__GOLDEN_GAMMA) == want[0]);
    assert_true(ft__mix64(0) == 0);
    /* ft_rng_seed fills its state with the first four splitmix64 outputs of the seed */
    ft_rng r;
    ft_rng_seed(&r, 0);
    for (int i = 0; i < 3; i++) assert_true(r.s[i] == want[i]);
    ft_rng_seed(&r, 1234);
    for (int i = 0; i < 4; i++) assert_true(r.s[i] == ft__splitmix64(1234 + (uint64_t)i * FT__GOLDEN_GAMMA));
    printf("  splitmix64(0) = %016llx %016llx %016llx, as published\n", (unsigned long long)want[0],
           (unsigned long long)want[1], (unsigned long long)want[2]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sb_append),
        cmocka_unit_test(test_sb_sticky_error),
        cmocka_unit_test(test_sb_json),
        cmocka_unit_test(test_json_getters),
        cmocka_unit_test(test_mix64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
