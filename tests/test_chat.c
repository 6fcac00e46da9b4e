/* test_chat.c — chat templates against transformers' apply_chat_template(tokenize=False).
 * Fixtures: tests/parity/make_chat_fixtures.py writes, per template, tokenizer_config.json and cases.json
 * (conversations, expected text or TemplateError message, assistant spans); features/cases.json holds small
 * templates that exercise the interpreter. Every render must be byte-identical. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "finetune/chat.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "util/testutil.h"

static cJSON *load_json(const char *rel) {
    char *text;
    size_t n;
    if (ft_file_read_all(ft_fixture(rel), &text, &n) < 0) {
        printf("cannot read %s: %s\n", ft_fixture(rel), ft_last_error());
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    return j;
}

static const char *jstr_(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* messages array -> ft_chat_msg[] (pointers into the JSON) */
static ft_chat_msg *to_msgs(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    ft_chat_msg *m = calloc((size_t)(*n ? *n : 1), sizeof *m);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        m[i].role = jstr_(e, "role");
        m[i].content = jstr_(e, "content");
        i++;
    }
    return m;
}

static void show_diff(const char *what, const char *got, size_t gn, const char *exp, size_t en) {
    size_t k = 0;
    while (k < gn && k < en && got[k] == exp[k]) k++;
    size_t from = k > 40 ? k - 40 : 0;
    printf("MISMATCH %s at byte %zu (got %zu bytes, expected %zu)\n  got: [%.*s]\n  exp: [%.*s]\n", what, k, gn, en,
           (int)((gn - from) > 100 ? 100 : gn - from), got + from, (int)((en - from) > 100 ? 100 : en - from), exp + from);
}

static void set_vars(ft_chat_template *t, const cJSON *vars) {
    const cJSON *v;
    cJSON_ArrayForEach(v, vars) {
        char *js = cJSON_PrintUnformatted(v);
        assert_int_equal(ft_chat_template_set_json(t, v->string, js), FT_OK);
        free(js);
    }
}

typedef struct tally { int cases, identical, errors, spans, span_errors; } tally;

/* one case: render (and spans) with t, compare with the fixture. The messages are the case's
 * "conversation" (a name in the file's "conversations") or the file's "messages". */
static int run_case(ft_chat_template *t, const char *set, const cJSON *file, const cJSON *c, tally *ty) {
    const char *cname = jstr_(c, "name"), *conv = jstr_(c, "conversation");
    int n, agp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
    const cJSON *marr = conv ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(file, "conversations"), conv)
                             : cJSON_GetObjectItemCaseSensitive(file, "messages");
    assert_non_null(marr);
    ft_chat_msg *msgs = to_msgs(marr, &n);
    const char *exp = jstr_(c, "expected"), *err = jstr_(c, "error");
    char *out = NULL;
    size_t len = 0;
    int ok = 1;
    ty->cases++;
    int rc = ft_chat_render(t, msgs, n, agp, &out, &len);
    if (err) {
        if (rc != FT_ERR_INVALID || (err[0] && !strstr(ft_last_error(), err))) {
            printf("%s %s: expected error containing '%s', got rc=%d (%s)\n", set, cname, err, rc, rc ? ft_last_error() : out);
            ok = 0;
        } else {
            ty->errors++;
            ty->identical++;
        }
        free(out);
        free(msgs);
        return ok;
    }
    if (rc != FT_OK) {
        printf("%s %s: render failed: %s\n", set, cname, ft_last_error());
        free(msgs);
        return 0;
    }
    size_t en = strlen(exp);
    if (len != en || memcmp(out, exp, en) != 0) {
        char what[256];
        snprintf(what, sizeof what, "%s %s", set, cname);
        show_diff(what, out, len, exp, en);
        ok = 0;
    } else {
        ty->identical++;
    }
    free(out);
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(c, "spans");
    if (spans || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "spans_error"))) {
        ft_span *sp = NULL;
        int nsp = 0;
        rc = ft_chat_render_spans(t, msgs, n, agp, &out, &len, &sp, &nsp);
        if (!spans) {
            if (rc != FT_ERR_UNSUPPORTED || !strstr(ft_last_error(), "prefix")) {
                printf("%s %s: spans should fail (template is not prefix-consistent), rc=%d\n", set, cname, rc);
                ok = 0;
            } else {
                ty->span_errors++;
            }
        } else if (rc != FT_OK) {
            printf("%s %s: render_spans failed: %s\n", set, cname, ft_last_error());
            ok = 0;
        } else {
            int ns = cJSON_GetArraySize(spans), good = ns == nsp && len == en && memcmp(out, exp, en) == 0;
            for (int i = 0; good && i < ns; i++) {
                const cJSON *s = cJSON_GetArrayItem(spans, i);
                good = sp[i].start == (size_t)cJSON_GetArrayItem(s, 0)->valueint &&
                       sp[i].end == (size_t)cJSON_GetArrayItem(s, 1)->valueint &&
                       sp[i].message == cJSON_GetArrayItem(s, 2)->valueint;
            }
            if (!good) {
                printf("%s %s: spans differ (got %d, expected %d)\n", set, cname, nsp, ns);
                for (int i = 0; i < nsp; i++) printf("  got [%zu,%zu) msg %d: [%.*s]\n", sp[i].start, sp[i].end, sp[i].message,
                                                     (int)(sp[i].end - sp[i].start), out + sp[i].start);
                ok = 0;
            } else {
                ty->spans++;
            }
        }
        free(out);
        free(sp);
    }
    free(msgs);
    return ok;
}

