/* test_template_budget.c — the chat-template engine as a sandbox (issue 14): hostile templates end in a clean
 * error under the render budget (operations, output, memory, recursion), never a crash, a hang or memory
 * exhaustion. Each case is the exact template an attacker could put in a model's tokenizer_config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "finetune/chat.h"
#include "finetune/status.h"
#include "util/testutil.h"

/* time bounds on CPU time, not the wall clock: a runaway template fails them, a loaded machine does not */
static double now_s(void) { return ft_test_cpu_seconds(); }

/* parses and renders src over a two-message conversation; *out (malloc'd or NULL) and the status */
static int render(const char *src, const ft_chat_budget *budget, char **out) {
    *out = NULL;
    ft_chat_template *t;
    int rc = ft_chat_template_from_string(&t, src, "<s>", "</s>");
    if (rc) return rc;
    if (budget) ft_chat_template_set_budget(t, budget);
    ft_chat_msg msgs[2] = {{"user", "Hi"}, {"assistant", "Hello!"}};
    size_t len;
    rc = ft_chat_render(t, msgs, 2, 0, out, &len);
    ft_chat_template_free(t);
    return rc;
}

/* src must stop with FT_ERR_RANGE "template exceeds its budget (<what>..." within a few CPU seconds */
static void expect_budget(const char *src, const char *what) {
    char *out;
    double t0 = now_s();
    int rc = render(src, NULL, &out);
    double dt = now_s() - t0;
    printf("  %-90.90s -> %s (%.2f CPU s)\n", src, rc ? ft_last_error() : "rendered", dt);
    assert_int_equal(rc, FT_ERR_RANGE);
    assert_null(out);
    assert_non_null(strstr(ft_last_error(), "template exceeds its budget"));
    assert_non_null(strstr(ft_last_error(), what));
    assert_true(dt < 20.0);
}

static void expect_text(const char *src, const char *want) {
    char *out;
    int rc = render(src, NULL, &out);
    printf("  %-60s -> %s\n", src, rc ? ft_last_error() : out);
    assert_int_equal(rc, FT_OK);
    assert_string_equal(out, want);
    free(out);
}

/* the crash of the issue: a slice inside a tuple subscript (NULL node in the slice path) */
static void test_slice_in_tuple_subscript(void **state) {
    (void)state;
    char *out;
    int rc = render("{{ messages[1:,0] }}", NULL, &out);
    printf("  {{ messages[1:,0] }} -> %s\n", ft_last_error());
    assert_true(rc == FT_ERR_UNSUPPORTED || rc == FT_ERR_FORMAT || rc == FT_ERR_INVALID);
    assert_null(out);
    rc = render("{{ messages[:,:] }}{{ messages[::,1:2:3] }}", NULL, &out);
    assert_int_not_equal(rc, FT_OK);
}

/* integer power by squaring: 1 ** (2^63 - 1) looped for ever before */
static void test_integer_power(void **state) {
    (void)state;
    double t0 = now_s();
    expect_text("{{ 1 ** 9223372036854775807 }}", "1");
    expect_text("{{ (-1) ** 9223372036854775807 }}|{{ (-1) ** 9223372036854775806 }}", "-1|1");
    expect_text("{{ 0 ** 9223372036854775807 }}|{{ 0 ** 0 }}|{{ 7 ** 0 }}", "0|1|1");
    expect_text("{{ 2 ** 62 }}|{{ (-2) ** 63 }}|{{ 3 ** 39 }}|{{ (-3) ** 5 }}",
                "4611686018427387904|-9223372036854775808|4052555153018976267|-243");
    assert_true(now_s() - t0 < 1.0);
    char *out;
    assert_int_equal(render("{{ 2 ** 63 }}", NULL, &out), FT_ERR_RANGE);
    assert_non_null(strstr(ft_last_error(), "integer overflow"));
    assert_int_equal(render("{{ 2 ** 9223372036854775807 }}", NULL, &out), FT_ERR_RANGE);
    assert_int_equal(render("{{ 3 ** 40 }}", NULL, &out), FT_ERR_RANGE);
}