static void test_template_parity(void **state) {
    (void)state;
    if (!ft_fixture_present("chat/index.json")) return;
    cJSON *index = load_json("chat/index.json");
    assert_non_null(index);
    const cJSON *name;
    tally all = {0};
    int failures = 0, ntemplates = 0;
    cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(index, "templates")) {
        char rel[512];
        snprintf(rel, sizeof rel, "chat/%s/cases.json", name->valuestring);
        cJSON *cases = load_json(rel);
        snprintf(rel, sizeof rel, "chat/%s/tokenizer_config.json", name->valuestring);
        cJSON *cfg = load_json(rel);
        assert_non_null(cases);
        assert_non_null(cfg);
        ft_chat_template *t = NULL;
        const char *builtin = jstr_(cases, "builtin");
        if (builtin) {
            /* the C string must equal the one the fixtures were rendered from */
            const char *src = ft_chat_builtin_source(builtin);
            assert_non_null(src);
            if (strcmp(src, jstr_(cfg, "chat_template")) != 0) {
                show_diff(builtin, src, strlen(src), jstr_(cfg, "chat_template"), strlen(jstr_(cfg, "chat_template")));
                failures++;
            }
            assert_int_equal(ft_chat_template_builtin(&t, builtin, NULL, NULL), FT_OK);
        } else {
            snprintf(rel, sizeof rel, "chat/%s", name->valuestring);
            if (ft_chat_template_load(&t, ft_fixture(rel)) != FT_OK) {
                printf("load %s: %s\n", rel, ft_last_error());
                fail();
            }
        }
        tally ty = {0};
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cases, "cases")) {
            ft_chat_template *tv = t;
            const cJSON *vars = cJSON_GetObjectItemCaseSensitive(c, "vars");
            if (vars && cJSON_GetArraySize(vars) > 0) { /* a fresh template so variables do not leak */
                assert_int_equal(ft_chat_template_from_string(&tv, ft_chat_template_source(t), ft_chat_template_bos(t),
                                                              ft_chat_template_eos(t)), FT_OK);
                set_vars(tv, vars);
            }
            if (!run_case(tv, name->valuestring, cases, c, &ty)) failures++;
            if (tv != t) ft_chat_template_free(tv);
        }
        printf("chat parity: %-28s %2d cases, %2d byte-identical (%d expected template errors), %2d span sets equal, "
               "%d non-prefix templates refused\n", name->valuestring, ty.cases, ty.identical, ty.errors, ty.spans,
               ty.span_errors);
        all.cases += ty.cases;
        all.identical += ty.identical;
        all.errors += ty.errors;
        all.spans += ty.spans;
        all.span_errors += ty.span_errors;
        ntemplates++;
        ft_chat_template_free(t);
        cJSON_Delete(cases);
        cJSON_Delete(cfg);
    }
    printf("chat parity: %d templates, %d cases compared, %d identical, %d span sets, %d failures (transformers %s)\n",
           ntemplates, all.cases, all.identical, all.spans, failures, jstr_(index, "transformers"));
    cJSON_Delete(index);
    assert_int_equal(failures, 0);
    assert_true(all.cases >= 400);
}