/* loops, growth and recursion stop at the budget */
static void test_budget(void **state) {
    (void)state;
    /* nested loops: 10^10 iterations */
    expect_budget("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "operations");
    /* loops over a filter's output, unique's comparisons, membership */
    expect_budget("{% for a in range(100000) %}{{ range(100000)|list|length }}{% endfor %}", "");
    expect_budget("{{ range(100000)|unique|list|length }}", "operations");
    expect_budget("{% set l = range(100000)|list %}{% for a in l %}{% if -1 in l %}{% endif %}{% endfor %}", "operations");
    /* string doubling: 2^64 bytes */
    expect_budget("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
                  "bytes of values");
    /* output growth */
    expect_budget("{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}", "a text longer than");
    /* one text built from many references to a big one */
    expect_budget("{{ (['x' * 1000000] * 1000000)|tojson|length }}", "a text longer than");
    expect_budget("{{ (['x' * 1000000] * 1000000)|join(',')|length }}", "a text longer than");
    expect_budget("{% set s = 'x' * 1000 %}{{ s|replace('x', 'y' * 100000)|length }}", "a text longer than");
    /* searches over long texts count their work (one rsplit comparison per position, replace hits) */
    expect_budget("{% set s = 'a' * 20000000 %}{{ s|replace('a', '')|length }}", "operations");
    expect_budget("{% set s = 'a' * 4000000 %}{{ s.rsplit('a' * 100000 + 'b')|length }}", "operations");
    expect_budget("{% set s = 'ab' * 30000000 %}{% for i in range(100) %}{{ s.count('ab') }}{% endfor %}", "operations");
    /* a namespace that holds itself, printed (stack overflow before) */
    expect_budget("{% set ns = namespace(n=0) %}{% set ns.n = ns %}{{ ns }}", "nested deeper");
    expect_budget("{% set ns = namespace(n=0) %}{% set ns.n = [ns] %}{{ ns|string|length }}", "nested deeper");
    /* a value one level deeper per iteration: printed, serialised */
    expect_budget("{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
                  "nested deeper");
    expect_budget("{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}",
                  "nested deeper");
    /* ... and compared: unequal beyond the nesting limit, no recursion to the end */
    expect_text("{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                "{{ ns.x == ns.x }}{{ [1] == [1] }}", "FalseTrue");
    char *out;
    assert_int_not_equal(render("{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                                "{{ ns.x < ns.x }}", NULL, &out), FT_OK);
    /* recursion through macros */
    expect_budget("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macro calls nested deeper than 64");
}

/* a budget of one's own: smaller limits apply, the defaults fill zero fields */
static void test_custom_budget(void **state) {
    (void)state;
    ft_chat_budget b = ft_chat_default_budget();
    assert_true(b.max_ops >= 1000000 && b.max_output >= (1u << 20) && b.max_memory >= (1u << 20) && b.max_depth >= 16);
    char *out;
    const char *loop = "{% for i in range(1000) %}{{ i }}{% endfor %}";
    assert_int_equal(render(loop, NULL, &out), FT_OK);
    free(out);
    b.max_ops = 500;
    assert_int_equal(render(loop, &b, &out), FT_ERR_RANGE);
    assert_non_null(strstr(ft_last_error(), "more than 500 operations"));
    b = (ft_chat_budget){0};
    b.max_output = 100;
    assert_int_equal(render(loop, &b, &out), FT_ERR_RANGE);
    b.max_output = 10000;
    assert_int_equal(render(loop, &b, &out), FT_OK);
    free(out);
    b = (ft_chat_budget){0};
    b.max_memory = 4096;
    assert_int_equal(render("{{ range(1000)|list|length }}", &b, &out), FT_ERR_RANGE);
    assert_non_null(strstr(ft_last_error(), "bytes of values"));
    b = (ft_chat_budget){0};
    b.max_depth = 3;
    assert_int_equal(render("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% else %}x{% endif %}{% endmacro %}{{ f(2) }}", &b, &out), FT_OK);
    free(out);
    assert_int_equal(render("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% else %}x{% endif %}{% endmacro %}{{ f(3) }}", &b, &out), FT_ERR_RANGE);
}

/* real templates stay far inside the defaults: every built-in over a long conversation */
static void test_real_templates_fit(void **state) {
    (void)state;
    enum { N = 400 };
    ft_chat_msg msgs[N];
    for (int i = 0; i < N; i++) {
        msgs[i].role = i == 0 ? "system" : (i % 2 ? "user" : "assistant");
        msgs[i].content = "A message of moderate length, as people write them in a chat.";
    }
    for (int k = 0; ft_chat_builtin_name(k); k++) {
        ft_chat_template *t;
        assert_int_equal(ft_chat_template_builtin(&t, ft_chat_builtin_name(k), NULL, NULL), FT_OK);
        char *out;
        size_t len;
        int rc = ft_chat_render(t, msgs, N, 1, &out, &len);
        if (rc) printf("  %s: %s\n", ft_chat_builtin_name(k), ft_last_error());
        /* a template may refuse the conversation (alternation, roles), but never for its budget */
        assert_true(rc == FT_OK || rc == FT_ERR_INVALID);
        if (rc == FT_OK) free(out);
        ft_chat_template_free(t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice_in_tuple_subscript),
        cmocka_unit_test(test_integer_power),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_custom_budget),
        cmocka_unit_test(test_real_templates_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