/* templates carried by the cases themselves: features/ (hand-written) and random/ (seeded random) */
static void run_inline_set(const char *set) {
    char rel[256];
    snprintf(rel, sizeof rel, "chat/%s/cases.json", set);
    if (!ft_fixture_present(rel)) return;
    cJSON *f = load_json(rel);
    assert_non_null(f);
    tally ty = {0};
    int failures = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(f, "cases")) {
        ft_chat_template *t;
        int rc = ft_chat_template_from_string(&t, jstr_(c, "template"), jstr_(f, "bos"), jstr_(f, "eos"));
        if (rc) {
            printf("features %s: parse failed: %s\n", jstr_(c, "name"), ft_last_error());
            failures++;
            continue;
        }
        set_vars(t, cJSON_GetObjectItemCaseSensitive(c, "vars"));
        if (!run_case(t, set, f, c, &ty)) failures++;
        else if (jstr_(c, "py_error")) printf("  %s %s: error as in jinja2 (%s) -> %s\n", set, jstr_(c, "name"), jstr_(c, "py_error"), ft_last_error());
        ft_chat_template_free(t);
    }
    printf("chat %s: %d templates, %d byte-identical (%d expected errors), %d span sets equal\n", set, ty.cases,
           ty.identical, ty.errors, ty.spans);
    cJSON_Delete(f);
    assert_int_equal(failures, 0);
}

static void test_feature_parity(void **state) {
    (void)state;
    run_inline_set("features");
}

static void test_random_parity(void **state) {
    (void)state;
    run_inline_set("random");
}

static void test_loader(void **state) {
    (void)state;
    ft_chat_template *t;
    if (!ft_fixture_present("chat/loader-jinja-file")) return;
    assert_int_equal(ft_chat_template_load(&t, ft_fixture("chat/loader-jinja-file")), FT_OK);
    assert_string_equal(ft_chat_template_source(t), ft_chat_builtin_source("chatml"));
    assert_null(ft_chat_template_bos(t));
    assert_string_equal(ft_chat_template_eos(t), "<|im_end|>");
    ft_chat_template_free(t);

    assert_int_equal(ft_chat_template_load(&t, ft_fixture("chat/loader-special-tokens-map")), FT_OK);
    assert_string_equal(ft_chat_template_bos(t), "<s>");
    assert_string_equal(ft_chat_template_eos(t), "</s>");
    ft_chat_template_free(t);

    assert_int_equal(ft_chat_template_load(&t, ft_fixture("chat/llama-2-7b-chat")), FT_OK); /* {"content": ...} tokens */
    assert_string_equal(ft_chat_template_bos(t), "<s>");
    ft_chat_template_free(t);

    assert_int_equal(ft_chat_template_load(&t, ft_fixture("chat/loader-no-template")), FT_ERR_NOT_FOUND);
    printf("loader: no template -> %s\n", ft_last_error());
    assert_int_equal(ft_chat_template_load(&t, ft_fixture("chat/does-not-exist")), FT_ERR_NOT_FOUND);
    assert_null(t);
    assert_int_equal(ft_chat_template_builtin(&t, "nope", NULL, NULL), FT_ERR_NOT_FOUND);
    for (int i = 0; ft_chat_builtin_name(i); i++) {
        assert_int_equal(ft_chat_template_builtin(&t, ft_chat_builtin_name(i), NULL, NULL), FT_OK);
        ft_chat_template_free(t);
    }
}

/* malformed templates: the status and the position in the message */
static void test_syntax_errors(void **state) {
    (void)state;
    static const struct { const char *src; int status; const char *where; } cases[] = {
        {"{% if x %}abc", FT_ERR_FORMAT, "line 1, column 14"},
        {"hello\n{{ x | nosuchfilter }}", FT_ERR_UNSUPPORTED, "line 2, column 8"},
        {"ok\n  {{ 'abc }}", FT_ERR_FORMAT, "line 2, column 6"},
        {"{% for %}{% endfor %}", FT_ERR_FORMAT, "line 1, column 8"},
        {"{% include 'x.j2' %}", FT_ERR_UNSUPPORTED, "line 1, column 4"},
        {"{{ x ) }}", FT_ERR_FORMAT, "line 1, column 6"},
        {"a\nb\n{# unclosed", FT_ERR_FORMAT, "line 3, column 1"},
        {"{% endif %}", FT_ERR_FORMAT, "line 1, column 4"},
        {"{% break %}", FT_ERR_FORMAT, "line 1, column 4"},
        {"{{ x is nosuchtest }}", FT_ERR_UNSUPPORTED, "line 1, column 9"},
        {"{% for x in y recursive %}{% endfor %}", FT_ERR_UNSUPPORTED, "line 1, column 15"},
        {"{{ 1 + }}", FT_ERR_FORMAT, "line 1, column 8"},
        {"{% if true %}{% else %}{% elif %}{% endif %}", FT_ERR_FORMAT, "line 1, column 27"},
        {"{{ f(*args) }}", FT_ERR_UNSUPPORTED, "line 1, column 6"},
        {"{{ x }", FT_ERR_FORMAT, "line 1, column 6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ft_chat_template *t = NULL;
        int rc = ft_chat_template_from_string(&t, cases[i].src, NULL, NULL);
        printf("syntax: %-48s -> %d %s\n", cases[i].src, rc, ft_last_error());
        assert_null(t);
        assert_int_equal(rc, cases[i].status);
        assert_non_null(strstr(ft_last_error(), cases[i].where));
    }
}

static int render_one(const char *src, const ft_chat_msg *m, int n, int agp, char **out) {
    ft_chat_template *t;
    int rc = ft_chat_template_from_string(&t, src, "<s>", "</s>");
    if (rc) return rc;
    size_t len;
    rc = ft_chat_render(t, m, n, agp, out, &len);
    ft_chat_template_free(t);
    return rc;
}

static void test_runtime_errors(void **state) {
    (void)state;
    ft_chat_template *t;
    ft_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    char *out = (char *)"x";
    size_t len;
    assert_int_equal(ft_chat_template_builtin(&t, "llama2", NULL, NULL), FT_OK);
    assert_int_equal(ft_chat_render(t, bad, 2, 0, &out, &len), FT_ERR_INVALID);
    printf("llama2 raise_exception: %s\n", ft_last_error());
    assert_null(out);
    assert_non_null(strstr(ft_last_error(), "Conversation roles must alternate user/assistant/user/assistant/..."));
    assert_non_null(strstr(ft_last_error(), "line 1, column"));
    ft_chat_msg sys_first[] = {{"system", "s"}, {"assistant", "x"}};
    assert_int_equal(ft_chat_render(t, sys_first, 2, 0, &out, &len), FT_ERR_INVALID);
    ft_chat_template_free(t);
    /* errors inside expressions carry the position of the failing node */
    ft_chat_msg one[] = {{"user", "hi"}};
    assert_int_equal(render_one("x\n{{ messages[0].content + 1 }}", one, 1, 0, &out), FT_ERR_INVALID);
    printf("runtime: %s\n", ft_last_error());
    assert_non_null(strstr(ft_last_error(), "line 2"));
    assert_int_equal(render_one("{{ nothing.attr }}", one, 1, 0, &out), FT_ERR_INVALID);
    assert_non_null(strstr(ft_last_error(), "'nothing' is undefined"));
    assert_int_equal(render_one("{{ 1 // 0 }}", one, 1, 0, &out), FT_ERR_INVALID);
    assert_int_equal(render_one("{{ range(1000000) | length }}", one, 1, 0, &out), FT_ERR_RANGE);
    assert_int_equal(render_one("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", one, 1, 0, &out), FT_ERR_RANGE);
    assert_int_equal(render_one("{{ '%s' % 1 }}", one, 1, 0, &out), FT_ERR_UNSUPPORTED);
}

static const char *span_text(const char *text, const ft_span *s, char *buf, size_t cap) {
    size_t n = s->end - s->start < cap - 1 ? s->end - s->start : cap - 1;
    memcpy(buf, text + s->start, n);
    buf[n] = 0;
    return buf;
}

/* the span with newlines shown as \n, for the log */
static const char *span_shown(const char *text, const ft_span *s, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = s->start; i < s->end && k + 3 < cap; i++) {
        if (text[i] == '\n') { buf[k++] = '\\'; buf[k++] = 'n'; }
        else buf[k++] = text[i];
    }
    buf[k] = 0;
    return buf;
}

static void test_spans(void **state) {
    (void)state;
    ft_chat_msg conv[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}, {"assistant", " See you \n"}};
    static const struct { const char *name; const char *first, *second; } want[] = {
        {"chatml", "Hello!<|im_end|>", " See you \n<|im_end|>"},
        {"llama3", "Hello!<|eot_id|>", "See you<|eot_id|>"},
        {"llama3.1", "Hello!<|eot_id|>", "See you<|eot_id|>"},
        {"llama2", " Hello! </s>", " See you </s>"},
        {"mistral", " Hello!</s>", "  See you \n</s>"},
        {"zephyr", "Hello!</s>", " See you \n</s>"},
        {"alpaca", "Hello!</s>", " See you \n</s>"},
    };
    char buf[128];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ft_chat_template *t;
        assert_int_equal(ft_chat_template_builtin(&t, want[i].name, NULL, NULL), FT_OK);
        char *text;
        size_t len;
        ft_span *sp;
        int nsp;
        assert_int_equal(ft_chat_render_spans(t, conv, 5, 0, &text, &len, &sp, &nsp), FT_OK);
        assert_int_equal(nsp, 2);
        char shown[2][64];
        printf("spans %-8s: [%s] [%s]\n", want[i].name, span_shown(text, &sp[0], shown[0], 64), span_shown(text, &sp[1], shown[1], 64));
        assert_string_equal(span_text(text, &sp[0], buf, sizeof buf), want[i].first);
        assert_string_equal(span_text(text, &sp[1], buf, sizeof buf), want[i].second);
        assert_int_equal(sp[0].message, 2);
        assert_int_equal(sp[1].message, 4);
        /* the spanned text is the full render */
        char *plain;
        size_t plen;
        assert_int_equal(ft_chat_render(t, conv, 5, 0, &plain, &plen), FT_OK);
        assert_int_equal(plen, len);
        assert_memory_equal(plain, text, len);
        free(plain);
        free(text);
        free(sp);
        ft_chat_template_free(t);
    }
    /* Mistral v0.3 moves the system prompt to the last user turn: no consistent prefixes */
    ft_chat_template *t;
    if (ft_fixture_present("chat/mistral-7b-instruct-v0.3")) {
        assert_int_equal(ft_chat_template_load(&t, ft_fixture("chat/mistral-7b-instruct-v0.3")), FT_OK);
        char *text = (char *)"x";
        size_t len;
        ft_span *sp = (ft_span *)1;
        int nsp = 7;
        assert_int_equal(ft_chat_render_spans(t, conv, 5, 0, &text, &len, &sp, &nsp), FT_ERR_UNSUPPORTED);
        printf("spans mistral-v0.3 + system: %s\n", ft_last_error());
        assert_null(text);
        assert_null(sp);
        assert_int_equal(nsp, 0);
        assert_int_equal(ft_chat_render_spans(t, conv + 1, 4, 0, &text, &len, &sp, &nsp), FT_OK); /* no system: fine */
        assert_int_equal(nsp, 2);
        free(text);
        free(sp);
        ft_chat_template_free(t);
    }
}

static void test_misc(void **state) {
    (void)state;
    ft_chat_msg m[] = {{"user", "  hi  "}, {"assistant", NULL}};
    char *out;
    /* content NULL: the key is absent, like transformers dropping None values */
    assert_int_equal(render_one("{{ messages[1].content is defined }}{{ messages[1] | length }}", m, 2, 0, &out), FT_OK);
    assert_string_equal(out, "False1");
    free(out);
    /* `strip` filter: an alias of trim (not in jinja2, accepted as an extension) */
    assert_int_equal(render_one("[{{ messages[0].content | strip }}]", m, 1, 0, &out), FT_OK);
    assert_string_equal(out, "[hi]");
    free(out);
    /* strftime_now */
    char year[16];
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    strftime(year, sizeof year, "%Y", &tmv);
    assert_int_equal(render_one("{{ strftime_now('%Y') }}", m, 1, 0, &out), FT_OK);
    assert_string_equal(out, year);
    free(out);
    /* an empty conversation renders */
    assert_int_equal(render_one("[{% for m in messages %}x{% endfor %}]{{ add_generation_prompt }}", m, 0, 1, &out), FT_OK);
    assert_string_equal(out, "[]True");
    free(out);
    /* variables */
    ft_chat_template *t;
    assert_int_equal(ft_chat_template_from_string(&t, "{{ bos_token }}|{{ a }}|{{ b.c }}|{{ n + 1 }}|{{ f }}", NULL, NULL), FT_OK);
    assert_int_equal(ft_chat_template_set_json(t, "messages", "[]"), FT_ERR_INVALID);
    assert_int_equal(ft_chat_template_set_json(t, "b", "{\"c\": [1, 2.5, null]}"), FT_OK);
    assert_int_equal(ft_chat_template_set_json(t, "n", "41"), FT_OK);
    assert_int_equal(ft_chat_template_set_json(t, "f", "not json"), FT_ERR_FORMAT);
    assert_int_equal(ft_chat_template_set_string(t, "a", "A"), FT_OK);
    assert_int_equal(ft_chat_template_set_string(t, "bos_token", "<B>"), FT_OK);
    assert_int_equal(ft_chat_template_set_string(t, "unused", "x"), FT_OK);
    size_t len;
    assert_int_equal(ft_chat_render(t, m, 1, 0, &out, &len), FT_OK);
    assert_string_equal(out, "<B>|A|[1, 2.5, None]|42|");
    free(out);
    ft_chat_template_free(t);
    /* bad arguments */
    ft_chat_msg norole[] = {{NULL, "x"}};
    assert_int_equal(render_one("x", norole, 1, 0, &out), FT_ERR_INVALID);
    assert_int_equal(ft_chat_template_from_string(&t, NULL, NULL, NULL), FT_ERR_INVALID);
}

/* hostile input: every prefix of each built-in template and thousands of random byte substitutions must
 * parse to a template or an error (never crash, leak or overflow the stack), and parsed ones must render
 * or fail cleanly */
static void test_robustness(void **state) {
    (void)state;
    static const char alphabet[] = "{}%#-+'\"()[]|.,:=~ \n\\ax0_";
    ft_chat_msg conv[] = {{"system", "s"}, {"user", "u"}, {"assistant", "a"}, {"user", "é"}};
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int parsed = 0, rendered = 0, total = 0;
    for (int b = 0; ft_chat_builtin_name(b); b++) {
        const char *src = ft_chat_builtin_source(ft_chat_builtin_name(b));
        size_t n = strlen(src);
        char *buf = malloc(n + 1);
        for (size_t cut = 0; cut <= n; cut += (n > 2000 ? 3 : 1)) {
            memcpy(buf, src, cut);
            buf[cut] = 0;
            ft_chat_template *t;
            total++;
            if (ft_chat_template_from_string(&t, buf, "<s>", "</s>") != FT_OK) continue;
            parsed++;
            char *out;
            size_t len;
            if (ft_chat_render(t, conv, 4, 1, &out, &len) == FT_OK) { rendered++; free(out); }
            ft_chat_template_free(t);
        }
        for (int k = 0; k < 600; k++) {
            memcpy(buf, src, n + 1);
            for (int m = 0; m < 3; m++) {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                buf[rng % n] = alphabet[(rng >> 32) % (sizeof alphabet - 1)];
            }
            ft_chat_template *t;
            total++;
            if (ft_chat_template_from_string(&t, buf, "<s>", "</s>") != FT_OK) continue;
            parsed++;
            char *out;
            size_t len;
            ft_span *sp;
            int nsp;
            if (ft_chat_render_spans(t, conv, 4, 0, &out, &len, &sp, &nsp) == FT_OK) { rendered++; free(out); free(sp); }
            ft_chat_template_free(t);
        }
        free(buf);
    }
    printf("robustness: %d mutated/truncated templates, %d parsed, %d rendered, no crash\n", total, parsed, rendered);
    /* nesting far beyond real templates is refused with an error, not a stack overflow */
    static const char *const deep[] = {"(", "not ", "-", "{% if x %}", "x if y else "};
    for (size_t d = 0; d < sizeof deep / sizeof deep[0]; d++) {
        size_t unit = strlen(deep[d]);
        char *src = malloc(unit * 20000 + 64);
        size_t k = 0;
        if (d != 3) { memcpy(src, "{{ ", 3); k = 3; }
        for (int i = 0; i < 20000; i++) { memcpy(src + k, deep[d], unit); k += unit; }
        strcpy(src + k, d == 3 ? "" : "1 }}");
        ft_chat_template *t;
        int rc = ft_chat_template_from_string(&t, src, NULL, NULL);
        printf("deep nesting '%s' x 20000: %s\n", deep[d], rc ? ft_last_error() : "parsed");
        assert_int_not_equal(rc, FT_OK);
        free(src);
    }
    /* a long flat chain is also bounded (its tree is as deep as it is long) */
    char *chain = malloc(4 * 20000 + 16);
    strcpy(chain, "{{ 1");
    for (int i = 0; i < 20000; i++) strcat(chain + 4 + 4 * i - (i ? 0 : 0), " + 1");
    strcat(chain, " }}");
    ft_chat_template *t;
    assert_int_equal(ft_chat_template_from_string(&t, chain, NULL, NULL), FT_ERR_UNSUPPORTED);
    free(chain);
    /* ... while a 400-term sum still works */
    char sum[4096] = "{{ 0";
    for (int i = 0; i < 400; i++) strcat(sum, "+1");
    strcat(sum, " }}");
    char *out;
    assert_int_equal(render_one(sum, conv, 1, 0, &out), FT_OK);
    assert_string_equal(out, "400");
    free(out);
}

/* parse once, render many: time per render of Llama-3.1's template (the largest built-in) */
static void test_render_speed(void **state) {
    (void)state;
    ft_chat_template *t;
    assert_int_equal(ft_chat_template_builtin(&t, "llama3.1", NULL, NULL), FT_OK);
    ft_chat_msg conv[12];
    for (int i = 0; i < 12; i++) {
        conv[i].role = i == 0 ? "system" : (i % 2 ? "user" : "assistant");
        conv[i].content = "Some message content of moderate length, like a sentence or two in a chat.";
    }
    int iters = 2000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t total = 0;
    for (int k = 0; k < iters; k++) {
        char *out;
        size_t len;
        assert_int_equal(ft_chat_render(t, conv, 12, 1, &out, &len), FT_OK);
        total += len;
        free(out);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / iters;
    printf("render speed: llama3.1, 12 messages, %zu bytes: %.1f us per render (%d renders)\n", total / (size_t)iters, us, iters);
    ft_chat_template_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_parity), cmocka_unit_test(test_feature_parity),
        cmocka_unit_test(test_random_parity),
        cmocka_unit_test(test_loader),          cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_runtime_errors),  cmocka_unit_test(test_spans),
        cmocka_unit_test(test_misc),            cmocka_unit_test(test_robustness),
        cmocka_unit_test(test_render_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
